"""``hub usage`` shows time-weighted usage in unit-hours, as the documents do; --json keeps unit-seconds."""

from decimal import Decimal

import pytest

from hub.cli.base import shown_usage
from tests.conftest import HEADER


def test_hub_usage_shows_time_weighted_meters_in_unit_hours_and_json_in_unit_seconds(workspace):
    workspace.write("usage/a.csv", HEADER
                    + "r1,acme,vm-1,compute.vcpu,2026-10-01T10:00:00Z,2026-10-01T10:12:42Z,2\n"
                    + "r2,acme,vm-1,network.egress,2026-10-01T10:00:00Z,2026-10-01T10:00:00Z,1.5\n")
    assert workspace.hub("pull").exit_code == 0

    shown = workspace.hub("usage", "--period", "2026-10", "--account", "acme")

    assert shown.exit_code == 0, shown.output
    rows = [line.split() for line in shown.stdout.splitlines()[2:]]
    assert rows == [["acme", "compute.vcpu", "time_weighted", "1", "762", "0.423", "vCPU-h"],
                    ["acme", "network.egress", "sum", "1", "0", "1.5", "GB"]]
    assert [u["quantity"] for u in workspace.json("usage", "--period", "2026-10", "--account", "acme")] == \
        ["1524", "1.5"]


@pytest.mark.parametrize(("aggregation", "unit", "quantity", "expected"), [
    ("time_weighted", "GiB", Decimal("31952175"), ("8875.604", "GiB-h")),
    ("time_weighted", "vCPU", Decimal("7200"), ("2", "vCPU-h")),
    ("time_weighted", "vCPU", Decimal("5"), ("0.001", "vCPU-h")),   # 0.0013888 rounds half-up to 0.001
    ("time_weighted", "vCPU", Decimal("1.8"), ("0.001", "vCPU-h")),  # 0.0005 rounds up, not to even
    ("time_weighted", None, Decimal("3600"), ("1", "unit-h")),
    ("max", "vCPU", Decimal("2.50"), ("2.50", "vCPU")),
    ("unique", None, Decimal("3"), ("3", "")),
])
def test_a_meter_quantity_is_shown_in_the_unit_people_read(aggregation, unit, quantity, expected):
    assert shown_usage(aggregation, unit, quantity) == expected
