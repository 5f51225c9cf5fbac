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

Speed (issue #3): the time-weighted products are rated together, in one
scan of ``usage_records`` per time zone (:func:`one_scan_sql`; a meter's
second product takes a second scan), each record's billed seconds computed
once; a time zone's group of accounts is filtered with ``IN`` only when it
is small (``_IN_LIST_MAX``), otherwise in Python; on PostgreSQL the rating's
transaction runs with ``jit = off`` and a larger ``work_mem``, on SQLite the
sorter of its ``GROUP BY`` gets helper threads. :func:`product_sql` (one
product at a time) stays the definition that ``hub trace`` and ``hub
reconcile`` use, and tests/test_rating_speed_paths.py checks that both agree.

On a SQLite file a full scan runs on both cores: half of the records by id
in the rating's connection, the other half in a second connection of a
thread of its own, the sums added up (:func:`_sqlite_split_scan`).

Rollups (:mod:`hub.store.rollups`, migrations 0006 and 0007): a rating of
a period by a group of at least ``_IN_LIST_MAX`` accounts stores each
product's quantities, stamped with the store's usage generation (which
triggers on ``usage_records`` move at every change of usage); the same
rating again, of every account or of a few, reads them instead of
scanning, while no usage that can count in the period changed (a record
counts in no period that ends before it starts: usage of later days can
keep arriving) or the writers added every change to them (time-weighted
and sum meters). An open period's time-weighted rollups hold the finished
records (the running ones are billed to now, from their index); a closed
period's hold the running ones too, billed to its end
(:func:`_product_quantities`). :func:`keep_rollups` rates the open periods
once, for ``hub run``.

Pricing: a line priced per second or per unit, whose quantity counts in
nanos, is priced in exact Decimal arithmetic (:func:`hub.pricing.charge_decimal`,
the same digits as Fractions, several times faster); per minute, hour or
day in Fractions. A rating pauses Python's cyclic garbage collector
(:func:`_cyclic_gc_paused`): the objects it makes have no cycles, and the
collector's full passes cost a third of a rating of 10,000 accounts.

One account (an account's current charges, ``hub trace``): a small group
of accounts reads its records through ``ix_usage_records_account``
(migration 0005) instead of scanning the store: the queries then say
``account IS NOT NULL``, the condition of that partial index, without which
SQLite does not use it (:data:`_BY_ACCOUNT`). On SQLite a group with more
than :data:`_INDEX_SHARE` of the store's records is scanned instead:
walking the index to half a million records costs more than a scan
(:func:`_index_pays`). tests/test_rating_account_index.py checks the plans
and that both paths agree.

Package prices: ``unit_price`` is None and the one-part breakdown
(``quantity`` = packages, ``unit_price`` = package price) is in ``tiers``,
like a tiered price's.
"""

from __future__ import annotations

import functools
import gc
import hashlib
import json
import logging
import os
import sqlite3
import threading
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from decimal import Decimal
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, bindparam, text
from sqlalchemy.exc import SQLAlchemyError

from hub.catalog import ADDITIVE, Product
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
    priced_quantity,
    round_money,
    to_decimal,
)
from hub.store import rollups
from hub.store.db import sqlite_file
from hub.usage_report import _CLIPPED, split_products

log = logging.getLogger(__name__)

_UNITS_HI = 1000000  # qty_units // 10^6 counts millions
_NANOS_HI = 100000  # qty_nanos // 10^5 counts 1e-4 units
_NANO = 10**9

#: (Q, records) per (account, resource or None)
Quantities = rollups.Quantities


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
      :func:`trace` lists them.
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
            "quantity": _fmt(self.quantity), "unit": self.unit,
            "unit_price": None if self.unit_price is None else _fmt(self.unit_price),
            "tiers": [dict(t) for t in self.tiers],
            "exact_amount": _fmt(to_decimal(self.exact_amount)), "amount": _fmt(self.amount),
            "currency": self.currency, "period": str(period), "records": self.records,
        }


def _fmt(value: Decimal) -> str:
    """``value`` in plain notation (``"0.00000001"``, never ``"1E-8"``)."""
    text = str(value)  # a few times faster than format(): a rating writes 100,000 of them
    return text if "E" not in text else format(value, "f")


# --------------------------------------------------------------------------
# SQL


def _billable(secs: str) -> str:
    return f"CASE WHEN {secs} > 0 THEN ({secs} + :g - 1) / :g * :g ELSE 0 END"


#: the records a product's line may come from: those of the meter that
#: overlap the period (a record starting in it counts even with no seconds);
#: for ``latest``, every record that starts before the period's end
_SCOPE = """usage_records
WHERE {accounts}{resource} AND meter = :meter AND start_s < :p1{overlap}"""
_IN_ACCOUNTS = "account IN :accounts"
#: :data:`_IN_ACCOUNTS` through ``ix_usage_records_account``: its partial
#: condition (which always holds) lets SQLite use it
_BY_ACCOUNT = "account IN :accounts AND account IS NOT NULL"
#: a group at least this large is not filtered in SQL (see :func:`rate`)
_IN_LIST_MAX = 64
#: on SQLite, a group with more than this share of the store's records is
#: scanned rather than read through the index: a record read through the
#: index costs about 30 times one read by a scan
_INDEX_SHARE = 1 / 32
_OVERLAPS = "\n  AND (COALESCE(end_s, :run_end) > :p0 OR start_s >= :p0)"

_RECORD_COLUMNS = "source, record_id, account, resource_id, start_s, end_s, quantity, qty_units, qty_nanos"

#: per record of a time-weighted meter: ``secs`` inside the period,
#: ``inside`` after granularity, ``topup`` up to the minimum; it bills
#: ``inside + topup`` seconds (the module's docstring)
_TIME_WEIGHTED_RECORDS = """
SELECT {cols}, secs, inside,
       CASE WHEN end_s IS NOT NULL AND start_s >= :p0 AND inside + after < :m
            THEN :m - inside - after ELSE 0 END AS topup
FROM (
  SELECT {cols}, secs, {inside} AS inside,
         {after} AS after
  FROM (SELECT {cols}, {clipped} AS secs FROM {scope}) AS clipped
) AS pieces
"""

#: per record: its rank among the records of its line (``max`` and
#: ``latest`` take rank 1) or of its resource (``unique`` counts rank 1)
_RANKED_RECORDS = """
SELECT {cols}, {clipped} AS secs,
       ROW_NUMBER() OVER (PARTITION BY account{grp} ORDER BY {order}) AS rank
FROM {scope}
"""
_ORDERS = {
    "max": "qty_units DESC, qty_nanos DESC, start_s DESC, record_id DESC",
    "latest": "start_s DESC, received_s DESC, id DESC",  # ties: the version received last
    "unique": "start_s, record_id",
}

_GROUPED = {
    "time_weighted": f"""
SELECT account, {{key}} AS rkey, SUM(CASE WHEN inside + topup > 0 THEN 1 ELSE 0 END),
       {split_products("(inside + topup)")}
FROM ({{records}}) AS billed
GROUP BY account{{grp}}""",
    "sum": """
SELECT account, {key} AS rkey, COUNT(*), SUM(qty_units), SUM(qty_nanos)
FROM {scope} AND start_s >= :p0
GROUP BY account{grp}""",
    "unique": """
SELECT account, {key} AS rkey, COUNT(*), COUNT(DISTINCT resource_id)
FROM {scope}
GROUP BY account{grp}""",
    "ranked": """
SELECT account, rkey, 1, quantity FROM (
  SELECT account, {key} AS rkey, quantity,
         ROW_NUMBER() OVER (PARTITION BY account{grp} ORDER BY {order}) AS rank
  FROM {scope}
) AS ranked WHERE rank = 1""",
}


def _after(pieces: int) -> str:
    """The billable seconds of a finished record in the ``pieces`` periods
    after this one, each piece rounded up to the granularity on its own; the
    bounds are ``:p1``, ``:b1``, ... ``:b{pieces}``."""
    if pieces == 0:
        return "0"
    bounds = [":p1"] + [f":b{k}" for k in range(1, pieces + 1)]
    terms = []
    for lo, hi in zip(bounds, bounds[1:]):
        secs = f"(CASE WHEN end_s < {hi} THEN end_s ELSE {hi} END) - {lo}"
        terms.append(f"CASE WHEN end_s > {lo} THEN ({secs} + :g - 1) / :g * :g ELSE 0 END")
    return "CASE WHEN end_s IS NULL THEN 0 ELSE " + " + ".join(terms) + " END"


def after_bounds(period: Period, tz: ZoneInfo, minimum: int) -> dict[str, int]:
    """The ends ``b1``, ``b2``... of the periods after ``period`` that a
    record shorter than ``minimum`` seconds can reach (none without a
    minimum): a record at least as long as the minimum gets no top-up."""
    bounds: dict[str, int] = {}
    p1 = period.epoch_bounds(tz)[1]
    following = period
    while minimum and (not bounds or list(bounds.values())[-1] - p1 < minimum):
        following = following.following()
        bounds[f"b{len(bounds) + 1}"] = following.epoch_bounds(tz)[1]
    return bounds


def after_bound_list(period: Period, tz: ZoneInfo, minimum: int) -> list[int]:
    """The values of :func:`after_bounds`, ``b1`` first."""
    bounds = after_bounds(period, tz, minimum)
    return [bounds[f"b{j}"] for j in range(1, len(bounds) + 1)]


def product_sql(aggregation: str, itemized: bool, *, per_record: bool = False, one_resource: bool = False,
         after_pieces: int = 0, every_account: bool = False, by_account: bool = False) -> Any:
    """The query of a product's quantities per (account[, resource]), or
    with ``per_record`` its records one by one (:func:`trace`).

    :param after_pieces: how many periods after this one a record shorter
        than the minimum can reach (:func:`after_bounds`).
    :param every_account: no ``account IN :accounts`` filter: the rows of
        every account that has usage come back (the caller keeps its own).
    :param by_account: read the accounts' records through the account index
        (:data:`_BY_ACCOUNT`), for a few accounts."""
    key = "resource_id" if itemized else "''"
    grp = ", resource_id" if itemized else ""  # PostgreSQL refuses a constant in GROUP BY
    accounts = "1 = 1" if every_account else _BY_ACCOUNT if by_account else _IN_ACCOUNTS
    scope = _SCOPE.format(accounts=accounts,
                          resource=" AND resource_id = :resource" if one_resource else "",
                          overlap="" if aggregation == "latest" else _OVERLAPS)
    if aggregation == "time_weighted":
        records = _TIME_WEIGHTED_RECORDS.format(cols=_RECORD_COLUMNS, inside=_billable("secs"), clipped=_CLIPPED,
                                                scope=scope, after=_after(after_pieces))
        sql = records if per_record else _GROUPED["time_weighted"].format(key=key, grp=grp, records=records)
    elif aggregation not in _ORDERS and aggregation != "sum":
        raise ValueError(f"unknown aggregation {aggregation!r}")
    elif per_record:
        sql = _RANKED_RECORDS.format(cols=_RECORD_COLUMNS, clipped=_CLIPPED, scope=scope,
                                     order=_ORDERS.get(aggregation, "start_s, record_id"),
                                     grp=", resource_id" if aggregation == "unique" else grp)
    elif aggregation in ("sum", "unique"):
        sql = _GROUPED[aggregation].format(key=key, grp=grp, scope=scope)
    else:
        sql = _GROUPED["ranked"].format(key=key, grp=grp, order=_ORDERS[aggregation], scope=scope)
    return text(sql) if every_account else text(sql).bindparams(bindparam("accounts", expanding=True))


def combine_split_sums(units_hi: int, units_lo: int, nanos_hi: int, nanos_lo: int) -> Fraction:
    """The exact quantity of split sums: ``units_hi`` counts millions of units,
    ``units_lo`` units, ``nanos_hi`` 1e-4 units and ``nanos_lo`` 1e-9 units
    (the module's docstring)."""
    return Fraction((units_hi * _UNITS_HI + units_lo) * _NANO + nanos_hi * _NANOS_HI + nanos_lo, _NANO)


def product_params(product: Product, period: Period, tz: ZoneInfo) -> dict[str, Any]:
    """The query parameters of ``product``: its meter, granularity ``g``,
    minimum ``m`` and the bounds ``b1``... of :func:`after_bounds`."""
    return {"meter": product.meter, "g": product.granularity, "m": product.minimum,
            **after_bounds(period, tz, product.minimum)}


def pieces_of(params: dict[str, Any]) -> int:
    """How many ``b1``... bounds ``params`` hold."""
    return sum(1 for k in params if k[:1] == "b" and k[1:].isdigit())


def _quantities(conn: Connection, aggregation: str, itemized: bool,
                params: dict[str, Any], every_account: bool = False, by_account: bool = False
                ) -> Quantities:
    """(Q, records) per (account, resource or None): Q exact, in the meter's
    unit (unit-seconds for a time-weighted meter), and the number of usage
    records it came from. With ``every_account``, of every account that has
    usage (no ``IN`` filter); with ``by_account``, read through the account
    index."""
    out: Quantities = {}
    sql = product_sql(aggregation, itemized, after_pieces=pieces_of(params), every_account=every_account,
                      by_account=by_account)
    for row in conn.execute(sql, params):
        account, rkey, n = row[0], (row[1] if itemized else None), int(row[2] or 0)
        if aggregation == "time_weighted":
            q = combine_split_sums(*(int(v or 0) for v in row[3:7]))
        elif aggregation == "sum":
            q = combine_split_sums(0, int(row[3] or 0), 0, int(row[4] or 0))
        elif aggregation == "unique":
            q = Fraction(int(row[3]))
        else:
            q = Fraction(Decimal(row[3]))
        out[(account, rkey)] = (q, n)
    return out


# --------------------------------------------------------------------------
# every time-weighted product in one scan


#: the time-weighted products of a rating, rated in one scan of
#: ``usage_records`` when no two of them share a meter (a meter's second
#: product goes into a second scan, and so on): per record of those meters,
#: its billed seconds (``inside + topup``, as in
#: :data:`_TIME_WEIGHTED_RECORDS`, with its product's granularity, minimum
#: and bounds written into the query). Sums per (account, meter, resource
#: or ``''``): the records billed and the four split sums.
#:
#: PostgreSQL aggregates them with ``GROUP BY`` (a hash aggregate, in
#: parallel workers; it flattens the subquery, which repeats the billed
#: seconds' expression per ``SUM``, but ``OFFSET 0`` to keep it would also
#: keep the scan and aggregate out of the workers, which is slower).
_ONE_SCAN = f"""
SELECT account, meter, {{rkey_out}}, COUNT(*),
       {split_products("billed")}
FROM ({{records}}) AS billed_records
WHERE billed > 0
GROUP BY account, meter{{rkey_group}}
"""

#: SQLite has no hash aggregate: a ``GROUP BY`` sorts every record's row
#: (5 M rows: most of the time, and ~250 MB held by the sorter, in memory
#: with the hub's ``temp_store``). So the rows are added into a small keyed
#: temporary table (one row per line) as the scan goes, computed once each
#: in a co-routine (``LIMIT -1`` keeps SQLite from flattening the
#: subquery). ``+`` turns an integer overflow into a REAL where ``SUM``
#: would raise; sums only grow, so :func:`_one_scan_quantities` checks
#: afterwards that every sum is still an integer.
_SQLITE_SUMS = "temp.hub_rating_sums"
_SQLITE_SUMS_ROWS = f"SELECT account, meter, rkey, n, s1, s2, s3, s4 FROM {_SQLITE_SUMS}"
_SQLITE_SUMS_TABLE = """CREATE TEMP TABLE IF NOT EXISTS hub_rating_sums (
  account NOT NULL, meter NOT NULL, rkey NOT NULL, n, s1, s2, s3, s4,
  PRIMARY KEY (account, meter, rkey)) WITHOUT ROWID"""
_SQLITE_ONE_SCAN = f"""
INSERT INTO {_SQLITE_SUMS} (account, meter, rkey, n, s1, s2, s3, s4)
SELECT account, meter, {{rkey_out}}, 1,
       {split_products("billed", aggregate="")}
FROM ({{records}}) AS billed_records
WHERE billed > 0
ON CONFLICT (account, meter, rkey) DO UPDATE SET
  n = n + 1, s1 = s1 + excluded.s1, s2 = s2 + excluded.s2, s3 = s3 + excluded.s3, s4 = s4 + excluded.s4
"""

#: the records of a scan and their billed seconds
#: a record that counts in the period ``[:p0, :p1)``, a running one
#: billed to ``:run_end``
_IN_PERIOD = "start_s < :p1 AND (COALESCE(end_s, :run_end) > :p0 OR start_s >= :p0)"

_ONE_SCAN_RECORDS = f"""
  SELECT meter, account{{rkey_in}}, qty_units, qty_nanos, {{billed}} AS billed
  FROM usage_records
  WHERE {{accounts}}{{ids}}{{running}}meter IN ({{meters}}) AND {_IN_PERIOD}
  {{fence}}
"""

#: per dialect: the smaller and larger of two values, and what keeps the
#: per-record subquery from being flattened (none on PostgreSQL, see
#: :data:`_ONE_SCAN`)
_DIALECT = {
    "sqlite": ("MIN", "MAX", "LIMIT -1"),
    "postgresql": ("LEAST", "GREATEST", ""),
}


def _billed_sql(least: str, greatest: str, g: int, m: int, bounds: Sequence[int]) -> str:
    """A record's billed seconds in the period with granularity ``g``,
    minimum ``m`` and the bounds ``b1``... of :func:`after_bounds`,
    integers written into the query."""
    g, m = int(g), int(m)
    secs = f"{greatest}({least}(COALESCE(end_s, :run_end), :p1) - {greatest}(start_s, :p0), 0)"
    inside = secs if g == 1 else f"(({secs} + {g - 1}) / {g} * {g})"
    if m <= 0:
        return inside

    def up(x: str) -> str:
        return x if g == 1 else f"(({x} + {g - 1}) / {g} * {g})"

    los = [":p1"] + [str(int(b)) for b in bounds]
    after = " + ".join(f"CASE WHEN end_s > {lo} THEN {up(f'{least}(end_s, {hi}) - {lo}')} ELSE 0 END"
                       for lo, hi in zip(los, los[1:])) or "0"
    return (f"{inside} + CASE WHEN end_s IS NOT NULL AND start_s >= :p0 AND {inside} + {after} < {m} "
            f"THEN {m} - {inside} - ({after}) ELSE 0 END")


#: :func:`one_scan_sql`'s ``records``: every record, only the finished ones
#: (what rollups hold) or only the running ones (a few, read through
#: ``ix_usage_records_running``)
_RUNNING = {None: "", "finished": "end_s IS NOT NULL AND ", "running": "end_s IS NULL AND "}


def one_scan_sql(dialect: str, products: Sequence[tuple[str, int, int, bool, Sequence[int]]],
                 filter_accounts: bool, by_account: bool = False, id_range: bool = False,
                 records: str | None = None) -> Any:
    """The query of the quantities of time-weighted products of distinct
    meters per (account, meter, resource or ``''``) in one scan: on SQLite
    an ``INSERT`` into :data:`_SQLITE_SUMS` (:data:`_SQLITE_ONE_SCAN`),
    elsewhere a ``SELECT`` (:data:`_ONE_SCAN`).

    :param products: per product: meter (bound as ``:meter_<i>``),
        granularity, minimum, itemized, and the bounds ``b1``... of
        :func:`after_bounds` (the integers are written into the query).
    :param filter_accounts: add ``account IN :accounts``.
    :param by_account: with ``filter_accounts``, through the account index
        (:data:`_BY_ACCOUNT`).
    :param id_range: only the records with ``:id_lo < id <= :id_hi``
        (:func:`_sqlite_split_scan`).
    :param records: ``"finished"`` or ``"running"`` records only (:data:`_RUNNING`).
    """
    if len({meter for meter, *_ in products}) != len(products):
        raise ValueError("one scan rates one product per meter")
    least, greatest, fence = _DIALECT.get(dialect, _DIALECT["postgresql"])
    # the billed seconds per shape (granularity, minimum, bounds): one
    # expression when every product has the same, else a CASE on the meter
    shapes: dict[str, list[int]] = defaultdict(list)
    for i, (_meter, g, m, _itemized, bounds) in enumerate(products):
        shapes[_billed_sql(least, greatest, g, m, bounds if m > 0 else ())].append(i)
    if len(shapes) == 1:
        billed = next(iter(shapes))
    else:
        billed = "CASE " + " ".join(f"WHEN meter IN ({', '.join(f':meter_{i}' for i in idx)}) THEN {expr}"
                                    for expr, idx in shapes.items()) + " END"
    itemized = [i for i, (_m, _g, _min, item, _b) in enumerate(products) if item]
    if not itemized:
        rkey_in, rkey_out, rkey_group = "", "''", ""
    elif len(itemized) == len(products):
        rkey_in, rkey_out, rkey_group = ", resource_id AS rkey", "rkey", ", rkey"
    else:
        rkey_in = f", CASE WHEN meter IN ({', '.join(f':meter_{i}' for i in itemized)}) THEN resource_id " \
                  "ELSE '' END AS rkey"
        rkey_out, rkey_group = "rkey", ", rkey"
    selected = _ONE_SCAN_RECORDS.format(rkey_in=rkey_in, billed=billed, fence=fence, running=_RUNNING[records],
                                       meters=", ".join(f":meter_{i}" for i in range(len(products))),
                                       accounts=(f"{_BY_ACCOUNT if by_account else _IN_ACCOUNTS} AND "
                                                 if filter_accounts else ""),
                                       ids="id > :id_lo AND id <= :id_hi AND " if id_range else "")
    if dialect == "sqlite":
        sql = _SQLITE_ONE_SCAN.format(rkey_out=rkey_out, records=selected)
    else:
        sql = _ONE_SCAN.format(rkey_out=rkey_out, rkey_group=rkey_group, records=selected)
    stmt = text(sql)
    return stmt.bindparams(bindparam("accounts", expanding=True)) if filter_accounts else stmt


def _one_scan_quantities(conn: Connection, products: Sequence[Product], period: Period, tz: ZoneInfo,
                         base: dict[str, Any], filter_accounts: bool, by_account: bool = False,
                         records: str | None = None) -> list[Quantities]:
    """(Q, records) per (account, resource or None) of each of ``products``
    (time-weighted), as :func:`_quantities` gives them one product at a
    time: one scan for the first product of each meter, one more for each
    meter's second product, and so on; of the ``records`` of
    :data:`_RUNNING`."""
    out: list[Quantities] = [{} for _ in products]
    layers: list[dict[str, int]] = []  # per scan: meter -> index in products
    for i, product in enumerate(products):
        free = [layer for layer in layers if product.meter not in layer]
        if not free:
            layers.append({})
            free = layers[-1:]
        free[0][product.meter] = i  # type: ignore[index]
    for layer in layers:
        specs, params = [], dict(base)
        for k, (meter, i) in enumerate(layer.items()):
            product = products[i]
            specs.append((meter, product.granularity, product.minimum, product.itemize == "resource",
                          after_bound_list(period, tz, product.minimum)))
            params[f"meter_{k}"] = meter
        if not filter_accounts:
            params.pop("accounts", None)
        split = not filter_accounts and records != "running" and sqlite_file(conn.engine) is not None
        sql = one_scan_sql(conn.dialect.name, specs, filter_accounts, by_account, id_range=split, records=records)
        if split:
            rows = _sqlite_split_scan(conn, sql, params)
        elif conn.dialect.name == "sqlite":
            rows = _sqlite_one_scan(conn, sql, params)
        else:
            rows = conn.execute(sql, params).all()
        for account, meter, rkey, n, *sums in rows:
            i = layer[meter]
            out[i][(account, rkey if products[i].itemize == "resource" else None)] = \
                (combine_split_sums(*(int(v or 0) for v in sums)), int(n))
    return out


def _sqlite_one_scan(conn: Connection, insert: Any, params: dict[str, Any]) -> list[Any]:
    """Run a scan's ``INSERT`` (:data:`_SQLITE_ONE_SCAN`) into an empty
    :data:`_SQLITE_SUMS` and read the sums back; the table is dropped."""
    conn.exec_driver_sql(_SQLITE_SUMS_TABLE)
    try:
        conn.exec_driver_sql(f"DELETE FROM {_SQLITE_SUMS}")
        conn.execute(insert, params)
        rows = conn.exec_driver_sql(_SQLITE_SUMS_ROWS).all()
    finally:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {_SQLITE_SUMS}")
    return _checked_sums(rows)


def _checked_sums(rows: Sequence[Any]) -> list[Any]:
    for row in rows:
        if not all(isinstance(v, int) for v in row[3:]):
            raise OverflowError(f"the usage of {row[0]!r} on meter {row[1]!r} overflows 64-bit sums")
    return list(rows)


#: a SQLite scan of fewer records than this runs in one connection
_SPLIT_MIN_RECORDS = 200_000


def _sqlite_split_scan(conn: Connection, insert: Any, params: dict[str, Any]) -> list[Any]:
    """A full scan (:data:`_SQLITE_ONE_SCAN` with an id range) on both
    cores: the records up to the middle id in ``conn``, the others in a
    second connection of a thread of its own (SQLite runs a statement
    without Python's GIL); the sums added up.

    Both see the same records: the rating's transaction holds the write lock
    (``BEGIN IMMEDIATE``, :func:`hub.store.db.open_store`), so nothing can
    be committed while they read."""
    lo, hi = conn.exec_driver_sql("SELECT MIN(id) - 1, MAX(id) FROM usage_records").one()
    if lo is None or hi - lo < _SPLIT_MIN_RECORDS:
        return _sqlite_one_scan(conn, insert, {**params, "id_lo": lo or 0, "id_hi": hi or 0})
    mid = (lo + hi) // 2
    path = sqlite_file(conn.engine)
    other: dict[str, Any] = {}

    def scan_upper() -> None:
        try:
            db = sqlite3.connect(path or "", isolation_level=None, check_same_thread=False)
            try:
                db.execute("PRAGMA temp_store=MEMORY")
                db.execute("PRAGMA busy_timeout=30000")
                db.execute(_SQLITE_SUMS_TABLE)
                db.execute(str(insert), {**params, "id_lo": mid, "id_hi": hi})
                other["rows"] = db.execute(_SQLITE_SUMS_ROWS).fetchall()
            finally:
                db.close()
        except BaseException as exc:  # noqa: BLE001 - raised in the rating's thread below
            other["error"] = exc

    worker = threading.Thread(target=scan_upper, name="hub-rating-scan")
    worker.start()
    try:
        rows = _sqlite_one_scan(conn, insert, {**params, "id_lo": lo, "id_hi": mid})
    finally:
        worker.join()
    if "error" in other:
        raise other["error"]
    merged: dict[tuple[str, str, str], list[int]] = {}
    for account, meter, rkey, *sums in (*rows, *_checked_sums(other["rows"])):
        have = merged.get((account, meter, rkey))
        if have is None:
            merged[(account, meter, rkey)] = list(sums)
        else:
            for k, v in enumerate(sums):
                have[k] += v
    return [(account, meter, rkey, *sums) for (account, meter, rkey), sums in merged.items()]


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


#: SQLite's sorter threads for a rating's ``GROUP BY`` (it sorts millions
#: of rows; with helper threads it sorts its spilled runs in parallel)
_SQLITE_SORTER_THREADS = max(1, min(4, os.cpu_count() or 1))


#: PostgreSQL's memory per hash aggregate of a rating (the default 4 MB made
#: the aggregate of 10,000 accounts x 6 products spill to disk in batches)
_PG_WORK_MEM = "64MB"


@contextmanager
def _rating_session(conn: Connection) -> Iterator[None]:
    """The connection's settings for a rating, put back after it.

    - PostgreSQL: ``SET LOCAL jit = off``. JIT compiled each big query for
      seconds (a scan of every record costs far above ``jit_above_cost``)
      and gains nothing on these simple expressions; LOCAL: only this
      transaction, which the pool's connection ends.
    - SQLite: ``PRAGMA threads`` (helper threads of the sorter), put back
      to its value before, since the pool keeps the connection.
    """
    dialect = conn.dialect.name
    if dialect == "postgresql":
        conn.execute(text("SET LOCAL jit = off"))
        conn.execute(text(f"SET LOCAL work_mem = '{_PG_WORK_MEM}'"))
        yield
        return
    if dialect != "sqlite":
        yield
        return
    before = int(conn.exec_driver_sql("PRAGMA threads").scalar() or 0)
    conn.exec_driver_sql(f"PRAGMA threads = {int(_SQLITE_SORTER_THREADS)}")
    try:
        yield
    finally:
        conn.exec_driver_sql(f"PRAGMA threads = {before}")


_COUNT_BY_ACCOUNT = text(f"SELECT COUNT(*) FROM usage_records WHERE {_BY_ACCOUNT}").bindparams(
    bindparam("accounts", expanding=True))


def _index_pays(conn: Connection, ids: Sequence[str]) -> bool:
    """Whether to read the records of the accounts ``ids`` through the
    account index rather than by a scan.

    PostgreSQL weighs the two with its statistics: always. SQLite has no
    such statistics (and would walk the index for the largest account, 10%
    of the store, three times slower than a scan): there the accounts'
    records are counted in the index alone (a range of it, no table read)
    against the largest id (about the number of records)."""
    if conn.dialect.name != "sqlite":
        return True
    n = conn.execute(_COUNT_BY_ACCOUNT, {"accounts": list(ids)}).scalar() or 0
    total = conn.exec_driver_sql("SELECT MAX(id) FROM usage_records").scalar() or 0
    return n <= total * _INDEX_SHARE


def _aggregation(config: Config, product: Product) -> str:
    meter = config.meters.get(product.meter)
    return meter.aggregation if meter else "time_weighted"


def _groups(conn: Connection, config: Config, period: Period, accounts: Sequence[str] | None, now_s: int
            ) -> Iterator[tuple[ZoneInfo, list[str], dict[str, Any], bool]]:
    """The accounts to rate by time zone: ``(tz, ids, base parameters,
    filter_accounts)``."""
    by_tz: dict[str, list[str]] = defaultdict(list)
    for acc in accounts if accounts is not None else list(config.accounts):
        account = config.accounts.get(acc)
        by_tz[account.timezone if account else config.hub.timezone].append(acc)
    for tz_name, ids in by_tz.items():
        tz = ZoneInfo(tz_name)
        p0, p1 = period.epoch_bounds(tz)
        # A large group is not filtered in SQL: a scan reads every record
        # anyway, and an IN list of thousands of accounts costs a lookup
        # per record (and made PostgreSQL compile the query); the rows of
        # other accounts are dropped by the caller instead.
        filter_accounts = len(ids) < _IN_LIST_MAX
        yield tz, ids, {"p0": p0, "p1": p1, "run_end": min(now_s, p1), "accounts": ids}, filter_accounts


#: part of every rollup key (:func:`rollup_key`): change it with any change
#: of how a product's quantities are computed that the SQL text does not show
#: (2: time-weighted rollups hold what finished records bill; 3: a closed
#: period's hold its running records too)
ROLLUP_REVISION = "3"


def _holds_running(aggregation: str, base: dict[str, Any], finished_only: bool) -> bool:
    """Whether a key's time-weighted rollups hold the running records too:
    a closed period's do (each billed to the period's end, as the writers
    keep it), an open period's do not (billed to now, which moves on)."""
    return aggregation == "time_weighted" and base["run_end"] == base["p1"] and not finished_only


def rollup_spec(config: Config, product: Product, period: Period, tz: ZoneInfo, base: dict[str, Any]
                ) -> dict[str, Any] | None:
    """What a writer needs to keep ``product``'s rollups of a period (its
    bounds in ``base``) up to date (:func:`rollup_delta_sql`): None for a
    meter that is not additive (:data:`hub.store.rollups.MAINTAINED`).
    ``running``: the rollups hold the running records, billed to the
    period's end (:func:`_holds_running`)."""
    aggregation = _aggregation(config, product)
    if aggregation not in rollups.MAINTAINED:
        return None
    return {"aggregation": aggregation, "meter": product.meter, "itemized": product.itemize == "resource",
            "g": int(product.granularity), "m": int(product.minimum),
            "bounds": after_bound_list(period, tz, product.minimum), "p0": base["p0"], "p1": base["p1"],
            "running": _holds_running(aggregation, base, finished_only=False)}


@functools.lru_cache(maxsize=256)
def _product_sql_text(aggregation: str, itemized: bool, after_pieces: int) -> str:
    """:func:`product_sql`'s text, compiled once (half a millisecond each:
    a rating of one account computes a dozen keys)."""
    return str(product_sql(aggregation, itemized, after_pieces=after_pieces))


def rollup_key(config: Config, product: Product, period: Period, tz: ZoneInfo, base: dict[str, Any],
               finished_only: bool = False) -> str:
    """The key of ``product``'s quantities in a period (its bounds in
    ``base``): everything they depend on but the usage itself, which the
    rollup's generation stands for (:mod:`hub.store.rollups`). The clock
    (``run_end``) is part of it only for the meters whose rollups are not
    kept by the writers; a sum's does not depend on it; a time-weighted key
    holds the finished records only in an open period (or with
    ``finished_only``: the key the writers kept while the period was open)
    and every record, running ones billed to the end, in a closed one."""
    aggregation = _aggregation(config, product)
    params = product_params(product, period, tz)
    itemized = product.itemize == "resource"
    sql = _product_sql_text(aggregation, itemized, pieces_of(params))
    clock = (("to_end" if _holds_running(aggregation, base, finished_only) else None)
             if aggregation in rollups.MAINTAINED else base["run_end"])
    payload = json.dumps([ROLLUP_REVISION, aggregation, itemized, params, base["p0"], base["p1"], clock, sql],
                         sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


#: the rows a batch's changes add to a key's rollups (:func:`rollup_delta_sql`)
_DELTA_ROWS = """
INSERT INTO rating_rollups (key, account, rkey, n, s1, s2, s3, s4)
SELECT :key, account, {rkey}, {sums}
FROM (SELECT account, resource_id, qty_units, qty_nanos, sign, {billed} AS billed FROM {delta}
      WHERE meter = :meter AND account IS NOT NULL AND {scope}) AS changed
WHERE true
GROUP BY account{grp}
ON CONFLICT (key, account, rkey) DO UPDATE SET n = rating_rollups.n + excluded.n,
  s1 = rating_rollups.s1 + excluded.s1, s2 = rating_rollups.s2 + excluded.s2,
  s3 = rating_rollups.s3 + excluded.s3, s4 = rating_rollups.s4 + excluded.s4
"""
_DELTA_SUMS = {
    # as _ONE_SCAN, each record's part signed (+1 its new version, -1 its old)
    "time_weighted": f"SUM(sign * CASE WHEN billed > 0 THEN 1 ELSE 0 END), {split_products('(sign * billed)')}",
    # as _GROUPED["sum"]: the records starting in the period
    "sum": "SUM(sign), 0, SUM(sign * qty_units), 0, SUM(sign * qty_nanos)",
}
_DELTA_SCOPE = {
    "time_weighted": f"end_s IS NOT NULL AND {_IN_PERIOD}",
    "time_weighted running": _IN_PERIOD,  # a closed period's: running records billed to its end (:run_end)
    "sum": "start_s >= :p0 AND start_s < :p1",
}


def rollup_delta_sql(dialect: str, spec: dict[str, Any], delta: str) -> tuple[str, dict[str, Any]]:
    """The statement (and its parameters but ``:key``) that adds to a key's
    rollups the signed records of the table ``delta``
    (:func:`hub.store.rollups.apply_batch`): what each record bills
    (time-weighted meters, as :func:`one_scan_sql` computes it: finished
    records only, or running ones too, billed to the end, for a key with
    ``running``) or counts (sum meters) in the key's period, per account
    and resource."""
    least, greatest, _fence = _DIALECT.get(dialect, _DIALECT["postgresql"])
    aggregation = spec["aggregation"]
    billed = (_billed_sql(least, greatest, spec["g"], spec["m"], spec["bounds"] if spec["m"] > 0 else ())
              if aggregation == "time_weighted" else "0")
    scope = _DELTA_SCOPE[f"{aggregation} running" if spec.get("running") else aggregation]
    sql = _DELTA_ROWS.format(rkey="resource_id" if spec["itemized"] else "''", sums=_DELTA_SUMS[aggregation],
                             billed=billed, delta=delta, scope=scope,
                             grp=", resource_id" if spec["itemized"] else "")
    return sql, {"meter": spec["meter"], "p0": spec["p0"], "p1": spec["p1"], "run_end": spec["p1"]}


def _add(into: Quantities, more: Quantities) -> None:
    for line, (q, n) in more.items():
        have = into.get(line)
        into[line] = (q, n) if have is None else (have[0] + q, have[1] + n)


def _metered(config: Config) -> list[Product]:
    """The catalog's products priced by a meter's quantity."""
    return [p for p in config.catalog if not p.is_flat and p.meter is not None]


def _kept(config: Config, products: Sequence[Product], base: dict[str, Any]) -> list[Product]:
    """Those of ``products`` whose rollups a rating of every account stores
    in the period of ``base``: every one in a closed period, the meters the
    writers keep (:data:`hub.store.rollups.MAINTAINED`) in an open one."""
    closed = base["run_end"] == base["p1"]
    return [p for p in products if closed or _aggregation(config, p) in rollups.MAINTAINED]


def _product_quantities(conn: Connection, config: Config, products: Sequence[Product], period: Period,
                        tz: ZoneInfo, base: dict[str, Any], filter_accounts: bool
                        ) -> list[tuple[Product, Quantities]]:
    """(Q, records) per (account, resource or None) of each metered product
    of ``products``: the time-weighted ones in one scan, the others one
    query each.

    Reads the rollups of a key still valid (:mod:`hub.store.rollups`), and
    a rating of every account stores the keys it computed: those of
    time-weighted and sum meters in any period, the others' in a closed
    period only (running records billed to its end, not to now). An open
    period's time-weighted key holds the finished records' part, the
    running records' is added from their index; a closed period's holds
    both, and its first rating makes it from the key the writers kept
    while the period was open (``finished_only``) and the running records."""
    closed = base["run_end"] == base["p1"]
    gen, keys, finished_keys, stored = 0, {}, {}, {}
    kept = _kept(config, products, base)
    if kept:
        gen = rollups.generation(conn)  # before any scan: see hub.store.rollups
        keys = {p.name: rollup_key(config, p, period, tz, base) for p in kept}
        if closed:
            finished_keys = {p.name: rollup_key(config, p, period, tz, base, finished_only=True)
                             for p in kept if _aggregation(config, p) == "time_weighted"}
        stored = rollups.valid(conn, [*keys.values(), *finished_keys.values()], base["p1"])

    def read(key: str | None, product: Product) -> Quantities | None:
        if key not in stored:
            return None
        return rollups.read(conn, key, stored[key], product.itemize == "resource",  # type: ignore[index]
                            base["accounts"] if filter_accounts else None)

    found: dict[str, Quantities] = {}  # complete (but an open period's running records)
    partial: dict[str, Quantities] = {}  # a closed period's finished records only
    for p in products:
        got = read(keys.get(p.name), p)
        if got is not None:
            found[p.name] = got
        elif (got := read(finished_keys.get(p.name), p)) is not None:
            partial[p.name] = got
    missing = [p for p in products if p.name not in found and p.name not in partial]
    storing = not filter_accounts
    # A small group's records are read through the account index, unless
    # there are so many that a scan costs less.
    by_account = bool(missing) and filter_accounts and _index_pays(conn, base["accounts"])
    time_weighted = [p for p in missing if _aggregation(config, p) == "time_weighted"]
    others = [p for p in missing if _aggregation(config, p) != "time_weighted"]
    # what an open period stores: the finished records only
    finished_scan = storing and not closed
    computed: list[tuple[Product, Quantities]] = []
    if time_weighted:
        computed += zip(time_weighted, _one_scan_quantities(conn, time_weighted, period, tz, base, filter_accounts,
                                                            by_account, records="finished" if finished_scan else None))
    for product in others:
        params = {**base, **product_params(product, period, tz)}
        if not filter_accounts:
            params.pop("accounts")
        computed.append((product, _quantities(
            conn, _aggregation(config, product), product.itemize == "resource", params,
            every_account=not filter_accounts, by_account=by_account)))
    by_name = {**found, **partial, **{p.name: q for p, q in computed}}
    # the running records' part of what holds the finished records' only
    finished_only = [p for p in products if _aggregation(config, p) == "time_weighted"
                     and (p.name in partial or (not closed and (p.name in found or finished_scan)))]
    running = dict(zip((p.name for p in finished_only), _one_scan_quantities(
        conn, finished_only, period, tz, base, filter_accounts, records="running"))) if finished_only else {}
    for name in partial:
        _add(partial[name], running[name])  # a closed period's key, complete now
    if storing:
        to_store = [(keys[p.name], rollup_spec(config, p, period, tz, base), by_name[p.name])
                    for p in products if p.name in keys and p.name not in found]
        if to_store:
            _store_rollups(conn, gen, base["p1"], to_store)
    for p in finished_only:
        if p.name not in partial:
            _add(by_name[p.name], running[p.name])  # each a dict of this rating's own
    return [(p, by_name[p.name]) for p in products]


def _store_rollups(conn: Connection, gen: int, period_end_s: int,
                   computed: list[tuple[str, dict[str, Any] | None, Quantities]]) -> None:
    """Store rollups in a savepoint of the rating's transaction, committed
    with it; a failure to store never fails the rating."""
    try:
        with conn.begin_nested():
            rollups.store(conn, gen, period_end_s, computed)
    except (SQLAlchemyError, conn.dialect.loaded_dbapi.Error) as exc:  # best effort: the rating goes on without them
        if getattr(getattr(exc, "orig", exc), "sqlstate", None) == "40001":  # the driver's own error (COPY) too
            # PostgreSQL: usage changed after the rating's snapshot, which
            # its rollups would then be older than: the next rating computes them
            log.info("rating rollups not stored: usage changed during the rating")
        else:
            log.warning("rating rollups not stored: %s", exc)
    else:
        conn.info["hub_rollups_stored"] = True


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused for a rating, then as it was.

    A rating of every account makes a few hundred thousand objects that
    live on (charges, their breakdowns, the rows they came from) and no
    reference cycle: each of them counts towards the collector's
    thresholds, so it runs full collections again and again, each
    traversing every live object, the configuration's accounts included
    (measured: 0.55 s of a 1.5 s rating of 10,000 accounts). What the
    rating drops is freed by reference counting all the same; a cycle made
    meanwhile elsewhere waits for the next collection."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@contextmanager
def _rating_connection(engine: Engine) -> Iterator[Connection]:
    """A connection for a rating, in :func:`_rating_session`, committing
    the rollups it stored (the rest of its transaction only read)."""
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            # one snapshot for every statement of the rating: the rollups or
            # finished records it reads and the running records it adds
            # must be the same usage's
            conn.execution_options(isolation_level="REPEATABLE READ")
        with _rating_session(conn):
            yield conn
        if conn.info.pop("hub_rollups_stored", False):
            conn.commit()


def rate(engine: Engine, config: Config, period: Period, accounts: Sequence[str] | None = None,
         now: datetime | None = None) -> list[Charge]:
    """The charges of ``period``, sorted by account, product and resource.

    :param accounts: only these accounts (default: every configured one).
    :param now: the clock for running records of an open period.
    """
    now_s = int((now or datetime.now(timezone.utc)).timestamp())
    rounding = config.hub.rounding
    catalog = config.catalog
    metered = _metered(config)
    flat = [p for p in catalog if p.is_flat]
    out: list[Charge] = []
    with _cyclic_gc_paused(), _rating_connection(engine) as conn:
        for tz, ids, base, filter_accounts in _groups(conn, config, period, accounts, now_s):
            p0, p1 = base["p0"], base["p1"]
            wanted = set(ids)
            plan = _plan(config, metered, ids)
            quantities = _product_quantities(conn, config, plan.listed, period, tz, base, filter_accounts)
            for product, per_line in quantities:
                elsewhere = plan.regrouped.get(product.name, ())
                for (acc, res), (q, n) in per_line.items():
                    if q == 0 or acc not in wanted or acc in elsewhere:
                        continue
                    out.append(_metered_charge(config, acc, product, res, q, n, rounding))
            if plan.variants:
                for product, per_line in _product_quantities(conn, config, plan.variants, period, tz,
                                                             {**base, "accounts": plan.variant_accounts},
                                                             len(plan.variant_accounts) < _IN_LIST_MAX):
                    only = plan.regrouped[product.name]
                    for (acc, res), (q, n) in per_line.items():
                        if q != 0 and acc in only:
                            out.append(_metered_charge(config, acc, product, res, q, n, rounding))
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


def regrouped(config: Config, products: Sequence[Product], ids: Sequence[str]) -> dict[str, set[str]]:
    """Per product, those of ``ids`` whose lines of it are itemized
    otherwise than the product says (the account's ``itemize`` choice,
    :meth:`hub.catalog.Catalog.itemized`)."""
    catalog = config.catalog
    choosers = [acc for acc in ids if acc in catalog.itemize] if catalog.itemize else []
    out: dict[str, set[str]] = defaultdict(set)
    for acc in choosers:
        for p in products:
            if catalog.itemized(acc, p) != (p.itemize == "resource"):
                out[p.name].add(acc)
    return dict(out)


@dataclass(frozen=True)
class _Plan:
    """How a rating of ``ids`` rates ``products`` given the accounts'
    itemize choices (:func:`_plan`).

    - ``regrouped``: :func:`regrouped`;
    - ``listed``: the products some of ``ids`` bill as the product lists
      them (not every one itemizes it otherwise);
    - ``variants``: the products some accounts itemize otherwise, with the
      other ``itemize``, rated like any other product (each has its own
      rollup key) for ``variant_accounts``, those accounts."""

    regrouped: dict[str, set[str]]
    listed: list[Product]
    variants: list[Product]
    variant_accounts: list[str]


def _plan(config: Config, products: Sequence[Product], ids: Sequence[str]) -> _Plan:
    other = regrouped(config, products, ids)
    return _Plan(other, [p for p in products if len(other.get(p.name, ())) < len(ids)],
                 [replace(p, itemize="product" if p.itemize == "resource" else "resource")
                  for p in products if p.name in other],
                 sorted(set().union(*other.values())))


def keep_rollups(engine: Engine, config: Config, periods: Sequence[Period], now: datetime | None = None
                 ) -> list[Period]:
    """Rate every account over each of ``periods`` whose rollups the
    writers could keep up to date but that no rating has stored (or that
    are no longer valid); returns the periods it rated.

    ``hub run`` calls it for the open periods of the accounts' schedules:
    a rating early in a period finds little usage to add (it still scans:
    1.9 s on SQLite for the month after 5 M records), and from then
    on every pull keeps the period's rollups, so the account's current
    charges and its closing read a few rows, not the period's records.
    Only time zones with enough accounts to store rollups
    (``_IN_LIST_MAX``) count; in an open period, only the meters the
    writers keep (:data:`hub.store.rollups.MAINTAINED`). A rating that
    could not store them (usage changed meanwhile, on PostgreSQL) is
    logged; the next call rates again."""
    now = now or datetime.now(timezone.utc)
    rated = []
    for period in periods:
        if _rollups_missing(engine, config, period, now):
            rate(engine, config, period, now=now)
            rated.append(period)
            if _rollups_missing(engine, config, period, now):
                log.info("rollups of %s not stored: usage changed during the rating; the next run tries again",
                         period)
    return rated


def _rollups_missing(engine: Engine, config: Config, period: Period, now: datetime) -> bool:
    """Whether a rating of every account over ``period`` at ``now`` would
    store a rollup that is not there (:func:`keep_rollups`)."""
    with engine.connect() as conn:
        for tz, ids, base, filter_accounts in _groups(conn, config, period, None, int(now.timestamp())):
            plan = _plan(config, _metered(config), ids)
            # a rating stores the variants' rollups when it rates them for enough accounts
            kept = _kept(config, plan.listed + (plan.variants if len(plan.variant_accounts) >= _IN_LIST_MAX else []),
                         base)
            if filter_accounts or not kept:
                continue
            keys = [rollup_key(config, p, period, tz, base) for p in kept]
            if set(keys) - set(rollups.valid(conn, keys, base["p1"])):
                return True
    return False


def _metered_charge(config: Config, acc: str, product: Product, res: str | None, q: Fraction, records: int,
                    rounding: str) -> Charge:
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

    def to_json(self) -> dict[str, Any]:
        return {"resource_id": self.resource_id, "quantity": _fmt(self.quantity), "records": self.records}


def resource_shares(engine: Engine, config: Config, period: Period, accounts: Sequence[str] | None = None,
                    now: datetime | None = None) -> dict[tuple[str, str], tuple[ResourceShare, ...]]:
    """The drill-down of the product lines of ``period``: per (account,
    product), its resources' shares, sorted by resource id, for the
    products that are not itemized and whose meter is :data:`ADDITIVE` (a
    ``max`` or ``latest`` line comes from one record: ``hub trace`` names
    it). Rated as :func:`rate` rates, each resource on its own."""
    now_s = int((now or datetime.now(timezone.utc)).timestamp())
    catalog = config.catalog
    additive = [p for p in _metered(config) if _aggregation(config, p) in ADDITIVE]
    out: dict[tuple[str, str], list[ResourceShare]] = defaultdict(list)
    if not additive:
        return {}
    with _rating_connection(engine) as conn:
        for tz, ids, base, filter_accounts in _groups(conn, config, period, accounts, now_s):
            wanted = set(ids)
            # the products some of these accounts have a product line of
            other = regrouped(config, additive, ids)
            products = [replace(p, itemize="resource") for p in additive
                        if p.itemize != "resource" and len(other.get(p.name, ())) < len(ids)
                        or p.itemize == "resource" and p.name in other]
            if not products:
                continue
            for product, per_resource in _product_quantities(conn, config, products, period, tz, base,
                                                             filter_accounts):
                listed = catalog.product(product.name)
                for (acc, res), (q, n) in per_resource.items():
                    if q == 0 or acc not in wanted or catalog.itemized(acc, listed):
                        continue
                    out[(acc, product.name)].append(
                        ResourceShare(res or "", to_decimal(priced_quantity(q, product.per)), n))
    return {key: tuple(sorted(shares, key=lambda r: r.resource_id)) for key, shares in out.items()}


# --------------------------------------------------------------------------
# traceability


@dataclass(frozen=True)
class TracedRecord:
    """A usage record behind a charge, and what it adds to the charge.

    - ``seconds``: its seconds inside the period (a running record's to the
      period's end, or to now while the period is open);
    - ``billed_seconds``: for a time-weighted meter, ``seconds`` rounded up
      to the product's granularity plus ``topup``, the minimum top-up
      (0 for the other meters);
    - ``counted``: whether it is part of the line's quantity: a sum meter
      counts the records that start in the period, max and latest the one
      record they pick, unique the first record of each resource;
    - ``contribution``: what it adds to the quantity, in the meter's unit
      (unit-seconds for a time-weighted meter, before the product's ``per``):
      the contributions of a line's records add up to its quantity exactly.
    """

    source: str
    record_id: str
    resource_id: str
    start: datetime
    end: datetime | None
    quantity: Decimal
    seconds: int
    billed_seconds: int
    topup: int
    counted: bool
    contribution: Fraction

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source, "record_id": self.record_id, "resource_id": self.resource_id,
            "start": self.start.isoformat().replace("+00:00", "Z"),
            "end": None if self.end is None else self.end.isoformat().replace("+00:00", "Z"),
            "quantity": _fmt(self.quantity), "seconds": self.seconds, "billed_seconds": self.billed_seconds,
            "topup": self.topup, "counted": self.counted, "contribution": _fmt(to_decimal(self.contribution)),
        }


def _utc(epoch: int | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, timezone.utc)


def trace(engine: Engine, config: Config, period: Period, account: str, product_name: str,
          resource_id: str | None = None, now: datetime | None = None) -> list[TracedRecord]:
    """The usage records behind ``account``'s charge for ``product_name`` in
    ``period`` (of one resource with ``resource_id``), in start order.

    :raises KeyError: for an unknown product.
    :raises ValueError: for a flat product, which no usage record makes.
    """
    product = config.catalog.product(product_name)
    if product.is_flat or product.meter is None:
        raise ValueError(f"{product_name!r} is a flat plan: no usage record makes its charge")
    meter = config.meters.get(product.meter)
    aggregation = meter.aggregation if meter else "time_weighted"
    acc = config.accounts.get(account)
    tz = ZoneInfo(acc.timezone if acc else config.hub.timezone)
    p0, p1 = period.epoch_bounds(tz)
    now_s = int((now or datetime.now(timezone.utc)).timestamp())
    params = {"p0": p0, "p1": p1, "run_end": min(now_s, p1), "accounts": [account], "resource": resource_id,
              **product_params(product, period, tz)}
    out = []
    with engine.connect() as conn:
        by_account = _index_pays(conn, [account])
        sql = product_sql(aggregation, config.catalog.itemized(account, product), per_record=True,
                          one_resource=resource_id is not None, after_pieces=pieces_of(params), by_account=by_account)
        for row in conn.execute(sql, params).mappings():
            quantity = Decimal(row["quantity"])
            billed = topup = 0
            if aggregation == "time_weighted":
                topup = int(row["topup"])
                billed = int(row["inside"]) + topup
                counted, contribution = billed > 0, Fraction(quantity) * billed
            elif aggregation == "sum":
                counted = row["start_s"] >= p0
                contribution = Fraction(quantity) if counted else Fraction(0)
            else:  # unique: one per resource; max and latest: the record they pick
                counted = row["rank"] == 1
                contribution = Fraction(0) if not counted else Fraction(1) if aggregation == "unique" \
                    else Fraction(quantity)
            out.append(TracedRecord(row["source"], row["record_id"], row["resource_id"], _utc(row["start_s"]),
                                    _utc(row["end_s"]), quantity, int(row["secs"]),
                                    billed, topup, counted, contribution))
    return sorted(out, key=lambda r: (r.start, r.source, r.record_id))


# --------------------------------------------------------------------------
# what-if


@dataclass(frozen=True)
class Difference:
    """One line under two catalogs (``hub rate --catalog``): ``old`` or
    ``new`` is None when only one catalog bills it."""

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
                "currency": self.currency, "old": side(self.old), "new": side(self.new), "change": _fmt(self.change)}


def compare(old: Sequence[Charge], new: Sequence[Charge]) -> list[Difference]:
    """The lines of two ratings of the same usage side by side, by account,
    product and resource."""
    def key(c: Charge) -> tuple[str, str, str]:
        return c.account, c.product, c.resource_id or ""

    before, after = {key(c): c for c in old}, {key(c): c for c in new}
    return [Difference(k[0], k[1], k[2] or None, before.get(k), after.get(k))
            for k in sorted(before.keys() | after.keys())]
