"""What-if: ``hub rate --catalog OTHER.toml`` rates the same usage
under another catalog and prints old against new per account and product."""

from __future__ import annotations

from typing import Any

import hub.cli.rate  # noqa: F401 - registers ``hub rate``
from tests.test_rating import load, setup

ACCOUNTS = """
[[accounts]]
id = "acme"

[[accounts]]
id = "globex"
prices = { vcpu = { model = "per_unit", unit_price = "0.00001" } }
"""

CATALOG = """
[[products]]
name = "vcpu"
meter = "compute.vcpu"
price = { model = "per_unit", unit_price = "0.0000115" }

[[products]]
name = "egress"
meter = "network.egress"
price = { model = "per_unit", unit_price = "0.01" }
"""

# 10-minute slices instead of seconds, egress dropped, IPs added
SLICES = """
[[products]]
name = "vcpu"
meter = "compute.vcpu"
granularity = "10m"
price = { model = "per_unit", unit_price = "0.0000115" }

[[products]]
name = "ip"
meter = "ips"
price = { model = "per_unit", unit_price = "2" }
"""

ROWS = ("acme,vm-1,compute.vcpu,2026-10-01T10:00:00Z,2026-10-01T10:12:42Z,1",   # 762 s -> 1200 s
        "acme,vm-2,compute.vcpu,2026-10-02T00:00:00Z,2026-10-03T00:00:00Z,4",   # 86400 s either way
        "acme,vm-1,network.egress,2026-10-05T00:00:00Z,2026-10-05T00:00:00Z,100",
        "acme,1.2.3.4,ips,2026-10-01T00:00:00Z,2026-10-03T00:00:00Z,1",
        "globex,vm-9,compute.vcpu,2026-10-01T00:00:00Z,2026-10-01T00:00:01Z,1000000")


def what_if(ws: Any, *extra: str) -> dict[str, Any]:
    return ws.json("rate", "--period", "2026-10", "--catalog", str(ws.root / "slices.toml"), *extra)


def brief(side: dict[str, Any] | None) -> tuple[str, str] | None:
    return None if side is None else (side["quantity"], side["amount"])


def test_the_same_usage_under_another_catalog_old_against_new(workspace):
    setup(workspace, CATALOG, accounts=ACCOUNTS)
    load(workspace, *ROWS)
    workspace.write("slices.toml", SLICES)
    got = what_if(workspace)
    assert [(d["account"], d["product"], brief(d["old"]), brief(d["new"]), d["change"]) for d in got["lines"]] == [
        ("acme", "egress", ("100", "1.00"), None, "-1.00"),
        ("acme", "ip", None, ("1", "2.00"), "2.00"),
        # 762 + 345600 vCPU-s = 3.98 EUR; 1200 + 345600 = 3.99 EUR
        ("acme", "vcpu", ("346362", "3.98"), ("346800", "3.99"), "0.01"),
        # globex's contract price stays under the new catalog: 1 s -> 600 s of 1,000,000 vCPU
        ("globex", "vcpu", ("1000000", "10.00"), ("600000000", "6000.00"), "5990.00"),
    ]
    assert got["accounts"] == [
        {"account": "acme", "currency": "EUR", "old": "4.98", "new": "5.99", "change": "1.01"},
        {"account": "globex", "currency": "EUR", "old": "10.00", "new": "6000.00", "change": "5990.00"},
    ]


def test_the_what_if_table_shows_the_change_per_account(workspace):
    setup(workspace, CATALOG, accounts=ACCOUNTS)
    load(workspace, *ROWS)
    workspace.write("slices.toml", SLICES)
    result = workspace.hub("rate", "--period", "2026-10", "--account", "acme", "--catalog",
                           str(workspace.root / "slices.toml"))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"2026-10 rated under the configuration's catalog (old) and under " \
                       f"{workspace.root / 'slices.toml'} (new)"
    assert lines[4].split() == ["acme", "vcpu", "346362", "vCPU-s", "3.98", "346800", "vCPU-s", "3.99", "+0.01", "EUR"]
    assert lines[-1].split() == ["acme", "4.98", "EUR", "5.99", "EUR", "+1.01", "EUR", "+20.28"]


def test_a_what_if_catalog_is_checked_like_the_configuration(workspace):
    setup(workspace, CATALOG, accounts=ACCOUNTS)
    workspace.write("slices.toml", """
[hub]
currency = "USD"

[[products]]
name = "vcpu"
meter = "compute.vcpu"
price = { model = "per_unit", unit_price = 0.0000115 }

[[products]]
name = "gpu"
meter = "compute.gpu"
price = { model = "per_unit", unit_price = "1" }
""")
    result = workspace.hub("rate", "--period", "2026-10", "--catalog", str(workspace.root / "slices.toml"))
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        'error: slices.toml: [hub]: a what-if catalog holds only [[meters]] and [[products]]',
        'error: slices.toml: products[1] "vcpu": price.unit_price: 0.0000115 is a TOML float, which is not exact; '
        'write decimal values as strings, such as "0.0000115"',
        "error: slices.toml: products[2] \"gpu\": meter: unknown meter 'compute.gpu'",
        "hub: 3 configuration errors",
    ]


def test_a_what_if_catalog_without_products_is_refused(workspace):
    setup(workspace, CATALOG, accounts=ACCOUNTS)
    workspace.write("slices.toml", '[[meters]]\nname = "x"\naggregation = "sum"\n')
    result = workspace.hub("rate", "--period", "2026-10", "--catalog", str(workspace.root / "slices.toml"))
    assert result.exit_code == 2
    assert result.stderr.splitlines() == ["error: slices.toml: products: a what-if catalog needs [[products]]",
                                          "hub: 1 configuration error"]
