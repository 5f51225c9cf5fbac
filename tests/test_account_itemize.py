"""An account's ``itemize`` choice (DESIGN: invoice lines "itemized per
resource or grouped, the customer's choice").

``[[accounts]] itemize = "resource"`` makes that account's lines of every
product with a per_unit price one per resource (BILLING_RULES, Lines:
itemizing is for per_unit and flat prices only; its tiered and package
lines stay one line); ``itemize = "product"`` groups the lines of a
product itemized by resource. Each line is rounded on its own. The other
accounts keep the product's own lines. ``hub rate`` (all accounts and one),
``hub trace``, ``hub reconcile`` and the invoice's drill-down follow it.

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
        *([line(account, "peak", q, "unit", "0.5", str(int(q) / 2).rstrip("0").rstrip("."), f"{int(q) / 2:.2f}",
                resource_id=vm) for vm, q in (("vm-1", "4"), ("vm-2", "16"))] if itemized else
          [line(account, "peak", "16", "unit", "0.5", "8", "8.00")]),
        # graduated: one line whatever the account chooses
        line(account, "egress", "15", "unit", None, "1.25", "1.25", tiers=EGRESS_TIERS, records=2),
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
    got = workspace.json("trace", "--period", "2026-10", "--account", "perres", "--product", "peak",
                         "--resource", "vm-1")
    # vm-1's own peak (4) is its line's, though 16 is the account's largest
    assert [(r["resource_id"], r["counted"], r["contribution"]) for r in got["records"]] == [("vm-1", True, "4")]
    assert [(c["resource_id"], c["quantity"]) for c in got["charges"]] == [("vm-1", "4")]


def test_reconcile_balances_the_accounts_lines_itemized_each_way(workspace):
    setup(workspace, PRODUCTS, accounts=ACCOUNTS)
    load(workspace, *ROWS)
    result = workspace.hub("reconcile", "--period", "2026-10", "--json")
    assert result.exit_code == 0, result.output
    got = json.loads(result.stdout)
    assert got["balanced"] is True and got["problems"] == []
    peak = [s for s in got["sources"] if s["product"] == "peak"]
    # the max line of acme and grouped picks one record each; perres's two lines one each
    assert [(s["records"], s["counted"], s["quantity"]) for s in peak] == [(6, 4, "52")]


def test_the_invoice_of_an_itemizing_account_has_a_line_per_resource_and_no_drill_down(workspace):
    setup(workspace, PRODUCTS + """
[seller]
name = "Hub Cloud GmbH"
country = "DE"
vat_id = "DE136695976"

[tax.rates]
DE = "19"
""", accounts=ACCOUNTS)
    load(workspace, *ROWS)
    issued = workspace.hub("invoice", "--period", "2026-10", "--issue-date", "2026-11-03")
    assert issued.exit_code == 0, issued.output
    by_account = {d["account"]: d for d in workspace.json("invoices", "list")}
    perres = workspace.json("invoices", "show", by_account["perres"]["number"])
    assert [(x["product"], x["resource_id"], x["amount"], len(x.get("resources") or [])) for x in perres["lines"]] == [
        ("egress", None, "1.25", 2), ("ip", "1.2.3.4", "2.00", 0), ("ip", "5.6.7.8", "2.00", 0),
        ("peak", "vm-1", "2.00", 0), ("peak", "vm-2", "8.00", 0),
        ("vcpu", "vm-1", "0.35", 0), ("vcpu", "vm-2", "0.35", 0)]
    assert perres["subtotal"] == "15.95"
    grouped = workspace.json("invoices", "show", by_account["grouped"]["number"])
    assert [(x["product"], x["resource_id"], x["amount"], len(x.get("resources") or [])) for x in grouped["lines"]] == [
        ("egress", None, "1.25", 2), ("ip", None, "4.00", 2), ("peak", None, "8.00", 0),
        ("vcpu", None, "0.69", 2)]
    assert grouped["subtotal"] == "13.94"


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
