"""Rating: a period's usage to exact charges (``hub rate``).

../shared/BILLING_RULES.md, Time, Granularity and minimum, Meters, Prices
and Lines. Set-based: the database clips each record to the period (in the
account's time zone), applies the product's granularity and minimum, and
sums ``quantity * billable_seconds`` exactly in integers; Python then prices
a few rows per (account, product[, resource]) with :mod:`hub.pricing`.

Exact sums: a quantity is ``qty_units + qty_nanos * 1e-9``; each part is
split again in two (``// 10^6`` and ``% 10^6`` of the units, ``// 10^5`` and
``% 10^5`` of the nanos), as in :mod:`hub.usage_report`, so no product by
seconds is a float or overflows 64 bits.

Granularity and minimum, per record and product (g, m):

- ``secs``: the record's seconds in [p0, p1) (a running record runs to
  ``min(now, p1)``);
- ``billable = ceil(secs / g) * g`` when ``secs > 0``;
- a finished record that starts in the period and whose billable seconds in
  total are below m gets the top-up ``m - total`` here (the period holding
  its start). Its total is the billable seconds in this period plus the
  piece after ``p1`` rounded up the same way; a record that starts in the
  period has no piece before it. The piece after ``p1`` is taken as one
  piece (assumption: a record shorter than the minimum spans at most into
  the next period).

Flat products: an account listing the product in its ``plans`` gets one
line whose quantity is the *active fraction* of the period
(``active_seconds / period_seconds``, 1 for a whole period; ``since``, a
date at midnight in the account's time zone or an RFC 3339 time, starts it)
and whose unit price is the flat amount, so ``quantity * unit_price`` is
the exact amount (:func:`hub.pricing.flat_amount`).

Package prices: ``unit_price`` is None and the one-part breakdown
(``quantity`` = packages, ``unit_price`` = package price) is in ``tiers``,
like a tiered price's.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, bindparam, text

from hub.catalog import Product
from hub.config.model import Config
from hub.periods import Period
from hub.pricing import (
    Flat,
    Package,
    PerUnit,
    Tiered,
    charge,
    flat_amount,
    priced_quantity,
    round_money,
    to_decimal,
)
from hub.usage_report import _CLIPPED

_UNITS_HI = 1000000  # qty_units // 10^6 counts millions
_NANOS_HI = 100000  # qty_nanos // 10^5 counts 1e-4 units


@dataclass(frozen=True)
class Charge:
    """One future invoice line: an account's product (or one resource of it)
    in a period.

    - ``quantity``: in the priced unit (``unit``), before the free allowance;
      exact, or to :data:`hub.pricing.DISPLAY_PLACES` places when it has no
      finite decimal expansion (per minute/hour/day).
    - ``unit_price``: the price of one ``unit`` (per_unit and flat), ``None``
      for tiered and package prices, whose ``tiers`` hold the breakdown.
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
    exact_quantity: Fraction = field(default=Fraction(0), compare=False)

    def to_json(self, period: Period) -> dict[str, Any]:
        return {
            "account": self.account, "product": self.product, "resource_id": self.resource_id,
            "quantity": _fmt(self.quantity), "unit": self.unit,
            "unit_price": None if self.unit_price is None else _fmt(self.unit_price),
            "tiers": [dict(t) for t in self.tiers],
            "exact_amount": _fmt(to_decimal(self.exact_amount)), "amount": _fmt(self.amount),
            "currency": self.currency, "period": str(period),
        }


def _fmt(value: Decimal) -> str:
    return format(value, "f")


# --------------------------------------------------------------------------
# SQL


def _billable(secs: str) -> str:
    return f"CASE WHEN {secs} > 0 THEN ({secs} + :g - 1) / :g * :g ELSE 0 END"


