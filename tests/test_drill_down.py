"""Drilling an invoice line down to its resources: every cent traceable.

A line of a product that is not itemized per resource keeps, frozen at
issue, each resource's share of its quantity and the usage records it came
from (``lines[].resources`` in the invoice JSON, schemas/invoice.schema.json).
The shares add up to the line exactly; the HTML and the PDF show them under
the line. Every test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import jsonschema

import hub.cli.invoices  # noqa: F401 - registers the commands for the in-process runner
from tests.conftest import HEADER

SCHEMA = json.loads((Path(__file__).parents[1] / "schemas" / "invoice.schema.json").read_text(encoding="utf-8"))

CONFIG = """
[seller]
name = "Hub Cloud GmbH"
country = "DE"
vat_id = "DE136695976"

[tax.rates]
DE = "19"

[[meters]]
name = "compute.vcpu"
aggregation = "time_weighted"
unit = "vCPU"

[[meters]]
name = "network.egress"
aggregation = "sum"
unit = "GB"

[[meters]]
name = "ips"
aggregation = "unique"
unit = "IP"

[[meters]]
name = "memory.peak"
aggregation = "max"
unit = "GiB"

[[meters]]
name = "storage.size"
aggregation = "latest"
unit = "GB"

[[products]]
name = "vcpu"
description = "Virtual CPU"
meter = "compute.vcpu"
per = "hour"
granularity = "60s"
price = { model = "graduated", tiers = [ { up_to = "10", unit_price = "0.05" }, { unit_price = "0.04" } ] }

[[products]]
name = "egress"
description = "Internet egress"
meter = "network.egress"
free = "10"
price = { model = "per_unit", unit_price = "0.08" }

[[products]]
name = "ip"
description = "Public IPv4"
meter = "ips"
price = { model = "per_unit", unit_price = "2.00" }

[[products]]
name = "peak"
description = "Peak memory"
meter = "memory.peak"
price = { model = "per_unit", unit_price = "1.00" }

[[products]]
name = "storage"
description = "Storage"
meter = "storage.size"
price = { model = "per_unit", unit_price = "0.10" }

[[products]]
name = "vcpu-itemized"
description = "Dedicated vCPU"
meter = "compute.vcpu"
per = "hour"
itemize = "resource"
price = { model = "per_unit", unit_price = "0.07" }

[[accounts]]
id = "acme"
name = "ACME GmbH"
country = "DE"

