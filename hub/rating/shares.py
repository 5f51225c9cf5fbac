"""Resource shares: the drill-down of a product line (``itemize =
"product"``) to the resources it came from, rated as :func:`hub.rating.rate`
rates, each resource on its own.

Knows the rating's quantities and the catalog's itemize choices; knows
nothing of invoices (which show the shares) or of prices.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine

from hub.config.catalog import ADDITIVE
from hub.config.model import Config
from hub.periods import Period
from hub.pricing import priced_quantity, to_decimal
from hub.rating.charge import fmt
from hub.rating.connection import groups, rating_connection
from hub.rating.keys import aggregation, metered
from hub.rating.product_quantities import product_quantities
from hub.rating.scan import one_scan_quantities
from hub.rating.stage import regrouped


@dataclass(frozen=True)
class ResourceShare:
    """One resource's part of a product line (``itemize = "product"``):
    ``quantity`` in the line's priced unit, before the free allowance (as
    the line's), and the usage records it came from. The shares of a line
    add up to its quantity and records (to :data:`hub.pricing.DISPLAY_PLACES`
    places for a quantity per minute, hour or day)."""

    resource_id: str
    quantity: Decimal
    records: int
    #: of a time-weighted product with a granularity or a minimum: the
    #: quantity its records used, before they were rounded up (documents
    #: say "used 12 min 42 s, billed 20 min"); None otherwise
    used: Decimal | None = None

    def to_json(self) -> dict[str, Any]:
        out = {"resource_id": self.resource_id, "quantity": fmt(self.quantity), "records": self.records}
        if self.used is not None:
            out["used"] = fmt(self.used)
        return out


def resource_shares(engine: Engine, config: Config, period: Period, accounts: Sequence[str] | None = None,
                    now: datetime | None = None) -> dict[tuple[str, str], tuple[ResourceShare, ...]]:
    """The drill-down of the product lines of ``period``: per (account,
    product), its resources' shares, sorted by resource id, for the
    products that are not itemized and whose meter is :data:`ADDITIVE` (a
    ``max`` or ``latest`` line comes from one record: ``hub trace`` names
    it)."""
    now_s = int((now or datetime.now(timezone.utc)).timestamp())
    catalog = config.catalog
    additive = [p for p in metered(config) if aggregation(config, p) in ADDITIVE]
    out: dict[tuple[str, str], list[ResourceShare]] = defaultdict(list)
    if not additive:
        return {}
    with rating_connection(engine) as conn:
        for tz, ids, base, filter_accounts in groups(config, period, accounts, now_s):
            wanted = set(ids)
            # the products some of these accounts have a product line of
            other = regrouped(config, additive, ids)
            products = [replace(p, itemize="resource") for p in additive
                        if p.itemize != "resource" and len(other.get(p.name, ())) < len(ids)
                        or p.itemize == "resource" and p.name in other]
            if not products:
                continue
            used = _used(conn, config, products, period, tz, base, filter_accounts)
            for product, per_resource in product_quantities(conn, config, products, period, tz, base,
                                                            filter_accounts):
                listed = catalog.product(product.name)
                raw = used.get(product.name)
                for (acc, res), (q, n) in per_resource.items():
                    if q == 0 or acc not in wanted or catalog.itemized(acc, listed):
                        continue
                    share_used = None
                    if raw is not None:
                        share_used = to_decimal(priced_quantity(raw.get((acc, res), (0, 0))[0], product.per))
                    out[(acc, product.name)].append(
                        ResourceShare(res or "", to_decimal(priced_quantity(q, product.per)), n, share_used))
    return {key: tuple(sorted(shares, key=lambda r: r.resource_id)) for key, shares in out.items()}


def _used(conn: Any, config: Config, products: Sequence[Any], period: Period, tz: Any, base: dict[str, Any],
          filter_accounts: bool) -> dict[str, Any]:
    """The unrounded quantities (granularity 1 s, no minimum) per
    (account, resource) of the time-weighted ``products`` that round:
    one scan more, only when a product has a granularity or a minimum
    (read, never stored as rollups)."""
    rounding = [p for p in products if aggregation(config, p) == "time_weighted"
                and (int(p.granularity) > 1 or int(p.minimum) > 0)]
    if not rounding:
        return {}
    raw = [replace(p, granularity=1, minimum=0) for p in rounding]
    return {p.name: q for p, q in zip(rounding, one_scan_quantities(conn, raw, period, tz, base, filter_accounts))}
