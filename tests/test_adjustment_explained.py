"""An adjustment line for late usage says what was billed before and what
the period comes to now (issue 23, defect 6), so that it adds up.

The issue's figures: 7,200 vCPU-s at 0.0000115 are 0.0828, but the line
bills the difference of two totals each rounded once: October's 36,000
vCPU-s were billed 0.414 -> 0.41; with the late 7,200 its 43,200 vCPU-s
cost 0.4968 -> 0.50; the line is 0.09. Its ``adjusts`` holds both totals.

Every test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import jsonschema

import hub.cli.invoices  # noqa: F401 - registers the commands for the in-process runner
from tests.conftest import HEADER

CONFIG = """
[seller]
name = "Hub Cloud GmbH"
country = "DE"
vat_id = "DE136695976"

[tax.rates]
DE = "19"

[invoicing]
payment_terms_days = 14

[[meters]]
name = "compute.vcpu"
aggregation = "time_weighted"
unit = "vCPU"

[[products]]
name = "vcpu"
description = "Virtual CPU"
meter = "compute.vcpu"
per = "second"
price = { model = "per_unit", unit_price = "0.0000115" }

[[sources]]
name = "files"
type = "csv"
path = "usage/*.csv"

[[accounts]]
id = "acme"
name = "ACME GmbH"
country = "DE"
"""

SCHEMA = Path(__file__).resolve().parent.parent / "schemas" / "invoice.schema.json"


def _invoice(workspace, *args: str) -> list:
    result = workspace.hub("invoice", *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _issue_october_then_late_usage(workspace) -> dict:
    """October billed with 36,000 vCPU-s (10 h of 1 vCPU); then 7,200 more
    (2 h) arrive late, and November (3,600 vCPU-s) is issued with the
    adjustment; November's invoice."""
    workspace.config(CONFIG)
    workspace.write("usage/oct.csv", HEADER + "o1,acme,vm-1,compute.vcpu,2025-10-10T00:00:00Z,"
                                              "2025-10-10T10:00:00Z,1\n", dedent=False)
    assert workspace.hub("pull").exit_code == 0
    (october,) = _invoice(workspace, "--period", "2025-10", "--issue-date", "2025-11-03")
    assert (october["outcome"], october["number"], october["total"]) == ("issued", "INV-2025-000001", "0.49")
    workspace.write("usage/late.csv", HEADER + "".join([
        "late1,acme,vm-2,compute.vcpu,2025-10-20T00:00:00Z,2025-10-20T02:00:00Z,1\n",
        "n1,acme,vm-1,compute.vcpu,2025-11-05T00:00:00Z,2025-11-05T01:00:00Z,1\n",
    ]), dedent=False)
    assert workspace.hub("pull").exit_code == 0
    (november,) = _invoice(workspace, "--period", "2025-11", "--issue-date", "2025-12-02")
    assert (november["outcome"], november["number"]) == ("issued", "INV-2025-000002")
    return workspace.json("invoices", "show", "INV-2025-000002")


def test_an_adjustment_line_shows_what_was_billed_before_and_what_its_period_costs_now(workspace):
    doc = _issue_october_then_late_usage(workspace)
    usage, adjustment = doc["lines"]
    # November's own line: 3,600 x 0.0000115 = 0.0414 -> 0.04, and no adjusts
    assert (usage["quantity"], usage["amount"], usage["adjustment_for"]) == ("3600", "0.04", None)
    assert "adjusts" not in usage
    assert (adjustment["quantity"], adjustment["unit_price"], adjustment["amount"], adjustment["adjustment_for"]) == \
        ("7200", "0.0000115", "0.09", "2025-10")
    assert adjustment["adjusts"] == {"quantity_billed": "36000", "amount_billed": "0.41",
                                     "quantity": "43200", "amount": "0.50"}
    # 0.04 + 0.09 = 0.13; 19 % of it is 0.0247 -> 0.02
    assert (doc["subtotal"], doc["tax"]["amount"], doc["total"]) == ("0.13", "0.02", "0.15")


def test_an_adjustment_line_adds_up_exactly_from_its_adjusts(workspace):
    doc = _issue_october_then_late_usage(workspace)
    (adjustment,) = [ln for ln in doc["lines"] if ln["adjustment_for"] is not None]
    a = adjustment["adjusts"]
    assert Decimal(adjustment["quantity"]) == Decimal(a["quantity"]) - Decimal(a["quantity_billed"])
    assert Decimal(adjustment["amount"]) == Decimal(a["amount"]) - Decimal(a["amount_billed"])
    # what was billed before is October's invoice line, what the period costs now is a rating of it
    october = workspace.json("invoices", "show", "INV-2025-000001")
    assert [(ln["quantity"], ln["amount"]) for ln in october["lines"]] == [(a["quantity_billed"], a["amount_billed"])]
    rated = workspace.json("rate", "--period", "2025-10")
    assert [(c["quantity"], c["amount"]) for c in rated] == [("43200", "0.50")]
    jsonschema.validate(doc, json.loads(SCHEMA.read_text(encoding="utf-8")))


def test_a_second_adjustment_of_one_period_counts_the_first_as_billed(workspace):
    """A second late record for October after November's adjustment: the
    December adjustment compares with October's line plus November's
    adjustment, both billed."""
    _issue_october_then_late_usage(workspace)
    workspace.write("usage/later.csv", HEADER + "".join([
        "late2,acme,vm-3,compute.vcpu,2025-10-21T00:00:00Z,2025-10-21T01:00:00Z,1\n",
    ]), dedent=False)
    assert workspace.hub("pull").exit_code == 0
    (december,) = _invoice(workspace, "--period", "2025-12", "--issue-date", "2026-01-02")
    assert (december["outcome"], december["number"]) == ("issued", "INV-2026-000001")
    doc = workspace.json("invoices", "show", "INV-2026-000001")
    # October now: 46,800 vCPU-s x 0.0000115 = 0.5382 -> 0.54; billed 0.41 + 0.09 = 0.50 for 43,200
    assert [(ln["quantity"], ln["amount"], ln["adjusts"]) for ln in doc["lines"]] == [
        ("3600", "0.04", {"quantity_billed": "43200", "amount_billed": "0.50", "quantity": "46800", "amount": "0.54"})]
