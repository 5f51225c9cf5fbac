"""Credit notes that settle: a credit note settles its
invoice's open balance first; what it credits beyond that becomes a credit
balance of the account (a prepaid grant ``cn-<note>`` in the credits
ledger) that pays the next invoices, or is paid out with ``hub refunds
add``. ``hub invoices show`` lists an invoice's credit notes, payments,
refunds and open balance.

The October invoice of acme (tests/test_invoices.py): egress 1.00 (line
1), vCPU 10.00 (line 2), 19 % tax 2.09, total 13.09, due 2025-11-17. A
credit note for line 1 is 1.00 + 0.19 = 1.19; for line 2 10.00 + 1.90 =
11.90. Every test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import text

import hub.cli.invoices  # noqa: F401 - registers the commands for the in-process runner
from tests.conftest import HEADER
from tests.test_invoices import OCTOBER, _invoice, _setup, _show
from tests.test_outbox import EVENTS_SEEN, fake_host

#: November 2025: acme 100 GB of egress = 8.00, 19 % = 1.52, total 9.52
NOVEMBER = HEADER + "n1,acme,vm-1,network.egress,2025-11-05T00:00:00Z,2025-11-05T00:00:00Z,100\n"

CRM = """
[[exporters]]
name = "crm"
type = "fake"
"""


@pytest.fixture
def with_fake_exporter(monkeypatch):
    """The ``fake`` exporter type of tests/test_outbox.py and its event hooks."""
    import hub.cli.base

    monkeypatch.setattr(hub.cli.base, "build_host", fake_host)
    EVENTS_SEEN.clear()


def _october(workspace, extra: str = "", usage: str = OCTOBER) -> dict:
    _setup(workspace, extra=extra, usage=usage)
    _invoice(workspace, "--period", "2025-10", "--account", "acme", "--issue-date", "2025-11-03")
    return _show(workspace, "INV-2025-000001")


def _ok(result):
    assert result.exit_code == 0, result.output
    return result


def _note(workspace, *args: str) -> dict:
    return workspace.json("credit-note", "INV-2025-000001", "--reason", "goodwill", *args)


def _events(workspace, number: str) -> list[tuple[str, str]]:
    return [(d["exporter"], d["event"]) for d in workspace.json("deliveries", "--invoice", number)]


def _today_utc():
    return datetime.now(timezone.utc).date()


def test_a_partial_credit_note_lowers_the_open_balance_and_paying_the_rest_makes_the_invoice_paid_once(
        workspace, with_fake_exporter):
    _october(workspace, extra=CRM)
    note = _note(workspace, "--lines", "1", "--issue-date", "2025-11-05")
    assert (note["number"], note["total"], note["applied"], note["credit_balance"]) == (
        "CN-2025-000001", "1.19", "1.19", "0.00")
    invoice = _show(workspace, "INV-2025-000001")
    assert (invoice["status"], invoice["amount_due"], invoice["open_balance"]) == ("issued", "13.09", "11.90")
    assert invoice["credit_notes"] == [
        {"number": "CN-2025-000001", "issue_date": "2025-11-05", "total": "1.19", "applied": "1.19"}]
    # before the fix the invoice needed its whole 13.09 in payments: 11.90 now pays it
    too_much = workspace.hub("invoices", "pay", "INV-2025-000001", "--amount", "11.91", "--date", "2025-11-10")
    assert too_much.exit_code == 2
    assert "11.91 EUR is more than the 11.90 still due" in too_much.output
    paid = _ok(workspace.hub("invoices", "pay", "INV-2025-000001", "--amount", "11.90", "--date", "2025-11-10"))
    assert paid.stdout.strip() == "INV-2025-000001: paid (11.90 of 13.09 EUR paid, 1.19 credited; 0.00 EUR open)"
    invoice = _show(workspace, "INV-2025-000001")
    assert (invoice["status"], invoice["open_balance"]) == ("paid", "0.00")
    assert _events(workspace, "INV-2025-000001") == [("crm", "invoice.issued"), ("crm", "invoice.paid")]
    assert EVENTS_SEEN == [("paid", "INV-2025-000001")]
    # nothing is left to pay, nor to credit into a second invoice.paid
    assert workspace.hub("invoices", "pay", "INV-2025-000001", "--amount", "0.01", "--date", "2025-11-11") \
        .exit_code == 2
    last = _note(workspace, "--lines", "2", "--issue-date", "2025-11-20")
    assert (last["total"], last["applied"], last["credit_balance"]) == ("11.90", "0.00", "11.90")
    assert _show(workspace, "INV-2025-000001")["status"] == "void"
    assert _events(workspace, "INV-2025-000001") == [("crm", "invoice.issued"), ("crm", "invoice.paid")]


def test_a_credit_note_for_what_is_still_open_makes_the_invoice_paid_and_tells_once(workspace, with_fake_exporter):
    _october(workspace, extra=CRM)
    _ok(workspace.hub("invoices", "pay", "INV-2025-000001", "--amount", "11.90", "--date", "2025-11-10"))
    assert _show(workspace, "INV-2025-000001")["status"] == "partially_paid"
    note = _note(workspace, "--lines", "1", "--issue-date", "2025-11-12")
    assert (note["applied"], note["credit_balance"]) == ("1.19", "0.00")
    invoice = _show(workspace, "INV-2025-000001")
    assert (invoice["status"], invoice["open_balance"]) == ("paid", "0.00")
    assert _events(workspace, "INV-2025-000001") == [("crm", "invoice.issued"), ("crm", "invoice.paid")]
    assert EVENTS_SEEN == [("paid", "INV-2025-000001")]


def test_a_credit_note_beyond_the_open_balance_settles_it_and_leaves_the_rest_as_credit_balance(workspace):
    _october(workspace)
    _ok(workspace.hub("invoices", "pay", "INV-2025-000001", "--amount", "5.00", "--date", "2025-11-10"))
    # 8.09 open; line 2 credits 11.90: 8.09 settles the invoice, 3.81 is the account's
    out = _ok(workspace.hub("credit-note", "INV-2025-000001", "--lines", "2", "--reason", "vCPU was free",
                            "--issue-date", "2025-11-12"))
    assert out.stdout.strip() == ("credit note CN-2025-000001 for INV-2025-000001: 11.90 EUR "
                                  "(8.09 EUR settled, 3.81 EUR to the account's credit balance)")
    invoice = _show(workspace, "INV-2025-000001")
    assert (invoice["status"], invoice["open_balance"]) == ("paid", "0.00")
    note = _show(workspace, "CN-2025-000001")
    assert (note["applied"], note["credit_balance"]) == ("8.09", "3.81")
    grants = workspace.json("credits", "acme")["grants"]
    assert [(g["id"], g["kind"], g["amount"], g["balance"], g["expires"]) for g in grants] == [
        ("cn-CN-2025-000001", "prepaid", "3.81", "3.81", None)]


def test_crediting_a_paid_invoice_makes_a_credit_balance_that_pays_part_of_the_next_invoice(workspace):
    _october(workspace, usage=OCTOBER + NOVEMBER.removeprefix(HEADER))
    _ok(workspace.hub("invoices", "pay", "INV-2025-000001", "--amount", "13.09", "--date", "2025-11-10"))
    note = _note(workspace, "--lines", "1", "--issue-date", "2025-11-20")
    # before the fix this recorded nothing: the invoice was paid, so all 1.19 is the account's
    assert (note["applied"], note["credit_balance"]) == ("0.00", "1.19")
    assert _show(workspace, "INV-2025-000001")["status"] == "paid"
    credits = workspace.json("credits", "acme")
    assert [(g["id"], g["kind"], g["amount"], g["balance"], g["expires"], g["description"])
            for g in credits["grants"]] == [
        ("cn-CN-2025-000001", "prepaid", "1.19", "1.19", None, "credit balance of CN-2025-000001 (INV-2025-000001)")]
    shown = _ok(workspace.hub("credits", "acme")).stdout
    assert "cn-CN-2025-000001" in shown and "never" in shown
    _invoice(workspace, "--period", "2025-11", "--account", "acme", "--issue-date", "2025-12-02")
    november = _show(workspace, "INV-2025-000002")
    assert (november["total"], november["prepaid_applied"], november["amount_due"]) == ("9.52", "1.19", "8.33")
    assert november["credits"] == [{"grant": "cn-CN-2025-000001", "kind": "prepaid", "amount": "1.19",
                                    "remaining": "0.00",
                                    "description": "credit balance of CN-2025-000001 (INV-2025-000001)"}]
    credits = workspace.json("credits", "acme")
    assert [g["balance"] for g in credits["grants"]] == ["0.00"]
    assert [(e["grant"], e["entry"], e["amount"], e["invoice"]) for e in credits["history"]] == [
        ("cn-CN-2025-000001", "grant", "1.19", "CN-2025-000001"),
        ("cn-CN-2025-000001", "consumption", "1.19", "INV-2025-000002"),
    ]


def test_a_credit_note_issued_on_the_first_day_of_a_month_pays_that_months_closing(workspace):
    """A credit balance from a note issued on 1 December, before November is
    closed on the 2nd, pays November's invoice: it is the next one issued."""
    _october(workspace, usage=OCTOBER + NOVEMBER.removeprefix(HEADER))
    _ok(workspace.hub("invoices", "pay", "INV-2025-000001", "--amount", "13.09", "--date", "2025-11-10"))
    _note(workspace, "--lines", "1", "--issue-date", "2025-12-01")
    _invoice(workspace, "--period", "2025-11", "--account", "acme", "--issue-date", "2025-12-02")
    november = _show(workspace, "INV-2025-000002")
    assert (november["prepaid_applied"], november["amount_due"]) == ("1.19", "8.33")


