"""Kept for plugins written against it: the hooks now live in :mod:`hub.plugin`.

``from hub.plugin import hookimpl`` is the public way in.
"""

from hub.plugin.hookspecs import *  # noqa: F401,F403
from hub.plugin.hookspecs import ENTRY_POINT_GROUP, PROJECT, hookimpl, hookspec  # noqa: F401
