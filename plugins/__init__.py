"""Plugins bundled with the hub, installed as the import package ``hub_plugins``.

They register through the ``hub.plugins`` entry-point group exactly as a
third party's plugins do; the host imports none of them by name.
"""
