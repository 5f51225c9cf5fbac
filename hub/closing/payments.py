"""Payments of issued invoices.

A payment moves an issued invoice to ``partially_paid``, then ``paid``;
paying more than is still due is refused, and an amount must have no more
decimals than the invoice's currency. The payment that makes an invoice
paid writes its ``invoice.paid`` deliveries in the same transaction.

It owns the ``payments`` table and the payment statuses of an invoice; it
must not know how invoices are made or credited.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, insert, select, update

from hub.closing.errors import InvoicingError, amount_in, utcnow
from hub.config.model import Config
from hub.invoices import INVOICE, invoice_json
from hub.money import Money
from hub.outbox.queue import PAID_EVENT, enqueue
from hub.store.tables import invoices, payments


def pay(engine: Engine, config: Config, number: str, amount: Decimal | Money, paid_on: date,
        reference: str | None = None, now: datetime | None = None) -> dict[str, Any]:
    """Record a payment of ``amount`` (in the invoice's currency) of the
    issued invoice ``number``; its status follows (and once it is paid, the
    ``invoice.paid`` deliveries are written with it). The invoice's JSON."""
    now = now or utcnow()
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
        paid = sum((Money.of(p, currency) for p in conn.scalars(select(payments.c.amount)
                                                                .where(payments.c.invoice_id == row.id))),
                   Money.zero(currency))
        due = Money.of(row.amount_due, currency)
        if paid + paying > due:
            raise InvoicingError(f"{number}: {paying} {currency} is more than the {due - paid} still due")
        conn.execute(insert(payments).values(invoice_id=row.id, amount=str(paying), paid_on=paid_on.isoformat(),
                                             reference=reference, recorded_at=now))
        status = "paid" if paid + paying == due else "partially_paid"
        conn.execute(update(invoices).where(invoices.c.id == row.id).values(status=status))
        if status == "paid":
            enqueue(conn, config, row.id, number, row.account, PAID_EVENT, now)
        return invoice_json(conn, conn.execute(select(invoices).where(invoices.c.id == row.id)).one())
