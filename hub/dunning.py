"""Reminders of overdue invoices (dunning): ``[dunning] after_days``.

On a day D (the hub's calendar, ``[hub] timezone``: the day invoices are
issued and paid in), every issued invoice that still has an open balance
(:func:`hub.invoices.open_balances`: its amount due less its payments and
what its credit notes settled) and whose due date plus a step of
``after_days`` is D or earlier gets one reminder for that step: a
``reminders`` row (invoice, step, the day D) and, in the same transaction,
one ``invoice.overdue`` delivery per exporter that takes that event, on the
occasion ``overdue:<step>`` (:func:`hub.outbox.queue.enqueue`).

- **Once per step.** The ``reminders`` primary key (invoice, step) and the
  deliveries' unique (invoice, exporter, event, occasion) make a second
  run, the same day or later, and a concurrent run (two ``hub run`` on one
  PostgreSQL database) write nothing: rows are inserted where absent
  (``ON CONFLICT DO NOTHING``), and only the run whose reminder row was
  written queues the deliveries.
- **The latest step only.** When several steps are due at once (the hub was
  down, or ``after_days`` was just configured), one reminder is sent: the
  latest step due. The earlier ones are passed over for good (a customer
  gets one reminder saying how late the invoice is, not three at once), and
  a step earlier than one already sent is never sent later either (adding
  ``10`` to ``after_days`` after step 14 went out sends no step 10).
- **None once settled.** Paid, void, and credited to 0 invoices have no open
  balance and get no reminder; credit notes and drafts never do.

A reminder delivery whose invoice was settled after it was queued (paid
while the target was down, say) is not sent: the outbox's worker marks it
``cancelled``. One that leaves says the open balance as of its sending.

It reads invoices and writes ``reminders`` and ``deliveries`` (through
:mod:`hub.outbox.queue`); it must not know the exporters, the documents,
the close stage or the plugins' hooks (the application layer calls them
once the reminders are committed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, func, select

from hub.config.model import Config
from hub.invoices import INVOICE, open_balances
from hub.money import money_str
from hub.outbox.queue import OVERDUE_EVENT, OVERDUE_PREFIX, enqueue, insert_absent
from hub.store.tables import invoices, reminders

#: the invoice statuses that may leave something open (paid and void never do)
OPEN_STATUSES = ("issued", "partially_paid")


@dataclass(frozen=True)
class Reminder:
    """One reminder recorded: the invoice, its step and what it said."""

    number: str
    account: str
    step: int
    as_of: date
    due_date: date
    open_balance: Decimal
    currency: str
    #: the ``invoice.overdue`` deliveries queued with it (one per exporter that takes the event)
    deliveries: int
    #: earlier steps that were due at the same time and are passed over (see the module's docstring)
    passed: tuple[int, ...] = ()

    @property
    def days_overdue(self) -> int:
        return (self.as_of - self.due_date).days

    def as_dict(self) -> dict[str, Any]:
        """The reminder as plugins and ``hub dunning --json`` see it."""
        return {"number": self.number, "account": self.account, "step": self.step, "as_of": self.as_of.isoformat(),
                "due_date": self.due_date.isoformat(), "days_overdue": self.days_overdue,
                "open_balance": money_str(self.open_balance, self.currency), "currency": self.currency,
                "deliveries": self.deliveries, "passed": list(self.passed)}


def due_steps(steps: Sequence[int], due_date: date, as_of: date) -> list[int]:
    """The steps of ``steps`` due on ``as_of`` for an invoice due on ``due_date``, in order."""
    return [s for s in sorted(steps) if due_date + timedelta(days=s) <= as_of]


def occasion(step: int) -> str:
    """The deliveries' occasion of the reminder of ``step``."""
    return f"{OVERDUE_PREFIX}{step}"


def run_dunning(engine: Engine, config: Config, as_of: date, now: datetime) -> list[Reminder]:
    """Record the reminders due on ``as_of`` and queue their deliveries (one
    transaction per invoice); the reminders recorded by this run, in issue
    order. Nothing when ``[dunning] after_days`` is empty."""
    steps = sorted(config.dunning.after_days)
    if not steps:
        return []
    latest_due_date = (as_of - timedelta(days=steps[0])).isoformat()
    with engine.connect() as conn:
        ids = list(conn.scalars(select(invoices.c.id).where(
            invoices.c.kind == INVOICE, invoices.c.number.is_not(None), invoices.c.status.in_(OPEN_STATUSES),
            invoices.c.due_date.is_not(None), invoices.c.due_date <= latest_due_date,
        ).order_by(invoices.c.issued_at, invoices.c.id)))
    out = []
    for invoice_id in ids:
        reminder = _remind(engine, config, invoice_id, steps, as_of, now)
        if reminder is not None:
            out.append(reminder)
    return out


def _remind(engine: Engine, config: Config, invoice_id: int, steps: Sequence[int], as_of: date,
            now: datetime) -> Reminder | None:
    """The reminder of one invoice on ``as_of``, if one is due and not sent
    yet, written with its deliveries in one transaction."""
    with engine.begin() as conn:
        inv = conn.execute(select(invoices.c.number, invoices.c.account, invoices.c.currency, invoices.c.status,
                                  invoices.c.due_date).where(invoices.c.id == invoice_id)).one()
        if inv.status not in OPEN_STATUSES:
            return None  # paid or voided since the candidates were read
        balance = open_balances(conn, [invoice_id])[invoice_id]
        if balance <= 0:
            return None
        due_date = date.fromisoformat(inv.due_date)
        due = due_steps(steps, due_date, as_of)
        if not due:
            return None
        step = due[-1]
        sent = conn.scalar(select(func.max(reminders.c.step)).where(reminders.c.invoice_id == invoice_id))
        if sent is not None and sent >= step:
            return None
        written = insert_absent(conn, reminders, [dict(invoice_id=invoice_id, step=step, as_of=as_of.isoformat(),
                                                       created_at=now)])
        if not written:
            return None  # a concurrent run recorded it first (and queued its deliveries)
        queued = enqueue(conn, config, invoice_id, inv.number, inv.account, OVERDUE_EVENT, now,
                         occasion=occasion(step))
    passed = tuple(s for s in due[:-1] if sent is None or s > sent)
    return Reminder(inv.number, inv.account, step, as_of, due_date, balance, inv.currency, queued, passed)


__all__ = ["OPEN_STATUSES", "Reminder", "due_steps", "occasion", "run_dunning"]
