"""Rating rollups: a period's quantities per account, kept up to date as
usage is upserted.

A full rating of a month scans every usage record (seconds on millions of
them). So a rating of a period **by every account** stores the quantities
it computed, per product spec and period (a *key*, which the rating makes:
:func:`hub.rating.keys.rollup_key`), account and resource, stamped with
the store's *usage generation*; a later rating reads them back (a few
thousand rows) instead of scanning, for as long as they are *valid*; and
the writers of usage keep the keys of additive meters valid by adding the
changes of each batch to them (:func:`apply_batch`).

What is stored per key:

- **time-weighted meters**: what the records bill (the split sums of
  quantity x billed seconds, :func:`hub.quantities.combine_split_sums`, and
  the records billed). While a period is open, a running record's part
  depends on the clock (billed to now), so its key holds the *finished*
  records' part and a rating adds the running records' from
  ``ix_usage_records_running``. A closed period's key holds every record,
  running ones billed to its end; its first rating makes it from the key
  kept while the period was open and the running records.
- **sum meters**: the records starting in the period and their quantities.
- **unique, max and latest meters**: the quantities (``q``) of a *closed*
  period; no writer can add a change to a count of distinct resources or
  to a maximum, so these keys are only valid until the period's usage
  changes.

Validity rests on facts the database enforces, not on the code that writes
usage:

- **Every change of usage is stamped.** Triggers on ``usage_records``
  (migration 0006) add 1 to ``usage_generation.n`` in the very transaction
  that inserts, updates or deletes a record, whatever wrote it, and stamp
  the UTC day of the record's start (of both versions on an update) with
  the new ``n`` in ``usage_change_days``.
- **A record counts in no period that ends before it starts** (a minimum
  top-up goes to the period holding its start; a ``latest`` meter looks at
  starts before the period's end). So a key of a period ending at ``p1`` at
  generation ``G`` is valid while no day up to the one of ``p1 - 1`` is
  stamped above ``G`` (:func:`valid`): usage of later days, the current
  month's, can keep arriving.
- **A stamp never claims newer usage than the scan saw.** The generation is
  read *before* the scan, in a statement of its own; the scan then sees at
  least that generation's usage. A write that commits in between stamps
  its days above ``G``: if they matter to the period, the rollups are never
  read.
- **A writer moves a key's generation only with its changes added.** In a
  batch's transaction, :func:`apply_batch` takes the keys valid before the
  batch, adds to their rows each changed record's new part and takes off
  its old one (set-based, from the batch's stage table), and
  :func:`carry` moves those keys to the generation of the batch's own
  stamps. Writers of usage are serialized (the generation's row lock on
  PostgreSQL, taken first; SQLite's single writer), so no other change can
  slip between. A change made any other way (by hand, another tool) is
  stamped and carried by nothing: the key stops being valid, and the next
  full rating computes it again.
- **Rows and their key come and go together.** A key's row and its rollups
  are stored and dropped in one transaction, holding the same lock as the
  writers; a read takes the key and its rollups in one statement (one
  snapshot), so it never sees a key without its rows, nor rows half-way
  through a batch.

Storing is best effort: a key already there at the same or a newer
generation is kept. Storing also drops keys no longer valid and those
stored more than :data:`RETENTION` ago, so the tables hold what recent full
ratings computed, not every period ever rated. The key holds the rating
revision and the SQL that computes the quantities, so a hub whose rating
changed never reads an older hub's rollups.

The store keeps rollups and knows nothing of the rating that makes them:
a writer adds a batch's changes from a key's *spec* alone (a plain mapping
the rating stores with the key, :func:`hub.rating.keys.rollup_spec`), with
what a record bills computed by :mod:`hub.billable` (the same rule the
rating's scans render) and summed as :mod:`hub.quantities`' split sums.
This module imports neither the rating nor any other stage.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from fractions import Fraction
from typing import Any

from sqlalchemy import Connection, bindparam, text

from hub.billable import IN_PERIOD, billed_sql
from hub.quantities import NANOS, combine_split_sums, split_products

Quantities = dict[tuple[str, str | None], tuple[Fraction, int]]

#: runs one SQL statement (``:name`` parameters) in the caller's
#: transaction and returns its rows (none for a statement without)
Execute = Callable[[str, Mapping[str, Any]], list[Any]]

#: the meters whose rollups the writers keep up to date (additive)
MAINTAINED = ("time_weighted", "sum")

#: keys stored longer ago are dropped when others are stored: every period,
#: catalog and time zone rated in full would otherwise stay (a month that
#: is rated again later is computed again, and stored anew)
RETENTION = timedelta(days=31)

#: the latest generation of a change of usage that can count in a period
#: ending at ``:p1`` (the triggers' day, ``start_s / 86400``, is truncated the
#: same way, and truncation keeps the order: ``start_s < p1`` puts its day
#: at or before ``(p1 - 1) / 86400``)
_LAST_CHANGE = "(SELECT COALESCE(MAX(generation), 0) FROM usage_change_days WHERE day <= (:p1 - 1) / 86400)"
_LAST_CHANGE_OF_KEY = _LAST_CHANGE.replace(":p1", "rating_rollup_keys.period_end_s")

_VALID = text(f"SELECT key, generation FROM rating_rollup_keys WHERE key IN :keys AND generation >= {_LAST_CHANGE}"
              ).bindparams(bindparam("keys", expanding=True))

#: a key's rollups with the key itself, in one statement: no row at all when
#: the key is gone (or moved on), one row of NULLs when it has no rollups
_READ = ("SELECT r.account, r.rkey, r.n, r.s1, r.s2, r.s3, r.s4, r.q FROM rating_rollup_keys k "
         "LEFT JOIN rating_rollups r ON r.key = k.key{accounts} "
         "WHERE k.key = :key AND k.generation = :generation")
_READ_ALL = text(_READ.format(accounts=""))
_READ_SOME = text(_READ.format(accounts=" AND r.account IN :accounts")).bindparams(
    bindparam("accounts", expanding=True))

#: the generation's row: every writer of usage locks it (its triggers
#: update it), so holding it first serializes a batch or a store with them
_LOCK = "SELECT n FROM usage_generation WHERE id = 1 FOR UPDATE"


def generation(conn: Connection) -> int:
    """The store's usage generation (read before the scan it stamps)."""
    return int(conn.execute(text("SELECT n FROM usage_generation WHERE id = 1")).scalar_one())


