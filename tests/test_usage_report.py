"""``hub usage``: the raw usage of a period per account and meter.

Every test runs on SQLite and on PostgreSQL (the ``workspace`` fixture),
pulls its own CSV through ``hub pull`` and reads ``hub usage --json``.
Accounts: ``acme`` in UTC, ``globex`` in Europe/Paris, ``kiwi`` in
Pacific/Auckland; one meter of each aggregation. Periods are half-open
``[start, end)`` in each account's time zone (docs/billing-rules.md, Time).

Running records (empty end) are only used in periods that closed long
before the tests run, or through :func:`hub.usage_report.usage_lines` with
an explicit ``now``, so no expected value depends on the clock.
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import pytest

from tests.conftest import HEADER

CONFIG = """
[[meters]]
name = "compute.vcpu"
aggregation = "time_weighted"
unit = "vCPU"

[[meters]]
name = "network.egress"
aggregation = "sum"
unit = "GB"

[[meters]]
name = "memory.peak"
aggregation = "max"
unit = "GiB"

[[meters]]
name = "ip.address"
aggregation = "unique"

[[meters]]
name = "storage.size"
aggregation = "latest"
unit = "GB"

[[accounts]]
id = "acme"
name = "ACME GmbH"
country = "DE"
timezone = "UTC"

[[accounts]]
id = "globex"
name = "Globex SARL"
country = "FR"
timezone = "Europe/Paris"

[[accounts]]
id = "kiwi"
name = "Kiwi Ltd"
country = "NZ"
timezone = "Pacific/Auckland"

[[sources]]
name = "files"
type = "csv"
path = "usage/*.csv"
"""

UNITS = {"compute.vcpu": "vCPU", "network.egress": "GB", "memory.peak": "GiB", "ip.address": None,
         "storage.size": "GB"}
AGGREGATIONS = {"compute.vcpu": "time_weighted", "network.egress": "sum", "memory.peak": "max",
                "ip.address": "unique", "storage.size": "latest"}
PERIOD_FORMS = "write 2026-10 (a month), 2026-W43 (an ISO week) or 2026-10-15 (a day)"

HOUR = 3600
DAY = 24 * HOUR


# --------------------------------------------------------------------------
# helpers


@pytest.fixture
def ws(workspace: Any) -> Any:
    """The ``workspace`` with this module's three accounts and five meters."""
    workspace.config(CONFIG)
    return workspace


def load(ws: Any, *rows: str) -> None:
    """Pull ``rows`` (``account,resource,meter,start,end,quantity``) as one CSV;
    record ids are ``r1``, ``r2``... in order. All of them must be imported."""
    body = "".join(f"r{i},{row}\n" for i, row in enumerate(rows, 1))
    ws.write("usage/x.csv", HEADER + body)
    result = ws.hub("pull")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"files: {len(rows)} imported, 0 updated, 0 quarantined"


def usage(ws: Any, period: str, *accounts: str) -> dict[tuple[str, str], dict[str, Any]]:
    """``hub usage --period PERIOD [--account A]... --json`` by (account, meter)."""
    args = ["usage", "--period", period]
    for account in accounts:
        args += ["--account", account]
    lines = ws.json(*args)
    assert [(u["account"], u["meter"]) for u in lines] == sorted((u["account"], u["meter"]) for u in lines)
    assert all(u["period"] == period for u in lines)
    return {(u["account"], u["meter"]): u for u in lines}


def row(account: str, meter: str, period: str, records: int, seconds: int, quantity: str) -> dict[str, Any]:
    """The expected JSON object of one usage line."""
    return {"account": account, "meter": meter, "aggregation": AGGREGATIONS[meter], "unit": UNITS[meter],
            "period": period, "records": records, "seconds": seconds, "quantity": quantity}


def line_of(ws: Any, period: str, account: str, meter: str) -> dict[str, Any] | None:
    """The one line of ``account`` and ``meter`` in ``period``, or ``None``."""
    return usage(ws, period, account).get((account, meter))


