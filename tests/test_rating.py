"""``hub rate``: usage to exact charges (docs/billing-rules.md, Time,
Granularity and minimum, Meters, Prices, Lines).

Every test runs on SQLite and on PostgreSQL (the ``workspace`` fixture),
pulls its own CSV through ``hub pull`` and reads ``hub rate --json``, except
where a fixed clock is needed (:func:`hub.rating.rate` with ``now``).
Running records in ``hub rate`` are only used in periods that closed before
the tests run (2024).
"""

from __future__ import annotations

from datetime import datetime, timezone
from fractions import Fraction
from typing import Any

import pytest

import hub.cli.rate  # noqa: F401 - registers ``hub rate`` for the in-process runner
from hub.config import load_config
from hub.host import build_host
from hub.periods import parse_period
from hub.pricing import to_decimal
from hub.rating import rate
from hub.store.db import open_store
from tests.conftest import HEADER

METERS = """
[[meters]]
name = "compute.vcpu"
aggregation = "time_weighted"
unit = "vCPU"

[[meters]]
name = "compute.memory"
aggregation = "time_weighted"
unit = "GiB"

[[meters]]
name = "network.egress"
aggregation = "sum"
unit = "GB"

[[meters]]
name = "memory.peak"
aggregation = "max"
unit = "GiB"

[[meters]]
name = "ips"
aggregation = "unique"

[[meters]]
name = "storage.size"
aggregation = "latest"
unit = "GB"

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
timezone = "Europe/Paris"
"""

VCPU = """
[[products]]
name = "vcpu"
meter = "compute.vcpu"
price = { model = "per_unit", unit_price = "0.0000115" }
"""


def setup(ws: Any, products: str, accounts: str = ACCOUNTS, hub: str = "") -> None:
    ws.config(hub + METERS + products + accounts)


def load(ws: Any, *rows: str) -> None:
    """Pull ``rows`` (``account,resource,meter,start,end,quantity``) as one CSV."""
    body = "".join(f"r{i},{row}\n" for i, row in enumerate(rows, 1))
    ws.write("usage/x.csv", HEADER + body)
    result = ws.hub("pull")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"files: {len(rows)} imported, 0 updated, 0 quarantined"


def rated(ws: Any, period: str, *accounts: str) -> list[dict[str, Any]]:
    args = ["rate", "--period", period]
    for account in accounts:
        args += ["--account", account]
    lines = ws.json(*args)
    assert all(c["period"] == period for c in lines)
    return lines


def by_key(lines: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(c["account"], c["product"]): c for c in lines}


def line(account: str, product: str, quantity: str, unit: str, unit_price: str | None, exact: str, amount: str,
         currency: str = "EUR", period: str = "2026-10", resource_id: str | None = None,
         tiers: list[dict[str, Any]] | None = None, records: int = 1) -> dict[str, Any]:
    return {"account": account, "product": product, "resource_id": resource_id, "quantity": quantity,
            "unit": unit, "unit_price": unit_price, "tiers": tiers or [], "exact_amount": exact,
            "amount": amount, "currency": currency, "period": period, "records": records}


def seconds_of(ws: Any, period: str, account: str = "acme", product: str = "vcpu") -> str | None:
    c = by_key(rated(ws, period, account)).get((account, product))
    return None if c is None else c["quantity"]


# --------------------------------------------------------------------------
# time, granularity and minimum


def test_12_minutes_42_seconds_of_one_vcpu_bill_762_seconds(workspace):
    setup(workspace, VCPU)
    load(workspace, "acme,vm-1,compute.vcpu,2026-10-01T10:00:00Z,2026-10-01T10:12:42Z,1")
    assert rated(workspace, "2026-10") == [
        line("acme", "vcpu", "762", "second", "0.0000115", "0.008763", "0.01")]


def test_at_600_second_granularity_12_minutes_42_seconds_bill_1200_seconds(workspace):
    setup(workspace, VCPU.replace('meter = "compute.vcpu"', 'meter = "compute.vcpu"\ngranularity = "10m"'))
    load(workspace, "acme,vm-1,compute.vcpu,2026-10-01T10:00:00Z,2026-10-01T10:12:42Z,1",
         "acme,vm-2,compute.vcpu,2026-10-01T10:00:00Z,2026-10-01T10:10:00Z,2")
    # 1200 x 1 + 600 x 2 vCPU-s
    assert rated(workspace, "2026-10") == [
        line("acme", "vcpu", "2400", "second", "0.0000115", "0.0276", "0.03", records=2)]


