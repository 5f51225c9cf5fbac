"""An account's ``itemize`` choice (DESIGN: invoice lines "itemized per
resource or grouped, the customer's choice").

``[[accounts]] itemize = "resource"`` makes that account's lines of every
product with a per_unit price one per resource (docs/billing-rules.md, Lines:
itemizing is for per_unit and flat prices only); ``itemize = "product"``
groups the lines of a product itemized by resource. The choice changes
nothing but how lines are split (each is rounded on its own): it applies
to products whose meter is additive (time-weighted, sum, unique) and that
have no free allowance; a max line, a tiered price or an allowance keep
the product's lines. A child account follows its parent's choice unless it
makes its own. The other accounts keep the product's own lines. ``hub
rate`` (all accounts and one), ``hub trace``, ``hub reconcile``, the
invoice's drill-down and the adjustments of late usage follow it.

Every test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
from typing import Any

import hub.cli.invoices  # noqa: F401 - registers ``hub invoice`` for the in-process runner
import hub.cli.rate  # noqa: F401 - registers ``hub rate`` and ``hub trace``
import hub.cli.reconcile  # noqa: F401 - registers ``hub reconcile``
from tests.test_rating import line, load, rated, setup

PRODUCTS = """
[[products]]
name = "vcpu"
meter = "compute.vcpu"
price = { model = "per_unit", unit_price = "0.0000115" }

[[products]]
name = "peak"
meter = "memory.peak"
price = { model = "per_unit", unit_price = "0.5" }

[[products]]
name = "egress"
meter = "network.egress"
price = { model = "graduated", tiers = [ { up_to = "10", unit_price = "0.1" }, { unit_price = "0.05" } ] }

[[products]]
name = "ip"
meter = "ips"
itemize = "resource"
price = { model = "per_unit", unit_price = "2" }

[[products]]
name = "memory"
meter = "compute.memory"
free = "1"
price = { model = "per_unit", unit_price = "0.00001" }
"""

ACCOUNTS = """
[[accounts]]
id = "acme"
name = "ACME GmbH"
country = "DE"

[[accounts]]
id = "perres"
name = "Per Resource AG"
country = "DE"
itemize = "resource"

