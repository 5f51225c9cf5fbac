"""Rating: a period's usage to exact charges (``hub rate``).

docs/billing-rules.md, Time, Granularity and minimum, Meters, Prices and
Lines. Set-based: the database clips each record to the period (in the
account's time zone), applies the product's granularity and minimum
(:mod:`hub.billable`, the rule's one home), and sums ``quantity *
billable_seconds`` exactly in integers (the split sums of
:mod:`hub.quantities`); Python then prices a few rows per (account,
product[, resource]) with :mod:`hub.pricing`.

The stage, module by module (each imports only those above it):

- :mod:`hub.rating.sql`: one product's quantity SQL (:func:`product_sql`,
  the definition that ``hub trace`` and ``hub reconcile`` use) and the
  bounds of the periods after a period that a minimum reaches;
- :mod:`hub.rating.scan`: every time-weighted product in one scan per
  time zone, split over two connections on a SQLite file;
- :mod:`hub.rating.keys`: the rollup keys and the specs the writers keep
  rollups up to date with (:mod:`hub.store.rollups`);
- :mod:`hub.rating.connection`: a rating's session settings and its groups
  of accounts (by time zone; through the account index or by a scan);
- :mod:`hub.rating.product_quantities`: a product's quantities from valid
  rollups or computed, and stored;
- :mod:`hub.rating.charge`: a line (:class:`Charge`) and its pricing;
- :mod:`hub.rating.stage`: :func:`rate`, :func:`regrouped`,
  :func:`keep_rollups`;
- :mod:`hub.rating.shares`: the resources behind a product line;
- :mod:`hub.rating.tracing`: the records behind a line (:func:`trace`);
- :mod:`hub.rating.what_if`: two ratings side by side (:func:`compare`).

The rating stands above the store and below the application layer: it
imports :mod:`hub.store`, never the other way round, and knows nothing of
invoices, documents or the CLI.
"""

from hub.rating.charge import Charge
from hub.rating.keys import ROLLUP_REVISION, rollup_key, rollup_spec
from hub.rating.scan import one_scan_sql
from hub.rating.shares import ResourceShare, resource_shares
from hub.rating.sql import Quantities, after_bound_list, after_bounds, pieces_of, product_params, product_sql
from hub.rating.stage import keep_rollups, rate, regrouped
from hub.rating.tracing import TracedRecord, trace
from hub.rating.what_if import Difference, compare

__all__ = [
    "ROLLUP_REVISION", "Charge", "Difference", "Quantities", "ResourceShare", "TracedRecord", "after_bound_list",
    "after_bounds", "compare", "keep_rollups", "one_scan_sql", "pieces_of", "product_params",
    "product_sql", "rate", "regrouped", "resource_shares", "rollup_key", "rollup_spec", "trace",
]
