"""Reconciliation (``hub reconcile``): where every second of usage went.

For a period, per source, meter and product, the usage records that touch
the period are followed from what came in to what is billed:

- time-weighted meters, in seconds: ``in`` (each record's whole interval; a
  running one to the period's end, or to now while it is open) =
  ``before`` + ``inside`` + ``after`` (the seconds outside the period are
  another period's); the product bills ``inside`` + ``granularity`` (seconds
  added by rounding up to the granularity) + ``topup`` (added up to the
  minimum), and ``quantity`` = the unit-seconds of what it bills;
- the other meters, in records and quantity: how many records the product
  counts (a sum meter counts the records that start in the period, max and
  latest the record they pick, unique one per resource) and their quantity.

Then per account and product, the records' quantity is compared with the
quantity of ``hub rate``'s lines (:mod:`hub.rating`), which split it into
``free`` (the allowance) and ``charged``; and the quarantine is listed per
source: rows held there are accounted for, as quarantined.

Nothing may be unaccounted for. A reconciliation is *not* balanced when:
the seconds of a record do not add up; the records' quantity differs from
the lines' by any amount; a record's meter is priced by no product; or a
record's account is not configured (both: usage that would never be billed).

Last, how the period was invoiced, per billed account that closed it
(``closings``): the invoice that billed it, or, for a period whose total
was below ``[invoicing] minimum_amount``, the total it deferred and the
later invoice its charges were carried to (still ``deferred`` until one
is issued): deferred usage is accounted for, never lost.

Knows the store's records, quarantine and period closings (the invoices'
numbers, read from their table), and the rating's per-record query and
lines; knows nothing of how invoices are made, nor of documents.
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

from sqlalchemy import Engine, bindparam, func, select, text

from hub.billable import IN_PERIOD
from hub.config.model import Config
from hub.periods import Period
from hub.pricing import priced_quantity, to_decimal
from hub.quantities import combine_split_sums, split_products
from hub.rating import Charge, pieces_of, product_params, product_sql, rate, regrouped
from hub.rating.keys import aggregation as meter_aggregation
from hub.rating.keys import metered as metered_products
from hub.store.tables import invoices, period_closings, quarantine

#: what the reconciliation adds per record to the rating's per-record query
_SECONDS = """
SELECT source, account, COUNT(*) AS records,
       SUM(CASE WHEN COALESCE(end_s, :run_end) > start_s THEN COALESCE(end_s, :run_end) - start_s ELSE 0 END),
       SUM(CASE WHEN start_s < :p0 THEN
                (CASE WHEN COALESCE(end_s, :run_end) < :p0 THEN COALESCE(end_s, :run_end) ELSE :p0 END) - start_s
                ELSE 0 END),
       SUM(secs),
       SUM(CASE WHEN COALESCE(end_s, :run_end) > :p1 THEN
                COALESCE(end_s, :run_end) - (CASE WHEN start_s > :p1 THEN start_s ELSE :p1 END)
                ELSE 0 END),
       {billed}
FROM ({records}) AS r
GROUP BY source, account
"""
_TIME_WEIGHTED = f"""SUM(inside - secs), SUM(topup), SUM(CASE WHEN inside + topup > 0 THEN 1 ELSE 0 END),
       {split_products("(inside + topup)")}"""
_COUNTED = """0, 0, SUM(CASE WHEN {counted} THEN 1 ELSE 0 END),
       SUM(CASE WHEN {counted} THEN qty_units ELSE 0 END), 0,
       SUM(CASE WHEN {counted} THEN qty_nanos ELSE 0 END), 0"""

#: records touching the period that nothing bills: of a meter no product
#: prices, or (in the hub's time zone) of an account not configured
_UNPRICED = f"""
SELECT source, meter, account, COUNT(*) FROM usage_records
WHERE account IN :accounts AND meter NOT IN :priced AND {IN_PERIOD}
GROUP BY source, meter, account ORDER BY source, meter, account
"""
_UNKNOWN_ACCOUNTS = f"""
SELECT source, meter, account, COUNT(*) FROM usage_records
WHERE account NOT IN :accounts AND {IN_PERIOD}
GROUP BY source, meter, account ORDER BY source, meter, account
"""


@dataclass
class SourceRow:
    """The records of one source, meter and product that touch the period."""

    source: str
    meter: str
    product: str
    aggregation: str
    records: int = 0
    seconds_in: int = 0
    before: int = 0
    inside: int = 0
    after: int = 0
    granularity: int = 0
    topup: int = 0
    counted: int = 0
    quantity: Fraction = Fraction(0)  # in the meter's unit (unit-seconds when time-weighted)

    @property
    def billed_seconds(self) -> int:
        return self.inside + self.granularity + self.topup

    @property
    def balanced(self) -> bool:
        return self.seconds_in == self.before + self.inside + self.after

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"source": self.source, "meter": self.meter, "product": self.product,
                               "aggregation": self.aggregation, "records": self.records,
                               "counted": self.counted, "seconds_in": self.seconds_in, "before": self.before,
                               "inside": self.inside, "after": self.after}
        if self.aggregation == "time_weighted":
            out.update(granularity=self.granularity, topup=self.topup, billed_seconds=self.billed_seconds)
        out["quantity"] = _fmt(self.quantity)
        return out


@dataclass
class ProductRow:
    """One account's product: the records' quantity against the lines'."""

    account: str
    product: str
    unit: str
    from_records: Fraction = Fraction(0)  # in the priced unit
    on_lines: Fraction = Fraction(0)
    free: Fraction = Fraction(0)
    lines: list[Charge] = field(default_factory=list)

    @property
    def charged(self) -> Fraction:
        return self.on_lines - self.free

    @property
    def balanced(self) -> bool:
        return self.from_records == self.on_lines

    def to_json(self) -> dict[str, Any]:
        currency = self.lines[0].currency if self.lines else None
        return {"account": self.account, "product": self.product, "unit": self.unit,
                "from_records": _fmt(self.from_records), "on_lines": _fmt(self.on_lines),
                "free": _fmt(self.free), "charged": _fmt(self.charged), "lines": len(self.lines),
                "amount": format(sum((c.amount for c in self.lines), start=Decimal(0)), "f"),
                "currency": currency, "balanced": self.balanced}


