"""Writing usage: the upsert of records, quarantine and checkpoints.

Everything of one :class:`~hub.plugin.types.PullBatch` is written in the
caller's transaction, so records, quarantine entries and the checkpoint
that follows them are stored together or not at all.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update

from hub.quantities import split_quantity
from hub.plugin.types import RejectedRow, UsageColumns, UsageRecord
from hub.store import rollups
from hub.store.tables import checkpoints, quarantine

#: how many record ids one lookup query binds (SQLite allows 32766)
LOOKUP_CHUNK = 5000

_COLUMNS = ("source", "record_id", "account", "resource_id", "meter", "start_s", "end_s", "quantity",
            "qty_units", "qty_nanos", "unit", "labels", "origin", "version", "received_s")


@dataclass
class WriteCounts:
    """What one batch changed in the store."""

    imported: int = 0
    updated: int = 0
    unchanged: int = 0
    quarantined: int = 0
    resolved: int = 0

    def add(self, other: WriteCounts) -> None:
        for name in ("imported", "updated", "unchanged", "quarantined", "resolved"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


#: label sets repeat across millions of records (region=eu...): their JSON is cached
_LABELS_JSON: dict[tuple[tuple[str, str], ...], str] = {}


def _labels_json(labels: Mapping[str, str]) -> str:
    if not labels:
        return "{}"
    key = tuple(labels.items())
    text = _LABELS_JSON.get(key)
    if text is None:
        if len(_LABELS_JSON) > 50_000:
            _LABELS_JSON.clear()
        text = _LABELS_JSON[key] = json.dumps(dict(labels), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return text


def _placeholders(conn: Connection, n: int) -> str:
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    return ", ".join([mark] * n)


def load_checkpoint(conn: Connection, source: str) -> dict[str, Any] | None:
    """The saved resume state of ``source``, or ``None``."""
    state = conn.scalar(select(checkpoints.c.state).where(checkpoints.c.source == source))
    return json.loads(state) if state is not None else None


def save_checkpoint(conn: Connection, source: str, state: Mapping[str, Any], now: datetime) -> None:
    """Replace the resume state of ``source``."""
    text = json.dumps(state, sort_keys=True, separators=(",", ":"))
    changed = conn.execute(
        update(checkpoints).where(checkpoints.c.source == source).values(state=text, updated_at=now)
    ).rowcount
    if not changed:
        conn.execute(insert(checkpoints).values(source=source, state=text, updated_at=now))


def has_open_quarantine(conn: Connection, source: str) -> bool:
    """Whether ``source`` has quarantine entries still open."""
    q = select(quarantine.c.id).where(quarantine.c.source == source, quarantine.c.status == "open").limit(1)
    return conn.scalar(q) is not None


def supersede_locations(conn: Connection, source: str, superseded: Iterable[tuple[str, int]], now: datetime) -> int:
    """Close the open quarantine entries of input read again: for each
    ``(location, first_line)``, the entries of that location from that line
    on (and those without a line, when the whole location is re-read)."""
    closed = 0
    for location, first_line in superseded:
        line = quarantine.c.line >= first_line
        if first_line <= 1:
            line = line | quarantine.c.line.is_(None)
        closed += conn.execute(
            update(quarantine)
            .where(quarantine.c.source == source, quarantine.c.status == "open", quarantine.c.location == location, line)
            .values(status="resolved", resolution="read again", resolved_at=now)
        ).rowcount
    return closed


def quarantine_rows(conn: Connection, source: str, rows: Sequence[RejectedRow], now: datetime,
                    resolved_by: Mapping[str, tuple[str, int]] | None = None) -> int:
    """Store rejected rows as quarantine entries.

    ``resolved_by`` maps a record id to the (location, line) of a valid
    version of it in the same batch: a rejected row that comes before it is
    stored already resolved, since the later version replaced it.

    :return: how many entries were stored open.
    """
    if not rows:
        return 0
    values = []
    for row in rows:
        later = (resolved_by or {}).get(row.record_id or "")
        superseded = (
            later is not None and row.origin.line is not None
            and later[0] == row.origin.location and later[1] > row.origin.line
        )
        values.append(dict(
            source=source, location=row.origin.location, line=row.origin.line, raw=row.origin.raw,
            errors=json.dumps(list(row.errors), ensure_ascii=False), record_id=row.record_id,
            status="resolved" if superseded else "open",
            resolution=f"replaced by line {later[1]}" if superseded and later else None,
            created_at=now, resolved_at=now if superseded else None,
        ))
    conn.execute(insert(quarantine), values)
    return sum(v["status"] == "open" for v in values)


def resolve_imported(conn: Connection, source: str, record_ids: Sequence[str], now: datetime) -> int:
    """Close open quarantine entries whose record id was now stored valid."""
    resolved = 0
    stmt = (
        update(quarantine)
        .where(quarantine.c.source == source, quarantine.c.status == "open",
               quarantine.c.record_id.in_(bindparam("ids", expanding=True)))
        .values(status="resolved", resolution="a valid version was imported", resolved_at=now)
    )
    for i in range(0, len(record_ids), LOOKUP_CHUNK):
        resolved += conn.execute(stmt, {"ids": list(record_ids[i:i + LOOKUP_CHUNK])}).rowcount
    return resolved


#: the columns whose change makes a new version of a record
_CONTENT = ("account", "resource_id", "meter", "start_s", "end_s", "quantity", "unit", "labels")
_STAGE = "hub_usage_stage"


def _stage(conn: Connection, rows: list[tuple[Any, ...]]) -> None:
    """Load ``rows`` into an empty temporary table of the transaction.

    PostgreSQL gets COPY; SQLite the driver's executemany into a table with
    no index. Either way no per-row SQL crosses SQLAlchemy.
    """
    columns = ", ".join(_COLUMNS)
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(
            f"CREATE TEMP TABLE IF NOT EXISTS {_STAGE} (source text, record_id text, account text, resource_id text, "
            "meter text, start_s bigint, end_s bigint, quantity text, qty_units bigint, qty_nanos bigint, unit text, "
            "labels text, origin text, version integer, received_s bigint) ON COMMIT DELETE ROWS"
        )
        with conn.connection.driver_connection.cursor() as cur:  # type: ignore[union-attr]
            with cur.copy(f"COPY {_STAGE} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        return
    conn.exec_driver_sql(f"CREATE TEMP TABLE IF NOT EXISTS {_STAGE} ({columns})")
    conn.exec_driver_sql(f"DELETE FROM {_STAGE}")
    conn.exec_driver_sql(f"INSERT INTO {_STAGE} ({columns}) VALUES ({_placeholders(conn, len(_COLUMNS))})", rows)


def upsert_records(conn: Connection, source: str, records: Sequence[UsageRecord], received_s: int) -> WriteCounts:
    """Upsert ``records`` by (source, record_id); the last one given wins.

    One set-based statement per batch: the rows are staged, then inserted
    with ``ON CONFLICT DO UPDATE ... WHERE`` something changed. A row equal
    to what is stored is not written at all, so pulling the same data twice
    changes nothing (not even ``received_s``); a changed row gets its
    ``version`` raised, which is also how the counts tell new from updated.
    """
    latest: dict[str, tuple[Any, ...]] = {}
    for r in records:  # the last version of an id in the batch wins
        text, units, nanos = split_quantity(r.quantity)
        o = r.origin
        origin = None if o is None else (o.location if o.line is None else f"{o.location}:{o.line}")
        latest[r.record_id] = (source, r.record_id, r.account, r.resource_id, r.meter, r.start, r.end, text,
                               units, nanos, r.unit, _labels_json(r.labels), origin, 1, received_s)
    if not latest:
        return WriteCounts()
    _stage(conn, list(latest.values()))
    differs = "IS DISTINCT FROM" if conn.dialect.name == "postgresql" else "IS NOT"
    changed = " OR ".join(f"usage_records.{c} {differs} excluded.{c}" for c in _CONTENT)
    sets = ", ".join(f"{c} = excluded.{c}" for c in (*_CONTENT, "qty_units", "qty_nanos", "origin", "received_s"))
    columns = ", ".join(_COLUMNS)
    return _upsert_from_stage(
        conn, _STAGE, source, len(latest),
        f"INSERT INTO usage_records ({columns}) SELECT {columns} FROM {_STAGE} WHERE true "
        f"ON CONFLICT (source, record_id) DO UPDATE SET {sets}, version = usage_records.version + 1 "
        f"WHERE {changed} RETURNING version")


def _upsert_from_stage(conn: Connection, stage: str, source: str, offered: int, sql: str,
                       params: Mapping[str, Any] | None = None) -> WriteCounts:
    """Run the upsert ``sql`` (``RETURNING version``) of the ``offered``
    records of ``source`` staged in ``stage``, with the batch's changes
    added to the rating rollups in the same transaction
    (:func:`hub.store.rollups.apply_batch` before it, ``carry`` after); the
    counts, told apart by version."""
    execute = rollups.sa_execute(conn)
    carried = rollups.apply_batch(execute, conn.dialect.name, stage, source)
    # The driver's own cursor: SQLAlchemy's result processing would cost more
    # than the statement for a batch of RETURNING rows.
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        if params is None:
            cursor.execute(sql)
        else:
            cursor.execute(sql, params)
        versions = [v for (v,) in cursor.fetchall()]
    finally:
        cursor.close()
    rollups.carry(execute, carried)
    imported = versions.count(1)
    return WriteCounts(imported=imported, updated=len(versions) - imported, unchanged=offered - len(versions))


# --------------------------------------------------------------------------
# records given as columns (UsageColumns)

#: the stage columns of column rows; the store computes the rest in SQL
STAGE_COLUMNS = ("record_id", "account", "resource_id", "meter", "start_s", "end_s", "qty_units", "qty_nanos",
                 "unit", "labels", "line")
_COLS_STAGE = "hub_usage_cols"


def label_json_column(labels: Mapping[str, Sequence[str]]) -> list[str]:
    """The ``labels`` JSON of each row of label columns (an empty value is
    no label), exactly as :func:`_labels_json` writes a record's."""
    names = tuple(labels)
    if len(names) == 1:
        keys: Sequence[Any] = next(iter(labels.values()))
    else:
        keys = list(zip(*labels.values()))
    cache = _LABEL_ROWS.setdefault(names, {})
    texts = list(map(cache.get, keys))
    i = -1
    while True:
        try:
            i = texts.index(None, i + 1)
        except ValueError:
            break
        key = keys[i]
        text = cache.get(key)
        if text is None:
            if len(cache) > 50_000:
                cache.clear()
            values = (key,) if len(names) == 1 else key
            text = cache[key] = _labels_json({n: v for n, v in zip(names, values) if v})
        texts[i] = text
    return texts  # type: ignore[return-value]


