"""The what-if comparison (``hub rate --catalog``): the lines of two
ratings of the same usage side by side.

Knows only :class:`hub.rating.charge.Charge`; knows nothing of how either
rating was made.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from hub.periods import Period
from hub.rating.charge import Charge, fmt


@dataclass(frozen=True)
class Difference:
    """One line under two catalogs: ``old`` or ``new`` is None when only
    one catalog bills it."""

    account: str
    product: str
    resource_id: str | None
    old: Charge | None
    new: Charge | None

    @property
    def currency(self) -> str:
        return (self.new or self.old).currency  # type: ignore[union-attr]

    @property
    def change(self) -> Decimal:
        return (self.new.amount if self.new else Decimal(0)) - (self.old.amount if self.old else Decimal(0))

    def to_json(self, period: Period) -> dict[str, Any]:
        def side(c: Charge | None) -> dict[str, Any] | None:
            return None if c is None else c.to_json(period)

        return {"account": self.account, "product": self.product, "resource_id": self.resource_id,
                "currency": self.currency, "old": side(self.old), "new": side(self.new), "change": fmt(self.change)}


def compare(old: Sequence[Charge], new: Sequence[Charge]) -> list[Difference]:
    """The lines of two ratings of the same usage side by side, by account,
    product and resource."""
    def key(c: Charge) -> tuple[str, str, str]:
        return c.account, c.product, c.resource_id or ""

    before, after = {key(c): c for c in old}, {key(c): c for c in new}
    return [Difference(k[0], k[1], k[2] or None, before.get(k), after.get(k))
            for k in sorted(before.keys() | after.keys())]
