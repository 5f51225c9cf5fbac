"""The quantity SQL of one product: what a product's line measures, per
(account[, resource]), or record by record (``hub trace``, ``hub
reconcile``), with the bounds of the periods after it that a minimum
reaches.

:func:`product_sql` is the definition of a product's quantities: the faster
one scan of :mod:`hub.rating.scan` computes the same (tests/
test_rating_speed_paths.py checks that both agree), and its text is part of
every rollup key (:mod:`hub.rating.keys`). What a record bills is
:mod:`hub.billable`'s; the split sums are :mod:`hub.quantities`'.

Knows the table ``usage_records`` and the meters' aggregations; knows
nothing of prices, rollups or how a rating groups its accounts.

One account (an account's current charges, ``hub trace``): a small group
of accounts reads its records through ``ix_usage_records_account``: the
queries then say ``account IS NOT NULL``, the condition of that partial
index, without which SQLite does not use it (:data:`BY_ACCOUNT`).
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, bindparam, text

from hub.billable import CLIPPED, bound_records_sql
from hub.config.catalog import Product
from hub.periods import Period
from hub.quantities import combine_split_sums, split_products
from hub.store.rollups import Quantities

#: the records a product's line may come from: those of the meter that
#: overlap the period (a record starting in it counts even with no seconds);
#: for ``latest``, every record that starts before the period's end
_SCOPE = """usage_records
WHERE {accounts}{resource} AND meter = :meter AND start_s < :p1{overlap}"""
IN_ACCOUNTS = "account IN :accounts"
#: :data:`IN_ACCOUNTS` through ``ix_usage_records_account``: its partial
#: condition (which always holds) lets SQLite use it
BY_ACCOUNT = "account IN :accounts AND account IS NOT NULL"
_OVERLAPS = "\n  AND (COALESCE(end_s, :run_end) > :p0 OR start_s >= :p0)"

_RECORD_COLUMNS = "source, record_id, account, resource_id, start_s, end_s, quantity, qty_units, qty_nanos"

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
    with ``per_record`` its records one by one (:func:`hub.rating.trace`).

    :param after_pieces: how many periods after this one a record shorter
        than the minimum can reach (:func:`after_bounds`).
    :param every_account: no ``account IN :accounts`` filter: the rows of
        every account that has usage come back (the caller keeps its own).
    :param by_account: read the accounts' records through the account index
        (:data:`BY_ACCOUNT`), for a few accounts."""
    key = "resource_id" if itemized else "''"
    grp = ", resource_id" if itemized else ""  # PostgreSQL refuses a constant in GROUP BY
    accounts = "1 = 1" if every_account else BY_ACCOUNT if by_account else IN_ACCOUNTS
    scope = _SCOPE.format(accounts=accounts,
                          resource=" AND resource_id = :resource" if one_resource else "",
                          overlap="" if aggregation == "latest" else _OVERLAPS)
    if aggregation == "time_weighted":
        records = bound_records_sql(_RECORD_COLUMNS, scope, after_pieces)
        sql = records if per_record else _GROUPED["time_weighted"].format(key=key, grp=grp, records=records)
    elif aggregation not in _ORDERS and aggregation != "sum":
        raise ValueError(f"unknown aggregation {aggregation!r}")
    elif per_record:
        sql = _RANKED_RECORDS.format(cols=_RECORD_COLUMNS, clipped=CLIPPED, scope=scope,
                                     order=_ORDERS.get(aggregation, "start_s, record_id"),
                                     grp=", resource_id" if aggregation == "unique" else grp)
    elif aggregation in ("sum", "unique"):
        sql = _GROUPED[aggregation].format(key=key, grp=grp, scope=scope)
    else:
        sql = _GROUPED["ranked"].format(key=key, grp=grp, order=_ORDERS[aggregation], scope=scope)
    return text(sql) if every_account else text(sql).bindparams(bindparam("accounts", expanding=True))


def product_params(product: Product, period: Period, tz: ZoneInfo) -> dict[str, Any]:
    """The query parameters of ``product``: its meter, granularity ``g``,
    minimum ``m`` and the bounds ``b1``... of :func:`after_bounds`."""
    return {"meter": product.meter, "g": product.granularity, "m": product.minimum,
            **after_bounds(period, tz, product.minimum)}


def pieces_of(params: dict[str, Any]) -> int:
    """How many ``b1``... bounds ``params`` hold."""
    return sum(1 for k in params if k[:1] == "b" and k[1:].isdigit())


def quantities(conn: Connection, aggregation: str, itemized: bool,
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