def seconds_and_quantity(ws: Any, period: str, account: str, meter: str) -> tuple[int, str] | None:
    u = line_of(ws, period, account, meter)
    return None if u is None else (u["seconds"], u["quantity"])


# --------------------------------------------------------------------------
# time: boundaries of months, days and weeks


def test_a_run_across_the_end_of_a_month_is_split_at_midnight_between_months_and_days(ws):
    load(ws, "acme,vm-1,compute.vcpu,2026-10-31T23:59:30Z,2026-11-01T00:00:45Z,1")
    assert usage(ws, "2026-10") == {("acme", "compute.vcpu"): row("acme", "compute.vcpu", "2026-10", 1, 30, "30")}
    assert usage(ws, "2026-11") == {("acme", "compute.vcpu"): row("acme", "compute.vcpu", "2026-11", 1, 45, "45")}
    assert usage(ws, "2026-10-31") == {
        ("acme", "compute.vcpu"): row("acme", "compute.vcpu", "2026-10-31", 1, 30, "30")}
    assert usage(ws, "2026-11-01") == {
        ("acme", "compute.vcpu"): row("acme", "compute.vcpu", "2026-11-01", 1, 45, "45")}
    assert usage(ws, "2026-10-30") == {}
    assert usage(ws, "2026-11-02") == {}


def test_december_ends_at_the_new_year(ws):
    load(ws, "acme,vm-1,compute.vcpu,2026-12-31T23:59:58Z,2027-01-01T00:00:01Z,3")
    assert seconds_and_quantity(ws, "2026-12", "acme", "compute.vcpu") == (2, "6")
    assert seconds_and_quantity(ws, "2027-01", "acme", "compute.vcpu") == (1, "3")
    assert usage(ws, "2027-02") == {}


def test_12_minutes_42_seconds_of_2_vcpu_are_762_seconds_and_1524_vcpu_seconds(ws):
    load(ws, "acme,vm-1,compute.vcpu,2026-10-01T10:00:00Z,2026-10-01T10:12:42Z,2")
    expected = row("acme", "compute.vcpu", "2026-10", 1, 762, "1524")
    assert usage(ws, "2026-10") == {("acme", "compute.vcpu"): expected}
    assert usage(ws, "2026-10-01")[("acme", "compute.vcpu")] == {**expected, "period": "2026-10-01"}
    assert usage(ws, "2026-W40")[("acme", "compute.vcpu")] == {**expected, "period": "2026-W40"}


def test_a_paris_day_holds_25_hours_when_summer_time_ends_and_23_when_it_begins(ws):
    # one record from March to November for each account: every local day of it is covered
    load(ws, "globex,vm-1,compute.vcpu,2026-03-01T00:00:00Z,2026-11-15T00:00:00Z,1",
         "acme,vm-1,compute.vcpu,2026-03-01T00:00:00Z,2026-11-15T00:00:00Z,1")
    assert seconds_and_quantity(ws, "2026-10-25", "globex", "compute.vcpu") == (25 * HOUR, "90000")
    assert seconds_and_quantity(ws, "2026-03-29", "globex", "compute.vcpu") == (23 * HOUR, "82800")
    assert seconds_and_quantity(ws, "2026-10-24", "globex", "compute.vcpu") == (DAY, "86400")
    assert seconds_and_quantity(ws, "2026-10-26", "globex", "compute.vcpu") == (DAY, "86400")
    # the same days of a UTC account are 24 hours
    assert seconds_and_quantity(ws, "2026-10-25", "acme", "compute.vcpu") == (DAY, "86400")
    assert seconds_and_quantity(ws, "2026-03-29", "acme", "compute.vcpu") == (DAY, "86400")


