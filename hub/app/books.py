"""The :class:`~hub.app.core.Hub`'s operations on the receivables: statements, the book's open balances and refunds.

A mixin of :class:`~hub.app.core.Hub`: it uses the hub's ``engine``,
``config`` and ``host``, and must not know SQL, the tables, click or HTTP.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from hub.app.errors import HubError
from hub.closing.errors import InvoicingError, utcnow
from hub.closing.numbering import issue_day
from hub.closing.refunds import Refund, add_refund, list_refunds
from hub.receivables import Book, Statement, book, statement

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from hub.config import Config
    from hub.host import Host


class Books:
    """The receivables: statements, the book's open balances and refunds (see the module's docstring)."""

    if TYPE_CHECKING:
        engine: Engine
        config: Config
        host: Host

        def account(self, account_id: str) -> str: ...

    def billed_account(self, account_id: str, command: str) -> str:
        """``account_id`` when it is invoiced itself; a :class:`HubError` pointing to the account it is
        invoiced through otherwise (``command``: the command to run on that one, ``hub credits``)."""
        self.account(account_id)
        root = self.config.tree.root_of(account_id)
        if root != account_id:
            raise HubError(f"account {account_id!r} is invoiced through {root!r}, which holds its invoices, "
                           f"credits and balances: run {command} {root}")
        return account_id

    def today(self, now: datetime | None = None) -> date:
        """Today in the hub's time zone (``[hub] timezone``), the calendar of issue and payment dates."""
        return issue_day(self.config, now or utcnow())

    def statement(self, account: str, as_of: date | None = None) -> Statement:
        """``account``'s open invoices, credit notes, payments, refunds and balance on the day ``as_of``
        (default today), with the aging of what is open."""
        self.billed_account(account, "hub statement")
        return statement(self.engine, account, as_of or self.today())

    def receivables(self, as_of: date | None = None) -> Book:
        """Every billed account's open total, aging and credit balance on the day ``as_of`` (default today),
        and the book's totals per currency."""
        return book(self.engine, as_of or self.today())

    def refund(self, note_number: str, amount: Decimal, paid_on: date, reference: str | None = None) -> Refund:
        """Pay ``amount`` of the credit balance credit note ``note_number`` left out to the customer."""
        try:
            return add_refund(self.engine, self.config, note_number, amount, paid_on, reference)
        except InvoicingError as exc:
            raise HubError(str(exc)) from exc

    def refunds(self, account: str | None = None) -> list[Refund]:
        """Every refund (of ``account``), in the order they were recorded."""
        if account is not None:
            self.billed_account(account, "hub refunds list --account")
        return list_refunds(self.engine, account)
