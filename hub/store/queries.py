"""Reads of the store that serve the application layer and belong to no stage's computation.

The quarantine as the operator reads it, the numbers of what was issued, and what the close stage asks
before it closes: each account's earliest usage and the periods closed so far. This module knows the
tables; it must not know the configuration, the plugins or any stage.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, select, text

from hub.store.tables import invoices, period_closings, quarantine


@dataclass(frozen=True)
class QuarantineEntry:
    """A row no pull could import: where it is, its text and every error."""

    id: int
    source: str
    location: str | None
    line: int | None
    record_id: str | None
    errors: list[str]
    raw: str | None
    status: str
    resolution: str | None
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "source": self.source, "location": self.location, "line": self.line,
                "record_id": self.record_id, "errors": self.errors, "raw": self.raw, "status": self.status,
                "resolution": self.resolution, "created_at": self.created_at.isoformat()}


@dataclass(frozen=True)
class QuarantinePage:
    """The first ``limit`` quarantined rows in file order, and how many there are in all."""

    entries: list[QuarantineEntry]
    total: int


def _quarantine_where(q: Any, source: str | None, include_resolved: bool) -> Any:
    if not include_resolved:
        q = q.where(quarantine.c.status == "open")
    if source:
        q = q.where(quarantine.c.source == source)
    return q


def quarantine_page(engine: Engine, source: str | None = None, *, include_resolved: bool = False,
                    limit: int | None = None) -> QuarantinePage:
    """The quarantined rows (of ``source``), open ones only unless
    ``include_resolved``, in file order: the first ``limit`` of them (all
    when ``None``) and their total, by one ``COUNT``.

    The open ones are read in the order of ``ix_quarantine_open`` (status,
    source, location, line, id; migration 0010) where the backend has it:
    the first page is read off the index, not a sort of them all."""
    q = _quarantine_where(select(quarantine), source, include_resolved).order_by(
        quarantine.c.source, quarantine.c.location, quarantine.c.line, quarantine.c.id)
    if limit is not None:
        q = q.limit(limit)
    count = _quarantine_where(select(func.count()).select_from(quarantine), source, include_resolved)
    with engine.connect() as conn:
        rows = conn.execute(q).mappings().all()
        total = len(rows) if limit is None or len(rows) < limit else int(conn.scalar(count) or 0)
    return QuarantinePage([QuarantineEntry(r["id"], r["source"], r["location"], r["line"], r["record_id"],
                                           json.loads(r["errors"]), r["raw"], r["status"], r["resolution"],
                                           r["created_at"]) for r in rows], total)


def quarantine_entries(engine: Engine, source: str | None = None, *,
                       include_resolved: bool = False) -> list[QuarantineEntry]:
    """The quarantined rows (of ``source``), open ones only unless ``include_resolved``, in file order."""
    return quarantine_page(engine, source, include_resolved=include_resolved).entries


def issued_numbers(engine: Engine) -> list[str]:
    """The number of every issued invoice and credit note, in issue order."""
    with engine.connect() as conn:
        return list(conn.scalars(select(invoices.c.number).where(invoices.c.number.is_not(None))
                                 .order_by(invoices.c.issued_at, invoices.c.id)))


#: the earliest start of each of a list of accounts, one search of
#: ``ix_usage_records_account`` (account, start_s) each; ``account IS NOT
#: NULL`` is the partial index's condition, which SQLite needs stated
_EARLIEST = ("SELECT a.account, (SELECT MIN(start_s) FROM usage_records "
             "WHERE account = a.account AND account IS NOT NULL) FROM {accounts} AS a")
_ACCOUNT_LIST = {"sqlite": "(SELECT value AS account FROM json_each(:accounts))",
                 "postgresql": "(SELECT unnest(CAST(:accounts AS text[])) AS account)"}


def earliest_usage(engine: Engine, accounts: Iterable[str]) -> dict[str, int]:
    """The earliest usage start (epoch seconds) of each of ``accounts``
    that has usage.

    One statement: a search of the index by (account, start_s) per account
    (migration 0008), not a scan of ``usage_records``, whatever its size."""
    names = sorted(set(accounts))
    if not names:
        return {}
    dialect = engine.dialect.name
    with engine.connect() as conn:
        rows = conn.execute(text(_EARLIEST.format(accounts=_ACCOUNT_LIST[dialect])),
                            {"accounts": json.dumps(names) if dialect == "sqlite" else names})
        return {account: int(start) for account, start in rows if start is not None}


def closed_periods(engine: Engine, roots: Iterable[str] | None = None) -> dict[str, set[str]]:
    """The periods closed so far (``period_closings``) of each root account
    (of ``roots`` only, when given), as period labels: one query."""
    query = select(period_closings.c.account, period_closings.c.period)
    if roots is not None:
        query = query.where(period_closings.c.account.in_(list(roots)))
    out: dict[str, set[str]] = {}
    with engine.connect() as conn:
        for account, label in conn.execute(query):
            out.setdefault(account, set()).add(label)
    return out