def test_a_paris_day_starts_at_local_midnight(ws):
    # Paris is UTC+2 on 2026-10-24 and UTC+1 on 2026-10-26
    load(ws, "globex,vm-1,compute.vcpu,2026-10-24T00:00:00Z,2026-10-26T23:30:00Z,1")
    # [2026-10-23T22:00Z, 2026-10-24T22:00Z): 22 h of the record
    assert seconds_and_quantity(ws, "2026-10-24", "globex", "compute.vcpu") == (22 * HOUR, "79200")
    # [2026-10-25T23:00Z, 2026-10-26T23:00Z): all 24 h
    assert seconds_and_quantity(ws, "2026-10-26", "globex", "compute.vcpu") == (DAY, "86400")
    # [2026-10-26T23:00Z, ...): the last 30 minutes
    assert seconds_and_quantity(ws, "2026-10-27", "globex", "compute.vcpu") == (1800, "1800")


def test_a_paris_october_holds_745_hours_and_utc_and_auckland_octobers_744(ws):
    load(ws, "globex,vm-1,compute.vcpu,2026-09-15T00:00:00Z,2026-11-15T00:00:00Z,2",
         "acme,vm-1,compute.vcpu,2026-09-15T00:00:00Z,2026-11-15T00:00:00Z,2",
         "kiwi,vm-1,compute.vcpu,2026-09-15T00:00:00Z,2026-11-15T00:00:00Z,2")
    assert usage(ws, "2026-10") == {
        ("acme", "compute.vcpu"): row("acme", "compute.vcpu", "2026-10", 1, 744 * HOUR, "5356800"),
        ("globex", "compute.vcpu"): row("globex", "compute.vcpu", "2026-10", 1, 745 * HOUR, "5364000"),
        ("kiwi", "compute.vcpu"): row("kiwi", "compute.vcpu", "2026-10", 1, 744 * HOUR, "5356800"),
    }


def test_auckland_days_and_months_follow_new_zealand_daylight_saving(ws):
    load(ws, "kiwi,vm-1,compute.vcpu,2026-03-01T00:00:00Z,2026-11-15T00:00:00Z,1")
    # summer time ends on Sunday 2026-04-05 (03:00 -> 02:00), begins on Sunday 2026-09-27 (02:00 -> 03:00)
    assert seconds_and_quantity(ws, "2026-04-05", "kiwi", "compute.vcpu") == (25 * HOUR, "90000")
    assert seconds_and_quantity(ws, "2026-09-27", "kiwi", "compute.vcpu") == (23 * HOUR, "82800")
    assert seconds_and_quantity(ws, "2026-04", "kiwi", "compute.vcpu") == (721 * HOUR, "2595600")
    assert seconds_and_quantity(ws, "2026-09", "kiwi", "compute.vcpu") == (719 * HOUR, "2588400")


def test_a_record_at_2330_utc_on_october_31_belongs_to_november_for_a_paris_account(ws):
    load(ws, "globex,vm-1,network.egress,2026-10-31T23:30:00Z,2026-10-31T23:30:00Z,5",
         "acme,vm-1,network.egress,2026-10-31T23:30:00Z,2026-10-31T23:30:00Z,5",
         "globex,vm-2,compute.vcpu,2026-10-31T23:30:00Z,2026-10-31T23:40:00Z,1",
         "acme,vm-2,compute.vcpu,2026-10-31T23:30:00Z,2026-10-31T23:40:00Z,1",
         # 23:59:59 on Oct 31 and 00:00 on Nov 1 in Auckland (UTC+13)
         "kiwi,vm-1,network.egress,2026-10-31T10:59:59Z,2026-10-31T10:59:59Z,7",
         "kiwi,vm-1,network.egress,2026-10-31T11:00:00Z,2026-10-31T11:00:00Z,11")
    assert usage(ws, "2026-10") == {
        ("acme", "compute.vcpu"): row("acme", "compute.vcpu", "2026-10", 1, 600, "600"),
        ("acme", "network.egress"): row("acme", "network.egress", "2026-10", 1, 0, "5"),
        ("kiwi", "network.egress"): row("kiwi", "network.egress", "2026-10", 1, 0, "7"),
    }
    assert usage(ws, "2026-11-01") == {
        ("globex", "compute.vcpu"): row("globex", "compute.vcpu", "2026-11-01", 1, 600, "600"),
        ("globex", "network.egress"): row("globex", "network.egress", "2026-11-01", 1, 0, "5"),
        ("kiwi", "network.egress"): row("kiwi", "network.egress", "2026-11-01", 1, 0, "11"),
    }
    assert seconds_and_quantity(ws, "2026-11", "globex", "network.egress") == (0, "5")
    assert seconds_and_quantity(ws, "2026-10-31", "acme", "network.egress") == (0, "5")
    assert seconds_and_quantity(ws, "2026-10-31", "globex", "network.egress") is None


