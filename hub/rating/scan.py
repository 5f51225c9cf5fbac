"""Every time-weighted product of a rating in one scan of
``usage_records`` (per time zone), and on a SQLite file that scan split
across two connections.

Each record's billed seconds are computed once per scan, with its
product's granularity, minimum and bounds written into the query
(:func:`hub.billable.billed_sql`); a meter's second product takes a second
scan. A time zone's group of accounts is filtered with ``IN`` only when it
is small (the caller says so). On a SQLite file a full scan runs on both
cores: half of the records by id in the rating's connection, the other half
in a second connection of a thread of its own, the sums added up
(:func:`_sqlite_split_scan`).

Gives what :func:`hub.rating.sql.quantities` gives one product at a time;
knows nothing of prices, rollups or the catalog beyond the products it is
handed.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import defaultdict
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, bindparam, text

from hub.billable import IN_PERIOD, billed_sql
from hub.config.catalog import Product
from hub.periods import Period
from hub.quantities import combine_split_sums, split_products
from hub.rating.sql import BY_ACCOUNT, IN_ACCOUNTS, Quantities, after_bound_list
from hub.store.db import sqlite_file

#: per record of the scanned meters, its billed seconds (``billed``); sums
#: per (account, meter, resource or ``''``): the records billed and the four
#: split sums.
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
#: would raise; sums only grow, so :func:`_checked_sums` checks afterwards
#: that every sum is still an integer.
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
_ONE_SCAN_RECORDS = f"""
  SELECT meter, account{{rkey_in}}, qty_units, qty_nanos, {{billed}} AS billed
  FROM usage_records
  WHERE {{accounts}}{{ids}}{{running}}meter IN ({{meters}}) AND {IN_PERIOD}
  {{fence}}
"""

#: per dialect: what keeps the per-record subquery from being flattened
#: (nothing on PostgreSQL, see :data:`_ONE_SCAN`)
_FENCE = {"sqlite": "LIMIT -1", "postgresql": ""}

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
        :func:`hub.rating.sql.after_bounds` (the integers are written into
        the query).
    :param filter_accounts: add ``account IN :accounts``.
    :param by_account: with ``filter_accounts``, through the account index
        (:data:`hub.rating.sql.BY_ACCOUNT`).
    :param id_range: only the records with ``:id_lo < id <= :id_hi``
        (:func:`_sqlite_split_scan`).
    :param records: ``"finished"`` or ``"running"`` records only (:data:`_RUNNING`).
    """
    if len({meter for meter, *_ in products}) != len(products):
        raise ValueError("one scan rates one product per meter")
    fence = _FENCE.get(dialect, _FENCE["postgresql"])
    # the billed seconds per shape (granularity, minimum, bounds): one
    # expression when every product has the same, else a CASE on the meter
    shapes: dict[str, list[int]] = defaultdict(list)
    for i, (_meter, g, m, _itemized, bounds) in enumerate(products):
        shapes[billed_sql(dialect, g, m, bounds)].append(i)
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
                                       accounts=(f"{BY_ACCOUNT if by_account else IN_ACCOUNTS} AND "
                                                 if filter_accounts else ""),
                                       ids="id > :id_lo AND id <= :id_hi AND " if id_range else "")
    if dialect == "sqlite":
        sql = _SQLITE_ONE_SCAN.format(rkey_out=rkey_out, records=selected)
    else:
        sql = _ONE_SCAN.format(rkey_out=rkey_out, rkey_group=rkey_group, records=selected)
    stmt = text(sql)
    return stmt.bindparams(bindparam("accounts", expanding=True)) if filter_accounts else stmt


def one_scan_quantities(conn: Connection, products: Sequence[Product], period: Period, tz: ZoneInfo,
                        base: dict[str, Any], filter_accounts: bool, by_account: bool = False,
                        records: str | None = None) -> list[Quantities]:
    """(Q, records) per (account, resource or None) of each of ``products``
    (time-weighted), as :func:`hub.rating.sql.quantities` gives them one
    product at a time: one scan for the first product of each meter, one
    more for each meter's second product, and so on; of the ``records`` of
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