def test_a_refund_pays_out_the_credit_balance_and_is_refused_beyond_it_before_the_note_or_in_the_future(workspace):
    _october(workspace)
    _ok(workspace.hub("invoices", "pay", "INV-2025-000001", "--amount", "13.09", "--date", "2025-11-10"))
    whole = _note(workspace, "--issue-date", "2025-11-20")
    assert (whole["amount_due"], whole["applied"], whole["credit_balance"]) == ("13.09", "0.00", "13.09")
    assert _show(workspace, "INV-2025-000001")["status"] == "void"

    def refund(amount: str, day: str, *more: str):
        return workspace.hub("refunds", "add", "CN-2025-000001", "--amount", amount, "--date", day, *more)

    beyond = refund("13.10", "2025-11-25")
    assert beyond.exit_code == 2
    assert "CN-2025-000001: 13.10 EUR is more than the 13.09 EUR left of its credit balance" in beyond.output
    early = refund("1.00", "2025-11-19")
    assert early.exit_code == 2 and "--date 2025-11-19 is before CN-2025-000001 was issued (2025-11-20)" in early.output
    tomorrow = _today_utc() + timedelta(days=1)
    future = refund("1.00", tomorrow.isoformat())
    assert future.exit_code == 2
    assert f"--date {tomorrow} is in the future: today is {_today_utc()} (UTC)" in future.output
    cents = refund("0.001", "2025-11-25")
    assert cents.exit_code == 2
    assert workspace.json("refunds", "list") == []

    done = _ok(refund("10.00", "2025-11-25", "--reference", "SEPA-R1"))
    assert done.stdout.strip() == ("refund 1: 10.00 EUR of CN-2025-000001's credit balance to acme on 2025-11-25; "
                                   "3.09 EUR left")
    _ok(refund("3.09", "2025-11-26"))
    assert workspace.json("refunds", "list", "--account", "acme") == [
        {"id": 1, "account": "acme", "credit_note": "CN-2025-000001", "currency": "EUR", "amount": "10.00",
         "date": "2025-11-25", "reference": "SEPA-R1", "balance": "0.00"},
        {"id": 2, "account": "acme", "credit_note": "CN-2025-000001", "currency": "EUR", "amount": "3.09",
         "date": "2025-11-26", "reference": None, "balance": "0.00"},
    ]
    empty = refund("0.01", "2025-11-27")
    assert empty.exit_code == 2 and "more than the 0.00 EUR left" in empty.output
    credits = workspace.json("credits", "acme")
    assert [(g["id"], g["balance"]) for g in credits["grants"]] == [("cn-CN-2025-000001", "0.00")]
    assert [(e["entry"], e["amount"]) for e in credits["history"]] == [
        ("grant", "13.09"), ("refund", "10.00"), ("refund", "3.09")]
    assert _show(workspace, "INV-2025-000001")["refunds"] == [
        {"credit_note": "CN-2025-000001", "amount": "10.00", "date": "2025-11-25", "reference": "SEPA-R1"},
        {"credit_note": "CN-2025-000001", "amount": "3.09", "date": "2025-11-26", "reference": None},
    ]