def test_an_iso_week_runs_from_monday_midnight_to_the_next_monday(ws):
    load(ws, "acme,vm-1,compute.vcpu,2026-10-18T00:00:00Z,2026-10-27T00:00:00Z,1",
         "globex,vm-1,compute.vcpu,2026-10-18T00:00:00Z,2026-10-27T00:00:00Z,1",
         "acme,vm-1,network.egress,2026-10-18T23:59:59Z,2026-10-18T23:59:59Z,8",
         "acme,vm-1,network.egress,2026-10-19T00:00:00Z,2026-10-19T00:00:00Z,1",
         "acme,vm-1,network.egress,2026-10-25T23:59:59Z,2026-10-25T23:59:59Z,2",
         "acme,vm-1,network.egress,2026-10-26T00:00:00Z,2026-10-26T00:00:00Z,4")
    assert usage(ws, "2026-W43") == {
        # Mon 2026-10-19 00:00 to Mon 2026-10-26 00:00 UTC
        ("acme", "compute.vcpu"): row("acme", "compute.vcpu", "2026-W43", 1, 7 * DAY, "604800"),
        ("acme", "network.egress"): row("acme", "network.egress", "2026-W43", 2, 0, "3"),
        # Paris: 2026-10-18T22:00Z to 2026-10-25T23:00Z, 169 h with the hour of 2026-10-25
        ("globex", "compute.vcpu"): row("globex", "compute.vcpu", "2026-W43", 1, 169 * HOUR, "608400"),
    }
    assert seconds_and_quantity(ws, "2026-W42", "acme", "network.egress") == (0, "8")
    assert seconds_and_quantity(ws, "2026-W44", "acme", "network.egress") == (0, "4")
    # Mon 2026-10-26 00:00 to 2026-10-27 00:00: one day of the run
    assert seconds_and_quantity(ws, "2026-W44", "acme", "compute.vcpu") == (DAY, "86400")


def test_2026_has_a_53rd_iso_week_across_the_new_year(ws):
    load(ws, "acme,vm-1,compute.vcpu,2026-12-27T23:00:00Z,2027-01-04T01:00:00Z,1")
    # Mon 2026-12-28 to Mon 2027-01-04
    assert seconds_and_quantity(ws, "2026-W53", "acme", "compute.vcpu") == (7 * DAY, "604800")
    assert seconds_and_quantity(ws, "2027-W01", "acme", "compute.vcpu") == (HOUR, "3600")


# --------------------------------------------------------------------------
# meters: the five aggregations


def test_an_instantaneous_sum_record_at_the_period_start_counts_in_that_period_and_not_the_previous(ws):
    load(ws, "acme,vm-1,network.egress,2026-11-01T00:00:00Z,2026-11-01T00:00:00Z,7",
         # 00:00 on Nov 1 in Paris
         "globex,vm-1,network.egress,2026-10-31T23:00:00Z,2026-10-31T23:00:00Z,9")
    assert usage(ws, "2026-10") == {}
    assert usage(ws, "2026-10-31") == {}
    assert usage(ws, "2026-11-01") == {
        ("acme", "network.egress"): row("acme", "network.egress", "2026-11-01", 1, 0, "7"),
        ("globex", "network.egress"): row("globex", "network.egress", "2026-11-01", 1, 0, "9"),
    }
    assert seconds_and_quantity(ws, "2026-11", "acme", "network.egress") == (0, "7")


