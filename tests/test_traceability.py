"""Traceability: every charge knows the usage records it came from.

``hub trace`` lists the records behind one line of ``hub rate``, with what
each adds to the line's quantity; the contributions add up to it exactly.
"""

from __future__ import annotations

from datetime import datetime, timezone
from fractions import Fraction
from typing import Any

import pytest
from click.testing import CliRunner

import hub.cli.rate  # noqa: F401 - registers ``hub rate`` and ``hub trace``
from hub.cli import demo  # noqa: F401
from hub.cli.main import cli
from hub.config import load_config
from hub.host import build_host
from hub.periods import parse_period
from hub.pricing import priced_quantity
from hub.rating import rate, trace
from hub.store.db import open_store
from tests.test_rating import load, setup

ACCOUNTS = """
[[accounts]]
id = "acme"
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
price = { model = "per_unit", unit_price = "0.01" }

[[products]]
name = "peak"
meter = "memory.peak"
price = { model = "per_unit", unit_price = "1" }

[[products]]
name = "ip"
meter = "ips"
itemize = "resource"
price = { model = "per_unit", unit_price = "2" }

[[products]]
name = "support"
price = { model = "flat", amount = "9.00" }
"""


def traced(ws: Any, *args: str) -> dict[str, Any]:
    return ws.json("trace", "--period", "2026-10", "--account", "acme", *args)


def rec(source: str, record_id: str, resource: str, start: str, end: str | None, quantity: str, seconds: int,
        billed: int, topup: int, counted: bool, adds: str) -> dict[str, Any]:
    return {"source": source, "record_id": record_id, "resource_id": resource, "start": start, "end": end,
            "quantity": quantity, "seconds": seconds, "billed_seconds": billed, "topup": topup,
            "counted": counted, "contribution": adds}


def test_a_time_weighted_line_lists_its_records_with_granularity_minimum_and_clipping(workspace):
    setup(workspace, PRODUCTS, accounts=ACCOUNTS)
    load(workspace,
         "acme,vm-1,compute.vcpu,2026-10-01T10:00:00Z,2026-10-01T10:12:42Z,2",   # 762 s -> 780 s
         "acme,vm-2,compute.vcpu,2026-10-02T10:00:00Z,2026-10-02T10:00:20Z,1",   # 20 s -> 60 s + 240 s top-up
         "acme,vm-3,compute.vcpu,2026-09-30T23:59:30Z,2026-10-01T00:00:45Z,4",   # 45 s of October -> 60 s
         "acme,vm-4,compute.vcpu,2026-11-01T00:00:00Z,2026-11-01T01:00:00Z,1")   # November: not listed
    got = traced(workspace, "--product", "vcpu")
    assert got["records"] == [
        rec("files", "r3", "vm-3", "2026-09-30T23:59:30Z", "2026-10-01T00:00:45Z", "4", 45, 60, 0, True, "240"),
        rec("files", "r1", "vm-1", "2026-10-01T10:00:00Z", "2026-10-01T10:12:42Z", "2", 762, 780, 0, True, "1560"),
        rec("files", "r2", "vm-2", "2026-10-02T10:00:00Z", "2026-10-02T10:00:20Z", "1", 20, 300, 240, True, "300"),
    ]
    [line] = got["charges"]
    # 240 + 1560 + 300 vCPU-s: the line's quantity is the sum of what its records add
    assert (line["quantity"], line["amount"], line["records"]) == ("2100", "0.02", 3)


def test_a_sum_line_counts_only_the_records_that_start_in_the_period(workspace):
    setup(workspace, PRODUCTS, accounts=ACCOUNTS)
    load(workspace,
         "acme,vm-1,network.egress,2026-09-30T23:00:00Z,2026-10-01T01:00:00Z,1000",
         "acme,vm-1,network.egress,2026-10-05T00:00:00Z,2026-10-05T00:00:00Z,12.5")
    got = traced(workspace, "--product", "egress")
    assert [(r["record_id"], r["counted"], r["contribution"]) for r in got["records"]] == [
        ("r1", False, "0"), ("r2", True, "12.5")]
    assert [(c["quantity"], c["amount"], c["records"]) for c in got["charges"]] == [("12.5", "0.13", 1)]


