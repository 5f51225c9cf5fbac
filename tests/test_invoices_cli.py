"""What ``hub invoices show``, ``hub credits`` and ``hub charge add`` print
for people: an invoice's period as the account's local days, a credit's
expiry as the last day it pays, money with its currency's minor digits, a
credit note's "credited" instead of "amount due". Every test runs on
SQLite and PostgreSQL.
"""

from __future__ import annotations

import hub.cli.invoices  # noqa: F401 - registers the commands for the in-process runner
from tests.test_invoices import _invoice, _setup

EXPIRING = """
[[credits]]
account = "globex"
amount = "0.50"
kind = "prepaid"
expires = "2099-06-30"
"""


def _lines(result) -> list[str]:
    assert result.exit_code == 0, result.output
    return [" ".join(line.split()) for line in result.stdout.splitlines()]


def test_invoices_show_prints_the_period_as_the_accounts_local_days(workspace):
    _setup(workspace)
    _invoice(workspace, "--period", "2025-10", "--account", "globex", "--issue-date", "2025-11-03")
    # globex's October is Paris's: 2025-09-30T22:00Z to 2025-10-31T23:00Z
    shown = _lines(workspace.hub("invoices", "show", "INV-2025-000001"))
    assert shown[1] == "period 2025-10-01 to 2025-10-31 issued 2025-11-03 due 2025-11-17"


def test_credits_print_the_last_day_a_grant_pays_and_charge_add_the_amount_with_its_minor_digits(workspace):
    _setup(workspace, extra=EXPIRING)
    grants = _lines(workspace.hub("credits", "globex"))
    assert grants[1].split()[1:] == ["prepaid", "0.50", "EUR", "0.50", "EUR", "2099-06-30"]
    added = _lines(workspace.hub("charge", "add", "acme", "--amount", "10", "--description", "Setup"))
    assert added == ["charge 1: 10.00 EUR for acme, on its next invoice"]


def test_a_credit_note_shows_what_it_credited_not_an_amount_due(workspace):
    _setup(workspace)
    _invoice(workspace, "--period", "2025-10", "--account", "acme", "--issue-date", "2025-11-03")
    workspace.json("credit-note", "INV-2025-000001", "--reason", "duplicate", "--issue-date", "2025-11-04")
    shown = _lines(workspace.hub("invoices", "show", "CN-2025-000001"))
    assert "credited: 13.09 EUR" in shown
    assert not any(line.startswith("amount due") for line in shown)
    assert shown[-2:] == ["settled INV-2025-000001: 13.09 EUR", "credit balance: 0.00 EUR"]