def test_a_vm_across_the_end_of_a_month_bills_30_and_45_seconds(workspace):
    setup(workspace, VCPU)
    load(workspace, "acme,vm-1,compute.vcpu,2026-10-31T23:59:30Z,2026-11-01T00:00:45Z,1")
    assert rated(workspace, "2026-10") == [line("acme", "vcpu", "30", "second", "0.0000115", "0.000345", "0.00")]
    assert rated(workspace, "2026-11") == [
        line("acme", "vcpu", "45", "second", "0.0000115", "0.0005175", "0.00", period="2026-11")]
    assert rated(workspace, "2026-09") == []


def test_granularity_applies_to_each_period_s_piece(workspace):
    setup(workspace, VCPU.replace('meter = "compute.vcpu"', 'meter = "compute.vcpu"\ngranularity = "1m"'))
    load(workspace, "acme,vm-1,compute.vcpu,2026-10-31T23:59:30Z,2026-11-01T00:00:45Z,1")
    assert seconds_of(workspace, "2026-10") == "60"
    assert seconds_of(workspace, "2026-11") == "60"


MINUTE_MINIMUM = VCPU.replace('meter = "compute.vcpu"', 'meter = "compute.vcpu"\nminimum = "60s"')


def test_a_20_second_job_with_a_60_second_minimum_bills_60_seconds(workspace):
    setup(workspace, MINUTE_MINIMUM)
    load(workspace, "acme,job-1,compute.vcpu,2026-10-05T10:00:00Z,2026-10-05T10:00:20Z,2",
         # above the minimum: no top-up
         "acme,job-2,compute.vcpu,2026-10-05T11:00:00Z,2026-10-05T11:01:10Z,1")
    assert seconds_of(workspace, "2026-10") == str(60 * 2 + 70)


def test_the_minimum_top_up_falls_into_the_period_of_the_start(workspace):
    setup(workspace, MINUTE_MINIMUM)
    # 10 s in October, 10 s in November: 20 s in total, 40 s top-up in October
    load(workspace, "acme,job-1,compute.vcpu,2026-10-31T23:59:50Z,2026-11-01T00:00:10Z,1")
    assert seconds_of(workspace, "2026-10") == "50"
    assert seconds_of(workspace, "2026-11") == "10"


def test_a_running_record_gets_no_minimum_and_runs_to_the_end_of_a_closed_period(workspace):
    setup(workspace, VCPU.replace('meter = "compute.vcpu"', 'meter = "compute.vcpu"\nminimum = "2h"'))
    load(workspace, "acme,vm-1,compute.vcpu,2024-10-31T23:00:00Z,,2")
    assert rated(workspace, "2024-10") == [
        line("acme", "vcpu", "7200", "second", "0.0000115", "0.0828", "0.08", period="2024-10")]
    assert seconds_of(workspace, "2024-11") == str(2 * 30 * 86400)


def test_a_running_record_runs_to_now_in_an_open_period(workspace):
    setup(workspace, VCPU)
    load(workspace, "acme,vm-1,compute.vcpu,2026-10-31T23:00:00Z,,1")
    config = load_config(workspace.config_path, build_host())
    engine = open_store(config.hub.database, config.base_dir)
    now = datetime(2026, 11, 1, 0, 10, tzinfo=timezone.utc)
    (oct_,) = rate(engine, config, parse_period("2026-10"), now=now)
    (nov,) = rate(engine, config, parse_period("2026-11"), now=now)
    assert (oct_.quantity, nov.quantity) == (3600, 600)
    assert nov.exact_amount == Fraction(600) * Fraction("0.0000115")
    assert rate(engine, config, parse_period("2026-12"), now=now) == []


def test_a_paris_account_is_rated_in_its_own_month(workspace):
    setup(workspace, VCPU)
    # 23:30 UTC on Oct 31 is November in Paris
    load(workspace, "globex,vm-1,compute.vcpu,2026-10-31T23:30:00Z,2026-10-31T23:40:00Z,1",
         "acme,vm-1,compute.vcpu,2026-10-31T23:30:00Z,2026-10-31T23:40:00Z,1")
    assert [(c["account"], c["quantity"]) for c in rated(workspace, "2026-10")] == [("acme", "600")]
    assert [(c["account"], c["quantity"]) for c in rated(workspace, "2026-11")] == [("globex", "600")]


