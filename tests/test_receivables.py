"""Receivables: ``hub statement ACCOUNT`` and ``hub receivables`` read as of
a day (``--as-of``), and ``hub statement`` / ``hub credits`` of an account
invoiced through a parent point to the parent.

Figures use tests/test_invoices.py's prices (egress 0.08 per GB, 19 % tax in
DE, 14 days to pay). Every test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import textwrap
from decimal import Decimal

import hub.cli.invoices  # noqa: F401 - registers the commands for the in-process runner
from tests.conftest import HEADER
from tests.test_invoices import _invoice, _setup, _show

# acme's egress, one record a month: 10, 20, 30, 40, 50 GB = 0.80, 1.60, 2.40,
# 3.20, 4.00; with 19 % tax (half up) 0.95, 1.90, 2.86, 3.81, 4.76.
MONTHS = ("2025-10", "2025-11", "2025-12", "2026-01", "2026-02")
AGING_USAGE = HEADER + "".join(
    f"e{i},acme,vm-1,network.egress,{m}-05T00:00:00Z,{m}-05T00:00:00Z,{10 * (i + 1)}\n" for i, m in enumerate(MONTHS))
# issued so that on 2026-06-30 their due dates (issue + 14 days: 03-31,
# 04-30, 05-30, 06-29, 06-30) are 91, 61, 31, 1 and 0 days past
ISSUED = ("2026-03-17", "2026-04-16", "2026-05-16", "2026-06-15", "2026-06-16")


def _ok(result):
    assert result.exit_code == 0, result.output
    return result


def _aging(workspace) -> list[str]:
    _setup(workspace, usage=AGING_USAGE)
    numbers = []
    for month, day in zip(MONTHS, ISSUED):
        numbers += [r["number"] for r in _invoice(workspace, "--period", month, "--account", "acme",
                                                   "--issue-date", day)]
    return numbers


def test_a_statement_ages_what_is_open_into_buckets_on_the_as_of_day(workspace):
    numbers = _aging(workspace)
    assert numbers == [f"INV-2026-00000{i}" for i in range(1, 6)]
    # 1.00 of the 31-60 invoice paid before the day, 1.90 of the 61-90 one after it
    _ok(workspace.hub("invoices", "pay", "INV-2026-000003", "--amount", "1.00", "--date", "2026-06-01",
                      "--reference", "SEPA-7"))
    _ok(workspace.hub("invoices", "pay", "INV-2026-000002", "--amount", "1.90", "--date", "2026-07-01"))
    st = workspace.json("statement", "acme", "--as-of", "2026-06-30")
    assert st["account"] == "acme" and st["as_of"] == "2026-06-30"
    assert [(i["number"], i["due_date"], i["amount_due"], i["paid"], i["open"], i["days_past_due"], i["bucket"])
            for i in st["open_invoices"]] == [
        ("INV-2026-000001", "2026-03-31", "0.95", "0.00", "0.95", 91, "over_90"),
        ("INV-2026-000002", "2026-04-30", "1.90", "0.00", "1.90", 61, "61-90"),
        ("INV-2026-000003", "2026-05-30", "2.86", "1.00", "1.86", 31, "31-60"),
        ("INV-2026-000004", "2026-06-29", "3.81", "0.00", "3.81", 1, "1-30"),
        ("INV-2026-000005", "2026-06-30", "4.76", "0.00", "4.76", 0, "current"),
    ]
    assert st["payments"] == [{"invoice": "INV-2026-000003", "date": "2026-06-01", "currency": "EUR",
                               "amount": "1.00", "reference": "SEPA-7"}]
    assert st["credit_notes"] == [] and st["refunds"] == []
    assert st["totals"] == [{"currency": "EUR", "open": "13.28",
                             "buckets": {"current": "4.76", "1-30": "3.81", "31-60": "1.86", "61-90": "1.90",
                                         "over_90": "0.95"},
                             "credit_balance": "0.00", "balance": "13.28"}]
    # the day before the last invoice was issued it is not on the statement; the others age a day less
    earlier = workspace.json("statement", "acme", "--as-of", "2026-06-15")
    assert [(i["number"], i["days_past_due"], i["bucket"]) for i in earlier["open_invoices"]] == [
        ("INV-2026-000001", 76, "61-90"), ("INV-2026-000002", 46, "31-60"), ("INV-2026-000003", 16, "1-30"),
        ("INV-2026-000004", -14, "current")]
    # after the second payment, today
    now = workspace.json("statement", "acme")
    assert [i["number"] for i in now["open_invoices"]] == [
        "INV-2026-000001", "INV-2026-000003", "INV-2026-000004", "INV-2026-000005"]
    assert now["totals"][0]["open"] == "11.38"
    shown = _ok(workspace.hub("statement", "acme", "--as-of", "2026-06-30")).stdout
    assert "statement of acme as of 2026-06-30" in shown
    lines = [" ".join(line.split()) for line in shown.splitlines()]
    assert "INV-2026-000001 2026-03-17 2026-03-31 0.95 EUR 0.00 EUR 0.00 EUR 0.95 EUR 91 over 90" in lines
    assert "EUR 13.28 EUR 4.76 EUR 3.81 EUR 1.86 EUR 1.90 EUR 0.95 EUR 0.00 EUR 13.28 EUR" in lines


def test_a_statement_shows_credit_notes_refunds_and_a_negative_balance_when_the_account_is_owed(workspace):
    _setup(workspace)
    _invoice(workspace, "--period", "2025-10", "--account", "acme", "--issue-date", "2025-11-03")
    _ok(workspace.hub("invoices", "pay", "INV-2025-000001", "--amount", "5.00", "--date", "2025-11-10"))
    # 8.09 open; line 2 credits 11.90: 8.09 settles it, 3.81 is a credit balance
    workspace.json("credit-note", "INV-2025-000001", "--lines", "2", "--reason", "vCPU was free",
                   "--issue-date", "2025-11-12")
    _ok(workspace.hub("refunds", "add", "CN-2025-000001", "--amount", "1.81", "--date", "2025-11-20",
                      "--reference", "R-1"))
    st = workspace.json("statement", "acme", "--as-of", "2025-11-30")
    assert st["open_invoices"] == []
    assert st["credit_notes"] == [{"number": "CN-2025-000001", "invoice": "INV-2025-000001",
                                   "issue_date": "2025-11-12", "currency": "EUR", "total": "11.90",
                                   "applied": "8.09", "credit_balance": "3.81"}]
    assert st["payments"] == [{"invoice": "INV-2025-000001", "date": "2025-11-10", "currency": "EUR",
                               "amount": "5.00", "reference": None}]
    assert st["refunds"] == [{"credit_note": "CN-2025-000001", "date": "2025-11-20", "currency": "EUR",
                              "amount": "1.81", "reference": "R-1"}]
    zero = {"current": "0.00", "1-30": "0.00", "31-60": "0.00", "61-90": "0.00", "over_90": "0.00"}
    assert st["totals"] == [{"currency": "EUR", "open": "0.00", "buckets": zero, "credit_balance": "2.00",
                             "balance": "-2.00"}]
    # as of the day before the refund, all 3.81 was the account's; before the note, 8.09 was open
    assert workspace.json("statement", "acme", "--as-of", "2025-11-19")["totals"][0]["credit_balance"] == "3.81"
    before = workspace.json("statement", "acme", "--as-of", "2025-11-11")
    assert (before["totals"][0]["open"], before["totals"][0]["credit_balance"], before["credit_notes"]) == (
        "8.09", "0.00", [])
    shown = _ok(workspace.hub("statement", "acme", "--as-of", "2025-11-30")).stdout
    lines = [" ".join(line.split()) for line in shown.splitlines()]
    assert "CN-2025-000001 INV-2025-000001 2025-11-12 11.90 EUR 8.09 EUR 3.81 EUR" in lines
    assert "2025-11-20 CN-2025-000001 1.81 EUR R-1" in lines


def test_receivables_totals_are_the_sum_of_every_invoices_open_balance(workspace):
    _setup(workspace)
    # acme 13.09, globex 1.20, initech 2.00, umbrella 0.61, charity 1.00; all due 2025-11-17
    _invoice(workspace, "--period", "2025-10", "--issue-date", "2025-11-03")
    _ok(workspace.hub("invoices", "pay", "INV-2025-000003", "--amount", "2.00", "--date", "2025-11-10"))
    _ok(workspace.hub("invoices", "pay", "INV-2025-000002", "--amount", "0.50", "--date", "2025-11-10"))
    workspace.json("credit-note", "INV-2025-000001", "--lines", "1", "--reason", "egress", "--issue-date",
                   "2025-11-05")
    _ok(workspace.hub("invoices", "pay", "INV-2025-000005", "--amount", "1.00", "--date", "2025-11-10"))
    workspace.json("credit-note", "INV-2025-000005", "--reason", "exempt twice", "--issue-date", "2025-11-11")
    book = workspace.json("receivables", "--as-of", "2025-11-30")
    assert book["as_of"] == "2025-11-30"
    assert [(r["account"], r["currency"], r["open"], r["buckets"]["1-30"], r["credit_balance"], r["balance"])
            for r in book["accounts"]] == [
        ("acme", "EUR", "11.90", "11.90", "0.00", "11.90"),
        ("charity", "EUR", "0.00", "0.00", "1.00", "-1.00"),
        ("globex", "EUR", "0.70", "0.70", "0.00", "0.70"),
        ("initech", "EUR", "0.00", "0.00", "0.00", "0.00"),
        ("umbrella", "EUR", "0.61", "0.61", "0.00", "0.61"),
    ]
    assert book["totals"] == [{"currency": "EUR", "open": "13.21",
                               "buckets": {"current": "0.00", "1-30": "13.21", "31-60": "0.00", "61-90": "0.00",
                                           "over_90": "0.00"},
                               "credit_balance": "1.00", "balance": "12.21"}]
    invoices = workspace.json("invoices", "list")
    open_sum = sum(Decimal(d["open_balance"]) for d in invoices if "open_balance" in d)
    assert open_sum == Decimal(book["totals"][0]["open"])
    rows = book["accounts"]
    for key in ("open", "credit_balance", "balance"):
        assert sum(Decimal(r[key]) for r in rows) == Decimal(book["totals"][0][key])
    # today every one of them is over 90 days past due
    today = workspace.json("receivables")["totals"][0]
    assert (today["open"], today["buckets"]["over_90"]) == ("13.21", "13.21")
    shown = _ok(workspace.hub("receivables", "--as-of", "2025-11-30")).stdout
    lines = [" ".join(line.split()) for line in shown.splitlines()]
    assert "charity EUR 0.00 EUR 0.00 EUR 0.00 EUR 0.00 EUR 0.00 EUR 0.00 EUR 1.00 EUR -1.00 EUR" in lines
    assert "total EUR 13.21 EUR 0.00 EUR 13.21 EUR 0.00 EUR 0.00 EUR 0.00 EUR 1.00 EUR 12.21 EUR" in lines


PARENT = textwrap.dedent("""
    [[accounts]]
    id = "enterprise"
    name = "Enterprise AG"
    country = "DE"

    [[accounts]]
    id = "proj-a"
    name = "Project A"
    parent = "enterprise"
    """)


def test_the_statement_and_credits_of_a_child_account_point_to_its_parent(workspace):
    usage = HEADER + "p1,proj-a,vm-1,network.egress,2025-10-10T00:00:00Z,2025-10-10T00:00:00Z,10\n"
    _setup(workspace, accounts=PARENT, usage=usage)
    _invoice(workspace, "--period", "2025-10", "--issue-date", "2025-11-03")
    for args, command in ((("statement", "proj-a"), "hub statement"), (("credits", "proj-a"), "hub credits"),
                          (("refunds", "list", "--account", "proj-a"), "hub refunds list --account")):
        refused = workspace.hub(*args)
        assert refused.exit_code == 2, args
        assert refused.stderr.strip() == (f"hub: account 'proj-a' is invoiced through 'enterprise', which holds its "
                                          f"invoices, credits and balances: run {command} enterprise")
    # 10 GB = 0.80, 19 % 0.15: 0.95 on the parent's statement; the child has no row in the book
    st = workspace.json("statement", "enterprise", "--as-of", "2025-11-17")
    assert [(i["number"], i["open"], i["bucket"]) for i in st["open_invoices"]] == [
        ("INV-2025-000001", "0.95", "current")]
    assert [r["account"] for r in workspace.json("receivables")["accounts"]] == ["enterprise"]
    assert _show(workspace, "INV-2025-000001")["open_balance"] == "0.95"


def test_a_statement_of_an_unknown_account_or_a_bad_day_is_refused(workspace):
    _setup(workspace)
    unknown = workspace.hub("statement", "nobody")
    assert unknown.exit_code == 2 and "nobody" in unknown.stderr
    bad = workspace.hub("statement", "acme", "--as-of", "2026-02-30")
    assert bad.exit_code == 2
    assert "--as-of: '2026-02-30' is an impossible date: February 2026 has 28 days" in bad.stderr
    empty = workspace.json("statement", "acme")
    assert (empty["open_invoices"], empty["totals"]) == ([], [])
    assert workspace.json("receivables")["accounts"] == []


def test_a_credit_balance_counts_until_the_invoice_that_takes_it_and_comes_back_with_that_invoices_credit_note(
        workspace):
    november = HEADER + "n1,acme,vm-1,network.egress,2025-11-05T00:00:00Z,2025-11-05T00:00:00Z,100\n"
    from tests.test_invoices import OCTOBER

    _setup(workspace, usage=OCTOBER + november.removeprefix(HEADER))
    _invoice(workspace, "--period", "2025-10", "--account", "acme", "--issue-date", "2025-11-03")
    _ok(workspace.hub("invoices", "pay", "INV-2025-000001", "--amount", "13.09", "--date", "2025-11-10"))
    # the paid invoice's line 1 (1.19) credited: all of it is acme's credit balance
    workspace.json("credit-note", "INV-2025-000001", "--lines", "1", "--reason", "egress", "--issue-date",
                   "2025-11-20")
    # November: 100 GB = 8.00 + 1.52 = 9.52, 1.19 of it paid by the credit balance: 8.33 due
    _invoice(workspace, "--period", "2025-11", "--account", "acme", "--issue-date", "2025-12-02")
    # November credited in full: 8.33 settles it, the 1.19 it took goes back to the credit balance
    whole = workspace.json("credit-note", "INV-2025-000002", "--reason", "wrong", "--issue-date", "2025-12-05")
    assert (whole["amount_due"], whole["applied"], whole["credit_balance"]) == ("8.33", "8.33", "0.00")

    def figures(day: str) -> tuple:
        t = workspace.json("statement", "acme", "--as-of", day)["totals"][0]
        return t["open"], t["credit_balance"], t["balance"]

    assert figures("2025-11-19") == ("0.00", "0.00", "0.00")
    assert figures("2025-12-01") == ("0.00", "1.19", "-1.19")
    assert figures("2025-12-02") == ("8.33", "0.00", "8.33")
    assert figures("2025-12-05") == ("0.00", "1.19", "-1.19")
    assert [g["balance"] for g in workspace.json("credits", "acme")["grants"]] == ["1.19"]
    book = workspace.json("receivables", "--as-of", "2025-12-02")["totals"][0]
    assert (book["open"], book["credit_balance"], book["balance"]) == ("8.33", "0.00", "8.33")