def valid(conn: Connection, keys: Iterable[str], period_end_s: int) -> dict[str, int]:
    """Those of ``keys`` (of a period ending at ``period_end_s``) with valid
    rollups, and their generation."""
    keys = list(keys)
    if not keys:
        return {}
    return {key: int(gen) for key, gen in conn.execute(_VALID, {"keys": keys, "p1": period_end_s})}


def _exact(value: Any) -> int | None:
    """An integer sum as stored, or None when it is not one (SQLite turns
    an integer overflow into a REAL)."""
    if value is None:
        return 0
    if isinstance(value, float):
        return None
    return int(value)


def read(conn: Connection, key: str, gen: int, itemized: bool,
         accounts: Sequence[str] | None = None) -> Quantities | None:
    """The quantities stored under ``key`` at ``gen``, as the rating
    computes them: (Q, records) per (account, resource or None); only
    ``accounts``' when given. ``None`` when the key is gone or moved on
    meanwhile, or a sum overflowed."""
    params = {"key": key, "generation": gen}
    rows = (conn.execute(_READ_ALL, params).all() if accounts is None
            else conn.execute(_READ_SOME, {**params, "accounts": list(accounts)}).all())
    if not rows:
        return None
    out: Quantities = {}
    for account, rkey, n, s1, s2, s3, s4, q in rows:
        if account is None:
            continue
        if q is not None:
            quantity = Fraction(q)
        else:
            sums = [_exact(v) for v in (s1, s2, s3, s4)]
            if None in sums:
                return None
            quantity = combine_split_sums(*sums)  # type: ignore[arg-type]
        out[(account, rkey if itemized else None)] = (quantity, int(n))
    return out


