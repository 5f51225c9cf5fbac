"""Invoices: closing a period, tax categories, discounts, credits,
numbering, late usage, parents, manual charges, payments and credit notes.

Every test runs on SQLite and PostgreSQL, pulls its own CSV with ``hub
pull`` and reads ``hub invoices show NUMBER --json``. Figures are worked out
by hand in the comments (docs/billing-rules.md).
"""

from __future__ import annotations

import json
import threading
from datetime import date
from pathlib import Path

import jsonschema
import pytest

import hub.cli.invoices  # noqa: F401 - registers the commands for the in-process runner
from hub.config import load_config
from hub.host import build_host
from hub import closing
from hub.closing import close as closing_close
from hub.periods import parse_period
from hub.store.db import open_store
from tests.conftest import HEADER

BASE = """
[seller]
name = "Hub Cloud GmbH"
country = "DE"
vat_id = "DE136695976"

[tax.rates]
DE = "19"
FR = "20"
NL = "21"

[invoicing]
payment_terms_days = 14

[[meters]]
name = "compute.vcpu"
aggregation = "time_weighted"
unit = "vCPU"

[[meters]]
name = "network.egress"
aggregation = "sum"
unit = "GB"

[[products]]
name = "vcpu"
description = "Virtual CPU"
meter = "compute.vcpu"
per = "hour"
price = { model = "per_unit", unit_price = "0.05" }

[[products]]
name = "egress"
description = "Internet egress"
meter = "network.egress"
price = { model = "per_unit", unit_price = "0.08" }

[[sources]]
name = "files"
type = "csv"
path = "usage/*.csv"
"""

ACCOUNTS = """
[[accounts]]
id = "acme"
name = "ACME GmbH"
country = "DE"

[[accounts]]
id = "globex"
name = "Globex SARL"
country = "FR"
vat_id = "FR40303265045"
timezone = "Europe/Paris"

[[accounts]]
id = "initech"
name = "Initech Inc."
country = "US"

[[accounts]]
id = "umbrella"
name = "Umbrella BV"
country = "NL"

[[accounts]]
id = "charity"
name = "Charity e.V."
country = "DE"
tax_exempt = true
exemption_reason = "Exempt under section 4 no. 22 UStG"
"""

# October 2025: acme 2 vCPU x 100 h = 200 vCPU-h (10.00) and 12.5 GB (1.00);
# globex 24 vCPU-h (1.20); initech 40 vCPU-h (2.00); umbrella 10 vCPU-h
# (0.50); charity 20 vCPU-h (1.00).
OCTOBER = HEADER + "".join([
    "a1,acme,vm-1,compute.vcpu,2025-10-10T00:00:00Z,2025-10-14T04:00:00Z,2\n",
    "a2,acme,vm-1,network.egress,2025-10-12T00:00:00Z,2025-10-12T00:00:00Z,12.5\n",
    "g1,globex,vm-2,compute.vcpu,2025-10-10T00:00:00Z,2025-10-11T00:00:00Z,1\n",
    "i1,initech,vm-3,compute.vcpu,2025-10-10T00:00:00Z,2025-10-10T10:00:00Z,4\n",
    "u1,umbrella,vm-4,compute.vcpu,2025-10-10T00:00:00Z,2025-10-10T10:00:00Z,1\n",
    "c1,charity,vm-5,compute.vcpu,2025-10-10T00:00:00Z,2025-10-10T20:00:00Z,1\n",
])

SCHEMA = json.loads((Path(__file__).parent.parent / "schemas" / "invoice.schema.json").read_text())


def _setup(workspace, accounts: str = ACCOUNTS, extra: str = "", usage: str = OCTOBER) -> None:
    workspace.config(BASE + accounts + extra)
    workspace.write("usage/2025-10.csv", usage, dedent=False)
    pulled = workspace.hub("pull")
    assert pulled.exit_code == 0, pulled.output


def _invoice(workspace, *args: str) -> list[dict]:
    return workspace.json("invoice", *args)


def _show(workspace, number: str) -> dict:
    doc = workspace.json("invoices", "show", number)
    jsonschema.validate(doc, SCHEMA, format_checker=jsonschema.FormatChecker())
    return doc


