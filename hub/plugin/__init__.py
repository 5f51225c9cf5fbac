"""The public plugin API: the one package of the hub a plugin imports.

Third-party plugins and the bundled ones under ``plugins/`` import this
package and nothing else of the hub::

    from hub.plugin import SourceType, PullBatch, UsageRecord, hookimpl

It holds the hook specifications and ``hookimpl`` (:mod:`hub.plugin.hookspecs`),
the typed records exchanged with the host (:mod:`hub.plugin.types`), and the
helpers plugins need so that none keeps its own copy of the hub's domain
knowledge: timestamp and quantity parsing with the hub's error wording
(:mod:`hub.plugin.parsing`); EN 16931 unit and reason codes with the one
price-scaling and tolerance rule of e-invoices (:mod:`hub.plugin.en16931`);
a typed, read-only view of an invoice's JSON with its local period and
payment terms (:class:`~hub.plugin.invoice.Invoice`, :mod:`hub.plugin.invoice`);
the label of the unit a line is billed in (:mod:`hub.plugin.units`); the
limits every backend shares for a usage record's texts
(:mod:`hub.plugin.limits`); and the guard of an exporter's outbound URL,
checked at ``hub check`` and on every connection (:mod:`hub.plugin.outbound`).

This package must not know the store, the stages or the application layer:
it is what the hub promises to plugins, and it depends only on the hub's
pure value modules.
"""

from hub.plugin import en16931
from hub.plugin.hookspecs import ENTRY_POINT_GROUP, PROJECT, hookimpl, hookspec
from hub.plugin.invoice import Invoice
from hub.plugin.parsing import (
    TimestampParser,
    format_epoch,
    parse_quantity,
    parse_timestamp,
    plain_parts_column,
    quantity_error,
    quantity_parts,
    utc_z_column,
)
from hub.plugin.types import (
    EVENTS,
    Delivery,
    DeliveryError,
    Document,
    DocumentRejected,
    Exporter,
    ExporterType,
    InstanceConfig,
    Origin,
    PluginFailure,
    PluginType,
    PullBatch,
    PullContext,
    RejectedRow,
    RenderContext,
    Renderer,
    RendererType,
    RuleFailure,
    Secret,
    SourceType,
    UsageColumns,
    UsageRecord,
    UsageSource,
)

__all__ = [
    "ENTRY_POINT_GROUP", "EVENTS", "PROJECT", "Delivery", "DeliveryError", "Document", "DocumentRejected",
    "Exporter", "ExporterType", "InstanceConfig", "Origin", "PluginFailure", "PluginType", "PullBatch",
    "PullContext", "RejectedRow", "RenderContext", "Renderer", "RendererType", "RuleFailure", "Secret",
    "SourceType", "UsageColumns", "UsageRecord", "UsageSource", "hookimpl", "hookspec",
    "Invoice", "en16931",
]
__all__ += [  # the parsing helpers (hub.plugin.parsing)
    "TimestampParser", "format_epoch", "parse_quantity", "parse_timestamp", "plain_parts_column", "quantity_error",
    "quantity_parts", "utc_z_column",
]
