"""A child account is invoiced through its parent: it takes the parent's
currency, time zone and schedule (up the tree, the root's, itself
defaulting to ``[hub] timezone`` and ``[invoicing] schedule``), and ``hub
check`` refuses a child that sets another one.

The reproduction: a parent in Europe/Berlin, a child that sets no time
zone, a record starting 2026-10-31T23:00Z (midnight on November 1 in
Berlin). Billed in UTC the child had a stray October invoice and November
lines running to December 1; in the parent's time zone the record is
November's and the lines are November 1 to 30, Berlin time.
"""

from __future__ import annotations

import textwrap

import pytest

from hub.config import load_config
from hub.host import build_host
from tests.conftest import HEADER, Workspace

SELLER = """
[seller]
name = "Hub Cloud GmbH"
country = "DE"
vat_id = "DE136695976"

[tax.rates]
DE = "19"
"""

CATALOG = """
[[meters]]
name = "compute.vcpu"
aggregation = "time_weighted"
unit = "vCPU"

[[products]]
name = "vcpu"
description = "Virtual CPU"
meter = "compute.vcpu"
per = "hour"
price = { model = "per_unit", unit_price = "0.10" }

[[sources]]
name = "files"
type = "csv"
path = "usage/*.csv"
"""

BERLIN_FAMILY = """
[[accounts]]
id = "parent"
name = "Parent AG"
country = "DE"
timezone = "Europe/Berlin"

[[accounts]]
id = "child"
name = "Child project"
parent = "parent"
"""


@pytest.fixture
def ws(tmp_path) -> Workspace:
    """A workspace on SQLite for the configuration's checks."""
    return Workspace(tmp_path, f"sqlite:///{tmp_path / 'hub.db'}")


def _check_errors(ws: Workspace) -> list[str]:
    result = ws.hub("check")
    assert result.exit_code == 2, result.output
    return [line.removeprefix("error: ") for line in result.stderr.splitlines() if line.startswith("error: ")]


def test_a_child_without_time_zone_or_schedule_takes_its_parents_up_the_tree(ws):
    ws.config(textwrap.dedent("""
        timezone = "America/New_York"

        [invoicing]
        schedule = "weekly"

        [[accounts]]
        id = "root"
        timezone = "Asia/Tokyo"
        schedule = "daily"

        [[accounts]]
        id = "child"
        parent = "root"

        [[accounts]]
        id = "grandchild"
        parent = "child"

        [[accounts]]
        id = "solo"
    """))
    config = load_config(ws.config_path, build_host([]))
    accounts = config.accounts
    assert [(a, accounts[a].timezone, accounts[a].schedule) for a in accounts] == [
        ("root", "Asia/Tokyo", "daily"), ("child", "Asia/Tokyo", "daily"), ("grandchild", "Asia/Tokyo", "daily"),
        ("solo", "America/New_York", "weekly")]


def test_a_child_of_a_root_without_time_zone_takes_the_hubs(ws):
    ws.config('timezone = "Europe/Paris"\n\n[[accounts]]\nid = "root"\n\n[[accounts]]\nid = "child"\nparent = "root"\n')
    config = load_config(ws.config_path, build_host([]))
    assert (config.accounts["child"].timezone, config.accounts["child"].schedule) == ("Europe/Paris", "monthly")


def test_a_childs_since_date_is_midnight_in_its_parents_time_zone(ws):
    ws.config(BERLIN_FAMILY.replace('parent = "parent"', 'parent = "parent"\nsince = "2026-11-01"'))
    config = load_config(ws.config_path, build_host([]))
    assert config.accounts["child"].since.isoformat() == "2026-10-31T23:00:00+00:00"


def test_check_refuses_a_child_with_another_time_zone_or_schedule_than_its_parents(ws):
    ws.config(SELLER + BERLIN_FAMILY.replace('parent = "parent"', 'parent = "parent"\ntimezone = "UTC"\nschedule = "daily"')
              + '\n[[accounts]]\nid = "grandchild"\nparent = "child"\ntimezone = "Asia/Tokyo"\n')
    assert _check_errors(ws) == [
        "hub.toml: accounts[2] \"child\": schedule: 'daily' is not the schedule of its parent 'parent' (monthly), "
        "through which it is invoiced: leave it out to take the parent's",
        "hub.toml: accounts[2] \"child\": timezone: 'UTC' is not the time zone of its parent 'parent' "
        "(Europe/Berlin), through which it is invoiced: leave it out to take the parent's",
        # the grandchild is compared with its parent's own value (the child's error is the child's)
        "hub.toml: accounts[3] \"grandchild\": timezone: 'Asia/Tokyo' is not the time zone of its parent 'child' "
        "(UTC), through which it is invoiced: leave it out to take the parent's",
    ]


def test_a_child_may_repeat_its_parents_time_zone_and_schedule(ws):
    ws.config(SELLER + BERLIN_FAMILY.replace('parent = "parent"',
                                             'parent = "parent"\ntimezone = "Europe/Berlin"\nschedule = "monthly"'))
    result = ws.hub("check")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("hub.toml: ok")


def test_an_invalid_time_zone_of_a_child_is_reported_once(ws):
    ws.config(SELLER + BERLIN_FAMILY.replace('parent = "parent"', 'parent = "parent"\ntimezone = "Mars/Base"'))
    assert _check_errors(ws) == [
        "hub.toml: accounts[2] \"child\": timezone: 'Mars/Base' is not an IANA time zone such as Europe/Paris"]


def _invoice(workspace: Workspace, *args: str) -> list[dict]:
    return workspace.json("invoice", *args)


def test_a_child_is_billed_in_its_parents_time_zone_so_its_usage_is_on_the_parents_periods(workspace):
    workspace.config(SELLER + CATALOG + BERLIN_FAMILY)
    # 2026-10-31T23:00Z is midnight on November 1 in Berlin (CET): November's
    workspace.write("usage/u.csv", HEADER + "c1,child,vm-1,compute.vcpu,2026-10-31T23:00:00Z,"
                                            "2026-11-01T01:00:00Z,1\n", dedent=False)
    assert workspace.hub("pull").exit_code == 0
    october = _invoice(workspace, "--period", "2026-10", "--issue-date", "2026-11-02")
    assert [(r["account"], r["outcome"], r["number"]) for r in october] == [("parent", "no_charges", None)]
    assert workspace.json("invoices", "list") == []
    (november,) = _invoice(workspace, "--period", "2026-11", "--issue-date", "2026-12-02")
    assert (november["outcome"], november["number"]) == ("issued", "INV-2026-000001")
    doc = workspace.json("invoices", "show", "INV-2026-000001")
    # November 1 to 30 in Berlin: 2026-10-31T23:00Z to 2026-11-30T23:00Z; 2 vCPU-h at 0.10
    assert (doc["period_start"], doc["period_end"]) == ("2026-10-31T23:00:00+00:00", "2026-11-30T23:00:00+00:00")
    assert [(ln["account"], ln["period_start"], ln["period_end"], ln["quantity"], ln["amount"])
            for ln in doc["lines"]] == [("child", "2026-10-31T23:00:00+00:00", "2026-11-30T23:00:00+00:00", "2", "0.20")]
