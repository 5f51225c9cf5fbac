"""The outbox's write side: the deliveries an event of an invoice makes,
written in the transaction of the event itself.

Issuing an invoice (or a credit note, or the payment that makes an invoice
paid) writes one ``deliveries`` row per matching ``[[exporters]]`` instance
in the same transaction (:func:`enqueue`): the delivery can never be lost,
nor written twice (a unique constraint on invoice, exporter and event).
It owns the delivery statuses, the events and the idempotency key.

The close stage imports it, so it must not know the close stage, the
documents or the worker that sends the rows (:mod:`hub.outbox.worker`):
it needs only the configuration's exporters and the ``deliveries`` table.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import Connection, insert

from hub.config.model import Config, ExporterInstance
from hub.store.tables import deliveries

PENDING, SENDING, DELIVERED, DEAD, BLOCKED = "pending", "sending", "delivered", "dead", "blocked"
STATUSES = (PENDING, SENDING, DELIVERED, DEAD, BLOCKED)

ISSUED_EVENT = {"invoice": "invoice.issued", "credit_note": "credit_note.issued"}
PAID_EVENT = "invoice.paid"


class OutboxError(Exception):
    """A delivery cannot be found or changed as asked."""


def delivery_key(number: str, exporter: str, event: str) -> str:
    """The idempotency key of a delivery: stable, and unique per invoice,
    exporter instance and event (``msg_`` and 32 hex digits)."""
    digest = hashlib.sha256(f"{number}\x1f{exporter}\x1f{event}".encode()).hexdigest()
    return f"msg_{digest[:32]}"


def _wants(exporter: ExporterInstance, config: Config, account: str, event: str) -> bool:
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
            now: datetime) -> int:
    """Write the deliveries of ``event`` for the invoice in ``conn``'s
    transaction (the one that issues or pays it); how many."""
    rows = [dict(invoice_id=invoice_id, exporter=e.name, event=event, key=delivery_key(number, e.name, event),
                 status=PENDING, attempts=0, next_attempt_at=now, created_at=now)
            for e in config.exporters if _wants(e, config, account, event)]
    if rows:
        conn.execute(insert(deliveries), rows)
    return len(rows)
