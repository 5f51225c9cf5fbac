"""Payments of issued invoices.

A payment moves an issued invoice to ``partially_paid``, then ``paid``
once its open balance (its amount due less its payments and what its credit
notes settled: :func:`hub.invoices.open_balances`) is 0; paying more than is
still open is refused, and an amount must have no more decimals than the
invoice's currency. A payment dated after today (in the hub's time zone) is
refused; one dated before the invoice's issue date is recorded with a
warning. The payment that makes an invoice paid writes its
``invoice.paid`` deliveries in the same transaction.

It owns the ``payments`` table and the payment statuses of an invoice; it
must not know how invoices are made or credited.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, insert, select, update

from hub.closing.errors import InvoicingError, amount_in, utcnow
from hub.closing.numbering import issue_day
from hub.config.model import Config
from hub.invoices import INVOICE, invoice_json, open_balances
from hub.money import Money
from hub.outbox.queue import PAID_EVENT, enqueue
from hub.store.tables import invoices, payments


def not_after_today(config: Config, day: date, option: str, now: datetime) -> None:
    """An :class:`InvoicingError` when ``day`` (given as ``option``) is after
    today in the hub's time zone: money cannot have moved yet."""
    today = issue_day(config, now)
    if day > today:
        raise InvoicingError(f"{option} {day} is in the future: today is {today} ({config.hub.timezone})")


def pay(engine: Engine, config: Config, number: str, amount: Decimal | Money, paid_on: date,
        reference: str | None = None, now: datetime | None = None,
        warn: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Record a payment of ``amount`` (in the invoice's currency) of the
    issued invoice ``number``; its status follows (and once it is paid, the
    ``invoice.paid`` deliveries are written with it). The invoice's JSON;
    ``warn`` is told of a payment dated before the invoice's issue."""
    now = now or utcnow()
    not_after_today(config, paid_on, "--date", now)
    with engine.begin() as conn:
        row = conn.execute(select(invoices).where(invoices.c.number == number).with_for_update()).first()
        if row is None:
            raise InvoicingError(f"no invoice numbered {number!r}")
        if row.kind != INVOICE:
            raise InvoicingError(f"{number} is a credit note, not an invoice")
        if row.status not in ("issued", "partially_paid"):
            raise InvoicingError(f"{number} is {row.status}: only an issued or partially paid invoice can be paid")
        currency = row.currency
        paying = amount_in(amount, currency, f"{number} is in")
        if paying.amount <= 0:
            raise InvoicingError(f"--amount must be more than 0, not {paying.amount}")
        open_ = Money.of(open_balances(conn, [row.id])[row.id], currency)
        if paying > open_:
            raise InvoicingError(f"{number}: {paying} {currency} is more than the {open_} still due")
        conn.execute(insert(payments).values(invoice_id=row.id, amount=str(paying), paid_on=paid_on.isoformat(),
                                             reference=reference, recorded_at=now))
        status = "paid" if paying == open_ else "partially_paid"
        conn.execute(update(invoices).where(invoices.c.id == row.id).values(status=status))
        if status == "paid":
            enqueue(conn, config, row.id, number, row.account, PAID_EVENT, now)
        doc = invoice_json(conn, conn.execute(select(invoices).where(invoices.c.id == row.id)).one())
    if warn is not None and row.issue_date and paid_on.isoformat() < row.issue_date:
        warn(f"{number}: the payment is dated {paid_on}, before the invoice was issued ({row.issue_date}); "
             "recorded as given")
    return doc