def test_a_max_line_counts_the_one_record_it_picks(workspace):
    setup(workspace, PRODUCTS, accounts=ACCOUNTS)
    load(workspace,
         "acme,vm-1,memory.peak,2026-10-01T00:00:00Z,2026-10-02T00:00:00Z,8",
         "acme,vm-2,memory.peak,2026-10-03T00:00:00Z,2026-10-04T00:00:00Z,16",
         "acme,vm-1,memory.peak,2026-10-05T00:00:00Z,2026-10-06T00:00:00Z,4")
    got = traced(workspace, "--product", "peak")
    assert [(r["record_id"], r["counted"], r["contribution"]) for r in got["records"]] == [
        ("r1", False, "0"), ("r2", True, "16"), ("r3", False, "0")]
    assert [(c["quantity"], c["records"]) for c in got["charges"]] == [("16", 1)]


def test_an_itemized_unique_line_is_traced_per_resource(workspace):
    setup(workspace, PRODUCTS, accounts=ACCOUNTS)
    load(workspace,
         "acme,1.2.3.4,ips,2026-10-01T00:00:00Z,2026-10-03T00:00:00Z,1",
         "acme,1.2.3.4,ips,2026-10-05T00:00:00Z,2026-10-06T00:00:00Z,1",
         "acme,5.6.7.8,ips,2026-10-01T00:00:00Z,2026-10-03T00:00:00Z,1")
    got = traced(workspace, "--product", "ip", "--resource", "1.2.3.4")
    assert [(r["record_id"], r["seconds"], r["counted"], r["contribution"]) for r in got["records"]] == [
        ("r1", 172800, True, "1"), ("r2", 86400, False, "0")]
    assert [(c["resource_id"], c["quantity"], c["records"]) for c in got["charges"]] == [("1.2.3.4", "1", 2)]


def test_the_trace_table_ends_with_the_total_and_the_line(workspace):
    setup(workspace, PRODUCTS, accounts=ACCOUNTS)
    load(workspace, "acme,vm-1,compute.vcpu,2026-10-01T10:00:00Z,2026-10-01T10:12:42Z,2")
    result = workspace.hub("trace", "--period", "2026-10", "--account", "acme", "--product", "vcpu")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-2:] == [
        "1 record counted of 1: quantity 1560 in the meter's unit (vCPU-s)",
        "line vcpu: 1560 vCPU-s -> 0.02 EUR",
    ]


@pytest.mark.parametrize(("args", "message"), [
    ((), "hub: hub trace needs exactly one --account"),
    (("--account", "acme", "--product", "nope"), "hub: unknown product 'nope'"),
    (("--account", "acme", "--product", "support"),
     "hub: 'support' is a flat plan: no usage record makes its charge"),
])
def test_trace_refuses_what_it_cannot_trace_with_exit_2(workspace, args, message):
    setup(workspace, PRODUCTS, accounts=ACCOUNTS)
    if "--product" not in args:
        args = (*args, "--product", "vcpu")
    result = workspace.hub("trace", "--period", "2026-10", *args)
    assert result.exit_code == 2
    assert result.stderr.strip() == message


def test_every_charge_of_the_demo_month_is_the_exact_sum_of_its_traced_records(tmp_path):
    result = CliRunner().invoke(cli, ["demo", "--dir", str(tmp_path / "d"), "--period", "2026-10"])
    assert result.exit_code == 0, result.output
    config = load_config(tmp_path / "d" / "hub.toml", build_host())
    engine = open_store(config.hub.database, config.base_dir)
    period = parse_period("2026-10")
    now = datetime(2026, 11, 22, tzinfo=timezone.utc)
    charges = [c for c in rate(engine, config, period, now=now) if c.records]
    assert len(charges) == 20
    for c in charges:
        records = trace(engine, config, period, c.account, c.product, c.resource_id, now=now)
        counted = [r for r in records if r.counted]
        assert len(counted) == c.records, (c.account, c.product)
        total = sum((r.contribution for r in counted), start=Fraction(0))
        assert priced_quantity(total, c.unit) == c.exact_quantity, (c.account, c.product)
