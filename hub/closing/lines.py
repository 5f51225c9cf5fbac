"""What the close stage keeps of an invoice line beyond its figures: where
it came from (:class:`LineOrigin`), the instants of its period in its
account's time zone, and the description it is shown with.

Shared by the modules that make lines (rated usage, late-usage
adjustments, manual charges); it must not know how any of them is made.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hub.config.model import Config
from hub.periods import Period
from hub.rating import ResourceShare


@dataclass
class LineOrigin:
    """Where a line came from, parallel to the computed lines."""

    origin: str  # usage | adjustment | manual
    period: str
    records: int = 0
    manual_charge_id: int | None = None
    tiers: tuple[dict[str, Any], ...] = ()
    #: a product line's drill-down to its resources (:func:`hub.rating.resource_shares`)
    resources: tuple[ResourceShare, ...] = ()
    #: an adjustment line's totals, billed before and now (:func:`hub.closing.adjustments.adjusts`)
    adjusts: dict[str, str] | None = None
    #: a deferred period's line on a later invoice (below ``[invoicing] minimum_amount``): its period
    carried_from: str | None = None


def bounds(config: Config, account: str, period: Period) -> tuple[datetime, datetime]:
    """``period``'s instants in ``account``'s time zone."""
    return period.bounds(config.accounts[account].tz)


def description(config: Config, product: str) -> str:
    """The text a line of ``product`` is shown with: the catalog's
    description, else the product's name."""
    if product in config.catalog:
        return config.catalog.product(product).description or product
    return product
