"""The billing hub: pull usage, rate it per second, invoice, render and deliver.

The package is the host. Plugins (sources, exporters, renderers) are found
through the ``hub.plugins`` entry-point group; see :mod:`hub.hookspecs`.
"""

__version__ = "0.1.0"