def _lock(conn_or_execute: Any, dialect: str) -> None:
    if dialect == "postgresql":
        conn_or_execute(_LOCK, {})


def store(conn: Connection, gen: int, period_end_s: int,
          computed: Sequence[tuple[str, Mapping[str, Any] | None, Quantities]]) -> None:
    """Store each ``(key, spec, quantities)`` of ``computed`` at ``gen`` in
    the caller's transaction, for a period ending at ``period_end_s``;
    ``spec`` (:func:`rollup_delta_sql`'s) for a key the writers keep up
    to date, None otherwise. A key already stored at ``gen`` or later is
    kept. Drops the keys no longer valid and those past
    :data:`RETENTION`."""
    if not computed:
        return
    execute = sa_execute(conn)
    _lock(execute, conn.dialect.name)
    now = datetime.now(timezone.utc)
    newer = {key for (key,) in conn.execute(
        text("SELECT key FROM rating_rollup_keys WHERE key IN :keys AND generation >= :generation")
        .bindparams(bindparam("keys", expanding=True)),
        {"keys": [key for key, _, _ in computed], "generation": gen})}
    doomed = {key for (key,) in conn.execute(text(f"SELECT key FROM rating_rollup_keys WHERE generation < "
                                                  f"{_LAST_CHANGE_OF_KEY} OR stored_at < :old"),
                                             {"old": now - RETENTION})}
    # two products of the same spec share a key (and its quantities): once
    todo = sorted({c[0]: c for c in computed if c[0] not in newer}.values(), key=lambda c: c[0])
    doomed |= {key for key, _, _ in todo}
    for key in sorted(doomed):  # rollups first: never a key without its rows
        conn.execute(text("DELETE FROM rating_rollups WHERE key = :key"), {"key": key})
        conn.execute(text("DELETE FROM rating_rollup_keys WHERE key = :key"), {"key": key})
    for key, spec, quantities in todo:
        rows = _rows_of(key, quantities, additive=spec is not None)
        if rows:
            _insert_rows(conn, rows)
        conn.execute(text("INSERT INTO rating_rollup_keys (key, generation, period_end_s, stored_at, spec) "
                          "VALUES (:key, :generation, :p1, :now, :spec)"),
                     {"key": key, "generation": gen, "p1": period_end_s, "now": now,
                      "spec": None if spec is None else json.dumps(spec, sort_keys=True)})


_ROW_COLUMNS = ("key", "account", "rkey", "n", "s1", "s2", "s3", "s4", "q")