# --------------------------------------------------------------------------
# prices


TIERS = '[ { up_to = "1000", unit_price = "0.01" }, { unit_price = "0.005" } ]'


def test_graduated_tiers_price_each_part_of_a_total_straddling_a_boundary(workspace):
    setup(workspace, f"""
[[products]]
name = "vcpu"
meter = "compute.vcpu"
price = {{ model = "graduated", tiers = {TIERS} }}
""")
    load(workspace, "acme,vm-1,compute.vcpu,2026-10-01T00:00:00Z,2026-10-01T00:10:00Z,1",
         "acme,vm-2,compute.vcpu,2026-10-01T00:00:00Z,2026-10-01T00:10:00Z,1")
    assert rated(workspace, "2026-10") == [line(
        "acme", "vcpu", "1200", "second", None, "11", "11.00",
        tiers=[{"up_to": "1000", "quantity": "1000", "unit_price": "0.01", "amount": "10"},
               {"up_to": None, "quantity": "200", "unit_price": "0.005", "amount": "1"}], records=2)]


def test_volume_prices_all_of_the_quantity_at_the_tier_that_holds_it(workspace):
    setup(workspace, f"""
[[products]]
name = "vcpu"
meter = "compute.vcpu"
price = {{ model = "volume", tiers = {TIERS} }}
""")
    load(workspace, "acme,vm-1,compute.vcpu,2026-10-01T00:00:00Z,2026-10-01T00:20:00Z,1",
         # exactly 1000: the first tier holds it (up_to is inclusive)
         "globex,vm-1,compute.vcpu,2026-10-01T00:00:00Z,2026-10-01T00:16:40Z,1")
    got = by_key(rated(workspace, "2026-10"))
    assert got["acme", "vcpu"]["tiers"] == [{"up_to": None, "quantity": "1200", "unit_price": "0.005", "amount": "6"}]
    assert (got["acme", "vcpu"]["exact_amount"], got["acme", "vcpu"]["amount"]) == ("6", "6.00")
    assert (got["globex", "vcpu"]["quantity"], got["globex", "vcpu"]["amount"]) == ("1000", "10.00")


def test_package_buys_started_packages_of_a_sum_meter(workspace):
    setup(workspace, """
[[products]]
name = "egress"
meter = "network.egress"
price = { model = "package", size = "100", package_price = "1.50" }
""")
    load(workspace, "acme,vm-1,network.egress,2026-10-01T00:00:00Z,2026-10-01T00:00:00Z,200",
         "acme,vm-1,network.egress,2026-10-02T00:00:00Z,2026-10-02T00:00:00Z,0.5",
         # starts in September: not October's
         "acme,vm-1,network.egress,2026-09-30T23:00:00Z,2026-10-01T01:00:00Z,1000")
    assert rated(workspace, "2026-10") == [line(
        "acme", "egress", "200.5", "unit", None, "4.5", "4.50",
        tiers=[{"up_to": None, "quantity": "3", "unit_price": "1.50", "amount": "4.5"}], records=2)]


def test_the_free_allowance_comes_off_first(workspace):
    setup(workspace, """
[[products]]
name = "egress"
meter = "network.egress"
free = "10"
price = { model = "per_unit", unit_price = "0.09" }
""")
    load(workspace, "acme,vm-1,network.egress,2026-10-01T00:00:00Z,2026-10-01T00:00:00Z,25.5",
         "globex,vm-1,network.egress,2026-10-01T00:00:00Z,2026-10-01T00:00:00Z,4")
    # (25.5 - 10) x 0.09 = 1.395, a tie: half-up 1.40; globex's 4 GB are all free
    assert rated(workspace, "2026-10") == [
        line("acme", "egress", "25.5", "unit", "0.09", "1.395", "1.40"),
        line("globex", "egress", "4", "unit", "0.09", "0", "0.00")]


def test_per_hour_prices_are_exact_to_the_half_cent(workspace):
    setup(workspace, """
[[products]]
name = "memory"
meter = "compute.memory"
per = "hour"
price = { model = "per_unit", unit_price = "0.0045" }
""")
    # 200 GiB x 3460 s = 692,000 GiB-s = 192.2... GiB-h; x 0.0045 = 0.865 exactly
    load(workspace, "acme,vm-1,compute.memory,2026-10-01T00:00:00Z,2026-10-01T00:57:40Z,200")
    assert rated(workspace, "2026-10") == [
        line("acme", "memory", "192.222222222222", "hour", "0.0045", "0.865", "0.87")]