def test_a_sum_counts_the_records_that_start_in_the_period_not_those_that_only_overlap_it(ws):
    load(ws, "acme,vm-1,network.egress,2026-09-30T23:00:00Z,2026-10-01T01:00:00Z,100",
         "acme,vm-1,network.egress,2026-10-10T00:00:00Z,2026-10-10T00:10:00Z,2.5",
         "acme,vm-1,network.egress,2026-10-31T23:00:00Z,2026-11-01T02:00:00Z,4")
    # all three overlap October; only the last two start in it
    assert usage(ws, "2026-10") == {
        ("acme", "network.egress"): row("acme", "network.egress", "2026-10", 3, HOUR + 600 + HOUR, "6.5")}
    assert seconds_and_quantity(ws, "2026-09", "acme", "network.egress") == (HOUR, "100")


def test_sum_quantities_with_decimals_are_summed_exactly(ws):
    load(ws, "acme,vm-1,network.egress,2026-10-05T00:00:00Z,2026-10-05T00:00:00Z,0.1",
         "acme,vm-2,network.egress,2026-10-06T00:00:00Z,2026-10-06T00:00:00Z,0.2",
         "kiwi,vm-1,network.egress,2026-10-05T00:00:00Z,2026-10-05T00:00:00Z,0.000000001",
         "kiwi,vm-1,network.egress,2026-10-06T00:00:00Z,2026-10-06T00:00:00Z,0.000000001",
         "kiwi,vm-1,network.egress,2026-10-07T00:00:00Z,2026-10-07T00:00:00Z,0.000000001",
         "globex,vm-1,network.egress,2026-10-05T00:00:00Z,2026-10-05T00:00:00Z,123456789.987654321",
         "globex,vm-1,network.egress,2026-10-06T00:00:00Z,2026-10-06T00:00:00Z,0.012345679",
         "globex,vm-1,network.egress,2026-10-07T00:00:00Z,2026-10-07T00:00:00Z,999999999999999.999999999")
    got = usage(ws, "2026-10")
    assert got[("acme", "network.egress")]["quantity"] == "0.3"
    assert got[("kiwi", "network.egress")]["quantity"] == "0.000000003"
    # 123456790 + 999999999999999.999999999
    assert got[("globex", "network.egress")]["quantity"] == "1000000123456789.999999999"
    assert {k: (u["records"], u["seconds"]) for k, u in got.items()} == {
        ("acme", "network.egress"): (2, 0), ("kiwi", "network.egress"): (3, 0), ("globex", "network.egress"): (3, 0)}


def test_max_is_the_largest_quantity_among_the_records_overlapping_the_period(ws):
    load(ws, "acme,vm-1,memory.peak,2026-09-20T00:00:00Z,2026-10-02T00:00:00Z,8",
         "acme,vm-2,memory.peak,2026-10-10T00:00:00Z,2026-10-11T00:00:00Z,16.5",
         "acme,vm-3,memory.peak,2026-10-12T00:00:00Z,2026-10-13T00:00:00Z,16.25",
         "acme,vm-4,memory.peak,2026-10-14T00:00:00Z,2026-10-14T01:00:00Z,9.999999999",
         # ends where October starts, starts where it ends: not in it
         "acme,vm-5,memory.peak,2026-09-01T00:00:00Z,2026-10-01T00:00:00Z,64",
         "acme,vm-6,memory.peak,2026-11-01T00:00:00Z,2026-11-02T00:00:00Z,128")
    assert usage(ws, "2026-10") == {
        ("acme", "memory.peak"): row("acme", "memory.peak", "2026-10", 4, DAY + DAY + DAY + HOUR, "16.5")}
    assert usage(ws, "2026-09") == {
        ("acme", "memory.peak"): row("acme", "memory.peak", "2026-09", 2, 11 * DAY + 30 * DAY, "64")}
    assert seconds_and_quantity(ws, "2026-11-01", "acme", "memory.peak") == (DAY, "128")
    assert seconds_and_quantity(ws, "2026-10-12", "acme", "memory.peak") == (DAY, "16.25")
    assert seconds_and_quantity(ws, "2026-10-14", "acme", "memory.peak") == (HOUR, "9.999999999")


