"""``hub reconcile``: every second that came in is accounted for.

Records are followed from what came in to what ``hub rate`` bills: the
seconds outside the period, those inside, what granularity and minimums
add, the free allowance, the quarantine; usage that nothing bills makes the
command exit 5.
"""

from __future__ import annotations

from typing import Any

import hub.cli.reconcile  # noqa: F401 - registers ``hub reconcile``
from tests.test_rating import load, setup

ACCOUNTS = """
[[accounts]]
id = "acme"

[[accounts]]
id = "globex"
timezone = "Europe/Paris"
"""

PRODUCTS = """
[[products]]
name = "vcpu"
meter = "compute.vcpu"
granularity = "1m"
minimum = "5m"
price = { model = "per_unit", unit_price = "0.0000115" }

[[products]]
name = "egress"
meter = "network.egress"
free = "10"
price = { model = "per_unit", unit_price = "0.01" }
"""

ROWS = (
    "acme,vm-1,compute.vcpu,2026-10-01T10:00:00Z,2026-10-01T10:12:42Z,2",    # 762 s, +18 s granularity
    "acme,vm-2,compute.vcpu,2026-10-02T10:00:00Z,2026-10-02T10:00:20Z,1",    # 20 s, +40 s, +240 s top-up
    "acme,vm-3,compute.vcpu,2026-09-30T23:59:30Z,2026-10-01T00:00:45Z,4",    # 30 s before, 45 s in, +15 s
    "acme,vm-4,compute.vcpu,2026-10-31T23:00:00Z,2026-11-01T00:30:00Z,1",    # 3600 s in, 1800 s after
    "acme,vm-5,compute.vcpu,2026-11-02T00:00:00Z,2026-11-02T01:00:00Z,1",    # November: not touching
    # Paris: October ends at 2026-10-31T23:00:00Z
    "globex,vm-9,compute.vcpu,2026-10-31T22:00:00Z,2026-10-31T23:30:00Z,1",  # 3600 s in, 1800 s after
    "acme,vm-1,network.egress,2026-09-30T23:00:00Z,2026-10-01T01:00:00Z,1000",  # starts in September
    "acme,vm-1,network.egress,2026-10-05T00:00:00Z,2026-10-05T00:00:00Z,12.5",
)


def reconciled(ws: Any, period: str = "2026-10") -> dict[str, Any]:
    result = ws.hub("reconcile", "--period", period, "--json")
    assert result.exit_code == 0, result.output
    return __import__("json").loads(result.stdout)


def test_every_second_of_every_record_is_followed_to_the_lines(workspace):
    setup(workspace, PRODUCTS, accounts=ACCOUNTS)
    load(workspace, *ROWS)
    got = reconciled(workspace)
    assert got["balanced"] is True
    assert got["problems"] == []
    assert got["sources"] == [
        {"source": "files", "meter": "compute.vcpu", "product": "vcpu", "aggregation": "time_weighted",
         "records": 5, "counted": 5,
         "seconds_in": 762 + 20 + 75 + 5400 + 5400, "before": 30, "inside": 762 + 20 + 45 + 3600 + 3600,
         "after": 1800 + 1800,
         # 762 -> 780, 20 -> 60, 45 -> 60, 3600 and 3600 stay
         "granularity": 18 + 40 + 15, "topup": 240, "billed_seconds": 780 + 300 + 60 + 3600 + 3600,
         "quantity": str(780 * 2 + 300 + 60 * 4 + 3600 + 3600)},
        {"source": "files", "meter": "network.egress", "product": "egress", "aggregation": "sum",
         "records": 2, "counted": 1, "seconds_in": 7200, "before": 3600, "inside": 3600, "after": 0,
         "quantity": "12.5"},
    ]
    assert [(p["account"], p["product"], p["from_records"], p["on_lines"], p["free"], p["charged"], p["amount"],
             p["balanced"]) for p in got["products"]] == [
        ("acme", "egress", "12.5", "12.5", "10", "2.5", "0.03", True),
        ("acme", "vcpu", "5700", "5700", "0", "5700", "0.07", True),
        ("globex", "vcpu", "3600", "3600", "0", "3600", "0.04", True),
    ]