def test_itemize_resource_gives_one_line_per_resource(workspace):
    setup(workspace, """
[[products]]
name = "vcpu"
meter = "compute.vcpu"
itemize = "resource"
price = { model = "per_unit", unit_price = "0.0000115" }

[[products]]
name = "ip"
meter = "ips"
itemize = "resource"
price = { model = "per_unit", unit_price = "2" }
""")
    load(workspace, "acme,vm-1,compute.vcpu,2026-10-01T00:00:00Z,2026-10-01T00:10:00Z,1",
         "acme,vm-2,compute.vcpu,2026-10-01T00:00:00Z,2026-10-01T00:10:00Z,2",
         "acme,vm-1,compute.vcpu,2026-10-02T00:00:00Z,2026-10-02T00:01:00Z,1",
         "acme,1.2.3.4,ips,2026-10-01T00:00:00Z,2026-10-03T00:00:00Z,1",
         "acme,1.2.3.4,ips,2026-10-05T00:00:00Z,2026-10-06T00:00:00Z,1",
         "acme,5.6.7.8,ips,2026-10-01T00:00:00Z,2026-10-03T00:00:00Z,1")
    assert rated(workspace, "2026-10") == [
        line("acme", "ip", "1", "unit", "2", "2", "2.00", resource_id="1.2.3.4", records=2),
        line("acme", "ip", "1", "unit", "2", "2", "2.00", resource_id="5.6.7.8"),
        line("acme", "vcpu", "660", "second", "0.0000115", "0.00759", "0.01", resource_id="vm-1", records=2),
        line("acme", "vcpu", "1200", "second", "0.0000115", "0.0138", "0.01", resource_id="vm-2"),
    ]


def test_max_and_latest_meters(workspace):
    setup(workspace, """
[[products]]
name = "peak"
meter = "memory.peak"
price = { model = "per_unit", unit_price = "0.5" }

[[products]]
name = "storage"
meter = "storage.size"
price = { model = "per_unit", unit_price = "0.1" }
""")
    load(workspace, "acme,vm-1,memory.peak,2026-10-01T00:00:00Z,2026-10-02T00:00:00Z,4",
         "acme,vm-1,memory.peak,2026-10-03T00:00:00Z,2026-10-04T00:00:00Z,16",
         "acme,vm-1,memory.peak,2026-11-03T00:00:00Z,2026-11-04T00:00:00Z,64",
         "acme,d-1,storage.size,2026-10-01T00:00:00Z,2026-10-01T00:00:00Z,100",
         "acme,d-1,storage.size,2026-10-20T00:00:00Z,2026-10-20T00:00:00Z,40",
         "acme,d-1,storage.size,2026-11-20T00:00:00Z,2026-11-20T00:00:00Z,999")
    assert rated(workspace, "2026-10") == [
        line("acme", "peak", "16", "unit", "0.5", "8", "8.00"),
        line("acme", "storage", "40", "unit", "0.1", "4", "4.00")]


def test_latest_records_with_the_same_start_take_the_version_received_last(workspace):
    """The hub's reading of a tie (docs/billing-rules.md, Meters): of
    records starting at the same second, the one received last, whatever
    its record_id (in one pull: the later row; then a later pull's)."""
    setup(workspace, """
[[products]]
name = "storage"
meter = "storage.size"
price = { model = "per_unit", unit_price = "0.1" }
""")
    workspace.write("usage/1.csv", HEADER + "z9,acme,d-1,storage.size,2026-10-05T00:00:00Z,2026-10-06T00:00:00Z,10\n"
                    "a1,acme,d-2,storage.size,2026-10-05T00:00:00Z,2026-10-06T00:00:00Z,20\n")
    assert workspace.hub("pull").exit_code == 0
    expected = [line("acme", "storage", "20", "unit", "0.1", "2", "2.00")]
    assert rated(workspace, "2026-10") == expected
    assert rated(workspace, "2026-10", "acme") == expected
    workspace.write("usage/2.csv", HEADER + "a0,acme,d-3,storage.size,2026-10-05T00:00:00Z,2026-10-06T00:00:00Z,30\n")
    assert workspace.hub("pull").exit_code == 0
    expected = [line("acme", "storage", "30", "unit", "0.1", "3", "3.00")]
    assert rated(workspace, "2026-10") == expected
    assert rated(workspace, "2026-10", "acme") == expected