#: per record: billable seconds in the period plus the minimum top-up
_TIME_WEIGHTED = """
SELECT account, {key} AS rkey,
       SUM((qty_units / 1000000) * b), SUM((qty_units % 1000000) * b),
       SUM((qty_nanos / 100000) * b), SUM((qty_nanos % 100000) * b)
FROM (
  SELECT account, resource_id, qty_units, qty_nanos,
         inside + CASE WHEN end_s IS NOT NULL AND start_s >= :p0 AND inside + after < :m
                       THEN :m - inside - after ELSE 0 END AS b
  FROM (
    SELECT account, resource_id, qty_units, qty_nanos, start_s, end_s,
           {inside} AS inside,
           CASE WHEN end_s IS NOT NULL AND end_s > :p1 THEN (end_s - :p1 + :g - 1) / :g * :g ELSE 0 END AS after
    FROM (SELECT account, resource_id, qty_units, qty_nanos, start_s, end_s, {clipped} AS secs
          FROM usage_records
          WHERE account IN :accounts AND meter = :meter AND start_s < :p1
            AND (COALESCE(end_s, :run_end) > :p0 OR start_s >= :p0)) AS clipped
  ) AS pieces
) AS billed
GROUP BY account{grp}
"""

_SUM = """
SELECT account, {key} AS rkey, SUM(qty_units), SUM(qty_nanos)
FROM usage_records
WHERE account IN :accounts AND meter = :meter AND start_s >= :p0 AND start_s < :p1
GROUP BY account{grp}
"""

_UNIQUE = """
SELECT account, {key} AS rkey, COUNT(DISTINCT resource_id)
FROM usage_records
WHERE account IN :accounts AND meter = :meter AND start_s < :p1
  AND (COALESCE(end_s, :run_end) > :p0 OR start_s >= :p0)
GROUP BY account{grp}
"""

_RANKED = """
SELECT account, rkey, quantity FROM (
  SELECT account, {key} AS rkey, quantity,
         ROW_NUMBER() OVER (PARTITION BY account{grp} ORDER BY {order}) AS rank
  FROM usage_records
  WHERE account IN :accounts AND meter = :meter AND start_s < :p1 AND {where}
) AS ranked WHERE rank = 1
"""
_OVERLAPS = "(COALESCE(end_s, :run_end) > :p0 OR start_s >= :p0)"


def _query(aggregation: str, itemized: bool) -> Any:
    key = "resource_id" if itemized else "''"
    grp = ", resource_id" if itemized else ""  # PostgreSQL refuses a constant in GROUP BY
    if aggregation == "time_weighted":
        sql = _TIME_WEIGHTED.format(key=key, grp=grp, clipped=_CLIPPED, inside=_billable("secs"))
    elif aggregation == "sum":
        sql = _SUM.format(key=key, grp=grp)
    elif aggregation == "unique":
        sql = _UNIQUE.format(key=key, grp=grp)
    elif aggregation == "max":
        sql = _RANKED.format(key=key, grp=grp, order="qty_units DESC, qty_nanos DESC", where=_OVERLAPS)
    elif aggregation == "latest":
        sql = _RANKED.format(key=key, grp=grp, order="start_s DESC, received_s DESC, record_id DESC", where="1 = 1")
    else:
        raise ValueError(f"unknown aggregation {aggregation!r}")
    return text(sql).bindparams(bindparam("accounts", expanding=True))


def _quantities(conn: Connection, aggregation: str, itemized: bool,
                params: dict[str, Any]) -> dict[tuple[str, str | None], Fraction]:
    """Q per (account, resource or None), exact, in the meter's unit
    (unit-seconds for a time-weighted meter)."""
    out: dict[tuple[str, str | None], Fraction] = {}
    for row in conn.execute(_query(aggregation, itemized), params):
        account, rkey = row[0], (row[1] if itemized else None)
        if aggregation == "time_weighted":
            u_hi, u_lo, n_hi, n_lo = (int(v or 0) for v in row[2:6])
            q = Fraction(u_hi * _UNITS_HI + u_lo) + Fraction(n_hi * _NANOS_HI + n_lo, 10**9)
        elif aggregation == "sum":
            q = Fraction(int(row[2] or 0)) + Fraction(int(row[3] or 0), 10**9)
        elif aggregation == "unique":
            q = Fraction(int(row[2]))
        else:
            q = Fraction(Decimal(row[2]))
        out[(account, rkey)] = q
    return out