def test_unique_counts_the_distinct_resources_overlapping_the_period(ws):
    load(ws, "acme,ip-1,ip.address,2026-10-01T00:00:00Z,2026-10-02T00:00:00Z,1",
         "acme,ip-1,ip.address,2026-10-05T00:00:00Z,2026-10-06T00:00:00Z,1",
         "acme,ip-2,ip.address,2026-10-10T00:00:00Z,2026-10-11T00:00:00Z,1",
         "acme,ip-3,ip.address,2026-09-01T00:00:00Z,2026-09-02T00:00:00Z,1",
         "acme,ip-4,ip.address,2026-11-01T00:00:00Z,2026-11-01T00:00:00Z,1",
         "acme,ip-5,ip.address,2026-09-30T23:00:00Z,2026-10-01T01:00:00Z,1",
         # 00:30 to 01:00 on Oct 1 in Paris, September 30 in UTC
         "globex,ip-1,ip.address,2026-09-30T22:30:00Z,2026-09-30T23:00:00Z,1",
         "globex,ip-9,ip.address,2026-10-20T00:00:00Z,2026-10-20T00:00:00Z,1")
    assert usage(ws, "2026-10") == {
        ("acme", "ip.address"): row("acme", "ip.address", "2026-10", 4, 3 * DAY + HOUR, "3"),
        ("globex", "ip.address"): row("globex", "ip.address", "2026-10", 2, 1800, "2"),
    }
    assert seconds_and_quantity(ws, "2026-09", "acme", "ip.address") == (DAY + HOUR, "2")


def test_latest_is_the_quantity_of_the_record_with_the_latest_start_before_the_period_end(ws):
    load(ws, "acme,disk-1,storage.size,2026-10-20T00:00:00Z,2026-10-21T00:00:00Z,7",
         "acme,disk-1,storage.size,2026-10-31T23:59:59Z,2026-10-31T23:59:59Z,3.25",
         "acme,disk-1,storage.size,2026-10-05T00:00:00Z,2026-10-06T00:00:00Z,9",
         "acme,disk-1,storage.size,2026-10-10T00:00:00Z,2026-10-11T00:00:00Z,4",
         "acme,disk-1,storage.size,2026-09-20T00:00:00Z,2026-10-03T00:00:00Z,1",
         "acme,disk-1,storage.size,2026-11-01T00:00:00Z,2026-11-01T00:00:00Z,50",
         "acme,disk-1,storage.size,2026-11-02T00:00:00Z,2026-11-03T00:00:00Z,100",
         # 23:30 on Oct 31 and 00:30 on Nov 1 in Paris
         "globex,disk-1,storage.size,2026-10-31T22:30:00Z,2026-10-31T22:30:00Z,11",
         "globex,disk-1,storage.size,2026-10-31T23:30:00Z,2026-10-31T23:30:00Z,22")
    assert usage(ws, "2026-10") == {
        ("acme", "storage.size"): row("acme", "storage.size", "2026-10", 5, 2 * DAY + 2 * DAY + DAY, "3.25"),
        ("globex", "storage.size"): row("globex", "storage.size", "2026-10", 1, 0, "11"),
    }
    assert seconds_and_quantity(ws, "2026-10-20", "acme", "storage.size") == (DAY, "7")
    assert seconds_and_quantity(ws, "2026-10-31", "acme", "storage.size") == (0, "3.25")
    assert seconds_and_quantity(ws, "2026-11-01", "acme", "storage.size") == (0, "50")
    assert seconds_and_quantity(ws, "2026-11-01", "globex", "storage.size") == (0, "22")