def _figures(doc: dict) -> dict:
    keys = ("subtotal", "discount_total", "promotional_credit", "taxable_amount", "total", "prepaid_applied",
            "amount_due")
    return {k: doc[k] for k in keys} | {"tax": doc["tax"]}


def test_closing_a_month_issues_one_numbered_invoice_per_account_with_its_tax_category(workspace):
    _setup(workspace)
    results = _invoice(workspace, "--period", "2025-10", "--issue-date", "2025-11-03")
    assert [(r["account"], r["outcome"], r["number"], r["total"]) for r in results] == [
        ("acme", "issued", "INV-2025-000001", "13.09"),
        ("globex", "issued", "INV-2025-000002", "1.20"),
        ("initech", "issued", "INV-2025-000003", "2.00"),
        ("umbrella", "issued", "INV-2025-000004", "0.61"),
        ("charity", "issued", "INV-2025-000005", "1.00"),
    ]
    acme = _show(workspace, "INV-2025-000001")
    assert (acme["status"], acme["issue_date"], acme["due_date"]) == ("issued", "2025-11-03", "2025-11-17")
    assert (acme["period_start"], acme["period_end"]) == ("2025-10-01T00:00:00+00:00", "2025-11-01T00:00:00+00:00")
    assert [(ln["product"], ln["description"], ln["quantity"], ln["unit_price"], ln["amount"]) for ln in acme["lines"]] == [
        ("egress", "Internet egress", "12.5", "0.08", "1.00"),
        ("vcpu", "Virtual CPU", "200", "0.05", "10.00"),
    ]
    assert _figures(acme) == {
        "subtotal": "11.00", "discount_total": "0.00", "promotional_credit": "0.00", "taxable_amount": "11.00",
        "total": "13.09", "prepaid_applied": "0.00", "amount_due": "13.09",
        "tax": {"category": "S", "rate": "19", "amount": "2.09", "exemption_reason": None, "exemption_code": None},
    }
    # Another EU country with a valid VAT id: reverse charge.
    assert _show(workspace, "INV-2025-000002")["tax"] == {"category": "AE", "rate": "0", "amount": "0.00",
                                                           "exemption_reason": "Reverse charge", "exemption_code": "VATEX-EU-AE"}
    # globex's month is Paris's: 2025-09-30T22:00Z to 2025-10-31T23:00Z.
    assert _show(workspace, "INV-2025-000002")["period_start"] == "2025-09-30T22:00:00+00:00"
    assert _show(workspace, "INV-2025-000003")["tax"]["category"] == "G"
    # Another EU country without a VAT id: its own rate; 0.50 x 21% = 0.105 -> 0.11 (half up).
    umbrella = _show(workspace, "INV-2025-000004")
    assert (umbrella["tax"]["category"], umbrella["tax"]["rate"], umbrella["tax"]["amount"]) == ("S", "21", "0.11")
    assert _show(workspace, "INV-2025-000005")["tax"] == {
        "category": "E", "rate": "0", "amount": "0.00", "exemption_reason": "Exempt under section 4 no. 22 UStG",
        "exemption_code": None}


def test_closing_a_period_again_issues_nothing_new(workspace):
    _setup(workspace)
    _invoice(workspace, "--period", "2025-10", "--issue-date", "2025-11-03")
    again = _invoice(workspace, "--period", "2025-10")
    assert [(r["outcome"], r["number"]) for r in again] == [
        ("already_issued", f"INV-2025-00000{i}") for i in range(1, 6)]
    assert len(workspace.json("invoices", "list")) == 5


def test_a_week_that_overlaps_a_month_closed_under_another_schedule_is_not_invoiced_again(workspace):
    _setup(workspace)
    _invoice(workspace, "--period", "2025-10", "--account", "acme", "--issue-date", "2025-11-03")
    workspace.config(BASE + ACCOUNTS.replace('id = "acme"\n', 'id = "acme"\nschedule = "weekly"\n'))
    # 2025-W44 runs from Monday 27 October to 2 November: five days of it
    # were invoiced with October.
    results = _invoice(workspace, "--period", "2025-W44", "--account", "acme")
    assert [(r["outcome"], r["number"], r["note"]) for r in results] == [
        ("overlaps", None, "2025-W44 overlaps 2025-10, closed under the monthly schedule: its days are invoiced already")]
    assert [d["number"] for d in workspace.json("invoices", "list")] == ["INV-2025-000001"]


