"""The small things an operator reads: where a TOML syntax error is, a date
that does not exist called so, units as the documents write them in
``hub rate``, a price where a price belongs, money with its minor digits,
a credit's expiry as a day.

Tests that only check a configuration run on SQLite; those that pull,
rate or write the store run on SQLite and PostgreSQL (``workspace``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.timestamps import impossible_date, parse_timestamp
from tests.conftest import HEADER, METERS_AND_ACCOUNTS, Workspace


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path, f"sqlite:///{tmp_path / 'hub.db'}")


def check_errors(ws: Workspace) -> list[str]:
    result = ws.hub("check")
    assert result.exit_code == 2, result.output
    return result.stderr.splitlines()


# --------------------------------------------------------------------------
# TOML syntax errors and impossible dates


def test_a_toml_syntax_error_names_its_file_line_and_column(ws):
    ws.write("hub.toml", 'include = ["config/*.toml"]\n')
    ws.write("config/catalog.toml", '[[meters]]\nname = "m"\naggregation = = "sum"\n')
    assert check_errors(ws) == [
        "error: config/catalog.toml: line 3, column 15: not valid TOML: invalid value",
        "hub: 1 configuration error",
    ]


def test_a_toml_syntax_error_at_the_end_of_a_file_names_its_last_line(ws):
    ws.write("hub.toml", '[hub]\ncurrency = "EUR"\nx = [1,\n')
    assert check_errors(ws) == [
        "error: hub.toml: line 3, column 8: not valid TOML: invalid value",
        "hub: 1 configuration error",
    ]


def test_a_toml_date_that_does_not_exist_is_an_impossible_date_at_its_line(ws):
    ws.config(METERS_AND_ACCOUNTS + '\n[[credits]]\naccount = "acme"\namount = "5.00"\nkind = "prepaid"\n'
                                    'expires = 2026-11-31\n')
    assert check_errors(ws) == [
        "error: hub.toml: line 29, column 11: '2026-11-31' is an impossible date: November 2026 has 30 days",
        "hub: 1 configuration error",
    ]


def test_a_date_string_that_does_not_exist_in_hub_toml_is_an_impossible_date(ws):
    ws.config(METERS_AND_ACCOUNTS.replace('country = "DE"\n', 'country = "DE"\nsince = "2026-11-31"\n')
              + '\n[[discounts]]\naccount = "globex"\npercent = "5"\nvalid_until = "2026-02-29"\n')
    assert check_errors(ws) == [
        "error: hub.toml: accounts[1] \"acme\": since: '2026-11-31' is an impossible date: November 2026 has 30 days",
        "error: hub.toml: discounts[1]: valid_until: '2026-02-29' is an impossible date: February 2026 has 28 days",
        "hub: 2 configuration errors",
    ]


@pytest.mark.parametrize(("text", "words"), [
    ("2026-11-31T10:00:00Z", "'2026-11-31T10:00:00Z' is an impossible date: November 2026 has 30 days"),
    ("2026-02-29T10:00:00+01:00", "'2026-02-29T10:00:00+01:00' is an impossible date: February 2026 has 28 days"),
    ("2026-00-10T10:00:00Z", "'2026-00-10T10:00:00Z' is an impossible date: there is no month 00"),
    ("2026-11-30T24:00:00Z", "'2026-11-30T24:00:00Z' is an impossible time: hours go from 00 to 23"),
    ("2026-11-30T10:60:00Z", "'2026-11-30T10:60:00Z' is an impossible time: minutes go from 00 to 59"),
    ("2026-11-30T23:59:60Z", "'2026-11-30T23:59:60Z' is a leap second, which the hub does not count: write :59"),
    ("2026-11-31", "'2026-11-31' is an impossible date: November 2026 has 30 days"),
    ("2026-11-30", "'2026-11-30' is a date, not a timestamp"),
    ("30/11/2026", "'30/11/2026' is not an RFC 3339 timestamp"),
])
def test_a_usage_timestamp_that_does_not_exist_is_called_impossible(text, words):
    assert parse_timestamp(text) == (None, words)


def test_a_leap_day_exists_in_a_leap_year():
    assert impossible_date("2028-02-29T10:00:00Z") is None
    assert parse_timestamp("2028-02-29T00:00:00Z") == (1835395200, None)


def test_a_usage_row_dated_on_a_day_that_does_not_exist_is_quarantined_as_an_impossible_date(workspace):
    workspace.config(METERS_AND_ACCOUNTS + '\n[[sources]]\nname = "files"\ntype = "csv"\npath = "usage/*.csv"\n')
    workspace.write("usage/x.csv", HEADER + "r1,acme,vm-1,compute.vcpu,2026-11-31T10:00:00Z,2026-12-01T10:00:00Z,2\n"
                                            "r2,acme,vm-1,compute.vcpu,2026-11-30T10:00:00Z,,2\n", dedent=False)
    result = workspace.hub("pull")
    assert result.exit_code == 3, result.output
    (row,) = workspace.json("quarantine", "list")
    assert row["errors"] == ["start: '2026-11-31T10:00:00Z' is an impossible date: November 2026 has 30 days"]


def test_a_record_in_another_unit_than_its_meter_is_worded_without_a_doubled_quote(workspace):
    workspace.config(METERS_AND_ACCOUNTS + '\n[[sources]]\nname = "files"\ntype = "csv"\npath = "usage/*.csv"\n')
    workspace.write("usage/x.csv", "record_id,account,resource_id,meter,start,end,quantity,unit\n"
                                   "r1,acme,vm-1,compute.vcpu,2026-11-30T10:00:00Z,2026-11-30T11:00:00Z,2,GB\n",
                    dedent=False)
    assert workspace.hub("pull").exit_code == 3
    (row,) = workspace.json("quarantine", "list")
    assert row["errors"] == ["unit 'GB' is not the unit of meter 'compute.vcpu' ('vCPU')"]


# --------------------------------------------------------------------------
# hub rate: units and prices as the documents write them

CATALOG = """
[[meters]]
name = "compute.vcpu"
aggregation = "time_weighted"
unit = "vCPU"