def test_a_running_record_counts_to_the_end_of_a_closed_period(ws):
    load(ws, "acme,vm-1,compute.vcpu,2026-03-31T12:00:00Z,,2",
         "globex,vm-1,compute.vcpu,2026-03-31T12:00:00Z,,2",
         "acme,vm-1,memory.peak,2026-03-31T12:00:00Z,,32")
    assert usage(ws, "2026-03") == {
        ("acme", "compute.vcpu"): row("acme", "compute.vcpu", "2026-03", 1, 12 * HOUR, "86400"),
        ("acme", "memory.peak"): row("acme", "memory.peak", "2026-03", 1, 12 * HOUR, "32"),
        # Paris: to 2026-03-31T22:00Z, midnight of April 1 in summer time
        ("globex", "compute.vcpu"): row("globex", "compute.vcpu", "2026-03", 1, 10 * HOUR, "72000"),
    }
    assert seconds_and_quantity(ws, "2026-04", "acme", "compute.vcpu") == (30 * DAY, "5184000")
    assert seconds_and_quantity(ws, "2026-04-15", "acme", "memory.peak") == (DAY, "32")
    assert usage(ws, "2026-03-30") == {}


def test_a_running_record_counts_to_now_in_the_open_period(ws):
    from hub.cli.main import Workspace as CliWorkspace
    from hub.periods import parse_period
    from hub.usage_report import usage_lines

    load(ws, "acme,vm-1,compute.vcpu,2026-10-15T00:00:00Z,,2",
         "acme,vm-2,compute.vcpu,2026-09-30T12:00:00Z,,1")
    cli_ws = CliWorkspace(ws.config_path)
    try:
        now = datetime(2026, 10, 15, 6, 0, tzinfo=timezone.utc)
        lines = usage_lines(cli_ws.engine, cli_ws.config(), parse_period("2026-10"), ["acme"], now=now)
        # vm-1: 6 h x 2, vm-2: 14 days 6 h x 1
        assert [(u.account, u.meter, u.records, u.seconds, u.quantity) for u in lines] == [
            ("acme", "compute.vcpu", 2, 6 * HOUR + 14 * DAY + 6 * HOUR, Decimal(2 * 6 * HOUR + 14 * DAY + 6 * HOUR))]
        # the period before has closed: vm-2 runs to its end
        lines = usage_lines(cli_ws.engine, cli_ws.config(), parse_period("2026-09"), ["acme"], now=now)
        assert [(u.records, u.seconds, u.quantity) for u in lines] == [(1, 12 * HOUR, Decimal(12 * HOUR))]
    finally:
        cli_ws.engine.dispose()


def test_fractional_quantities_times_seconds_are_exact(ws):
    load(ws, "acme,vm-1,compute.vcpu,2026-10-05T00:00:00Z,2026-10-06T00:00:00Z,0.123456789",
         "globex,vm-1,compute.vcpu,2026-10-05T00:00:00Z,2026-10-05T00:00:03Z,0.1",
         "globex,vm-2,compute.vcpu,2026-10-05T00:00:00Z,2026-10-05T00:00:03Z,0.2",
         "kiwi,vm-1,compute.vcpu,2026-10-05T00:00:00Z,2026-10-05T00:00:01Z,0.000000001",
         "kiwi,vm-2,compute.vcpu,2026-10-05T00:00:00Z,2026-10-05T00:00:07Z,99999.999999999")
    got = usage(ws, "2026-10")
    assert got[("acme", "compute.vcpu")] == row("acme", "compute.vcpu", "2026-10", 1, DAY, "10666.6665696")
    assert got[("globex", "compute.vcpu")] == row("globex", "compute.vcpu", "2026-10", 2, 6, "0.9")
    # 0.000000001 + 699999.999999993
    assert got[("kiwi", "compute.vcpu")] == row("kiwi", "compute.vcpu", "2026-10", 2, 8, "699999.999999994")