def test_discounts_and_credits_follow_the_rules_and_carry_over_to_the_next_invoice(workspace):
    extra = """
    [[discounts]]
    account = "acme"
    product = "vcpu"
    percent = "10"
    valid_from = "2025-01-01"
    valid_until = "2025-12-31"

    [[discounts]]
    account = "acme"
    amount = "0.50"
    valid_from = "2025-10-01"

    [[credits]]
    account = "acme"
    amount = "6.00"
    kind = "promotional"
    expires = "2026-06-30"

    [[credits]]
    account = "acme"
    amount = "10.00"
    kind = "prepaid"
    """
    import textwrap
    _setup(workspace, extra=textwrap.dedent(extra))
    workspace.write("usage/2025-11.csv", HEADER + "n1,acme,vm-1,network.egress,2025-11-05T00:00:00Z,"
                                                  "2025-11-05T00:00:00Z,100\n", dedent=False)
    assert workspace.hub("pull").exit_code == 0
    _invoice(workspace, "--period", "2025-10", "--account", "acme", "--issue-date", "2025-11-03")
    october = _show(workspace, "INV-2025-000001")
    # 11.00 - 10% of the vcpu line (1.00) - 0.50 = 9.50; promotional 6.00 -> 3.50
    # taxable; 19% = 0.665 -> 0.67; total 4.17, all paid by the prepaid grant.
    assert _figures(october) == {
        "subtotal": "11.00", "discount_total": "1.50", "promotional_credit": "6.00", "taxable_amount": "3.50",
        "total": "4.17", "prepaid_applied": "4.17", "amount_due": "0.00",
        "tax": {"category": "S", "rate": "19", "amount": "0.67", "exemption_reason": None, "exemption_code": None},
    }
    assert october["status"] == "issued"  # an invoice whose amount due is zero is still issued
    _invoice(workspace, "--period", "2025-11", "--account", "acme", "--issue-date", "2025-12-02")
    november = _show(workspace, "INV-2025-000002")
    # 100 GB = 8.00; the percentage is for vcpu only; 0.50 fixed -> 7.50; the
    # promotional grant is spent: tax 1.425 -> 1.43; total 8.93; prepaid left 5.83.
    assert _figures(november) == {
        "subtotal": "8.00", "discount_total": "0.50", "promotional_credit": "0.00", "taxable_amount": "7.50",
        "total": "8.93", "prepaid_applied": "5.83", "amount_due": "3.10",
        "tax": {"category": "S", "rate": "19", "amount": "1.43", "exemption_reason": None, "exemption_code": None},
    }
    credits = workspace.json("credits", "acme")
    assert sorted((g["kind"], g["amount"], g["balance"]) for g in credits["grants"]) == [
        ("prepaid", "10.00", "0.00"), ("promotional", "6.00", "0.00")]
    assert [(e["kind"], e["entry"], e["amount"], e["invoice"]) for e in credits["history"]
            if e["entry"] != "grant"] == [
        ("promotional", "consumption", "6.00", "INV-2025-000001"),
        ("prepaid", "consumption", "4.17", "INV-2025-000001"),
        ("prepaid", "consumption", "5.83", "INV-2025-000002"),
    ]


def test_a_grant_expiring_on_the_last_day_of_the_period_does_not_pay_it_one_expiring_the_day_after_does(workspace):
    """docs/billing-rules.md: a grant pays when it "expires after" the period's end.
    ``expires = 2025-10-31`` lasts to the midnight that ends October: not
    after it."""
    extra = """
[[credits]]
account = "acme"
amount = "5.00"
kind = "prepaid"
expires = "2025-10-31"

[[credits]]
account = "acme"
amount = "3.00"
kind = "prepaid"
expires = "2025-11-01"
"""
    _setup(workspace, extra=extra)
    _invoice(workspace, "--period", "2025-10", "--account", "acme", "--issue-date", "2025-11-03")
    october = _show(workspace, "INV-2025-000001")
    # 11.00 + 19 % (2.09) = 13.09; only the grant expiring on 1 November pays: 3.00
    assert (october["total"], october["prepaid_applied"], october["amount_due"]) == ("13.09", "3.00", "10.09")
    credits = workspace.json("credits", "acme")
    assert [(e["amount"], e["entry"], e["invoice"]) for e in credits["history"] if e["entry"] == "consumption"] == [
        ("3.00", "consumption", "INV-2025-000001")]