[[sources]]
name = "files"
type = "csv"
path = "usage/*.csv"
"""

# vm-1: 2 vCPU for 3 h 0 min 30 s (billed 3 h 1 min at 60 s granularity),
#       then 2 vCPU for 59 s (billed 60 s): 21,720 + 120 = 21,840 vCPU-s
# vm-2: 4 vCPU for 1 h = 14,400 vCPU-s (a record from September is clipped
#       to the month: 4 vCPU, 30 Sep 23:00 to 1 Oct 01:00 -> 1 h in October)
# vm-3: 1 vCPU running since 31 Oct 23:00 (billed to the period's end, 1 h)
# egress: vm-1 25 GB in two records, vm-2 7.5 GB; ips: vm-1 and vm-2
USAGE = HEADER + "\n".join([
    "c1,acme,vm-1,compute.vcpu,2025-10-03T10:00:00Z,2025-10-03T13:00:30Z,2",
    "c2,acme,vm-1,compute.vcpu,2025-10-04T10:00:00Z,2025-10-04T10:00:59Z,2",
    "c3,acme,vm-2,compute.vcpu,2025-09-30T23:00:00Z,2025-10-01T01:00:00Z,4",
    "c4,acme,vm-3,compute.vcpu,2025-10-31T23:00:00Z,,1",
    "e1,acme,vm-1,network.egress,2025-10-05T00:00:00Z,2025-10-05T00:00:00Z,20",
    "e2,acme,vm-1,network.egress,2025-10-06T00:00:00Z,2025-10-06T00:00:00Z,5",
    "e3,acme,vm-2,network.egress,2025-10-07T00:00:00Z,2025-10-07T00:00:00Z,7.5",
    "i1,acme,vm-1,ips,2025-10-01T00:00:00Z,,1",
    "i2,acme,vm-2,ips,2025-10-10T00:00:00Z,2025-10-12T00:00:00Z,1",
    "m1,acme,vm-1,memory.peak,2025-10-01T00:00:00Z,2025-10-02T00:00:00Z,8",
    "m2,acme,vm-2,memory.peak,2025-10-01T00:00:00Z,2025-10-02T00:00:00Z,16",
    "s1,acme,vol-1,storage.size,2025-10-01T00:00:00Z,,100",
]) + "\n"


def _issue(workspace) -> dict:
    workspace.config(CONFIG)
    workspace.write("usage/2025-10.csv", USAGE, dedent=False)
    assert workspace.hub("pull").exit_code == 0
    [result] = workspace.json("invoice", "--period", "2025-10", "--issue-date", "2025-11-03")
    doc = workspace.json("invoices", "show", result["number"])
    jsonschema.validate(doc, SCHEMA)
    return doc


def _line(doc: dict, product: str, resource: str | None = None) -> dict:
    [line] = [ln for ln in doc["lines"] if ln["product"] == product and ln["resource_id"] == resource]
    return line


def test_a_time_weighted_product_line_lists_each_resources_share_in_the_priced_unit(workspace):
    doc = _issue(workspace)
    vcpu = _line(doc, "vcpu")
    # 21,840 + 14,400 + 3,600 = 39,840 vCPU-s = 11.0666... vCPU-h (12 places)
    assert vcpu["quantity"] == "11.066666666667"
    assert vcpu["records"] == 4
    # the product rounds to 60 s: each share says what its records used before (vm-1: 21,778 vCPU-s)
    assert vcpu["resources"] == [
        {"resource_id": "vm-1", "quantity": "6.066666666667", "records": 2, "used": "6.049444444444"},  # 21,840 / 3600
        {"resource_id": "vm-2", "quantity": "4", "records": 1, "used": "4"},
        {"resource_id": "vm-3", "quantity": "1", "records": 1, "used": "1"},
    ]
    assert doc["products"]["vcpu"] | {} == {"meter": "compute.vcpu", "meter_unit": "vCPU",
                                            "aggregation": "time_weighted", "granularity": 60, "minimum": 0}


def test_a_sum_product_line_shares_are_before_its_free_allowance_and_add_up_to_it(workspace):
    doc = _issue(workspace)
    egress = _line(doc, "egress")
    assert (egress["quantity"], egress["free"], egress["amount"]) == ("32.5", "10", "1.80")  # 22.5 x 0.08
    assert egress["resources"] == [
        {"resource_id": "vm-1", "quantity": "25", "records": 2},
        {"resource_id": "vm-2", "quantity": "7.5", "records": 1},
    ]
    assert sum(Decimal(r["quantity"]) for r in egress["resources"]) == Decimal(egress["quantity"])
    assert sum(r["records"] for r in egress["resources"]) == egress["records"]


def test_a_unique_product_line_counts_one_for_each_resource(workspace):
    ip = _line(_issue(workspace), "ip")
    assert (ip["quantity"], ip["amount"]) == ("2", "4.00")
    assert ip["resources"] == [{"resource_id": "vm-1", "quantity": "1", "records": 1},
                               {"resource_id": "vm-2", "quantity": "1", "records": 1}]


def test_max_latest_and_itemized_lines_have_no_drill_down(workspace):
    doc = _issue(workspace)
    assert "resources" not in _line(doc, "peak")  # 16 GiB: the largest record's
    assert "resources" not in _line(doc, "storage")
    assert [(ln["resource_id"], ln["quantity"]) for ln in doc["lines"] if ln["product"] == "vcpu-itemized"] == [
        ("vm-1", "6.049444444444"), ("vm-2", "4"), ("vm-3", "1")]  # vm-1: 2 x (10,830 + 59) s at 1 s granularity
    assert all("resources" not in ln for ln in doc["lines"] if ln["product"] == "vcpu-itemized")


def test_the_documents_show_each_resource_under_its_line(workspace):
    doc = _issue(workspace)
    number = doc["number"]
    out = workspace.root / "out"
    assert workspace.hub("render", number, "--format", "html", "--out", str(out)).exit_code == 0
    html = (out / f"{number}.html").read_text(encoding="utf-8")
    assert '<td class="desc">Resource vm-2<span class="note">1 usage record</span></td>' in html
    # 39,778 vCPU-s used, billed 39,840 at the product's 60 s granularity
    assert '<span class="note explain">used 11 h 2 min 58 s, billed 11 h 4 min (granularity 1 min)</span>' in html
    assert '<td class="desc">Resource vm-1<span class="note">2 usage records</span></td>' in html
    assert workspace.hub("render", number, "--format", "pdf", "--out", str(out)).exit_code == 0
    from pypdf import PdfReader

    text = "\n".join(page.extract_text() for page in PdfReader(out / f"{number}.pdf").pages)
    assert "Resource vm-3" in text and "Resource vm-1" in text and "2 usage records" in text


def test_a_document_lists_a_lines_ten_largest_resources_and_sums_the_others():
    from hub_plugins.renderers.humanize import present

    line = {"product": "vcpu", "description": "Virtual CPU", "account": "acme", "resource_id": None,
            "quantity": "1100", "unit": "hour", "unit_price": "0.05", "free": "0", "amount": "55.00",
            "period_start": "2025-10-01T00:00:00+00:00", "period_end": "2025-11-01T00:00:00+00:00",
            "adjustment_for": None, "records": 60,
            # pod-00 .. pod-09 from 10 to 100 h (one record each), pod-10 .. pod-14 at 100 h with 10 records each
            "resources": [{"resource_id": f"pod-{i:02d}", "quantity": str(10 * (i + 1) if i < 10 else 100),
                           "records": 1 if i < 10 else 10} for i in range(15)]}
    invoice = {"number": "INV-1", "kind": "invoice", "currency": "EUR", "lines": [line],
               "period_start": line["period_start"], "period_end": line["period_end"], "issue_date": "2025-11-03",
               "due_date": "2025-12-03", "subtotal": "55.00", "discount_total": "0.00", "promotional_credit": "0.00",
               "taxable_amount": "55.00", "tax": {"category": "S", "rate": "19", "amount": "10.45"},
               "total": "65.45", "prepaid_applied": "0.00", "amount_due": "65.45", "allowances": [], "credits": [],
               "seller": {"name": "Hub Cloud GmbH", "country": "DE"}, "buyer": {"name": "ACME", "country": "DE"},
               "products": {"vcpu": {"meter": "compute.vcpu", "meter_unit": "vCPU", "aggregation": "time_weighted"}}}
    [row] = present(invoice).groups[0].rows
    # the ten largest: pod-09 and pod-10..14 at 100 h (by id), then pod-08 .. pod-05
    assert [(r.label, r.quantity, r.records) for r in row.resources] == [
        ("Resource pod-09", "100 vCPU-h", "1 usage record"),
        *[(f"Resource pod-{i}", "100 vCPU-h", "10 usage records") for i in range(10, 15)],
        ("Resource pod-08", "90 vCPU-h", "1 usage record"), ("Resource pod-07", "80 vCPU-h", "1 usage record"),
        ("Resource pod-06", "70 vCPU-h", "1 usage record"), ("Resource pod-05", "60 vCPU-h", "1 usage record"),
        ("5 other resources", "150 vCPU-h", "5 usage records"),  # pod-00 .. pod-04: 10+20+30+40+50
    ]
