"""Refunds: paying a credit balance out to the customer.

What a credit note credits beyond its invoice's open balance is a credit
balance of the billed account (the grant ``cn-<note number>`` of
:mod:`hub.closing.ledger`). A refund pays part or all of it out: one
``refunds`` row and one ``refund`` entry of the ledger, in one transaction.
It is refused for more than the balance left, for an amount with more
decimals than the currency, and when dated after today (in the hub's time
zone) or before the credit note was issued.

It owns the ``refunds`` table; it must not know how a credit note is
computed nor how an invoice consumes a credit balance.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, insert, select

from hub.closing.errors import InvoicingError, amount_in, utcnow
from hub.closing.ledger import balance_of, credit_balance_id, record_entries
from hub.closing.payments import not_after_today
from hub.config.model import Config
from hub.invoices import CREDIT_NOTE
from hub.money import Money
from hub.store.tables import credit_grants, invoices, refunds


@dataclass(frozen=True)
class Refund:
    """A refund of a credit note's credit balance; ``balance``: what is left
    of that credit balance now."""

    id: int
    account: str
    credit_note: str
    amount: Money
    paid_on: date
    reference: str | None
    balance: Money

    def to_json(self) -> dict[str, Any]:
        """``hub refunds list --json``: money as strings with the currency's minor digits."""
        return {"id": self.id, "account": self.account, "credit_note": self.credit_note,
                "currency": self.amount.currency, "amount": str(self.amount), "date": self.paid_on.isoformat(),
                "reference": self.reference, "balance": str(self.balance)}


def add_refund(engine: Engine, config: Config, note_number: str, amount: Decimal | Money, paid_on: date,
               reference: str | None = None, now: datetime | None = None) -> Refund:
    """Pay out ``amount`` of the credit balance credit note ``note_number``
    left (``hub refunds add``)."""
    now = now or utcnow()
    not_after_today(config, paid_on, "--date", now)
    gid = credit_balance_id(note_number)
    with engine.begin() as conn:
        note = conn.execute(select(invoices.c.id, invoices.c.kind, invoices.c.issue_date, invoices.c.account)
                            .where(invoices.c.number == note_number)).first()
        if note is None or note.kind != CREDIT_NOTE:
            raise InvoicingError(f"no credit note numbered {note_number!r} (hub invoices list shows them)")
        grant = conn.execute(select(credit_grants).where(credit_grants.c.id == gid).with_for_update()).first()
        if grant is None:
            raise InvoicingError(f"{note_number} left no credit balance: it settled its invoice's open balance")
        if paid_on.isoformat() < note.issue_date:
            raise InvoicingError(f"--date {paid_on} is before {note_number} was issued ({note.issue_date})")
        currency = grant.currency
        paying = amount_in(amount, currency, f"{note_number}'s credit balance is in")
        if paying.amount <= 0:
            raise InvoicingError(f"--amount must be more than 0, not {paying.amount}")
        left = Money.of(balance_of(conn, gid), currency)
        if paying > left:
            raise InvoicingError(f"{note_number}: {paying} {currency} is more than the {left} {currency} left of "
                                 "its credit balance")
        refund_id = conn.execute(insert(refunds).values(
            account=grant.account, grant_id=gid, amount=str(paying), currency=currency,
            paid_on=paid_on.isoformat(), reference=reference, recorded_at=now).returning(refunds.c.id)).scalar_one()
        record_entries(conn, "refund", [(gid, str(paying))], at=now, invoice_id=None, dedupe=f"refund:{refund_id}")
        return Refund(refund_id, grant.account, note_number, paying, paid_on, reference, left - paying)


def list_refunds(engine: Engine, account: str | None = None) -> list[Refund]:
    """Every refund (of ``account``) in the order they were recorded, each
    with what is left of its credit balance now."""
    with engine.connect() as conn:
        query = (select(refunds, invoices.c.number)
                 .join(credit_grants, credit_grants.c.id == refunds.c.grant_id)
                 .join(invoices, invoices.c.id == credit_grants.c.invoice_id)
                 .order_by(refunds.c.id))
        if account is not None:
            query = query.where(refunds.c.account == account)
        rows = conn.execute(query).all()
        left = {gid: balance_of(conn, gid) for gid in {r.grant_id for r in rows}}
    return [Refund(r.id, r.account, r.number, Money.of(r.amount, r.currency), date.fromisoformat(r.paid_on),
                   r.reference, Money.of(left[r.grant_id], r.currency)) for r in rows]