def test_an_issue_date_before_the_period_ends_is_refused_and_numbers_follow_the_issue_order(workspace):
    """An invoice dated before its period ended is refused, nothing
    numbered; one dated by hand before the latest invoice (an old period
    issued late) takes the next number, as issuing orders numbers; a
    credit note may not be dated before the invoice it credits."""
    _setup(workspace)
    early = workspace.hub("invoice", "--period", "2025-10", "--account", "acme", "--issue-date", "2025-10-31")
    assert early.exit_code == 2
    assert "issue date 2025-10-31 is before the invoiced period ends (2025-11-01 in the hub's time zone, UTC)" \
        in early.output
    assert _invoice(workspace, "--period", "2025-10", "--account", "acme", "--issue-date", "2025-11-03")[0][
        "number"] == "INV-2025-000001"
    assert [(r["account"], r["number"]) for r in _invoice(
        workspace, "--period", "2025-10", "--account", "globex", "--issue-date", "2025-11-02")] == [
        ("globex", "INV-2025-000002")]
    refused = workspace.hub("credit-note", "INV-2025-000001", "--reason", "duplicate", "--issue-date", "2025-11-02")
    assert refused.exit_code == 2
    assert "issue date 2025-11-02 is before the credited invoice's own (2025-11-03)" in refused.output
    assert workspace.json("credit-note", "INV-2025-000001", "--reason", "duplicate",
                          "--issue-date", "2025-11-03")["number"] == "CN-2025-000001"


def test_invoicing_a_period_no_account_is_invoiced_by_says_which_schedules_there_are(workspace):
    _setup(workspace)
    result = workspace.hub("invoice", "--period", "2025-10-10", "--issue-date", "2025-10-12")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["2025-10-10: 0 accounts", "no account is invoiced daily: 5 monthly (schedule)"]


def test_usage_that_arrives_after_its_period_was_issued_is_an_adjustment_line_on_the_next_invoice(workspace):
    _setup(workspace)
    _invoice(workspace, "--period", "2025-10", "--account", "acme", "--issue-date", "2025-11-03")
    workspace.write("usage/late.csv", HEADER + "".join([
        "late1,acme,vm-1,network.egress,2025-10-20T00:00:00Z,2025-10-20T00:00:00Z,25\n",
        "n1,acme,vm-1,network.egress,2025-11-05T00:00:00Z,2025-11-05T00:00:00Z,10\n",
    ]), dedent=False)
    assert workspace.hub("pull").exit_code == 0
    assert _invoice(workspace, "--period", "2025-10", "--account", "acme")[0]["outcome"] == "already_issued"
    _invoice(workspace, "--period", "2025-11", "--account", "acme", "--issue-date", "2025-12-02")
    november = _show(workspace, "INV-2025-000002")
    assert [(ln["product"], ln["quantity"], ln["amount"], ln["adjustment_for"], ln["period_start"][:10])
            for ln in november["lines"]] == [
        ("egress", "10", "0.80", None, "2025-11-01"),
        ("egress", "25", "2.00", "2025-10", "2025-10-01"),
    ]
    assert november["lines"][1]["description"] == "Internet egress (adjustment for 2025-10)"
    # 2.80 x 19% = 0.532 -> 0.53
    assert (november["subtotal"], november["tax"]["amount"], november["total"]) == ("2.80", "0.53", "3.33")
    # December: nothing new for October, so no second adjustment.
    workspace.write("usage/dec.csv", HEADER + "d1,acme,vm-1,network.egress,2025-12-05T00:00:00Z,"
                                              "2025-12-05T00:00:00Z,1\n", dedent=False)
    assert workspace.hub("pull").exit_code == 0
    _invoice(workspace, "--period", "2025-12", "--account", "acme", "--issue-date", "2026-01-02")
    december = _show(workspace, "INV-2026-000001")  # a new year, a new series
    assert [(ln["quantity"], ln["adjustment_for"]) for ln in december["lines"]] == [("1", None)]


