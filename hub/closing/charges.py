"""Manual charges (``hub charge add``): one-off amounts for an account's
next issued invoice.

A manual charge lands on the account's (or, for a member, its root's) next
issued invoice as a line of quantity 1 and can be paid with credits like
any line; issuing binds it to that invoice (``manual_charges.invoice_id``)
so it is billed once. It owns adding them and turning the unbilled ones
into lines; it must not know how the invoice is computed or issued.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import Connection, Engine, insert, select

from hub.closing.errors import InvoicingError, amount_in, utcnow
from hub.closing.lines import LineOrigin, bounds
from hub.config.model import Config
from hub.invoicing.inputs import Line
from hub.money import Money
from hub.periods import Period
from hub.store.tables import manual_charges

#: the product name of a manual charge's line
MANUAL = "manual"


def add_manual_charge(engine: Engine, config: Config, account: str, amount: Decimal | Money, description: str,
                      now: datetime | None = None) -> int:
    """A one-off charge of ``amount`` (in the account's currency) for
    ``account``'s next invoice; its id."""
    now = now or utcnow()
    currency = config.accounts[account].currency
    charge = amount_in(amount, currency, f"{account} is billed in")
    if charge.amount <= 0:
        raise InvoicingError(f"--amount must be more than 0, not {charge.amount} (a refund is a credit note)")
    if not description.strip():
        raise InvoicingError("--description must say what the charge is for")
    with engine.begin() as conn:
        return conn.execute(insert(manual_charges).values(
            account=account, amount=str(charge), currency=currency, description=description.strip(),
            created_at=now).returning(manual_charges.c.id)).scalar_one()


def manual_lines(conn: Connection, config: Config, ids: list[str],
                 period: Period) -> tuple[list[Line], list[LineOrigin]]:
    """The lines of the manual charges of accounts ``ids`` not billed yet,
    dated ``period``, with their origins."""
    lines, origins = [], []
    for row in conn.execute(select(manual_charges).where(manual_charges.c.account.in_(ids),
                                                          manual_charges.c.invoice_id.is_(None))
                            .order_by(manual_charges.c.id)):
        p0, p1 = bounds(config, row.account, period)
        amount = Decimal(row.amount)
        lines.append(Line(MANUAL, row.account, Decimal(1), "unit", amount, amount, p0, p1, None, row.description))
        origins.append(LineOrigin("manual", str(period), 0, row.id))
    return lines, origins
