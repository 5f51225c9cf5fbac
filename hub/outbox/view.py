"""Reading the outbox and queueing a delivery again: ``hub deliveries``.

It reads and updates the ``deliveries`` rows and their attempts; it must
not know the exporters, the documents or the close stage.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Engine, select, update

from hub.outbox.queue import BLOCKED, DEAD, PENDING, OutboxError
from hub.store.tables import deliveries, delivery_attempts, invoices


def list_deliveries(engine: Engine, status: str | None = None, number: str | None = None) -> list[dict[str, Any]]:
    """The outbox, oldest first, as ``hub deliveries --json`` prints it."""
    q = (select(deliveries, invoices.c.number).join(invoices, invoices.c.id == deliveries.c.invoice_id)
         .order_by(deliveries.c.id))
    if status is not None:
        q = q.where(deliveries.c.status == status)
    if number is not None:
        q = q.where(invoices.c.number == number)
    with engine.connect() as conn:
        return [{"id": r.id, "number": r.number, "exporter": r.exporter, "event": r.event, "occasion": r.occasion,
                 "key": r.key, "status": r.status, "attempts": r.attempts,
                 "next_attempt_at": r.next_attempt_at.isoformat() if r.status == PENDING else None,
                 "last_error": r.last_error, "external_id": r.external_id,
                 "delivered_at": r.delivered_at.isoformat() if r.delivered_at else None}
                for r in conn.execute(q)]


def attempts_of(engine: Engine, delivery_id: int) -> list[dict[str, Any]]:
    """The attempts of delivery ``delivery_id``, first first."""
    with engine.connect() as conn:
        return [{"attempt": r.attempt, "started_at": r.started_at.isoformat(),
                 "finished_at": r.finished_at.isoformat() if r.finished_at else None, "outcome": r.outcome,
                 "error": r.error, "external_id": r.external_id}
                for r in conn.execute(select(delivery_attempts).where(delivery_attempts.c.delivery_id == delivery_id)
                                      .order_by(delivery_attempts.c.attempt))]


def retry(engine: Engine, delivery_id: int, now: datetime | None = None) -> dict[str, Any]:
    """Queue a dead or blocked delivery again (same key: the target still
    recognises it), for an attempt now."""
    now = now or datetime.now(timezone.utc)
    with engine.begin() as conn:
        row = conn.execute(select(deliveries.c.status).where(deliveries.c.id == delivery_id)).first()
        if row is None:
            raise OutboxError(f"no delivery {delivery_id}")
        if row.status not in (DEAD, BLOCKED):
            raise OutboxError(f"delivery {delivery_id} is {row.status}: only a dead or blocked one can be retried")
        conn.execute(update(deliveries).where(deliveries.c.id == delivery_id, deliveries.c.status == row.status)
                     .values(status=PENDING, next_attempt_at=now, lease_until=None))
    return next(d for d in list_deliveries(engine) if d["id"] == delivery_id)