def test_usage_for_a_period_closed_without_charges_is_billed_later_as_an_adjustment(workspace):
    _setup(workspace, usage=HEADER)
    assert [r["outcome"] for r in _invoice(workspace, "--period", "2025-10", "--account", "acme")] == ["no_charges"]
    assert workspace.json("invoices", "list") == []
    workspace.write("usage/late.csv", HEADER + "".join([
        "late1,acme,vm-1,network.egress,2025-10-20T00:00:00Z,2025-10-20T00:00:00Z,25\n",
    ]), dedent=False)
    assert workspace.hub("pull").exit_code == 0
    _invoice(workspace, "--period", "2025-11", "--account", "acme", "--issue-date", "2025-12-02")
    november = _show(workspace, "INV-2025-000001")
    assert [(ln["quantity"], ln["amount"], ln["adjustment_for"]) for ln in november["lines"]] == [("25", "2.00", "2025-10")]


def test_a_parent_account_receives_one_invoice_with_its_childrens_lines_labelled(workspace):
    accounts = """
    [[accounts]]
    id = "enterprise"
    name = "Enterprise AG"
    country = "DE"

    [[accounts]]
    id = "proj-a"
    name = "Project A"
    parent = "enterprise"

    [[accounts]]
    id = "proj-b"
    name = "Project B"
    parent = "enterprise"
    """
    import textwrap
    usage = HEADER + ("p1,proj-a,vm-1,compute.vcpu,2025-10-10T00:00:00Z,2025-10-14T04:00:00Z,1\n"
                      "p2,proj-b,vm-2,network.egress,2025-10-10T00:00:00Z,2025-10-10T00:00:00Z,10\n")
    _setup(workspace, accounts=textwrap.dedent(accounts), usage=usage)
    results = _invoice(workspace, "--period", "2025-10", "--issue-date", "2025-11-03")
    assert [(r["account"], r["number"]) for r in results] == [("enterprise", "INV-2025-000001")]
    doc = _show(workspace, "INV-2025-000001")
    assert [(ln["account"], ln["product"], ln["amount"]) for ln in doc["lines"]] == [
        ("proj-a", "vcpu", "5.00"), ("proj-b", "egress", "0.80")]
    # 5.80 x 19% = 1.102 -> 1.10
    assert (doc["account"], doc["subtotal"], doc["tax"]["amount"], doc["total"]) == ("enterprise", "5.80", "1.10", "6.90")
    assert workspace.json("invoices", "list", "--account", "proj-a") == []
    assert doc["members"] == {"proj-a": "Project A", "proj-b": "Project B"}


def test_an_issued_invoice_keeps_the_seller_and_buyer_it_was_issued_to(workspace):
    _setup(workspace)
    _invoice(workspace, "--period", "2025-10", "--account", "globex", "--issue-date", "2025-11-03")
    workspace.config(BASE.replace("Hub Cloud GmbH", "Hub Cloud SE") + ACCOUNTS.replace("Globex SARL", "Globex SA"))
    doc = _show(workspace, "INV-2025-000001")
    assert doc["seller"] == {"name": "Hub Cloud GmbH", "country": "DE", "vat_id": "DE136695976", "email": None,
                             "address": {}, "peppol_id": None}
    assert doc["buyer"] == {"id": "globex", "name": "Globex SARL", "country": "FR", "vat_id": "FR40303265045",
                            "email": None, "address": {}, "peppol_id": None, "locale": "en",
                            "timezone": "Europe/Paris"}
    assert doc["members"] == {}
    assert doc["products"] == {"vcpu": {"meter": "compute.vcpu", "meter_unit": "vCPU", "aggregation": "time_weighted"}}
    note = workspace.json("credit-note", "INV-2025-000001", "--reason", "duplicate")
    assert (note["seller"]["name"], note["buyer"]["name"]) == ("Hub Cloud GmbH", "Globex SARL")