# --------------------------------------------------------------------------
# rounding, currencies, overrides, flat


def test_half_cent_ties_round_half_up_by_default(workspace):
    setup(workspace, VCPU)
    load(workspace, "acme,vm-1,compute.vcpu,2026-10-01T00:00:00Z,2026-10-01T08:20:00Z,1")
    assert rated(workspace, "2026-10") == [line("acme", "vcpu", "30000", "second", "0.0000115", "0.345", "0.35")]


def test_half_cent_ties_round_to_even_under_half_even(workspace):
    setup(workspace, VCPU, hub='rounding = "half_even"\n')
    load(workspace, "acme,vm-1,compute.vcpu,2026-10-01T00:00:00Z,2026-10-01T08:20:00Z,1")
    assert rated(workspace, "2026-10") == [line("acme", "vcpu", "30000", "second", "0.0000115", "0.345", "0.34")]


def test_a_jpy_account_is_rounded_to_whole_yen(workspace):
    setup(workspace, VCPU, accounts=ACCOUNTS + """
[[accounts]]
id = "yen"
currency = "JPY"
""")
    # 50 vCPU x 60,000 s = 3,000,000 vCPU-s x 0.0000115 = 34.5
    load(workspace, "yen,vm-1,compute.vcpu,2026-10-01T00:00:00Z,2026-10-01T16:40:00Z,50")
    assert rated(workspace, "2026-10") == [
        line("yen", "vcpu", "3000000", "second", "0.0000115", "34.5", "35", currency="JPY")]


def test_an_account_price_override_applies_to_that_account_only(workspace):
    setup(workspace, VCPU, accounts=ACCOUNTS.replace(
        'country = "DE"', 'country = "DE"\nprices = { vcpu = { model = "per_unit", unit_price = "0.000010" } }'))
    load(workspace, "acme,vm-1,compute.vcpu,2026-10-01T00:00:00Z,2026-10-01T08:20:00Z,1",
         "globex,vm-1,compute.vcpu,2026-10-01T00:00:00Z,2026-10-01T08:20:00Z,1")
    assert rated(workspace, "2026-10") == [
        line("acme", "vcpu", "30000", "second", "0.000010", "0.3", "0.30"),
        line("globex", "vcpu", "30000", "second", "0.0000115", "0.345", "0.35")]


def test_a_flat_plan_is_prorated_from_since_in_the_account_time_zone(workspace):
    setup(workspace, """
[[products]]
name = "support"
price = { model = "flat", amount = "9.00" }
""", accounts="""
[[accounts]]
id = "acme"
plans = ["support"]

[[accounts]]
id = "globex"
timezone = "Europe/Paris"
plans = ["support"]
since = "2026-10-16"

[[accounts]]
id = "later"
plans = ["support"]
since = "2026-12-01"

[[accounts]]
id = "none"
""")
    # Paris: Oct 16 to Nov 1 is 385 h of October's 745 (summer time ends on Oct 25)
    fraction = Fraction(385, 745)
    assert rated(workspace, "2026-10") == [
        line("acme", "support", "1", "unit", "9.00", "9", "9.00", records=0),
        line("globex", "support", format(to_decimal(fraction), "f"), "unit", "9.00",
             format(to_decimal(9 * fraction), "f"), "4.65", records=0)]
    assert [c["account"] for c in rated(workspace, "2026-12")] == ["acme", "globex", "later"]


# --------------------------------------------------------------------------
# the command


def test_account_filter_and_table(workspace):
    setup(workspace, VCPU)
    load(workspace, "acme,vm-1,compute.vcpu,2026-10-01T00:00:00Z,2026-10-01T08:20:00Z,1",
         "globex,vm-1,compute.vcpu,2026-10-01T00:00:00Z,2026-10-01T08:20:00Z,1")
    assert [c["account"] for c in rated(workspace, "2026-10", "globex")] == ["globex"]
    result = workspace.hub("rate", "--period", "2026-10")
    assert result.exit_code == 0, result.output
    assert "0.35 EUR" in result.stdout and "30000" in result.stdout and "globex" in result.stdout


