"""The close stage's public names, importable from here for the code that
imports them by this path (the application layer, the benchmarks); new
code imports them from :mod:`hub.closing` (the stage) and
:mod:`hub.invoices` (the invoice's JSON read model), and asks the account
tree (``Config.tree``) for roots and members.

Only a re-export: it must hold no logic, and nothing in ``hub.closing`` or
``hub.invoicing`` may import it (``hub.invoicing``'s ``__init__`` does not,
so the configuration loader's import of :mod:`hub.invoicing.tax` never
reaches the close stage).
"""

from __future__ import annotations

from hub.closing import (
    MANUAL,
    Closing,
    InvoicingError,
    LedgerEntry,
    add_manual_charge,
    billed_accounts,
    close_account,
    close_period,
    credit_note,
    issue_day,
    ledger,
    next_number,
    pay,
    period_ended,
    series_of,
)
from hub.config.model import Config
from hub.invoices import (
    CREDIT_NOTE,
    INVOICE,
    STATUSES,
    find,
    invoice_json,
    list_invoices,
)
from hub.invoicing.inputs import CreditGrant


def root_of(config: Config, account_id: str) -> str:
    """The account that is invoiced for ``account_id``'s usage
    (``config.tree.root_of``)."""
    return config.tree.root_of(account_id)


def members(config: Config, root: str) -> list[str]:
    """``root`` and every account billed through it, in configuration order
    (``config.tree.members``)."""
    return config.tree.members(root)


__all__ = [
    "CREDIT_NOTE", "INVOICE", "MANUAL", "STATUSES", "Closing", "CreditGrant", "InvoicingError", "LedgerEntry",
    "add_manual_charge", "billed_accounts", "close_account", "close_period", "credit_note", "find", "invoice_json",
    "issue_day", "ledger", "list_invoices", "members", "next_number", "pay", "period_ended", "root_of", "series_of",
]