#: label columns' names -> their values in a row -> that row's labels JSON
_LABEL_ROWS: dict[tuple[str, ...], dict[Any, str]] = {}


def stage_columns(cols: UsageColumns) -> tuple[tuple[str, ...], list[Sequence[Any]]]:
    """The stage columns of ``cols`` (names, values); those left out (no
    unit, no labels, no lines) are NULL or ``{}`` in SQL."""
    names = ["record_id", "account", "resource_id", "meter", "start_s", "end_s", "qty_units", "qty_nanos"]
    values: list[Sequence[Any]] = [cols.record_id, cols.account, cols.resource_id, cols.meter, cols.start, cols.end,
                                   cols.quantity_units, cols.quantity_nanos]
    if cols.unit is not None:
        names.append("unit")
        values.append(cols.unit)
    if cols.labels:
        names.append("labels")
        values.append(label_json_column(cols.labels))
    if cols.line is not None:
        names.append("line")
        values.append(cols.line)
    return tuple(names), values


#: rows of one multi-row ``INSERT ... VALUES`` into a SQLite stage table
STAGE_ROWS = 500


def insert_columns_sqlite(dbapi: Any, table: str, names: Sequence[str], values: Sequence[Sequence[Any]]) -> None:
    """Insert the rows of columns ``values`` into the SQLite ``table``.

    Many rows per statement (``VALUES (...), (...), ...``): ``executemany``
    steps one statement per row, and its per-row overhead was a third of
    staging a batch (1.3 against 0.9 us a row of 11 columns).
    """
    width = len(names)
    n = len(values[0]) if values else 0
    if not n:
        return
    flat: list[Any] = [None] * (n * width)
    for k, column in enumerate(values):
        flat[k::width] = column
    try:
        limit = dbapi.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    except AttributeError:  # Python < 3.11: SQLite's smallest default
        limit = 999
    per = max(1, min(STAGE_ROWS, limit // width))
    row = f"({', '.join('?' * width)})"
    head = f"INSERT INTO {table} ({', '.join(names)}) VALUES "
    full = n // per * per * width
    step = per * width
    if full:
        dbapi.executemany(head + ", ".join([row] * per), (flat[i:i + step] for i in range(0, full, step)))
    if full < len(flat):
        dbapi.execute(head + ", ".join([row] * ((len(flat) - full) // width)), flat[full:])


def column_upsert_sql(dialect: str, stage: str, names: Sequence[str], returning: bool) -> str:
    """``INSERT INTO usage_records ... SELECT ... FROM stage ON CONFLICT DO
    UPDATE ... WHERE changed``: the upsert of staged column rows.

    The canonical quantity text and the origin are computed here, from
    ``qty_units``/``qty_nanos`` and the statement's ``location`` and each
    row's ``line``. Parameters: ``source``, ``received``, ``location``.
    """
    if dialect == "postgresql":
        qtext = ("CASE WHEN qty_nanos = 0 THEN qty_units::text "
                 "ELSE rtrim(qty_units::text || '.' || lpad(qty_nanos::text, 9, '0'), '0') END")
        source, received, location = "%(source)s", "CAST(%(received)s AS bigint)", "CAST(%(location)s AS text)"
        differs = "IS DISTINCT FROM"
        line = "line::text"
    else:
        qtext = ("CASE WHEN qty_nanos = 0 THEN CAST(qty_units AS TEXT) "
                 "ELSE rtrim(printf('%d.%09d', qty_units, qty_nanos), '0') END")
        source, received, location = ":source", ":received", ":location"
        differs = "IS NOT"
        line = "line"
    values = {
        "source": source, "record_id": "record_id", "account": "account", "resource_id": "resource_id",
        "meter": "meter", "start_s": "start_s", "end_s": "end_s", "quantity": qtext, "qty_units": "qty_units",
        "qty_nanos": "qty_nanos", "unit": "unit" if "unit" in names else "NULL",
        "labels": "labels" if "labels" in names else "'{}'",
        "origin": f"{location} || ':' || {line}" if "line" in names else location,
        "version": "1", "received_s": received,
    }
    changed = " OR ".join(f"usage_records.{c} {differs} excluded.{c}" for c in _CONTENT)
    sets = ", ".join(f"{c} = excluded.{c}" for c in (*_CONTENT, "qty_units", "qty_nanos", "origin", "received_s"))
    return (f"INSERT INTO usage_records ({', '.join(_COLUMNS)}) "
            f"SELECT {', '.join(values[c] for c in _COLUMNS)} FROM {stage} WHERE true "
            f"ON CONFLICT (source, record_id) DO UPDATE SET {sets}, version = usage_records.version + 1 "
            f"WHERE {changed}" + (" RETURNING version" if returning else ""))


def upsert_columns(conn: Connection, source: str, cols: UsageColumns, received_s: int) -> WriteCounts:
    """Upsert checked column rows, every record id at most once, in the
    caller's transaction (as :func:`upsert_records` does records)."""
    if not len(cols):
        return WriteCounts()
    names, values = stage_columns(cols)
    dbapi = conn.connection.dbapi_connection
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(
            f"CREATE TEMP TABLE IF NOT EXISTS {_COLS_STAGE} (record_id text, account text, resource_id text, "
            "meter text, start_s bigint, end_s bigint, qty_units bigint, qty_nanos bigint, unit text, labels text, "
            "line bigint) ON COMMIT DELETE ROWS"
        )
        with dbapi.cursor() as cur:  # type: ignore[union-attr]
            with cur.copy(f"COPY {_COLS_STAGE} ({', '.join(names)}) FROM STDIN") as copy:
                for row in zip(*values):
                    copy.write_row(row)
    else:
        conn.exec_driver_sql(f"CREATE TEMP TABLE IF NOT EXISTS {_COLS_STAGE} ({', '.join(STAGE_COLUMNS)})")
        conn.exec_driver_sql(f"DELETE FROM {_COLS_STAGE}")
        insert_columns_sqlite(dbapi, _COLS_STAGE, names, values)
    return _upsert_from_stage(conn, _COLS_STAGE, source, len(cols),
                              column_upsert_sql(conn.dialect.name, _COLS_STAGE, names, returning=True),
                              {"source": source, "received": received_s, "location": cols.location})


def utcnow() -> datetime:
    """The current time, aware UTC."""
    return datetime.now(timezone.utc)