def test_a_refund_of_a_note_that_left_no_credit_balance_is_refused(workspace):
    _october(workspace)
    _note(workspace, "--lines", "1", "--issue-date", "2025-11-05")
    refused = workspace.hub("refunds", "add", "CN-2025-000001", "--amount", "1.19", "--date", "2025-11-06")
    assert refused.exit_code == 2
    assert "CN-2025-000001 left no credit balance: it settled its invoice's open balance" in refused.output
    unknown = workspace.hub("refunds", "add", "CN-2025-000099", "--amount", "1.00", "--date", "2025-11-06")
    assert unknown.exit_code == 2 and "no credit note numbered 'CN-2025-000099'" in unknown.output


def test_invoices_show_lists_the_credit_notes_payments_refunds_and_open_balance(workspace):
    _october(workspace)
    _ok(workspace.hub("invoices", "pay", "INV-2025-000001", "--amount", "5.00", "--date", "2025-11-10",
                      "--reference", "SEPA-42"))
    _note(workspace, "--lines", "2", "--issue-date", "2025-11-12")
    _ok(workspace.hub("refunds", "add", "CN-2025-000001", "--amount", "3.81", "--date", "2025-11-13"))
    shown = _ok(workspace.hub("invoices", "show", "INV-2025-000001")).stdout.splitlines()
    tail = [line.strip() for line in shown[-4:]]
    assert tail == [
        "paid 2025-11-10: 5.00 EUR SEPA-42",
        "credit note 2025-11-12: 8.09 EUR settled by CN-2025-000001 (11.90 EUR)",
        "refunded 2025-11-13: 3.81 EUR of CN-2025-000001's credit balance",
        "open balance: 0.00 EUR",
    ]
    note = [line.strip() for line in _ok(workspace.hub("invoices", "show", "CN-2025-000001")).stdout.splitlines()]
    assert "credited: 11.90 EUR" in note and "amount due: 11.90 EUR" not in note
    assert note[-2:] == ["settled INV-2025-000001: 8.09 EUR", "credit balance: 3.81 EUR"]
    listed = workspace.json("invoices", "list", "--account", "acme")
    assert [(d["number"], d["status"], d.get("open_balance")) for d in listed] == [
        ("INV-2025-000001", "paid", "0.00"), ("CN-2025-000001", "issued", None)]


