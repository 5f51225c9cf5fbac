"""A rated line (:class:`Charge`) and its pricing: from an account's
quantity of a product in a period to exact amounts, with :mod:`hub.pricing`.

Knows the catalog's prices and the accounts' currencies; knows nothing of
the store or of how the quantities were measured.

Pricing: a line priced per second or per unit, whose quantity counts in
nanos, is priced in exact Decimal arithmetic
(:func:`hub.pricing.charge_decimal`, the same digits as Fractions, several
times faster); per minute, hour or day in Fractions. Package prices:
``unit_price`` is None and the one-part breakdown (``quantity`` = packages,
``unit_price`` = package price) is in ``tiers``, like a tiered price's.

Flat products: an account listing the product in its ``plans`` gets one
line whose quantity is the *active fraction* of the period
(``active_seconds / period_seconds``, 1 for a whole period) and whose unit
price is the flat amount, so ``quantity * unit_price`` is the exact amount
(:func:`hub.pricing.flat_amount`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any

from hub.config.catalog import Product
from hub.config.model import Config
from hub.periods import Period
from hub.pricing import (
    PER_DIVISOR,
    Flat,
    Package,
    PerUnit,
    Tiered,
    charge,
    charge_decimal,
    finite_decimal,
    flat_amount,
    round_money,
    to_decimal,
)


@dataclass(frozen=True)
class Charge:
    """One future invoice line: an account's product (or one resource of it)
    in a period.

    - ``quantity``: in the priced unit (``unit``), before the free allowance;
      exact, or to :data:`hub.pricing.DISPLAY_PLACES` places when it has no
      finite decimal expansion (per minute/hour/day).
    - ``unit_price``: the price of one ``unit`` (per_unit and flat), ``None``
      for tiered and package prices, whose ``tiers`` hold the breakdown.
    - ``records``: how many usage records it came from (0 for a flat plan);
      :func:`hub.rating.trace` lists them.
    - ``exact_amount``: the amount before rounding; ``amount``: rounded once
      to the account currency's minor unit with the hub's rounding mode.
    """

    account: str
    product: str
    resource_id: str | None
    quantity: Decimal
    unit: str
    unit_price: Decimal | None
    tiers: tuple[dict[str, Any], ...]
    exact_amount: Fraction
    amount: Decimal
    currency: str
    free: Decimal = Decimal(0)
    records: int = field(default=0, compare=False)
    exact_quantity: Fraction = field(default=Fraction(0), compare=False)

    def to_json(self, period: Period) -> dict[str, Any]:
        return {
            "account": self.account, "product": self.product, "resource_id": self.resource_id,
            "quantity": fmt(self.quantity), "unit": self.unit,
            "unit_price": None if self.unit_price is None else fmt(self.unit_price),
            "tiers": [dict(t) for t in self.tiers],
            "exact_amount": fmt(to_decimal(self.exact_amount)), "amount": fmt(self.amount),
            "currency": self.currency, "period": str(period), "records": self.records,
        }


def fmt(value: Decimal) -> str:
    """``value`` in plain notation (``"0.00000001"``, never ``"1E-8"``)."""
    text = str(value)  # a few times faster than format(): a rating writes 100,000 of them
    return text if "E" not in text else format(value, "f")


def _tiers(priced_breakdown: Sequence[Any]) -> tuple[dict[str, Any], ...]:
    return tuple(
        {"up_to": None if p.up_to is None else fmt(p.up_to), "quantity": fmt(to_decimal(p.quantity)),
         "unit_price": fmt(p.unit_price), "amount": fmt(to_decimal(p.amount))}
        for p in priced_breakdown
    )


def metered_charge(config: Config, acc: str, product: Product, res: str | None, q: Fraction, records: int,
                   rounding: str) -> Charge:
    """The line of ``acc``'s quantity ``q`` of ``product`` (of the resource
    ``res``), in the meter's unit, from ``records`` usage records."""
    price = config.catalog.price_for(acc, product.name)
    account = config.accounts.get(acc)
    currency = account.currency if account else config.hub.currency
    # a quantity of the store counts in nanos: priced per second or unit it
    # stays a finite decimal, priced in exact Decimals (the same values, a
    # few times faster than Fractions)
    quantity_decimal = (finite_decimal(q) if PER_DIVISOR[product.per] == 1 and not isinstance(product.free, Fraction)
                        else None)
    if quantity_decimal is not None:
        priced = charge_decimal(price, quantity_decimal, per=product.per, free=product.free)
        quantity, amount = q, Fraction(priced.exact)  # q: in the priced unit already
    else:
        priced = charge(price, q, per=product.per, free=product.free)
        # = priced_quantity(q, product.per), exactly
        quantity, amount = (priced.quantity + priced.free if priced.free else priced.quantity), priced.exact
    if isinstance(price, PerUnit):
        unit_price, tiers = price.unit_price, ()
    elif isinstance(price, (Tiered, Package)):
        unit_price, tiers = None, _tiers(priced.breakdown)
    else:  # pragma: no cover - the catalog keeps flat prices off metered products
        raise TypeError(f"product {product.name!r} has a {price.model} price")
    return Charge(acc, product.name, res, to_decimal(quantity_decimal if quantity_decimal is not None else quantity),
                  product.per, unit_price, tiers, amount, round_money(priced.exact, currency, rounding), currency,
                  to_decimal(priced.free) if priced.free else Decimal(0),
                  records=records, exact_quantity=quantity)


def flat_charge(config: Config, acc: str, product: Product, active: int, period_seconds: int,
                rounding: str) -> Charge:
    """The line of ``acc``'s flat ``product``, active ``active`` of the
    period's ``period_seconds`` seconds."""
    price = config.catalog.price_for(acc, product.name)
    assert isinstance(price, Flat)
    exact_amount = flat_amount(price.amount, active, period_seconds)
    fraction = Fraction(active, period_seconds)
    currency = config.accounts[acc].currency
    return Charge(acc, product.name, None, to_decimal(fraction), product.per, price.amount, (),
                  exact_amount, round_money(exact_amount, currency, rounding), currency,
                  exact_quantity=fraction)