def test_the_table_says_the_period_is_balanced(workspace):
    setup(workspace, PRODUCTS, accounts=ACCOUNTS)
    load(workspace, *ROWS)
    result = workspace.hub("reconcile", "--period", "2026-10")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[-1] == "balanced: every record is accounted for"
    assert lines[4].split() == ["files", "compute.vcpu", "vcpu", "5", "5", "11657", "30", "8027", "3600", "73",
                                "240", "8340", "9300"]


def test_quarantined_rows_are_listed_as_accounted_for(workspace):
    setup(workspace, PRODUCTS, accounts=ACCOUNTS)
    body = "".join(f"r{i},{row}\n" for i, row in enumerate(ROWS[:2], 1))
    workspace.write("usage/x.csv", "record_id,account,resource_id,meter,start,end,quantity\n" + body
                    + "r9,acme,vm-7,compute.vcpu,2026-10-03T00:00:00Z,2026-10-02T00:00:00Z,1\n")
    assert workspace.hub("pull").exit_code == 3
    got = reconciled(workspace)
    assert got["quarantined"] == [{"source": "files", "rows": 1}]
    assert got["balanced"] is True
    result = workspace.hub("reconcile", "--period", "2026-10")
    assert "quarantined (open rows, never billed until fixed; see hub quarantine list): files 1 row" in result.stdout


def test_usage_of_a_meter_no_product_prices_is_unaccounted_and_exits_5(workspace):
    setup(workspace, PRODUCTS, accounts=ACCOUNTS)
    load(workspace, ROWS[0], "acme,vm-1,memory.peak,2026-10-01T00:00:00Z,2026-10-02T00:00:00Z,8",
         "acme,vm-1,memory.peak,2026-10-03T00:00:00Z,2026-10-04T00:00:00Z,8")
    result = workspace.hub("reconcile", "--period", "2026-10")
    assert result.exit_code == 5
    assert result.stderr.splitlines() == [
        "unaccounted: files: 2 record(s) of account 'acme' measure meter 'memory.peak', which no product prices: "
        "they are never billed",
        "hub: 1 problem: the period does not reconcile",
    ]
    # another period is not concerned
    assert workspace.hub("reconcile", "--period", "2026-11").exit_code == 0


def test_usage_of_an_account_no_longer_configured_is_unaccounted(workspace):
    setup(workspace, PRODUCTS, accounts=ACCOUNTS)
    load(workspace, ROWS[0], "globex,vm-9,compute.vcpu,2026-10-05T00:00:00Z,2026-10-05T01:00:00Z,1")
    setup(workspace, PRODUCTS, accounts='[[accounts]]\nid = "acme"\n')
    result = workspace.hub("reconcile", "--period", "2026-10")
    assert result.exit_code == 5
    assert result.stderr.splitlines()[0] == (
        "unaccounted: files: 1 record(s) of meter 'compute.vcpu' belong to account 'globex', which is not "
        "configured: they are never billed")
    # one account's reconciliation only looks at that account
    assert workspace.hub("reconcile", "--period", "2026-10", "--account", "acme").exit_code == 0


def test_a_line_that_does_not_match_its_records_is_reported(workspace, monkeypatch):
    setup(workspace, PRODUCTS, accounts=ACCOUNTS)
    load(workspace, *ROWS)
    import hub.reconcile

    real = hub.reconcile.rate
    # a rating engine that lost globex's line: the reconciliation must notice
    monkeypatch.setattr(hub.reconcile, "rate", lambda *a, **k: [c for c in real(*a, **k) if c.account != "globex"])
    result = workspace.hub("reconcile", "--period", "2026-10")
    assert result.exit_code == 5
    assert result.stderr.splitlines()[0] == (
        "unaccounted: globex vcpu: the records make 3600 second but the lines bill 0")


def test_the_demo_month_reconciles(tmp_path):
    from click.testing import CliRunner

    from hub.cli import demo  # noqa: F401
    from hub.cli.main import cli

    assert CliRunner().invoke(cli, ["demo", "--dir", str(tmp_path / "d"), "--period", "2026-10"]).exit_code == 0
    result = CliRunner().invoke(cli, ["--config", str(tmp_path / "d" / "hub.toml"), "reconcile", "--period", "2026-10"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "balanced: every record is accounted for"
