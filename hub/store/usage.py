"""Writing usage: the upsert of records, quarantine and checkpoints.

Everything of one :class:`~hub.plugin_types.PullBatch` is written in the
caller's transaction, so records, quarantine entries and the checkpoint
that follows them are stored together or not at all.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update

from hub.quantities import split_quantity
from hub.plugin_types import RejectedRow, UsageRecord
from hub.store.tables import checkpoints, quarantine, usage_records

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


def _labels_json(labels: Mapping[str, str]) -> str:
    return json.dumps(dict(labels), sort_keys=True, ensure_ascii=False, separators=(",", ":")) if labels else "{}"


def _origin_text(record: UsageRecord) -> str | None:
    o = record.origin
    if o is None:
        return None
    return f"{o.location}:{o.line}" if o.line is not None else o.location


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


def upsert_records(conn: Connection, source: str, records: Sequence[UsageRecord], received_s: int) -> WriteCounts:
    """Upsert ``records`` by (source, record_id); the last one given wins.

    Rows equal to what is stored are not written at all, so pulling the same
    data twice changes nothing (not even ``received_s``).
    """
    counts = WriteCounts()
    latest: dict[str, tuple[Any, ...]] = {}
    for r in records:  # the last version of an id in the batch wins
        text, units, nanos = split_quantity(r.quantity)
        latest[r.record_id] = (r.account, r.resource_id, r.meter, r.start, r.end, text, r.unit,
                               _labels_json(r.labels), units, nanos, _origin_text(r))
    ids = list(latest)
    existing: dict[str, tuple[Any, ...]] = {}
    c = usage_records.c
    lookup = select(c.record_id, c.account, c.resource_id, c.meter, c.start_s, c.end_s, c.quantity, c.unit,
                    c.labels).where(c.source == source, c.record_id.in_(bindparam("ids", expanding=True)))
    for i in range(0, len(ids), LOOKUP_CHUNK):
        for row in conn.execute(lookup, {"ids": ids[i:i + LOOKUP_CHUNK]}):
            existing[row[0]] = tuple(row[1:])
    new_rows, changed_rows = [], []
    for rid, values in latest.items():
        old = existing.get(rid)
        if old is None:
            new_rows.append((source, rid, *values[:6], values[8], values[9], values[6], values[7], values[10], 1, received_s))
        elif old != values[:8]:
            changed_rows.append((*values[:6], values[8], values[9], values[6], values[7], values[10], received_s, source, rid))
        else:
            counts.unchanged += 1
    if new_rows:
        conn.exec_driver_sql(
            f"INSERT INTO usage_records ({', '.join(_COLUMNS)}) VALUES ({_placeholders(conn, len(_COLUMNS))})",
            new_rows,
        )
    if changed_rows:
        sets = ("account", "resource_id", "meter", "start_s", "end_s", "quantity", "qty_units", "qty_nanos",
                "unit", "labels", "origin", "received_s")
        mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
        conn.exec_driver_sql(
            f"UPDATE usage_records SET {', '.join(f'{s} = {mark}' for s in sets)}, version = version + 1 "
            f"WHERE source = {mark} AND record_id = {mark}",
            changed_rows,
        )
    counts.imported = len(new_rows)
    counts.updated = len(changed_rows)
    return counts


def utcnow() -> datetime:
    """The current time, aware UTC."""
    return datetime.now(timezone.utc)