@pytest.mark.parametrize("args, message", [
    (["--period", "2026-13"], "2026-13"),
    (["--period", "2026-10", "--account", "nobody"], "unknown account 'nobody'"),
])
def test_bad_periods_and_accounts_exit_2(workspace, args, message):
    setup(workspace, VCPU)
    result = workspace.hub("rate", *args)
    assert result.exit_code == 2
    assert message in result.stderr


def test_fractional_quantities_are_summed_exactly(workspace):
    setup(workspace, VCPU)
    load(workspace, "acme,vm-1,compute.vcpu,2026-10-01T00:00:00Z,2026-10-01T00:00:03Z,0.333333333",
         "acme,vm-2,compute.vcpu,2026-10-01T00:00:00Z,2026-10-31T00:00:00Z,123456.000100001")
    # 0.999999999 + 123456.000100001 x 2,592,000
    q = "319997952260.202591999"
    (c,) = rated(workspace, "2026-10")
    assert c["quantity"] == q
    assert c["exact_amount"] == format(to_decimal(Fraction(q) * Fraction("0.0000115")), "f")


# --------------------------------------------------------------------------
# daylight saving time, minimums over several periods, three-decimal currencies


def test_a_month_with_a_dst_change_holds_its_own_number_of_seconds(workspace):
    setup(workspace, VCPU, accounts="""
[[accounts]]
id = "berlin"
timezone = "Europe/Berlin"
""")
    load(workspace, "berlin,vm-1,compute.vcpu,2026-01-01T00:00:00Z,2027-01-01T00:00:00Z,1")
    # March 2026 loses an hour on the 29th, October gains one on the 25th
    assert seconds_of(workspace, "2026-03", "berlin") == str((31 * 24 - 1) * 3600)
    assert seconds_of(workspace, "2026-10", "berlin") == str((31 * 24 + 1) * 3600)
    assert seconds_of(workspace, "2026-10-25", "berlin") == str(25 * 3600)
    assert seconds_of(workspace, "2026-03-29", "berlin") == str(23 * 3600)
    assert seconds_of(workspace, "2026-W13", "berlin") == str((7 * 24 - 1) * 3600)


def test_a_minimum_longer_than_a_period_tops_up_against_every_later_piece(workspace):
    setup(workspace, VCPU.replace('meter = "compute.vcpu"', 'meter = "compute.vcpu"\ngranularity = "1000s"\n'
                                  'minimum = "2d"'))
    # 1 h on Oct 1, all of Oct 2, 500 s on Oct 3: 4000 + 87000 + 1000 billable seconds after
    # granularity, each day's piece rounded on its own; 172800 - 92000 = 80800 top-up on Oct 1
    load(workspace, "acme,vm-1,compute.vcpu,2026-10-01T23:00:00Z,2026-10-03T00:08:20Z,1")
    assert seconds_of(workspace, "2026-10-01") == str(4000 + 80800)
    assert seconds_of(workspace, "2026-10-02") == "87000"
    assert seconds_of(workspace, "2026-10-03") == "1000"
    assert seconds_of(workspace, "2026-10") == "172800"


def test_a_bhd_account_is_rounded_to_three_decimals(workspace):
    setup(workspace, """
[[products]]
name = "vcpu"
meter = "compute.vcpu"
price = { model = "per_unit", unit_price = "0.0000001" }
""", accounts="""
[[accounts]]
id = "manama"
currency = "BHD"
""", hub='rounding = "half_even"\n')
    # 5,000 vCPU-s x 0.0000001 = 0.0005 BHD, a tie at the third decimal: to even, 0.000 (the
    # quantity is not zero, so the line stays); 15,000 vCPU-s = 0.0015 BHD -> 0.002
    load(workspace, "manama,vm-1,compute.vcpu,2026-10-01T00:00:00Z,2026-10-01T01:23:20Z,1",
         "manama,vm-2,compute.vcpu,2026-11-01T00:00:00Z,2026-11-01T04:10:00Z,1")
    assert rated(workspace, "2026-10") == [
        line("manama", "vcpu", "5000", "second", "0.0000001", "0.0005", "0.000", currency="BHD")]
    assert rated(workspace, "2026-11") == [
        line("manama", "vcpu", "15000", "second", "0.0000001", "0.0015", "0.002", currency="BHD", period="2026-11")]
