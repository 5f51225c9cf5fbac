"""The outbox's worker: claims due deliveries, hands each to its exporter
with its documents, and records every attempt.

The worker (:func:`deliver_pending`; ``hub deliver``, or a job of ``hub
run``) claims due rows one at a time with a compare-and-set update that
also takes a lease, so two workers never send one row at once and a worker
killed while sending leaves a row that is retried once its lease expires.
Each attempt is recorded (``delivery_attempts``) before the exporter is
called and completed after. The exporter receives the row's idempotency
key, the same on every attempt, and must use it at the target (a webhook
id, a Message-ID, a QuickBooks requestid): a retry after a crash between
sending and recording never makes a second copy there.

Retries: exponential backoff from :data:`BACKOFF_BASE` doubling up to
:data:`BACKOFF_CAP`, with a deterministic jitter of up to a fifth (derived
from the key and the attempt, so runs are reproducible), and never sooner
than the target's ``Retry-After``. A permanent error (a 4xx other than 408
and 429), or ``max_attempts`` failures, makes the row ``dead``; ``hub
deliveries retry ID`` queues it again. A delivery whose document was
rejected by its validation is ``blocked``: it is never sent. A reminder
(``invoice.overdue``) whose invoice was settled since it was queued is
``cancelled`` instead of sent.

It reads invoices through the read model (:mod:`hub.invoices`) and their
documents through the render stage (:mod:`hub.documents`); it must not
know how invoices are made (the close stage), which only writes rows
(:mod:`hub.outbox.queue`).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, and_, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from hub.config.model import Config
from hub.documents.render import RenderError, render_invoice
from hub.host import Host
from hub.invoices import invoice_json
from hub.outbox.queue import BLOCKED, CANCELLED, DEAD, DELIVERED, OVERDUE_EVENT, OVERDUE_PREFIX, PENDING, SENDING
from hub.plugin.types import Delivery, DeliveryError, Document, Exporter
from hub.store.tables import deliveries, delivery_attempts, invoices, reminders

#: the first retry waits this long; each next one twice as long
BACKOFF_BASE = timedelta(seconds=30)
#: ... up to this
BACKOFF_CAP = timedelta(hours=6)
#: a target's Retry-After is honoured up to this
RETRY_AFTER_CAP = timedelta(hours=24)
#: how long a worker may take to send one delivery before another may retry it
LEASE = timedelta(minutes=5)


@dataclass(frozen=True)
class Attempt:
    """What one attempt did: ``outcome`` is delivered, retry, dead or blocked."""

    delivery_id: int
    number: str
    exporter: str
    event: str
    attempt: int
    outcome: str
    error: str | None = None
    external_id: str | None = None
    next_attempt_at: datetime | None = None


def backoff(key: str, attempt: int, retry_after: float | None = None) -> timedelta:
    """The wait before attempt ``attempt + 1``: exponential with jitter,
    never less than ``retry_after`` seconds (up to :data:`RETRY_AFTER_CAP`)."""
    base = min(BACKOFF_BASE * (2 ** (attempt - 1)), BACKOFF_CAP)
    jitter = random.Random(f"{key}:{attempt}").uniform(0, 0.2)
    wait = base * (1 + jitter)
    if retry_after is not None:
        wait = max(wait, min(timedelta(seconds=retry_after), RETRY_AFTER_CAP))
    return wait


def _claim(engine: Engine, row_id: int, now: datetime) -> int | None:
    """Take the row for one attempt (compare-and-set); its attempt number, or
    None when another worker took it first."""
    with engine.begin() as conn:
        row = conn.execute(select(deliveries.c.status, deliveries.c.attempts, deliveries.c.lease_until,
                                  deliveries.c.next_attempt_at).where(deliveries.c.id == row_id)).first()
        if row is None:
            return None
        due = (row.status == PENDING and row.next_attempt_at <= now) or \
              (row.status == SENDING and row.lease_until is not None and row.lease_until <= now)
        if not due:
            return None
        attempt = row.attempts + 1
        taken = conn.execute(update(deliveries).where(
            deliveries.c.id == row_id, deliveries.c.status == row.status, deliveries.c.attempts == row.attempts,
        ).values(status=SENDING, attempts=attempt, lease_until=now + LEASE)).rowcount
        if taken != 1:
            return None
        try:
            conn.execute(insert(delivery_attempts).values(delivery_id=row_id, attempt=attempt, started_at=now))
        except IntegrityError:  # pragma: no cover - the compare-and-set above makes this unreachable
            return None
    return attempt


def _finish(engine: Engine, row_id: int, attempt: int, now: datetime, *, outcome: str, status: str,
            error: str | None = None, external_id: str | None = None, next_at: datetime | None = None) -> None:
    with engine.begin() as conn:
        values: dict[str, Any] = dict(status=status, lease_until=None, last_error=error)
        if status == DELIVERED:
            values.update(external_id=external_id, delivered_at=now)
        if next_at is not None:
            values["next_attempt_at"] = next_at
        conn.execute(update(deliveries).where(deliveries.c.id == row_id, deliveries.c.attempts == attempt)
                     .values(**values))
        conn.execute(update(delivery_attempts).where(delivery_attempts.c.delivery_id == row_id,
                                                     delivery_attempts.c.attempt == attempt)
                     .values(finished_at=now, outcome=outcome, error=error, external_id=external_id))


def _documents(engine: Engine, config: Config, host: Host, number: str,
               formats: Sequence[str]) -> tuple[dict[str, Document], str | None]:
    """The stored documents of ``number`` in ``formats`` (rendered now if
    missing), or the reason they cannot be had."""
    if not formats:
        return {}, None
    try:
        outcomes = render_invoice(engine, config, host, number, formats=formats)
    except RenderError as exc:
        return {}, str(exc)
    bad = [o for o in outcomes if not o.ok]
    if bad:
        return {}, "; ".join(f"{o.format} document {o.status}: " + ", ".join(f"[{f.rule}] {f.message}"
                                                                         for f in o.failures) for o in bad)
    return {o.format: o.document for o in outcomes if o.format in formats and o.document is not None}, None


def _exporter(config: Config, host: Host, name: str, cache: dict[str, Exporter | str]) -> Exporter | str:
    """The exporter instance ``name`` (built once per run), or why not."""
    if name not in cache:
        ic = next((e for e in config.exporters if e.name == name), None)
        if ic is None:
            cache[name] = f"exporter {name!r} is no longer in hub.toml"
        else:
            registered = host.type_of("exporter", ic.type)
            built = host.guard(ic.name, "factory", registered.type.factory, ic) if registered else None
            cache[name] = built if built is not None else (
                f"exporter {name!r} could not be built: {host.failures[-1].message}" if registered
                else f"exporter type {ic.type!r} is not installed")
    return cache[name]


def reminder_of(conn: Connection, row: Any, invoice: dict[str, Any]) -> dict[str, Any] | None:
    """What an ``invoice.overdue`` delivery tells of its reminder (see
    :class:`~hub.plugin.types.Delivery`): the step of its occasion, the day
    its ``reminders`` row says it was due on, the days overdue then, and the
    open balance as of now. None for any other event."""
    if row.event != OVERDUE_EVENT or not str(row.occasion).startswith(OVERDUE_PREFIX):
        return None
    step = int(str(row.occasion)[len(OVERDUE_PREFIX):])
    as_of = conn.scalar(select(reminders.c.as_of).where(reminders.c.invoice_id == row.invoice_id,
                                                        reminders.c.step == step))
    due_date = invoice.get("due_date")
    days = None
    if as_of is not None and due_date:
        days = (date.fromisoformat(str(as_of)) - date.fromisoformat(str(due_date))).days
    return {"step": step, "as_of": as_of, "due_date": due_date, "days_overdue": days,
            "open_balance": invoice.get("open_balance"), "currency": invoice.get("currency")}


def _call(exporter: Exporter, delivery: Delivery) -> str | None | DeliveryError:
    try:
        return exporter.deliver(delivery)
    except DeliveryError as exc:
        return exc


def due(engine: Engine, now: datetime, limit: int | None = None) -> list[int]:
    """Ids of the rows a worker may attempt at ``now``, oldest first."""
    q = select(deliveries.c.id).where(or_(
        and_(deliveries.c.status == PENDING, deliveries.c.next_attempt_at <= now),
        and_(deliveries.c.status == SENDING, deliveries.c.lease_until <= now),
    )).order_by(deliveries.c.next_attempt_at, deliveries.c.id)
    if limit is not None:
        q = q.limit(limit)
    with engine.connect() as conn:
        return list(conn.scalars(q))


def deliver_pending(engine: Engine, config: Config, host: Host, *, now: datetime | None = None,
                    limit: int | None = None) -> list[Attempt]:
    """Attempt every due delivery once (at most ``limit``); what each did."""
    exporters: dict[str, Exporter | str] = {}
    out: list[Attempt] = []
    for row_id in due(engine, now or datetime.now(timezone.utc), limit):
        attempt = deliver_one(engine, config, host, row_id, now=now, exporters=exporters)
        if attempt is not None:
            out.append(attempt)
    return out


def deliver_one(engine: Engine, config: Config, host: Host, row_id: int, *, now: datetime | None = None,
                exporters: dict[str, Exporter | str] | None = None) -> Attempt | None:
    """One attempt of delivery ``row_id`` if it is due and no other worker
    took it; None otherwise."""
    started = now or datetime.now(timezone.utc)
    attempt = _claim(engine, row_id, started)
    if attempt is None:
        return None
    with engine.connect() as conn:
        row = conn.execute(select(deliveries).where(deliveries.c.id == row_id)).one()
        inv = conn.execute(select(invoices).where(invoices.c.id == row.invoice_id)).one()
        invoice = invoice_json(conn, inv)
        reminder = reminder_of(conn, row, invoice)
    base = dict(delivery_id=row_id, number=inv.number, exporter=row.exporter, event=row.event, attempt=attempt)
    ic = next((e for e in config.exporters if e.name == row.exporter), None)
    max_attempts = ic.max_attempts if ic is not None else 1
    exporter = _exporter(config, host, row.exporter, exporters if exporters is not None else {})

    def finish(outcome: str, status: str, ended: datetime | None = None, **kw: Any) -> Attempt:
        ended = ended or now or datetime.now(timezone.utc)
        _finish(engine, row_id, attempt, ended, outcome=outcome, status=status, **kw)
        result = Attempt(**base, outcome=outcome, error=kw.get("error"), external_id=kw.get("external_id"),
                         next_attempt_at=kw.get("next_at"))
        if status == DEAD:
            dead = {"id": row_id, "number": inv.number, "exporter": row.exporter, "event": row.event,
                    "key": row.key, "attempts": attempt, "last_error": kw.get("error")}
            for impl in host.pm.hook.hub_delivery_failed.get_hookimpls():
                args = {"delivery": dict(dead)} if "delivery" in impl.argnames else {}
                host.guard(impl.plugin_name, "hub_delivery_failed", impl.function, **args)
        return result

    if reminder is not None and (inv.status in ("paid", "void") or Decimal(reminder["open_balance"] or 0) <= 0):
        # Settled since the reminder was queued (say while the target was down): a reminder of a paid
        # invoice is worse than none.
        return finish(CANCELLED, CANCELLED, error=f"not sent: {inv.number} was settled after the reminder was "
                                                  f"queued ({inv.status}, open balance {reminder['open_balance']})")
    if isinstance(exporter, str):
        # A configuration problem (a missing secret, a removed instance):
        # the row waits, blocked, for the operator to fix it and retry it.
        return finish(BLOCKED, BLOCKED, error=exporter)
    documents, blocked = _documents(engine, config, host, inv.number, tuple(getattr(exporter, "formats", ())))
    if blocked is not None:
        return finish(BLOCKED, BLOCKED, error=blocked)
    account = config.accounts.get(inv.account)
    delivery = Delivery(key=row.key, event=row.event, invoice=invoice, documents=documents, attempt=attempt,
                        recipient=account.email if account else None, created_at=row.created_at,
                        occasion=row.occasion, reminder=reminder)
    before = len(host.failures)
    result = host.guard(row.exporter, "deliver", _call, exporter, delivery)
    ended = now or datetime.now(timezone.utc)
    if isinstance(result, DeliveryError):
        error, retry_after, permanent = str(result), result.retry_after, result.permanent
        if result.disable:
            error = f"the target asked to stop (disabled): {error}"
    elif len(host.failures) > before:
        error, retry_after, permanent = host.failures[-1].message, None, False
    else:
        return finish(DELIVERED, DELIVERED, ended, external_id=None if result is None else str(result))
    if permanent or attempt >= max_attempts:
        why = error if permanent else f"{error} (attempt {attempt} of {max_attempts}: giving up)"
        return finish(DEAD, DEAD, ended, error=why)
    return finish("retry", PENDING, ended, error=error, next_at=ended + backoff(row.key, attempt, retry_after))