[[accounts]]
id = "grouped"
name = "Grouped GmbH"
country = "DE"
itemize = "product"
"""

#: the same usage for each account: two VMs whose own amounts round up
#: (30,000 s x 0.0000115 = 0.345 each: 0.35 + 0.35, but 0.69 together),
#: two peaks, 15 GB of egress over the first tier, two IPs
ROWS = [row.format(acc=acc) for acc in ("acme", "perres", "grouped") for row in (
    "{acc},vm-1,compute.vcpu,2026-10-01T00:00:00Z,2026-10-01T08:20:00Z,1",
    "{acc},vm-2,compute.vcpu,2026-10-02T00:00:00Z,2026-10-02T08:20:00Z,1",
    "{acc},vm-1,memory.peak,2026-10-01T00:00:00Z,2026-10-02T00:00:00Z,4",
    "{acc},vm-2,memory.peak,2026-10-03T00:00:00Z,2026-10-04T00:00:00Z,16",
    "{acc},vm-1,network.egress,2026-10-05T00:00:00Z,2026-10-05T00:00:00Z,10",
    "{acc},vm-2,network.egress,2026-10-06T00:00:00Z,2026-10-06T00:00:00Z,5",
    "{acc},1.2.3.4,ips,2026-10-01T00:00:00Z,2026-10-03T00:00:00Z,1",
    "{acc},5.6.7.8,ips,2026-10-01T00:00:00Z,2026-10-03T00:00:00Z,1",
    "{acc},vm-1,compute.memory,2026-10-01T00:00:00Z,2026-10-01T08:20:00Z,2",
    "{acc},vm-2,compute.memory,2026-10-02T00:00:00Z,2026-10-02T08:20:00Z,2",
)]

EGRESS_TIERS = [{"up_to": "10", "quantity": "10", "unit_price": "0.1", "amount": "1"},
                {"up_to": None, "quantity": "5", "unit_price": "0.05", "amount": "0.25"}]


def _lines(account: str) -> list[dict[str, Any]]:
    itemized = account == "perres"
    ips = account != "grouped"
    return sorted([
        *([line(account, "vcpu", "30000", "second", "0.0000115", "0.345", "0.35", resource_id=vm)
           for vm in ("vm-1", "vm-2")] if itemized else
          [line(account, "vcpu", "60000", "second", "0.0000115", "0.69", "0.69", records=2)]),
        # a max line (the account's peak), a graduated price and a free
        # allowance: one line whatever the account chooses
        line(account, "peak", "16", "unit", "0.5", "8", "8.00"),
        line(account, "egress", "15", "unit", None, "1.25", "1.25", tiers=EGRESS_TIERS, records=2),
        line(account, "memory", "120000", "second", "0.00001", "1.19999", "1.20", records=2),  # 1 s free
        *([line(account, "ip", "1", "unit", "2", "2", "2.00", resource_id=ip) for ip in ("1.2.3.4", "5.6.7.8")]
          if ips else [line(account, "ip", "2", "unit", "2", "4", "4.00", records=2)]),
    ], key=lambda c: (c["product"], c["resource_id"] or ""))


def test_each_account_gets_its_lines_itemized_its_way(workspace):
    setup(workspace, PRODUCTS, accounts=ACCOUNTS)
    load(workspace, *ROWS)
    everyone = rated(workspace, "2026-10")
    assert everyone == [c for acc in ("acme", "grouped", "perres") for c in _lines(acc)]
    for acc in ("acme", "perres", "grouped"):
        assert rated(workspace, "2026-10", acc) == _lines(acc)


def test_an_itemized_line_of_an_account_is_traced_per_resource(workspace):
    setup(workspace, PRODUCTS, accounts=ACCOUNTS)
    load(workspace, *ROWS)
    got = workspace.json("trace", "--period", "2026-10", "--account", "perres", "--product", "vcpu",
                         "--resource", "vm-1")
    assert [(r["resource_id"], r["billed_seconds"], r["contribution"]) for r in got["records"]] == [
        ("vm-1", 30000, "30000")]
    assert [(c["resource_id"], c["quantity"], c["amount"]) for c in got["charges"]] == [("vm-1", "30000", "0.35")]


def test_reconcile_balances_the_accounts_lines_itemized_each_way(workspace):
    setup(workspace, PRODUCTS, accounts=ACCOUNTS)
    load(workspace, *ROWS)
    result = workspace.hub("reconcile", "--period", "2026-10", "--json")
    assert result.exit_code == 0, result.output
    got = json.loads(result.stdout)
    assert got["balanced"] is True and got["problems"] == []
    ips = [s for s in got["sources"] if s["product"] == "ip"]
    assert [(s["records"], s["counted"], s["quantity"]) for s in ips] == [(6, 6, "6")]


SELLER = """
[seller]
name = "Hub Cloud GmbH"
country = "DE"
vat_id = "DE136695976"

[tax.rates]
DE = "19"
"""


def _invoice_lines(workspace, account: str) -> list[tuple[Any, ...]]:
    number = {d["account"]: d["number"] for d in workspace.json("invoices", "list")}[account]
    doc = workspace.json("invoices", "show", number)
    return [(x["account"], x["product"], x["resource_id"], x["amount"], len(x.get("resources") or []))
            for x in doc["lines"]]


def test_the_invoice_of_an_itemizing_account_has_a_line_per_resource_and_no_drill_down(workspace):
    setup(workspace, PRODUCTS + SELLER, accounts=ACCOUNTS)
    load(workspace, *ROWS)
    issued = workspace.hub("invoice", "--period", "2026-10", "--issue-date", "2026-11-03")
    assert issued.exit_code == 0, issued.output
    assert _invoice_lines(workspace, "perres") == [
        ("perres", "egress", None, "1.25", 2), ("perres", "ip", "1.2.3.4", "2.00", 0),
        ("perres", "ip", "5.6.7.8", "2.00", 0), ("perres", "memory", None, "1.20", 2),
        ("perres", "peak", None, "8.00", 0), ("perres", "vcpu", "vm-1", "0.35", 0),
        ("perres", "vcpu", "vm-2", "0.35", 0)]
    assert _invoice_lines(workspace, "grouped") == [
        ("grouped", "egress", None, "1.25", 2), ("grouped", "ip", None, "4.00", 2),
        ("grouped", "memory", None, "1.20", 2), ("grouped", "peak", None, "8.00", 0),
        ("grouped", "vcpu", None, "0.69", 2)]


def test_a_child_account_follows_its_parents_choice_unless_it_makes_its_own(workspace):
    accounts = ACCOUNTS + """
[[accounts]]
id = "perres-team"
parent = "perres"

