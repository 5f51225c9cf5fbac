"""The close stage: periods into invoices, and what follows an issued
invoice in the books (payments, credit notes, the credit ledger).

- :mod:`hub.closing.close`: closing an account's period (draft or issued,
  once, in one transaction; a reissue of a voided one; deferred below the
  minimum amount), which periods are due (:func:`period_ended`);
- :mod:`hub.closing.build`: what goes on an invoice (rated usage, tax,
  discounts, credits, the parties it keeps);
- :mod:`hub.closing.adjustments`: late usage of closed periods, billed as
  adjustment lines on the next invoice;
- :mod:`hub.closing.empty`: the due periods with nothing to bill, recorded
  closed at once (``hub run``'s first closes of an early ``since``);
- :mod:`hub.closing.charges`: manual charges for the next invoice;
- :mod:`hub.closing.numbering`: gap-free number series and the issue day;
- :mod:`hub.closing.ledger`: credit grants, their balances and history;
- :mod:`hub.closing.stored`: the invoice's stored form;
- :mod:`hub.closing.payments`, :mod:`hub.closing.credit_notes`.

The arithmetic is the pure package :mod:`hub.invoicing` below this one, and
the invoice's JSON is read through :mod:`hub.invoices`. The stage is its
own package, not part of :mod:`hub.invoicing`, because the configuration
loader imports the VAT rules of :mod:`hub.invoicing.tax`: the close stage
reads the configuration, so were it under ``hub.invoicing`` (re-exported by
its ``__init__``), the loader would import it back. Later stages (the
documents, the outbox) must not import this package; it writes the outbox's
rows through :mod:`hub.outbox.queue` only.

This ``__init__`` re-exports the stage's public names.
"""

from hub.closing.build import Overrides
from hub.closing.charges import MANUAL, add_manual_charge
from hub.closing.close import (
    Closing,
    billed_accounts,
    close_account,
    close_period,
    period_ended,
)
from hub.closing.credit_notes import credit_note
from hub.closing.errors import InvoicingError
from hub.closing.ledger import LedgerEntry, ledger
from hub.closing.numbering import issue_day, next_number, series_of
from hub.closing.payments import pay

__all__ = [
    "MANUAL", "Closing", "InvoicingError", "LedgerEntry", "Overrides", "add_manual_charge", "billed_accounts",
    "close_account", "close_period", "credit_note", "issue_day", "ledger", "next_number", "pay", "period_ended", "series_of",
]
