"""The hooks a hub plugin can implement: the reference for plugin authors.

A plugin is a module (or object) with functions decorated by
:data:`hookimpl`, published through the ``hub.plugins`` entry-point group::

    # pyproject.toml of your distribution
    [project.entry-points."hub.plugins"]
    acme = "acme_hub.plugin"

    # acme_hub/plugin.py
    from hub.plugin import SourceType, hookimpl

    @hookimpl
    def hub_register_source_types():
        return [SourceType(name="acme", description="...", config_schema={...},
                           factory=AcmeSource)]

Registration hooks take no argument and return a list of typed records
(:mod:`hub.plugin`). The bundled plugins use exactly these hooks.

Every call into plugin code goes through the host's guard: an exception is
recorded as a :class:`~hub.plugin.types.PluginFailure` (plugin, hook,
message) and the other plugins and instances go on.
"""

from __future__ import annotations

import pluggy

from hub.plugin.types import ExporterType, RendererType, SourceType

PROJECT = "hub"
ENTRY_POINT_GROUP = "hub.plugins"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# --------------------------------------------------------------------------
# Registration: called once when the host is built.


@hookspec
def hub_register_source_types() -> list[SourceType]:
    """Declare the usage-source types this plugin provides.

    Called once, when the host is built (every ``hub`` command).

    :return: a list of :class:`~hub.plugin.types.SourceType`. Each ``name``
        must be unique among all installed source types; a duplicate stops
        the hub with an error naming both distributions.
    :raises: any exception is recorded as a failure of this plugin's
        ``hub_register_source_types``; its types are then unavailable and
        the rest of the hub goes on.
    """


@hookspec
def hub_register_exporter_types() -> list[ExporterType]:
    """Declare the exporter types this plugin provides.

    Called once, when the host is built.

    :return: a list of :class:`~hub.plugin.types.ExporterType`, names unique
        among installed exporter types.
    :raises: recorded as a failure of this plugin; the rest goes on.
    """


@hookspec
def hub_register_renderer_types() -> list[RendererType]:
    """Declare the renderer types this plugin provides.

    Called once, when the host is built.

    :return: a list of :class:`~hub.plugin.types.RendererType`, names unique
        among installed renderer types.
    :raises: recorded as a failure of this plugin; the rest goes on.
    """


# --------------------------------------------------------------------------
# Events: called after the fact, for plugins that want to react. They are
# notifications, not a delivery channel: an exporter gets its events through
# the outbox (exactly once, retried), not through these hooks.


@hookspec
def hub_invoice_issued(invoice: dict) -> None:
    """An invoice or credit note was issued (its transaction committed).

    :param invoice: its JSON, as ``hub invoices show NUMBER --json`` prints it.
    :raises: recorded as a failure of this plugin; nothing is undone.
    """


@hookspec
def hub_invoice_paid(invoice: dict) -> None:
    """An invoice became fully paid (the payment is recorded).

    :param invoice: its JSON, with ``status`` ``paid`` and its ``payments``.
    :raises: recorded as a failure of this plugin; nothing is undone.
    """


@hookspec
def hub_invoice_overdue(invoice: dict, reminder: dict) -> None:
    """A reminder of an overdue invoice was recorded (``hub dunning``, or the
    ``dunning`` job of ``hub run``): once per invoice and ``[dunning]
    after_days`` step, with its ``invoice.overdue`` deliveries queued.

    :param invoice: its JSON, with its ``open_balance`` and ``due_date``.
    :param reminder: ``step``, ``as_of`` (the ISO day it was due on),
        ``due_date``, ``days_overdue``, ``open_balance`` and ``currency``.
    :raises: recorded as a failure of this plugin; nothing is undone.
    """


@hookspec
def hub_delivery_failed(delivery: dict) -> None:
    """A delivery is dead: it failed permanently or ran out of attempts.

    :param delivery: ``id``, ``number``, ``exporter``, ``event``, ``key``,
        ``attempts`` and ``last_error``, as ``hub deliveries --json`` shows.
    :raises: recorded as a failure of this plugin.
    """