[[meters]]
name = "storage.block"
aggregation = "time_weighted"
unit = "GiB"

[[meters]]
name = "network.egress"
aggregation = "sum"
unit = "GB"

[[meters]]
name = "batch.jobs"
aggregation = "sum"

[[products]]
name = "vcpu"
meter = "compute.vcpu"
per = "second"
price = { model = "per_unit", unit_price = "0.0000115" }

[[products]]
name = "block"
meter = "storage.block"
per = "hour"
price = { model = "graduated", tiers = [ { up_to = "1", unit_price = "0.01" }, { up_to = "10", unit_price = "0.005" }, { unit_price = "0.001" } ] }

[[products]]
name = "egress"
meter = "network.egress"
price = { model = "volume", tiers = [ { up_to = "100", unit_price = "0.02" }, { unit_price = "0.01" } ] }

[[products]]
name = "jobs"
meter = "batch.jobs"
price = { model = "package", size = "100", package_price = "1.50" }

[[products]]
name = "support"
price = { model = "flat", amount = "49.00" }

[[accounts]]
id = "acme"
name = "ACME GmbH"
country = "DE"
plans = ["support"]

[[sources]]
name = "files"
type = "csv"
path = "usage/*.csv"
"""

USAGE = HEADER + """\
r1,acme,vm-1,compute.vcpu,2026-10-01T10:00:00Z,2026-10-01T12:00:00Z,10
r2,acme,disk-1,storage.block,2026-10-01T00:00:00Z,2026-10-01T20:00:00Z,1
r3,acme,vm-1,network.egress,2026-10-01T10:00:00Z,2026-10-01T10:00:00Z,42.5
r4,acme,batch,batch.jobs,2026-10-01T10:00:00Z,2026-10-01T10:00:00Z,150
"""


def test_hub_rate_labels_units_as_the_documents_do_and_shows_a_price_per_line(workspace):
    workspace.config(CATALOG)
    workspace.write("usage/oct.csv", USAGE, dedent=False)
    assert workspace.hub("pull").exit_code == 0
    result = workspace.hub("rate", "--period", "2026-10")
    assert result.exit_code == 0, result.output
    rows = [line.split("  ") for line in result.stdout.splitlines()[2:]]
    assert [[cell.strip() for cell in row if cell.strip()] for row in rows] == [
        ["acme", "block", "20", "GiB-h", "graduated: 3 tiers", "0.07 EUR", "1"],
        ["acme", "egress", "42.5", "GB", "volume: 2 tiers", "0.85 EUR", "1"],
        ["acme", "jobs", "150", "unit", "1.50 EUR per 100", "3.00 EUR", "1"],
        ["acme", "support", "1", "period", "49.00 EUR / period", "49.00 EUR", "0"],
        ["acme", "vcpu", "72000", "vCPU-s", "0.0000115 EUR / vCPU-s", "0.83 EUR", "1"],
    ]


def test_hub_trace_names_the_meter_unit_as_the_documents_do(workspace):
    workspace.config(CATALOG)
    workspace.write("usage/oct.csv", USAGE, dedent=False)
    assert workspace.hub("pull").exit_code == 0
    result = workspace.hub("trace", "--period", "2026-10", "--account", "acme", "--product", "block")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-2:] == [
        "1 record counted of 1: quantity 72000 in the meter's unit (GiB-s)",
        "line block: 20 GiB-h -> 0.07 EUR",
    ]


SELLER = """
[seller]
name = "Example Cloud GmbH"
country = "DE"
vat_id = "DE136695976"