def test_a_large_quantity_over_a_whole_month_is_exact(ws):
    # 10 TB in bytes for the 2 678 400 s of October: more than 2^63 byte-seconds
    load(ws, "acme,disk-1,compute.vcpu,2026-10-01T00:00:00Z,2026-11-01T00:00:00Z,10000000000001")
    assert seconds_and_quantity(ws, "2026-10", "acme", "compute.vcpu") == (31 * DAY, "26784000000002678400")


# --------------------------------------------------------------------------
# the command: accounts, periods, table


def test_account_filters_the_lines_and_can_be_repeated(ws):
    load(ws, "acme,vm-1,compute.vcpu,2026-10-05T00:00:00Z,2026-10-05T00:00:10Z,1",
         "globex,vm-1,compute.vcpu,2026-10-05T00:00:00Z,2026-10-05T00:00:20Z,1",
         "kiwi,vm-1,network.egress,2026-10-05T00:00:00Z,2026-10-05T00:00:00Z,3")
    assert list(usage(ws, "2026-10")) == [("acme", "compute.vcpu"), ("globex", "compute.vcpu"),
                                         ("kiwi", "network.egress")]
    assert usage(ws, "2026-10", "globex") == {
        ("globex", "compute.vcpu"): row("globex", "compute.vcpu", "2026-10", 1, 20, "20")}
    assert list(usage(ws, "2026-10", "kiwi", "acme")) == [("acme", "compute.vcpu"), ("kiwi", "network.egress")]
    assert usage(ws, "2026-09", "acme") == {}


def test_an_unknown_account_exits_2(ws):
    result = ws.hub("usage", "--period", "2026-10", "--account", "acme", "--account", "nobody")
    assert result.exit_code == 2
    assert "unknown account 'nobody'" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("period", ["2026-13", "2026-00", "2026-02-30", "0000-W01", "2026-1", "Oct 2026"])
def test_a_bad_period_exits_2_listing_the_accepted_forms(ws, period):
    result = ws.hub("usage", "--period", period, "--json")
    assert result.exit_code == 2
    assert f"{period!r} is not a period: {PERIOD_FORMS}" in " ".join(result.stderr.split())
    assert result.stdout == ""


@pytest.mark.parametrize(("period", "weeks"), [("2027-W53", "2027 has ISO weeks W01 to W52"),
                                               ("2026-W54", "2026 has ISO weeks W01 to W53"),
                                               ("2026-W00", "2026 has ISO weeks W01 to W53")])
def test_a_week_the_year_does_not_have_exits_2_saying_how_many_it_has(ws, period, weeks):
    result = ws.hub("usage", "--period", period, "--json")
    assert result.exit_code == 2
    assert f"{period!r} is not a period: {weeks}" in " ".join(result.stderr.split())
    assert result.stdout == ""


def test_the_table_shows_a_header_and_one_row_per_account_and_meter(ws):
    load(ws, "acme,vm-1,compute.vcpu,2026-10-01T10:00:00Z,2026-10-01T10:12:42Z,2",
         "globex,ip-1,ip.address,2026-10-02T00:00:00Z,2026-10-02T00:00:05Z,1")
    result = ws.hub("usage", "--period", "2026-10")
    assert result.exit_code == 0, result.output
    lines = [line.split() for line in result.stdout.splitlines() if line.strip()]
    assert " ".join(lines[0]) == "usage for 2026-10 (2026-10-01 to 2026-11-01, each account in its time zone)"
    assert lines[1:] == [
        ["account", "meter", "aggregation", "records", "seconds", "quantity", "unit"],
        ["acme", "compute.vcpu", "time_weighted", "1", "762", "0.423", "vCPU-h"],  # 1524 vCPU-s
        ["globex", "ip.address", "unique", "1", "5", "1"],
    ]