def test_a_refund_waits_for_a_closing_that_holds_the_credit_balance_and_then_sees_what_it_consumed(workspace):
    """A closing reads an account's credit balances in its transaction and
    consumes them when it issues; a refund of the same balance at the same
    time must wait for it (PostgreSQL: the grant rows are locked; SQLite: one
    writer), then refuse what is no longer there, never pay it out twice."""
    import threading
    from datetime import date

    from hub.closing.errors import InvoicingError
    from hub.closing.ledger import account_grants, record_entries
    from hub.closing.refunds import add_refund
    from hub.config import load_config
    from hub.host import build_host
    from hub.store.db import open_store

    _october(workspace)
    _ok(workspace.hub("invoices", "pay", "INV-2025-000001", "--amount", "13.09", "--date", "2025-11-10"))
    _note(workspace, "--issue-date", "2025-11-20")
    config = load_config(workspace.config_path, build_host())
    engine = open_store(config.hub.database, config.base_dir)
    outcome: list[object] = []

    def refund() -> None:
        try:
            outcome.append(add_refund(engine, config, "CN-2025-000001", Decimal("13.09"), date(2025, 11, 25)))
        except InvoicingError as exc:
            outcome.append(exc)

    try:
        with engine.begin() as conn:
            held = {g.id: g.balance for g in account_grants(conn, config, "acme")}
            assert held == {"cn-CN-2025-000001": Decimal("13.09")}
            racer = threading.Thread(target=refund)
            racer.start()
            racer.join(1.0)
            assert racer.is_alive(), outcome  # it waits for this transaction
            invoice_id = conn.execute(text("SELECT id FROM invoices WHERE number = 'INV-2025-000001'")).scalar()
            record_entries(conn, "consumption", [("cn-CN-2025-000001", "13.09")],
                           at=datetime.now(timezone.utc), invoice_id=invoice_id, dedupe="invoice:race")
        racer.join(30)
    finally:
        engine.dispose()
    assert [str(o) for o in outcome] == [
        "CN-2025-000001: 13.09 EUR is more than the 0.00 EUR left of its credit balance"]
    assert workspace.json("refunds", "list") == []


FIXED_DISCOUNT = """
[[discounts]]
account = "acme"
amount = "0.50"
valid_from = "2025-10-01"
"""

PROMOTIONAL = """
[[credits]]
account = "acme"
amount = "6.00"
kind = "promotional"
"""


def _figures(doc: dict) -> tuple:
    return (doc["subtotal"], doc["discount_total"], doc["promotional_credit"], doc["taxable_amount"],
            doc["tax"]["amount"], doc["total"], doc["amount_due"])