def test_a_manual_charge_lands_on_the_next_invoice_once_and_credits_can_pay_it(workspace):
    extra = '\n[[credits]]\naccount = "acme"\namount = "200.00"\nkind = "prepaid"\n'
    _setup(workspace, extra=extra)
    added = workspace.hub("charge", "add", "acme", "--amount", "150.00", "--description", "Setup fee")
    assert added.exit_code == 0, added.output
    _invoice(workspace, "--period", "2025-10", "--account", "acme", "--issue-date", "2025-11-03")
    doc = _show(workspace, "INV-2025-000001")
    manual = doc["lines"][-1]
    assert (manual["product"], manual["description"], manual["quantity"], manual["unit_price"], manual["amount"]) == (
        "manual", "Setup fee", "1", "150.00", "150.00")
    # 161.00 x 19% = 30.59 -> total 191.59, all prepaid.
    assert (doc["subtotal"], doc["total"], doc["prepaid_applied"], doc["amount_due"]) == (
        "161.00", "191.59", "191.59", "0.00")
    workspace.write("usage/nov.csv", HEADER + "n1,acme,vm-1,network.egress,2025-11-05T00:00:00Z,"
                                              "2025-11-05T00:00:00Z,10\n", dedent=False)
    assert workspace.hub("pull").exit_code == 0
    _invoice(workspace, "--period", "2025-11", "--account", "acme", "--issue-date", "2025-12-02")
    assert [ln["product"] for ln in _show(workspace, "INV-2025-000002")["lines"]] == ["egress"]


def test_payments_move_an_invoice_to_partially_paid_then_paid_and_never_beyond(workspace):
    _setup(workspace)
    _invoice(workspace, "--period", "2025-10", "--account", "acme", "--issue-date", "2025-11-03")
    first = workspace.hub("invoices", "pay", "INV-2025-000001", "--amount", "5.00", "--date", "2025-11-10")
    assert first.exit_code == 0, first.output
    assert _show(workspace, "INV-2025-000001")["status"] == "partially_paid"
    too_much = workspace.hub("invoices", "pay", "INV-2025-000001", "--amount", "8.10", "--date", "2025-11-11")
    assert too_much.exit_code == 2
    assert "8.10 EUR is more than the 8.09 still due" in too_much.output
    assert workspace.hub("invoices", "pay", "INV-2025-000001", "--amount", "8.09", "--date", "2025-11-12",
                         "--reference", "SEPA-42").exit_code == 0
    doc = _show(workspace, "INV-2025-000001")
    assert doc["status"] == "paid"
    assert doc["payments"] == [{"amount": "5.00", "date": "2025-11-10", "reference": None},
                               {"amount": "8.09", "date": "2025-11-12", "reference": "SEPA-42"}]
    assert [d["number"] for d in workspace.json("invoices", "list", "--status", "paid")] == ["INV-2025-000001"]
    cents = workspace.hub("invoices", "pay", "INV-2025-000001", "--amount", "0.001", "--date", "2025-11-12")
    assert cents.exit_code == 2


def test_a_credit_note_for_some_lines_credits_them_and_one_for_the_rest_voids_the_invoice(workspace):
    _setup(workspace)
    _invoice(workspace, "--period", "2025-10", "--account", "acme", "--issue-date", "2025-11-03")
    partial = workspace.json("credit-note", "INV-2025-000001", "--lines", "1", "--reason", "egress was free")
    year = date.today().year
    assert (partial["number"], partial["refers_to"], partial["kind"]) == (f"CN-{year}-000001", "INV-2025-000001",
                                                                          "credit_note")
    # line 1: egress 1.00, tax 0.19
    assert (partial["subtotal"], partial["tax"]["amount"], partial["total"]) == ("1.00", "0.19", "1.19")
    assert _show(workspace, "INV-2025-000001")["status"] == "issued"
    again = workspace.hub("credit-note", "INV-2025-000001", "--lines", "1", "--reason", "twice")
    assert again.exit_code == 2 and "line 1 was credited already" in again.output
    rest = workspace.json("credit-note", "INV-2025-000001", "--lines", "2", "--reason", "goodwill")
    assert (rest["number"], rest["total"]) == (f"CN-{year}-000002", "11.90")
    _show(workspace, rest["number"])