[tax.rates]
DE = "19"
"""


def test_hub_invoices_show_labels_units_as_the_documents_do(workspace):
    workspace.config(CATALOG + SELLER)
    workspace.write("usage/oct.csv", USAGE, dedent=False)
    assert workspace.hub("pull").exit_code == 0
    assert workspace.hub("invoice", "--period", "2026-10").exit_code == 0
    result = workspace.hub("invoices", "show", "INV-2026-000001")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    header = lines.index(next(line for line in lines if line.startswith("#  account")))
    # (a tiered or package price has no unit price of its own: its tiers are in the JSON)
    assert [line.split()[3:] for line in lines[header + 1:header + 6]] == [
        ["20", "GiB-h", "0.07", "EUR"],
        ["42.5", "GB", "0.85", "EUR"],
        ["150", "unit", "3.00", "EUR"],
        ["1", "unit", "49.00", "49.00", "EUR"],
        ["72000", "vCPU-s", "0.0000115", "0.83", "EUR"],
    ]


# --------------------------------------------------------------------------
# hub charge add and hub credits


def test_hub_charge_add_answers_the_amount_with_the_currencys_minor_digits(workspace):
    workspace.config(METERS_AND_ACCOUNTS)
    result = workspace.hub("charge", "add", "acme", "--amount", "10", "--description", "Setup")
    assert result.exit_code == 0, result.output
    assert result.stdout == "charge 1: 10.00 EUR for acme, on its next invoice\n"


def test_hub_credits_prints_the_last_day_a_grant_pays_not_an_instant(workspace):
    workspace.config(METERS_AND_ACCOUNTS + '\n[[credits]]\naccount = "globex"\namount = "25.00"\n'
                                           'kind = "promotional"\nexpires = "2027-06-30"\n')
    result = workspace.hub("credits", "globex")
    assert result.exit_code == 0, result.output
    (row,) = [line.split() for line in result.stdout.splitlines() if line.startswith("g-")]
    assert row[1:] == ["promotional", "25.00", "EUR", "25.00", "EUR", "2027-06-30"]


@pytest.mark.parametrize(("args", "message"), [
    (("statement", "acme", "--as-of", "2026-11-31"),
     "hub: --as-of: '2026-11-31' is an impossible date: November 2026 has 30 days"),
    (("invoices", "pay", "INV-1", "--amount", "1", "--date", "2026-02-30"),
     "hub: --date: '2026-02-30' is an impossible date: February 2026 has 28 days"),
    (("invoices", "pay", "INV-1", "--amount", "1", "--date", "30.11.2026"),
     "hub: --date: '30.11.2026' is not a date such as 2026-11-05"),
    (("invoice", "--period", "2026-13"), "hub: '2026-13' is not a period: write 2026-10 (a month), 2026-W43 (an ISO "
                                         "week) or 2026-10-15 (a day); there is no month 13"),
    (("invoice", "--period", "2026-11-31"), "hub: '2026-11-31' is not a period: write 2026-10 (a month), 2026-W43 (an "
                                            "ISO week) or 2026-10-15 (a day); November 2026 has 30 days"),
    (("invoice", "--period", "2025-W53"), "hub: '2025-W53' is not a period: 2025 has ISO weeks W01 to W52"),
    (("invoice", "--period", "2026-1"),
     "hub: '2026-1' is not a period: write 2026-10 (a month), 2026-W43 (an ISO week) or 2026-10-15 (a day)"),
])
def test_a_date_or_period_given_on_the_command_line_that_does_not_exist_is_called_impossible(ws, args, message):
    ws.config(METERS_AND_ACCOUNTS)
    result = ws.hub(*args)
    assert (result.exit_code, result.stderr.strip()) == (2, message)