def test_credit_notes_for_every_line_one_by_one_add_up_to_the_invoice_with_its_fixed_discount(workspace):
    """11.00 - 0.50 fixed = 10.50, 19 % = 1.995 -> 2.00: total 12.50. Line 1
    is 1.19; the note for the last line credits what is left: 10.00 - 0.50
    = 9.50 taxable, 2.00 - 0.19 = 1.81 tax, 11.31 (line 2 alone at 19 %
    would be 11.90: the two notes would credit 13.09 of a 12.50 invoice)."""
    invoice = _october(workspace, extra=FIXED_DISCOUNT)
    assert _figures(invoice) == ("11.00", "0.50", "0.00", "10.50", "2.00", "12.50", "12.50")
    _ok(workspace.hub("invoices", "pay", "INV-2025-000001", "--amount", "12.50", "--date", "2025-11-10"))
    first = _note(workspace, "--lines", "1", "--issue-date", "2025-11-12")
    assert _figures(first) == ("1.00", "0.00", "0.00", "1.00", "0.19", "1.19", "1.19")
    last = _note(workspace, "--lines", "2", "--issue-date", "2025-11-13")
    assert _figures(last) == ("10.00", "0.50", "0.00", "9.50", "1.81", "11.31", "11.31")
    assert [(a["line"], a["amount"]) for a in last["allowances"]] == [(None, "0.50")]
    _show(workspace, last["number"])  # the schema's figures add up
    assert _show(workspace, "INV-2025-000001")["status"] == "void"
    # paid 12.50, credited 12.50: the account holds 12.50, not a cent more
    assert [(g["id"], g["balance"]) for g in workspace.json("credits", "acme")["grants"]] == [
        ("cn-CN-2025-000001", "1.19"), ("cn-CN-2025-000002", "11.31")]
    assert workspace.json("statement", "acme", "--as-of", "2025-11-30")["totals"][0]["balance"] == "-12.50"


def test_a_line_worth_more_than_is_left_to_credit_of_an_invoice_with_promotional_credit_is_refused(workspace):
    """11.00 - 6.00 promotional = 5.00, 19 % = 0.95: total 5.95. Line 2
    (11.90 at 19 %) is more than the invoice; line 1 (1.19) and then the
    last line, for what is left (4.76), add up to 5.95."""
    invoice = _october(workspace, extra=PROMOTIONAL)
    assert _figures(invoice) == ("11.00", "0.00", "6.00", "5.00", "0.95", "5.95", "5.95")
    refused = workspace.hub("credit-note", "INV-2025-000001", "--lines", "2", "--reason", "x",
                            "--issue-date", "2025-11-12")
    assert refused.exit_code == 2
    assert ("INV-2025-000001: line 2 would credit 11.90 EUR, more than the 5.95 EUR left to credit of the invoice "
            "(its fixed discounts or promotional credit are not any one line's): credit the remaining lines "
            "together, or the whole invoice") in " ".join(refused.stderr.split())
    assert _figures(_note(workspace, "--lines", "1", "--issue-date", "2025-11-12")) == (
        "1.00", "0.00", "0.00", "1.00", "0.19", "1.19", "1.19")
    last = _note(workspace, "--lines", "2", "--issue-date", "2025-11-12")
    assert _figures(last) == ("10.00", "0.00", "6.00", "4.00", "0.76", "4.76", "4.76")
    _show(workspace, last["number"])
    invoice = _show(workspace, "INV-2025-000001")
    assert (invoice["status"], invoice["open_balance"]) == ("void", "0.00")
    assert [(n["total"], n["applied"]) for n in invoice["credit_notes"]] == [("1.19", "1.19"), ("4.76", "4.76")]


def test_the_credit_balance_of_a_paid_invoice_credited_in_full_pays_its_reissue(workspace):
    """Voiding a paid invoice to issue it again: the 13.09 paid is the
    account's credit balance, and the reissue of the same period takes it
    (the credit balance counts from the credited period's start)."""
    _october(workspace)
    _ok(workspace.hub("invoices", "pay", "INV-2025-000001", "--amount", "13.09", "--date", "2025-11-10"))
    whole = _note(workspace, "--issue-date", "2025-11-12")
    assert (whole["applied"], whole["credit_balance"]) == ("0.00", "13.09")
    reissued = workspace.json("invoice", "--period", "2025-10", "--account", "acme", "--reissue",
                              "--issue-date", "2025-11-12")
    assert [(r["outcome"], r["number"]) for r in reissued] == [("issued", "INV-2025-000002")]
    again = _show(workspace, "INV-2025-000002")
    assert (again["reissue_of"], again["total"], again["prepaid_applied"], again["amount_due"],
            again["open_balance"]) == ("INV-2025-000001", "13.09", "13.09", "0.00", "0.00")
    st = workspace.json("statement", "acme", "--as-of", "2025-11-30")
    assert (st["open_invoices"], st["totals"][0]["credit_balance"], st["totals"][0]["balance"]) == (
        [], "0.00", "0.00")
