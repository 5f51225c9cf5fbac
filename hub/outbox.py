"""The outbox: every delivery of an invoice to an exporter, exactly once.

Issuing an invoice (or a credit note, or the payment that makes an invoice
paid) writes one ``deliveries`` row per matching ``[[exporters]]`` instance
in the same transaction (:func:`enqueue`): the delivery can never be lost,
nor written twice (a unique constraint on invoice, exporter and event).

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
rejected by its validation is ``blocked``: it is never sent.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Connection, Engine, and_, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from hub.config.model import Config, ExporterInstance
from hub.host import Host
from hub.plugin.types import Delivery, DeliveryError, Document, Exporter
from hub.store.tables import deliveries, delivery_attempts, invoices

PENDING, SENDING, DELIVERED, DEAD, BLOCKED = "pending", "sending", "delivered", "dead", "blocked"
STATUSES = (PENDING, SENDING, DELIVERED, DEAD, BLOCKED)

#: the first retry waits this long; each next one twice as long
BACKOFF_BASE = timedelta(seconds=30)
#: ... up to this
BACKOFF_CAP = timedelta(hours=6)
#: a target's Retry-After is honoured up to this
RETRY_AFTER_CAP = timedelta(hours=24)
#: how long a worker may take to send one delivery before another may retry it
LEASE = timedelta(minutes=5)

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


# --------------------------------------------------------------------------
# The worker


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
    from hub.documents import RenderError, render_invoice

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
    from hub.invoicing.closing import invoice_json

    started = now or datetime.now(timezone.utc)
    attempt = _claim(engine, row_id, started)
    if attempt is None:
        return None
    with engine.connect() as conn:
        row = conn.execute(select(deliveries).where(deliveries.c.id == row_id)).one()
        inv = conn.execute(select(invoices).where(invoices.c.id == row.invoice_id)).one()
        invoice = invoice_json(conn, inv)
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

    if isinstance(exporter, str):
        # A configuration problem (a missing secret, a removed instance):
        # the row waits, blocked, for the operator to fix it and retry it.
        return finish(BLOCKED, BLOCKED, error=exporter)
    documents, blocked = _documents(engine, config, host, inv.number, tuple(getattr(exporter, "formats", ())))
    if blocked is not None:
        return finish(BLOCKED, BLOCKED, error=blocked)
    account = config.accounts.get(inv.account)
    delivery = Delivery(key=row.key, event=row.event, invoice=invoice, documents=documents, attempt=attempt,
                        recipient=account.email if account else None, created_at=row.created_at)
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


# --------------------------------------------------------------------------
# Reading and re-queueing


def list_deliveries(engine: Engine, status: str | None = None, number: str | None = None) -> list[dict[str, Any]]:
    """The outbox, oldest first, as ``hub deliveries --json`` prints it."""
    q = (select(deliveries, invoices.c.number).join(invoices, invoices.c.id == deliveries.c.invoice_id)
         .order_by(deliveries.c.id))
    if status is not None:
        q = q.where(deliveries.c.status == status)
    if number is not None:
        q = q.where(invoices.c.number == number)
    with engine.connect() as conn:
        return [{"id": r.id, "number": r.number, "exporter": r.exporter, "event": r.event, "key": r.key,
                 "status": r.status, "attempts": r.attempts,
                 "next_attempt_at": r.next_attempt_at.isoformat() if r.status == PENDING else None,
                 "last_error": r.last_error, "external_id": r.external_id,
                 "delivered_at": r.delivered_at.isoformat() if r.delivered_at else None}
                for r in conn.execute(q)]


def attempts_of(engine: Engine, delivery_id: int) -> list[dict[str, Any]]:
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


def notify(engine: Engine, host: Host, hook: str, numbers: Sequence[str]) -> None:
    """Call the event hook ``hook`` (``hub_invoice_issued`` or
    ``hub_invoice_paid``) for each invoice of ``numbers``, after the fact;
    a plugin's failure is recorded and the others go on."""
    caller = getattr(host.pm.hook, hook)
    if not numbers or not caller.get_hookimpls():
        return
    from hub.invoicing.closing import invoice_json

    with engine.connect() as conn:
        docs = [invoice_json(conn, r) for r in conn.execute(select(invoices).where(invoices.c.number.in_(numbers))
                                                              .order_by(invoices.c.id))]
    for doc in docs:
        for impl in caller.get_hookimpls():
            args = {"invoice": json.loads(json.dumps(doc))} if "invoice" in impl.argnames else {}
            host.guard(impl.plugin_name, hook, impl.function, **args)