@dataclass
class ClosingRow:
    """How one billed account's period was closed: invoiced (``invoice``), closed with nothing to bill,
    or deferred below the minimum amount (``deferred``, its total) and then carried to ``carried_to``."""

    account: str
    invoice: str | None = None
    status: str | None = None  # the invoice's
    deferred: str | None = None
    carried_to: str | None = None
    currency: str | None = None

    @property
    def state(self) -> str:
        """invoiced | carried | deferred | no_charges"""
        if self.invoice is not None:
            return "invoiced"
        if self.deferred is not None:
            return "carried" if self.carried_to is not None else "deferred"
        return "no_charges"

    def to_json(self) -> dict[str, Any]:
        return {"account": self.account, "state": self.state, "invoice": self.invoice, "status": self.status,
                "deferred": self.deferred, "carried_to": self.carried_to, "currency": self.currency}


@dataclass
class Reconciliation:
    period: Period
    sources: list[SourceRow]
    products: list[ProductRow]
    quarantined: dict[str, int]
    problems: list[str]
    #: how the period was invoiced, per billed account that closed it (:class:`ClosingRow`)
    closings: list[ClosingRow] = field(default_factory=list)

    @property
    def balanced(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {"period": str(self.period), "balanced": self.balanced,
                "sources": [r.to_json() for r in self.sources], "products": [p.to_json() for p in self.products],
                "quarantined": [{"source": s, "rows": n} for s, n in sorted(self.quarantined.items())],
                "closings": [c.to_json() for c in self.closings], "problems": self.problems}


def _fmt(value: Fraction) -> str:
    return format(to_decimal(value), "f")



def _closings(conn: Any, config: Config, period: Period, ids: Sequence[str] | None) -> list[ClosingRow]:
    """The closings of ``period`` of the billed accounts among ``ids`` (None: every one), by account."""
    invoice, carried = invoices.alias("invoice"), invoices.alias("carried")
    rows = conn.execute(
        select(period_closings.c.account, period_closings.c.deferred, invoice.c.number, invoice.c.status,
               invoice.c.currency, carried.c.number.label("carried_to"), carried.c.currency.label("carried_currency"))
        .outerjoin(invoice, invoice.c.id == period_closings.c.invoice_id)
        .outerjoin(carried, carried.c.id == period_closings.c.carried_to)
        .where(period_closings.c.period == str(period),
               *(() if ids is None else (period_closings.c.account.in_(list(ids)),)))
        .order_by(period_closings.c.account))
    out = []
    for r in rows:
        account = config.accounts.get(r.account)
        currency = r.currency or r.carried_currency or (account.currency if account else None)
        out.append(ClosingRow(r.account, r.number, r.status, r.deferred, r.carried_to, currency))
    return out


def _by_itemizing(config: Config, products: Sequence[Any], ids: Sequence[str]) -> list[tuple[Any, bool, list[str]]]:
    """Each product with the accounts of ``ids`` whose lines of it are
    itemized as the product says, then with those that itemize them
    otherwise (:func:`hub.rating.regrouped`): a ``max``, ``latest`` or
    ``unique`` line picks its records per line."""
    other = regrouped(config, products, ids)
    out = []
    for product in products:
        own, elsewhere = product.itemize == "resource", other.get(product.name, set())
        for flag, accs in ((own, [a for a in ids if a not in elsewhere]), (not own, sorted(elsewhere))):
            if accs:
                out.append((product, flag, accs))
    return out


def reconcile(engine: Engine, config: Config, period: Period, accounts: Sequence[str] | None = None,
              now: datetime | None = None) -> Reconciliation:
    """Follow every record touching ``period`` to the lines of :func:`hub.rating.rate`."""
    now = now or datetime.now(timezone.utc)
    now_s = int(now.timestamp())
    ids = list(accounts) if accounts is not None else list(config.accounts)
    by_tz: dict[str, list[str]] = defaultdict(list)
    for acc in ids:
        account = config.accounts.get(acc)
        by_tz[account.timezone if account else config.hub.timezone].append(acc)
    metered = metered_products(config)
    priced = sorted({p.meter for p in metered if p.meter is not None}) or [""]
    sources: dict[tuple[str, str, str], SourceRow] = {}
    products: dict[tuple[str, str], ProductRow] = {}
    problems: list[str] = []
    with engine.connect() as conn:
        for tz_name, tz_ids in by_tz.items():
            tz = ZoneInfo(tz_name)
            p0, p1 = period.epoch_bounds(tz)
            base = {"p0": p0, "p1": p1, "run_end": min(now_s, p1), "accounts": tz_ids}
            for product, itemized, accs in _by_itemizing(config, metered, tz_ids):
                aggregation = meter_aggregation(config, product)
                params = {**base, "accounts": accs, **product_params(product, period, tz)}
                records = product_sql(aggregation, itemized, per_record=True, after_pieces=pieces_of(params)).text
                if aggregation == "time_weighted":
                    billed = _TIME_WEIGHTED
                else:
                    billed = _COUNTED.format(counted="start_s >= :p0" if aggregation == "sum" else "rank = 1")
                sql = text(_SECONDS.format(records=records, billed=billed)).bindparams(
                    bindparam("accounts", expanding=True))
                for row in conn.execute(sql, params):
                    source, acc = row[0], row[1]
                    n, s_in, before, inside, after, gran, topup, counted = (int(v or 0) for v in row[2:10])
                    if aggregation == "time_weighted":
                        q = combine_split_sums(*(int(v or 0) for v in row[10:14]))
                    elif aggregation == "unique":
                        q = Fraction(counted)
                    else:  # the counted records' units and nanos
                        q = combine_split_sums(0, int(row[10] or 0), 0, int(row[12] or 0))
                    key = (source, product.meter, product.name)
                    srow = sources.setdefault(key, SourceRow(source, product.meter, product.name, aggregation))
                    srow.records += n
                    srow.seconds_in += s_in
                    srow.before += before
                    srow.inside += inside
                    srow.after += after
                    srow.granularity += gran
                    srow.topup += topup
                    srow.counted += counted
                    srow.quantity += q
                    prow = products.setdefault((acc, product.name), ProductRow(acc, product.name, product.per))
                    prow.from_records += priced_quantity(q, product.per)
            unpriced = text(_UNPRICED).bindparams(bindparam("priced", expanding=True),
                                                  bindparam("accounts", expanding=True))
            for source, meter, acc, n in conn.execute(unpriced, {**base, "priced": priced}):
                problems.append(f"{source}: {n} record(s) of account {acc!r} measure meter {meter!r}, which "
                                f"no product prices: they are never billed")
        if accounts is None:
            p0, p1 = period.epoch_bounds(ZoneInfo(config.hub.timezone))
            unknown = text(_UNKNOWN_ACCOUNTS).bindparams(bindparam("accounts", expanding=True))
            params = {"p0": p0, "p1": p1, "run_end": min(now_s, p1), "accounts": ids or [""]}
            for source, meter, acc, n in conn.execute(unknown, params):
                problems.append(f"{source}: {n} record(s) of meter {meter!r} belong to account {acc!r}, "
                                f"which is not configured: they are never billed")
        quarantined = {s: int(n) for s, n in conn.execute(
            select(quarantine.c.source, func.count()).where(quarantine.c.status == "open")
            .group_by(quarantine.c.source))}
        closings = _closings(conn, config, period, None if accounts is None else ids)
    for c in rate(engine, config, period, ids, now=now):
        if config.catalog.product(c.product).is_flat:
            continue  # a plan, not usage
        prow = products.setdefault((c.account, c.product), ProductRow(c.account, c.product, c.unit))
        prow.on_lines += c.exact_quantity
        prow.free += Fraction(c.free)
        prow.lines.append(c)
    for srow in sources.values():
        if not srow.balanced:
            problems.append(f"{srow.source}: the seconds of meter {srow.meter!r} do not add up for "
                            f"{srow.product!r}: {srow.seconds_in} in, {srow.before} + {srow.inside} + "
                            f"{srow.after} accounted for")
    for prow in products.values():
        if not prow.balanced:
            problems.append(f"{prow.account} {prow.product}: the records make {_fmt(prow.from_records)} "
                            f"{prow.unit} but the lines bill {_fmt(prow.on_lines)}")
    return Reconciliation(
        period,
        sorted(sources.values(), key=lambda r: (r.source, r.meter, r.product)),
        sorted((p for p in products.values() if p.from_records or p.on_lines),
               key=lambda p: (p.account, p.product)),
        quarantined, problems, closings)