def test_a_credit_note_for_a_whole_invoice_voids_it_and_gives_back_its_credits(workspace):
    extra = '\n[[credits]]\naccount = "acme"\namount = "5.00"\nkind = "prepaid"\n'
    _setup(workspace, extra=extra)
    _invoice(workspace, "--period", "2025-10", "--account", "acme", "--issue-date", "2025-11-03")
    note = workspace.json("credit-note", "INV-2025-000001", "--reason", "wrong customer")
    assert (note["total"], note["prepaid_applied"], note["amount_due"]) == ("13.09", "5.00", "8.09")
    assert _show(workspace, "INV-2025-000001")["status"] == "void"
    assert [g["balance"] for g in workspace.json("credits", "acme")["grants"]] == ["5.00"]


def test_drafts_have_no_number_are_rebuilt_and_issuing_numbers_them(workspace):
    _setup(workspace)
    drafts = _invoice(workspace, "--period", "2025-10", "--account", "acme", "--draft")
    assert [(r["outcome"], r["number"], r["total"]) for r in drafts] == [("draft", None, "13.09")]
    workspace.append("usage/2025-10.csv", "a3,acme,vm-1,network.egress,2025-10-13T00:00:00Z,2025-10-13T00:00:00Z,12.5\n")
    assert workspace.hub("pull").exit_code == 0
    rebuilt = _invoice(workspace, "--period", "2025-10", "--account", "acme", "--draft")
    assert rebuilt[0]["total"] == "14.28"  # 12.00 x 1.19
    listed = workspace.json("invoices", "list")
    assert [(d["number"], d["status"]) for d in listed] == [(None, "draft")]
    assert _show(workspace, f"draft:{listed[0]['draft_id']}")["total"] == "14.28"
    issued = _invoice(workspace, "--period", "2025-10", "--account", "acme", "--issue-date", "2025-11-03")
    assert [(r["number"], r["total"]) for r in issued] == [("INV-2025-000001", "14.28")]
    assert [(d["number"], d["status"]) for d in workspace.json("invoices", "list")] == [("INV-2025-000001", "issued")]


def test_an_open_period_is_not_issued(workspace):
    _setup(workspace)
    results = _invoice(workspace, "--period", f"{date.today():%Y-%m}", "--account", "acme")
    assert results[0]["outcome"] == "not_ended"
    assert workspace.json("invoices", "list") == []


def test_a_failure_while_issuing_leaves_no_gap_in_the_numbers(workspace, monkeypatch):
    _setup(workspace)
    config = load_config(workspace.config_path, build_host())
    engine = open_store(config.hub.database, config.base_dir)
    real_save = closing_close.save

    def crash_on_globex(conn, built, **kw):
        if built.account.id == "globex" and kw["number"] is not None:
            raise RuntimeError("the machine died while issuing")
        return real_save(conn, built, **kw)

    monkeypatch.setattr(closing_close, "save", crash_on_globex)
    with pytest.raises(RuntimeError):
        closing.close_period(engine, config, parse_period("2025-10"), issue_date=date(2025, 11, 3))
    monkeypatch.setattr(closing_close, "save", real_save)
    closing.close_period(engine, config, parse_period("2025-10"), issue_date=date(2025, 11, 3))
    listed = workspace.json("invoices", "list")
    assert [(d["account"], d["number"]) for d in listed] == [
        ("acme", "INV-2025-000001"), ("globex", "INV-2025-000002"), ("initech", "INV-2025-000003"),
        ("umbrella", "INV-2025-000004"), ("charity", "INV-2025-000005")]
    engine.dispose()


def test_two_processes_closing_the_same_period_issue_each_invoice_once(workspace):
    _setup(workspace)
    config = load_config(workspace.config_path, build_host())
    errors: list[BaseException] = []

    def close() -> None:
        engine = open_store(config.hub.database, config.base_dir)
        try:
            closing.close_period(engine, config, parse_period("2025-10"), issue_date=date(2025, 11, 3))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=close) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    listed = workspace.json("invoices", "list")
    assert sorted(d["number"] for d in listed) == [f"INV-2025-00000{i}" for i in range(1, 6)]
    assert sorted(d["account"] for d in listed) == ["acme", "charity", "globex", "initech", "umbrella"]