# --------------------------------------------------------------------------
# rating


def _tiers(priced_breakdown: Sequence[Any]) -> tuple[dict[str, Any], ...]:
    return tuple(
        {"up_to": None if p.up_to is None else _fmt(p.up_to), "quantity": _fmt(to_decimal(p.quantity)),
         "unit_price": _fmt(p.unit_price), "amount": _fmt(to_decimal(p.amount))}
        for p in priced_breakdown
    )


def _since_s(value: Any, tz: ZoneInfo) -> int | None:
    if value is None:
        return None
    from hub.config.values import parse_date_or_time

    return int(parse_date_or_time(str(value), tz).timestamp())


def rate(engine: Engine, config: Config, period: Period, accounts: Sequence[str] | None = None,
         now: datetime | None = None) -> list[Charge]:
    """The charges of ``period``, sorted by account, product and resource.

    :param accounts: only these accounts (default: every configured one).
    :param now: the clock for running records of an open period.
    """
    now_s = int((now or datetime.now(timezone.utc)).timestamp())
    rounding = config.hub.rounding
    by_tz: dict[str, list[str]] = defaultdict(list)
    for acc in accounts if accounts is not None else list(config.accounts):
        account = config.accounts.get(acc)
        by_tz[account.timezone if account else config.hub.timezone].append(acc)
    catalog = config.catalog
    metered = [p for p in catalog if not p.is_flat and p.meter is not None]
    flat = [p for p in catalog if p.is_flat]
    out: list[Charge] = []
    with engine.connect() as conn:
        for tz_name, ids in by_tz.items():
            tz = ZoneInfo(tz_name)
            p0, p1 = period.epoch_bounds(tz)
            base = {"p0": p0, "p1": p1, "run_end": min(now_s, p1), "accounts": ids}
            for product in metered:
                meter = config.meters.get(product.meter)
                aggregation = meter.aggregation if meter else "time_weighted"
                params = {**base, "meter": product.meter, "g": product.granularity, "m": product.minimum}
                itemized = product.itemize == "resource"
                for (acc, res), q in _quantities(conn, aggregation, itemized, params).items():
                    if q == 0:
                        continue
                    out.append(_metered_charge(config, acc, product, res, q, rounding))
            for product in flat:
                for acc in ids:
                    account = config.accounts.get(acc)
                    if account is None or product.name not in (account.extra.get("plans") or ()):
                        continue
                    since = _since_s(account.extra.get("since"), tz)
                    active = max(0, p1 - max(p0, since if since is not None else p0))
                    active = min(active, p1 - p0)
                    if active == 0:
                        continue
                    price = catalog.price_for(acc, product.name)
                    assert isinstance(price, Flat)
                    exact_amount = flat_amount(price.amount, active, p1 - p0)
                    fraction = Fraction(active, p1 - p0)
                    currency = account.currency
                    out.append(Charge(acc, product.name, None, to_decimal(fraction), product.per, price.amount, (),
                                      exact_amount, round_money(exact_amount, currency, rounding), currency,
                                      exact_quantity=fraction))
    return sorted(out, key=lambda c: (c.account, c.product, c.resource_id or ""))


def _metered_charge(config: Config, acc: str, product: Product, res: str | None, q: Fraction,
                    rounding: str) -> Charge:
    price = config.catalog.price_for(acc, product.name)
    account = config.accounts.get(acc)
    currency = account.currency if account else config.hub.currency
    priced = charge(price, q, per=product.per, free=product.free)
    quantity = priced_quantity(q, product.per)
    if isinstance(price, PerUnit):
        unit_price, tiers = price.unit_price, ()
    elif isinstance(price, (Tiered, Package)):
        unit_price, tiers = None, _tiers(priced.breakdown)
    else:  # pragma: no cover - the catalog keeps flat prices off metered products
        raise TypeError(f"product {product.name!r} has a {price.model} price")
    return Charge(acc, product.name, res, to_decimal(quantity), product.per, unit_price, tiers, priced.exact,
                  round_money(priced.exact, currency, rounding), currency, to_decimal(priced.free),
                  exact_quantity=quantity)