[[accounts]]
id = "perres-grouped"
parent = "perres"
itemize = "product"
"""
    rows = [r.replace("perres,", f"{child},") for child in ("perres-team", "perres-grouped")
            for r in ROWS if r.startswith("perres,") and "compute.vcpu" in r]
    setup(workspace, PRODUCTS + SELLER, accounts=accounts)
    load(workspace, *rows)
    issued = workspace.hub("invoice", "--period", "2026-10", "--issue-date", "2026-11-03")
    assert issued.exit_code == 0, issued.output
    assert _invoice_lines(workspace, "perres") == [
        ("perres-grouped", "vcpu", None, "0.69", 2),
        ("perres-team", "vcpu", "vm-1", "0.35", 0), ("perres-team", "vcpu", "vm-2", "0.35", 0)]


def test_late_usage_after_the_choice_changed_adds_only_what_was_not_billed(workspace):
    """September was billed itemized (0.35 + 0.35 for 60,000 s); the
    account then groups its lines, and an hour of September arrives late:
    October's invoice adjusts September by that hour (63,600 s = 0.7314 ->
    0.73, so 0.03 more), not by the whole month again."""
    itemizing = 'id = "perres"\nname = "Per Resource AG"\ncountry = "DE"\nitemize = "resource"\n'
    vcpu = [r for r in ROWS if r.startswith("perres,") and "compute.vcpu" in r]
    setup(workspace, PRODUCTS + SELLER, accounts="\n[[accounts]]\n" + itemizing)
    load(workspace, *[r.replace("2026-10-", "2026-09-") for r in vcpu], *vcpu)
    assert workspace.hub("invoice", "--period", "2026-09", "--issue-date", "2026-10-03").exit_code == 0
    assert _invoice_lines(workspace, "perres") == [("perres", "vcpu", "vm-1", "0.35", 0),
                                                   ("perres", "vcpu", "vm-2", "0.35", 0)]
    setup(workspace, PRODUCTS + SELLER, accounts="\n[[accounts]]\n" + itemizing.replace('itemize = "resource"\n', ""))
    workspace.write("usage/late.csv", "record_id,account,resource_id,meter,start,end,quantity\n"
                    "late,perres,vm-3,compute.vcpu,2026-09-20T00:00:00Z,2026-09-20T01:00:00Z,1\n")
    assert workspace.hub("pull").exit_code == 0
    result = workspace.hub("invoice", "--period", "2026-10", "--issue-date", "2026-11-03")
    assert result.exit_code == 0, result.output
    (number,) = [d["number"] for d in workspace.json("invoices", "list") if d["period"] == "2026-10"]
    october = workspace.json("invoices", "show", number)
    assert [(x["product"], x["resource_id"], x["quantity"], x["amount"], x["adjustment_for"])
            for x in october["lines"]] == [("vcpu", None, "60000", "0.69", None), ("vcpu", None, "3600", "0.03", "2026-09")]


def test_many_itemizing_accounts_are_rated_in_one_scan_and_again_from_its_rollups(workspace):
    """From 64 accounts on (rating's ``_IN_LIST_MAX``), the itemized lines
    are rated for every account at once and their rollups stored: rating
    again reads them and gives the same lines, as does one account alone."""
    accounts = "".join(f'\n[[accounts]]\nid = "a{i:03d}"\n' + ('itemize = "resource"\n' if i % 2 else "")
                       for i in range(140))
    setup(workspace, PRODUCTS, accounts=accounts)
    load(workspace, *[f"a{i:03d},vm-{v},compute.vcpu,2026-10-0{1 + v}T00:00:00Z,2026-10-0{1 + v}T08:20:00Z,1"
                      for i in range(140) for v in (1, 2)])
    first = rated(workspace, "2026-10")
    assert len(first) == 70 * 1 + 70 * 2
    assert [c for c in first if c["account"] == "a000"] == [
        line("a000", "vcpu", "60000", "second", "0.0000115", "0.69", "0.69", records=2)]
    assert [c for c in first if c["account"] == "a001"] == [
        line("a001", "vcpu", "30000", "second", "0.0000115", "0.345", "0.35", resource_id=f"vm-{v}") for v in (1, 2)]
    assert rated(workspace, "2026-10") == first
    assert rated(workspace, "2026-10", "a001") == [c for c in first if c["account"] == "a001"]
    from sqlalchemy import create_engine, text

    engine = create_engine(workspace.db_url)
    try:
        with engine.connect() as conn:
            itemized = conn.execute(text("SELECT COUNT(*) FROM rating_rollup_keys WHERE spec LIKE '%\"itemized\": true%'"))
            assert itemized.scalar_one() == 1  # the variant's key, stored by the first rating
    finally:
        engine.dispose()