def _rows_of(key: str, quantities: Quantities, additive: bool) -> list[tuple[Any, ...]]:
    """The rows of ``key`` (:data:`_ROW_COLUMNS`), sorted: an additive
    key's quantity as split sums (whole units in ``s2``, 1e-9 units in
    ``s4``), another's as its exact text in ``q``."""
    rows = []
    for (account, rkey), (q, n) in sorted(quantities.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")):
        if account is None:
            continue
        if additive:
            scale, rest = divmod(NANOS, q.denominator)
            if rest:
                raise ValueError(f"quantity {q} of {account!r} is not a multiple of 1e-9")
            whole, nanos = divmod(q.numerator * scale, NANOS)
            rows.append((key, account, rkey or "", n, 0, whole, 0, nanos, None))
        else:
            rows.append((key, account, rkey or "", n, None, None, None, None, str(q)))
    return rows


def _insert_rows(conn: Connection, rows: list[tuple[Any, ...]]) -> None:
    """Insert rollup rows in the caller's transaction: ``COPY`` on
    PostgreSQL (60,000 rows in a tenth of the time of an ``INSERT`` each),
    the driver's ``executemany`` elsewhere."""
    columns = ", ".join(_ROW_COLUMNS)
    if conn.dialect.name == "postgresql":
        with conn.connection.driver_connection.cursor() as cur:  # type: ignore[union-attr]
            with cur.copy(f"COPY rating_rollups ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        return
    marks = ", ".join("?" for _ in _ROW_COLUMNS)
    conn.exec_driver_sql(f"INSERT INTO rating_rollups ({columns}) VALUES ({marks})", rows)


# --------------------------------------------------------------------------
# the writers keep the rollups up to date


def sa_execute(conn: Connection) -> Execute:
    """:data:`Execute` on a SQLAlchemy connection."""
    def execute(sql: str, params: Mapping[str, Any]) -> list[Any]:
        result = conn.execute(text(sql), dict(params))
        return result.all() if result.returns_rows else []
    return execute


def dbapi_execute(cursor: Any) -> Execute:
    """:data:`Execute` on a ``sqlite3`` cursor (named ``:name`` parameters)."""
    def execute(sql: str, params: Mapping[str, Any]) -> list[Any]:
        cursor.execute(sql, dict(params))
        return cursor.fetchall()
    return execute


#: the columns of a record that its rating depends on
_RATED = ("account", "resource_id", "meter", "start_s", "end_s", "qty_units", "qty_nanos")
_DELTA = "hub_rollup_delta"
_DELTA_TABLE = {
    "postgresql": (f"CREATE TEMP TABLE IF NOT EXISTS {_DELTA} (account text, resource_id text, meter text, "
                   "start_s bigint, end_s bigint, qty_units bigint, qty_nanos bigint, sign integer) "
                   "ON COMMIT DELETE ROWS"),
    "sqlite": f"CREATE TEMP TABLE IF NOT EXISTS {_DELTA} ({', '.join(_RATED)}, sign)",
}

#: a running record's end, for :func:`apply_batch`'s choice of keys
_NO_END = 2**63 - 1

_MAINTAINED_KEYS = ("SELECT key, spec FROM rating_rollup_keys WHERE spec IS NOT NULL "
                    f"AND generation >= {_LAST_CHANGE_OF_KEY} ORDER BY key")


def apply_batch(execute: Execute, dialect: str, stage: str, source: str) -> list[str]:
    """In a batch's transaction, **before** its upsert from ``stage`` (a
    table of the batch's records of ``source``, each record id at most
    once, with the columns of :data:`_RATED` and ``record_id``): add the
    batch's changes to the rollups of every maintained key valid now, and
    return those keys, for :func:`carry` after the upsert.

    A record new or changed in what rates it adds its new version and takes
    off its old one; a record sent again unchanged adds nothing."""
    _lock(execute, dialect)
    keys = [(key, json.loads(spec)) for key, spec in execute(_MAINTAINED_KEYS, {})]
    if not keys:
        return []
    meters = sorted({spec["meter"] for _, spec in keys})
    params: dict[str, Any] = {"source": source, **{f"meter_{i}": m for i, m in enumerate(meters)}}
    in_meters = ", ".join(f":meter_{i}" for i in range(len(meters)))
    differs = " OR ".join(f"u.{c} {'IS DISTINCT FROM' if dialect == 'postgresql' else 'IS NOT'} s.{c}"
                          for c in _RATED)
    execute(_DELTA_TABLE["postgresql" if dialect == "postgresql" else "sqlite"], {})
    if dialect != "postgresql":
        execute(f"DELETE FROM temp.{_DELTA}", {})
    columns = ", ".join(_RATED)
    join = f"{stage} s {{kind}} JOIN usage_records u ON u.source = :source AND u.record_id = s.record_id"
    execute(f"INSERT INTO {_DELTA} ({columns}, sign) "
            f"SELECT {', '.join(f's.{c}' for c in _RATED)}, 1 FROM {join.format(kind='LEFT')} "
            f"WHERE s.meter IN ({in_meters}) AND (u.id IS NULL OR {differs})", params)
    execute(f"INSERT INTO {_DELTA} ({columns}, sign) "
            f"SELECT {', '.join(f'u.{c}' for c in _RATED)}, -1 FROM {join.format(kind='')} "
            f"WHERE u.meter IN ({in_meters}) AND ({differs})", params)
    # only the keys of periods the changed records can touch: a record
    # counts in a period it overlaps or starts in, a running one in every
    # period after its start (a closed period's key bills it to the end)
    lo, hi = execute(f"SELECT MIN(start_s), MAX(CASE WHEN end_s IS NULL THEN {_NO_END} WHEN end_s > start_s "
                     f"THEN end_s ELSE start_s END) FROM {_DELTA}", {})[0]
    for key, spec in keys:
        if lo is not None and lo < spec["p1"] and hi >= spec["p0"]:
            sql, key_params = rollup_delta_sql(dialect, spec, _DELTA)
            execute(sql, {**key_params, "key": key})
    return [key for key, _ in keys]


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
    # as the rating's scan sums them, each record's part signed (+1 its new
    # version, -1 its old)
    "time_weighted": f"SUM(sign * CASE WHEN billed > 0 THEN 1 ELSE 0 END), {split_products('(sign * billed)')}",
    # as the rating counts a sum meter: the records starting in the period
    "sum": "SUM(sign), 0, SUM(sign * qty_units), 0, SUM(sign * qty_nanos)",
}
_DELTA_SCOPE = {
    "time_weighted": f"end_s IS NOT NULL AND {IN_PERIOD}",
    "time_weighted running": IN_PERIOD,  # a closed period's: running records billed to its end (:run_end)
    "sum": "start_s >= :p0 AND start_s < :p1",
}


def rollup_delta_sql(dialect: str, spec: Mapping[str, Any], delta: str) -> tuple[str, dict[str, Any]]:
    """The statement (and its parameters but ``:key``) that adds to a key's
    rollups the signed records of the table ``delta`` (:func:`apply_batch`):
    what each record bills (time-weighted meters, :func:`hub.billable.billed_sql`:
    finished records only, or running ones too, billed to the end, for a key
    with ``running``) or counts (sum meters) in the key's period, per account
    and resource.

    ``spec``: ``aggregation`` (one of :data:`MAINTAINED`), ``meter``,
    ``itemized``, granularity ``g``, minimum ``m``, the ends ``bounds`` of
    the periods after the key's that a minimum reaches, the period ``p0``,
    ``p1`` and ``running``."""
    aggregation = spec["aggregation"]
    billed = (billed_sql(dialect, spec["g"], spec["m"], spec["bounds"])
              if aggregation == "time_weighted" else "0")
    scope = _DELTA_SCOPE[f"{aggregation} running" if spec.get("running") else aggregation]
    sql = _DELTA_ROWS.format(rkey="resource_id" if spec["itemized"] else "''", sums=_DELTA_SUMS[aggregation],
                             billed=billed, delta=delta, scope=scope,
                             grp=", resource_id" if spec["itemized"] else "")
    return sql, {"meter": spec["meter"], "p0": spec["p0"], "p1": spec["p1"], "run_end": spec["p1"]}


def carry(execute: Execute, keys: Sequence[str]) -> None:
    """In the batch's transaction, **after** its upsert and stamps: the
    ``keys`` of :func:`apply_batch` are up to date with the generation of
    the batch's own changes."""
    if not keys:
        return
    marks = ", ".join(f":k{i}" for i in range(len(keys)))
    execute(f"UPDATE rating_rollup_keys SET generation = (SELECT n FROM usage_generation WHERE id = 1) "
            f"WHERE key IN ({marks})", {f"k{i}": key for i, key in enumerate(keys)})
