"""The close stage's error, clock and reading of an amount given by hand.

:class:`InvoicingError` is what every operation of the stage raises when
the operator must fix something first (a missing seller, an unknown
invoice, a payment larger than what is due); it must not know any of them.
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

from hub.money import Money


class InvoicingError(Exception):
    """Something the operator must fix before an invoice can be made; the
    message says what and where."""


def utcnow() -> datetime:
    """Now, as the stage records it."""
    return datetime.now(timezone.utc)


def amount_in(amount: Decimal | Money, currency: str, whose: str) -> Money:
    """``--amount`` as money in ``currency`` (``whose``: who or what is in
    it, for the message); an :class:`InvoicingError` otherwise."""
    if isinstance(amount, Money):
        if amount.currency != currency:
            raise InvoicingError(f"--amount is in {amount.currency}; {whose} {currency}")
        amount = amount.amount
    try:
        return Money.of(amount, currency, "--amount")
    except ValueError as exc:
        raise InvoicingError(str(exc)) from None
