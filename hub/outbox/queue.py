"""The outbox's write side: the deliveries an event of an invoice makes,
written in the transaction of the event itself.

Issuing an invoice (or a credit note, or the payment that makes an invoice
paid) writes one ``deliveries`` row per matching ``[[exporters]]`` instance
in the same transaction (:func:`enqueue`): the delivery can never be lost,
nor written twice (a unique constraint on invoice, exporter, event and
occasion). It owns the delivery statuses, the events, the occasions and
the idempotency key.

Occasions: ``""`` for the event itself; ``"overdue:D"`` for the reminder of
dunning step D (:data:`OVERDUE_EVENT`, written by :mod:`hub.dunning` with
its ``reminders`` row); ``"resend:N"`` for the n-th resend of an issued
event (:func:`resend`, ``hub deliveries resend``). Each occasion has its
own idempotency key, so the target sees a new message, and the event
itself keeps the key it always had.

The close stage imports it, so it must not know the close stage, the
documents or the worker that sends the rows (:mod:`hub.outbox.worker`):
it needs only the configuration's exporters, the ``deliveries`` table and,
to resend, the kind and account of an invoice.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite

from hub.config.model import Config, ExporterInstance
from hub.store.tables import deliveries, invoices

PENDING, SENDING, DELIVERED, DEAD, BLOCKED = "pending", "sending", "delivered", "dead", "blocked"
#: a reminder not sent: its invoice was settled (paid, voided, credited to 0) after it was queued
CANCELLED = "cancelled"
STATUSES = (PENDING, SENDING, DELIVERED, DEAD, BLOCKED, CANCELLED)

ISSUED_EVENT = {"invoice": "invoice.issued", "credit_note": "credit_note.issued"}
PAID_EVENT = "invoice.paid"
#: a reminder of an overdue invoice, once per ``[dunning] after_days`` step
OVERDUE_EVENT = "invoice.overdue"
OVERDUE_PREFIX, RESEND_PREFIX = "overdue:", "resend:"


class OutboxError(Exception):
    """A delivery cannot be found or changed as asked."""


def delivery_key(number: str, exporter: str, event: str, occasion: str = "") -> str:
    """The idempotency key of a delivery: stable, and unique per invoice,
    exporter instance, event and occasion (``msg_`` and 32 hex digits; the
    event itself, occasion ``""``, hashes without a fourth field)."""
    text = f"{number}\x1f{exporter}\x1f{event}" + (f"\x1f{occasion}" if occasion else "")
    digest = hashlib.sha256(text.encode()).hexdigest()
    return f"msg_{digest[:32]}"


def insert_absent(conn: Connection, table: Any, rows: list[dict[str, Any]]) -> int:
    """Insert those of ``rows`` whose primary key or unique key is not taken
    yet (``INSERT ... ON CONFLICT DO NOTHING`` on SQLite and PostgreSQL: a
    concurrent writer's row wins, nothing is raised); how many were inserted."""
    if not rows:
        return 0
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    inserted = 0
    key = list(table.primary_key.columns)
    for row in rows:  # one statement per row: the key it returns says whether it was written
        statement = dialect.insert(table).values(**row).on_conflict_do_nothing().returning(*key)
        inserted += len(conn.execute(statement).all())
    return inserted


def wants(exporter: ExporterInstance, config: Config, account: str, event: str) -> bool:
    """Whether ``exporter`` takes ``event`` of billed ``account`` (its
    ``events``, ``accounts`` and ``tags``)."""
    if event not in exporter.events:
        return False
    if exporter.accounts and account not in exporter.accounts:
        return False
    if exporter.tags:
        acc = config.accounts.get(account)
        if acc is None or not set(acc.tags) & set(exporter.tags):
            return False
    return True


def enqueue(conn: Connection, config: Config, invoice_id: int, number: str, account: str, event: str,
            now: datetime, occasion: str = "") -> int:
    """Write the deliveries of ``event`` (on ``occasion``) for the invoice in
    ``conn``'s transaction (the one that issues or pays it, or records the
    reminder); how many. Those of an occasion are inserted only where absent
    (a concurrent run that wrote them first wins, nothing is raised)."""
    rows = [_row(invoice_id, number, e.name, event, occasion, now)
            for e in config.exporters if wants(e, config, account, event)]
    if occasion:
        return insert_absent(conn, deliveries, rows)
    if rows:
        conn.execute(insert(deliveries), rows)
    return len(rows)


def _row(invoice_id: int, number: str, exporter: str, event: str, occasion: str, now: datetime) -> dict[str, Any]:
    return dict(invoice_id=invoice_id, exporter=exporter, event=event, occasion=occasion,
                key=delivery_key(number, exporter, event, occasion), status=PENDING, attempts=0,
                next_attempt_at=now, created_at=now)


@dataclass(frozen=True)
class Resent:
    """One delivery :func:`resend` queued."""

    delivery_id: int
    number: str
    exporter: str
    event: str
    occasion: str
    key: str


def resend(engine: Engine, config: Config, number: str, exporter: str | None, now: datetime) -> list[Resent]:
    """Queue a new delivery of issued invoice (or credit note) ``number``'s
    issued event for every exporter that takes it (or for ``exporter``
    alone), occasion ``resend:N`` with N the next of that invoice and
    exporter; due now. What was queued, by exporter name.

    :raises OutboxError: an unknown number, a draft, an unknown exporter or
        one that does not take the event (each says so), or no exporter takes
        it at all.
    """
    named = None
    if exporter is not None:
        named = next((e for e in config.exporters if e.name == exporter), None)
        if named is None:
            known = ", ".join(e.name for e in config.exporters) or "none is configured"
            raise OutboxError(f"unknown exporter {exporter!r} (the [[exporters]] of hub.toml: {known})")
    with engine.begin() as conn:
        inv = conn.execute(select(invoices.c.id, invoices.c.kind, invoices.c.account, invoices.c.status)
                           .where(invoices.c.number == number)).first()
        if inv is None:
            hint = " (a draft has no number and cannot be sent: issue it first)" if number.startswith("draft:") else ""
            raise OutboxError(f"no issued invoice or credit note numbered {number!r}{hint} (see hub invoices list)")
        event = ISSUED_EVENT[inv.kind]
        if named is not None:
            targets = [named]
            if not wants(named, config, inv.account, event):
                raise OutboxError(f"exporter {exporter!r} does not take {event} of account {inv.account!r} "
                                  f"(its events, accounts or tags in hub.toml): nothing to resend to it")
        else:
            targets = [e for e in config.exporters if wants(e, config, inv.account, event)]
            if not targets:
                raise OutboxError(f"no exporter takes {event} of account {inv.account!r}: nothing to resend "
                                  f"{number} to")
        out = []
        for target in targets:
            taken = conn.scalar(select(func.count()).select_from(deliveries).where(
                deliveries.c.invoice_id == inv.id, deliveries.c.exporter == target.name,
                deliveries.c.event == event, deliveries.c.occasion.like(f"{RESEND_PREFIX}%")))
            n = int(taken or 0) + 1
            while True:  # another resend of the same invoice and exporter at once takes the next number
                occasion = f"{RESEND_PREFIX}{n}"
                row = _row(inv.id, number, target.name, event, occasion, now)
                if insert_absent(conn, deliveries, [row]):
                    break
                n += 1
            delivery_id = conn.scalar(select(deliveries.c.id).where(deliveries.c.key == row["key"]))
            out.append(Resent(int(delivery_id), number, target.name, event, occasion, row["key"]))
    return out
