"""The catalog: products and the accounts' price overrides, typed from
hub.toml and checked by ``hub check`` (docs/billing-rules.md, Prices
and Lines).

Error tests run ``hub check`` and compare its lines exactly, as
tests/test_config.py does; every workspace is on SQLite.
"""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

import pytest

from hub.config.catalog import Catalog, Product, parse_price
from hub.config import load_config
from hub.host import build_host
from hub.pricing import Flat, Package, PerUnit, Tier, Tiered, charge, round_money
from tests.conftest import Workspace

METERS = """
[[meters]]
name = "compute.vcpu"
aggregation = "time_weighted"

[[meters]]
name = "compute.memory"
aggregation = "time_weighted"

[[meters]]
name = "network.egress"
aggregation = "sum"

[[meters]]
name = "ips"
aggregation = "unique"
"""

CATALOG = METERS + """
[[products]]
name = "vcpu"
description = "Virtual CPU"
meter = "compute.vcpu"
price = { model = "per_unit", unit_price = "0.0000115" }

[[products]]
name = "memory"
meter = "compute.memory"
per = "hour"
granularity = "10m"
minimum = "1h"
free = "100"
itemize = "product"
currency = "CHF"
price = { model = "graduated", tiers = [ { up_to = "1000", unit_price = "0.0055" }, { unit_price = "0.0045" } ] }

[[products]]
name = "egress"
meter = "network.egress"
price = { model = "package", size = "100", package_price = "1.50" }

[[products]]
name = "ip"
meter = "ips"
itemize = "resource"
price = { model = "per_unit", unit_price = "2" }

[[products]]
name = "support"
price = { model = "flat", amount = "9.00" }

[[accounts]]
id = "acme"
prices = { vcpu = { model = "per_unit", unit_price = "0.000010" }, support = { model = "flat", amount = "0" } }

[[accounts]]
id = "globex"
"""


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path, f"sqlite:///{tmp_path / 'hub.db'}")


def catalog_of(ws: Workspace) -> Catalog:
    return load_config(ws.config_path, build_host(), check_secrets=True).catalog


def check_errors(ws: Workspace) -> list[str]:
    """``hub check``'s error lines, without their ``error: `` prefix."""
    result = ws.hub("check")
    assert result.exit_code == 2, result.output
    *lines, summary = result.stderr.splitlines()
    assert summary == f"hub: {len(lines)} configuration error{'' if len(lines) == 1 else 's'}", result.stderr
    return [line.removeprefix("error: ") for line in lines]


def product(body: str) -> str:
    """A hub.toml body: the meters, then one ``[[products]]`` table."""
    return METERS + "\n[[products]]\n" + body


# --------------------------------------------------------------------------
# The typed catalog


def test_the_catalog_is_typed_on_the_config(ws):
    ws.config(CATALOG)
    catalog = catalog_of(ws)
    assert [p.name for p in catalog] == ["vcpu", "memory", "egress", "ip", "support"]
    assert catalog.product("memory") == Product(
        name="memory", meter="compute.memory", per="hour", granularity=600, minimum=3600, free=D("100"),
        itemize="product", currency="CHF", description="",
        price=Tiered("graduated", (Tier(D("1000"), D("0.0055")), Tier(None, D("0.0045")))),
    )
    assert catalog.product("egress").price == Package(D("100"), D("1.50"))


def test_a_product_without_per_granularity_minimum_free_or_itemize_takes_the_defaults(ws):
    ws.config(CATALOG)
    catalog = catalog_of(ws)
    assert catalog.product("vcpu") == Product(
        name="vcpu", description="Virtual CPU", meter="compute.vcpu", per="second", granularity=1, minimum=0,
        free=D("0"), itemize="product", currency=None, price=PerUnit(D("0.0000115")),
    )
    # per defaults to "unit" for meters that are not time-weighted
    assert catalog.product("egress").per == "unit"
    assert catalog.product("ip").per == "unit"


def test_a_flat_product_needs_no_meter(ws):
    ws.config(CATALOG)
    support = catalog_of(ws).product("support")
    assert (support.meter, support.price, support.is_flat) == (None, Flat(D("9.00")), True)


def test_an_account_pays_its_override_and_the_others_the_list_price(ws):
    ws.config(CATALOG)
    catalog = catalog_of(ws)
    assert catalog.price_for("acme", "vcpu") == PerUnit(D("0.000010"))
    assert catalog.price_for("acme", "support") == Flat(D("0"))
    assert catalog.price_for("acme", "memory") == catalog.product("memory").price
    assert catalog.price_for("globex", "vcpu") == PerUnit(D("0.0000115"))
    assert catalog.price_for("nobody", "vcpu") == PerUnit(D("0.0000115"))
    with pytest.raises(KeyError):
        catalog.price_for("acme", "gpu")


def test_an_override_changes_the_amount_of_the_same_usage(ws):
    ws.config(CATALOG)
    catalog = catalog_of(ws)
    # 30,000 vCPU-s: 0.345 at the list price, 0.30 at acme's
    list_price = charge(catalog.price_for("globex", "vcpu"), 30_000, per="second")
    contract = charge(catalog.price_for("acme", "vcpu"), 30_000, per="second")
    assert (str(round_money(list_price.exact, "EUR")), str(round_money(contract.exact, "EUR"))) == ("0.35", "0.30")


def test_a_config_without_products_has_an_empty_catalog(ws):
    ws.config(METERS)
    assert len(catalog_of(ws)) == 0


def test_products_from_an_included_file_join_the_catalog(ws):
    ws.write("hub.toml", f'include = ["config/*.toml"]\n\n[hub]\ndatabase = "{ws.db_url}"\n')
    ws.write("config/catalog.toml", CATALOG)
    assert "memory" in catalog_of(ws)


@pytest.mark.parametrize(("table", "price"), [
    ({"model": "per_unit", "unit_price": "0.0000115"}, PerUnit(D("0.0000115"))),
    ({"model": "volume", "tiers": [{"up_to": "10", "unit_price": "1"}, {"unit_price": "0.5"}]},
     Tiered("volume", (Tier(D("10"), D("1")), Tier(None, D("0.5"))))),
    ({"model": "package", "size": "100", "package_price": "1.50"}, Package(D("100"), D("1.50"))),
    ({"model": "flat", "amount": "9.00"}, Flat(D("9.00"))),
])
def test_a_price_table_is_typed_by_its_model(table, price):
    assert parse_price(table) == price
    assert parse_price(table).model == table["model"]


@pytest.mark.parametrize("table", [
    {"model": "per_unit", "unit_price": 0.5},
    {"model": "per_unit", "unit_price": "1", "unit": "GB"},
    {"model": "per_unit"},
    {"model": "tiered", "tiers": []},
    {"model": "graduated", "tiers": []},
])
def test_a_malformed_price_table_is_not_typed(table):
    with pytest.raises(ValueError):
        parse_price(table)


# --------------------------------------------------------------------------
# hub check: the catalog's rules


def test_the_catalog_passes_hub_check(ws):
    ws.config(CATALOG)
    result = ws.hub("check")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "hub.toml: ok (4 meters, 2 accounts, 0 sources, 0 exporters, 0 renderers)"


def test_tiers_must_go_up(ws):
    ws.config(product("""
        name = "memory"
        meter = "compute.memory"
        per = "hour"
        price = { model = "graduated", tiers = [ { up_to = "1000", unit_price = "0.0055" }, { up_to = "1000", unit_price = "0.005" }, { up_to = "500", unit_price = "0.0048" }, { unit_price = "0.0045" } ] }
    """))
    assert check_errors(ws) == [
        "hub.toml: products[1] \"memory\": price.tiers[2].up_to: '1000' must be greater than the up_to of every "
        "tier before it ('1000'): tiers go up",
        "hub.toml: products[1] \"memory\": price.tiers[3].up_to: '500' must be greater than the up_to of every "
        "tier before it ('1000'): tiers go up",
    ]


def test_the_first_tier_must_end_above_zero(ws):
    ws.config(product("""
        name = "memory"
        meter = "compute.memory"
        price = { model = "volume", tiers = [ { up_to = "0", unit_price = "0.0055" }, { unit_price = "0.0045" } ] }
    """))
    assert check_errors(ws) == ["hub.toml: products[1] \"memory\": price.tiers[1].up_to: '0' must be greater than 0"]


def test_only_the_last_tier_omits_up_to(ws):
    ws.config(product("""
        name = "memory"
        meter = "compute.memory"
        price = { model = "graduated", tiers = [ { unit_price = "0.0055" }, { unit_price = "0.0045" } ] }
    """))
    assert check_errors(ws) == [
        "hub.toml: products[1] \"memory\": price.tiers[1].up_to: required key is missing: only the last tier "
        "omits up_to",
    ]


def test_the_last_tier_must_omit_up_to(ws):
    ws.config(product("""
        name = "memory"
        meter = "compute.memory"
        price = { model = "volume", tiers = [ { up_to = "1000", unit_price = "0.0055" }, { up_to = "5000", unit_price = "0.0045" } ] }

        [[products]]
        name = "vcpu"
        meter = "compute.vcpu"
        price = { model = "graduated", tiers = [ { up_to = "1000", unit_price = "0.0055" } ] }
    """))
    assert check_errors(ws) == [
        "hub.toml: products[1] \"memory\": price.tiers[2].up_to: the last tier must omit up_to: it holds every "
        "quantity above the tiers before it",
        "hub.toml: products[2] \"vcpu\": price.tiers[1].up_to: the last tier must omit up_to: it holds every quantity",
    ]


def test_a_package_size_must_be_greater_than_zero(ws):
    ws.config(product("""
        name = "egress"
        meter = "network.egress"
        price = { model = "package", size = "0", package_price = "1.50" }
    """))
    assert check_errors(ws) == ["hub.toml: products[1] \"egress\": price.size: '0' must be greater than 0"]


def test_prices_and_free_allowances_must_not_be_negative(ws):
    ws.config(product("""
        name = "vcpu"
        meter = "compute.vcpu"
        free = "-3600"
        price = { model = "per_unit", unit_price = "-0.0000115" }

        [[products]]
        name = "memory"
        meter = "compute.memory"
        price = { model = "graduated", tiers = [ { up_to = "1000", unit_price = "0.0055" }, { unit_price = "-0.0045" } ] }

        [[products]]
        name = "egress"
        meter = "network.egress"
        price = { model = "package", size = "100", package_price = "-1.50" }

        [[products]]
        name = "support"
        price = { model = "flat", amount = "-9.00" }
    """))
    assert check_errors(ws) == [
        "hub.toml: products[1] \"vcpu\": free: '-3600' must not be negative",
        "hub.toml: products[1] \"vcpu\": price.unit_price: '-0.0000115' must not be negative",
        "hub.toml: products[2] \"memory\": price.tiers[2].unit_price: '-0.0045' must not be negative",
        "hub.toml: products[3] \"egress\": price.package_price: '-1.50' must not be negative",
        "hub.toml: products[4] \"support\": price.amount: '-9.00' must not be negative",
    ]


def test_a_metered_price_needs_a_meter(ws):
    ws.config(product("""
        name = "vcpu"
        price = { model = "per_unit", unit_price = "0.0000115" }

        [[products]]
        name = "memory"
        price = { model = "graduated", tiers = [ { up_to = "1000", unit_price = "0.0055" }, { unit_price = "0.0045" } ] }
    """))
    assert check_errors(ws) == [
        "hub.toml: products[1] \"vcpu\": meter: required key is missing: a per_unit price needs a meter "
        "(only a flat price has none)",
        "hub.toml: products[2] \"memory\": meter: required key is missing: a graduated price needs a meter "
        "(only a flat price has none)",
    ]


def test_per_unit_is_refused_for_a_time_weighted_meter(ws):
    ws.config(product("""
        name = "vcpu"
        meter = "compute.vcpu"
        per = "unit"
        price = { model = "per_unit", unit_price = "0.0000115" }
    """))
    assert check_errors(ws) == [
        "hub.toml: products[1] \"vcpu\": per: 'unit' is for sum, max, unique and latest meters; meter "
        "'compute.vcpu' is time_weighted: use second, minute, hour or day",
    ]


@pytest.mark.parametrize("per", ["second", "minute", "hour", "day"])
def test_a_time_unit_is_refused_for_a_meter_that_is_not_time_weighted(ws, per):
    ws.config(product(f"""
        name = "egress"
        meter = "network.egress"
        per = "{per}"
        price = {{ model = "per_unit", unit_price = "0.01" }}
    """))
    assert check_errors(ws) == [
        f"hub.toml: products[1] \"egress\": per: '{per}' is only for time_weighted meters; meter 'network.egress' "
        f"aggregates by sum: use per = \"unit\"",
    ]


def test_itemizing_by_resource_needs_a_per_unit_or_flat_price(ws):
    ws.config(product("""
        name = "memory"
        meter = "compute.memory"
        itemize = "resource"
        price = { model = "graduated", tiers = [ { up_to = "1000", unit_price = "0.0055" }, { unit_price = "0.0045" } ] }

        [[products]]
        name = "egress"
        meter = "network.egress"
        itemize = "resource"
        price = { model = "package", size = "100", package_price = "1.50" }

        [[products]]
        name = "ip"
        meter = "ips"
        itemize = "resource"
        price = { model = "per_unit", unit_price = "2" }

        [[products]]
        name = "support"
        itemize = "resource"
        price = { model = "flat", amount = "9.00" }
    """))
    assert check_errors(ws) == [
        "hub.toml: products[1] \"memory\": itemize: 'resource' needs a per_unit or flat price, not graduated",
        "hub.toml: products[2] \"egress\": itemize: 'resource' needs a per_unit or flat price, not package",
    ]


def test_a_granularity_must_be_at_least_one_second(ws):
    ws.config(product("""
        name = "vcpu"
        meter = "compute.vcpu"
        granularity = "0s"
        minimum = "0s"
        price = { model = "per_unit", unit_price = "0.0000115" }
    """))
    assert check_errors(ws) == ["hub.toml: products[1] \"vcpu\": granularity: '0s' must be at least 1s"]


def test_a_product_currency_must_be_iso_4217(ws):
    ws.config(product("""
        name = "vcpu"
        meter = "compute.vcpu"
        currency = "EUX"
        price = { model = "per_unit", unit_price = "0.0000115" }
    """))
    assert check_errors(ws) == ["hub.toml: products[1] \"vcpu\": currency: 'EUX' is not an ISO 4217 currency"]


def test_a_price_the_schema_refuses_is_reported_once_and_alone(ws):
    # The float is the error; whether the product also lacks a meter waits
    # until its price is well-formed.
    ws.config(product("""
        name = "vcpu"
        price = { model = "per_unit", unit_price = 0.0000115 }
    """))
    assert check_errors(ws) == [
        "hub.toml: products[1] \"vcpu\": price.unit_price: 0.0000115 is a TOML float, which is not exact; "
        "write decimal values as strings, such as \"0.0000115\"",
    ]


def test_account_overrides_are_checked_like_product_prices(ws):
    ws.config(CATALOG.replace(
        'id = "globex"',
        'id = "globex"\nprices = { memory = { model = "graduated", tiers = [ { up_to = "500", unit_price = "0.005" }, '
        '{ up_to = "400", unit_price = "-0.004" }, { unit_price = "0.004" } ] }, '
        'egress = { model = "package", size = "-1", package_price = "1" } }',
    ))
    assert check_errors(ws) == [
        "hub.toml: accounts[2] \"globex\": prices.egress.size: '-1' must be greater than 0",
        "hub.toml: accounts[2] \"globex\": prices.memory.tiers[2].unit_price: '-0.004' must not be negative",
        "hub.toml: accounts[2] \"globex\": prices.memory.tiers[2].up_to: '400' must be greater than the up_to of "
        "every tier before it ('500'): tiers go up",
    ]


def test_an_override_keeps_a_flat_price_flat_and_a_metered_one_metered(ws):
    ws.config(CATALOG.replace(
        'id = "globex"',
        'id = "globex"\nprices = { support = { model = "per_unit", unit_price = "1" }, '
        'vcpu = { model = "flat", amount = "100" } }',
    ))
    assert check_errors(ws) == [
        "hub.toml: accounts[2] \"globex\": prices.support.model: 'per_unit' does not fit product 'support', whose "
        "price is flat: an override must be flat too",
        "hub.toml: accounts[2] \"globex\": prices.vcpu.model: 'flat' does not fit product 'vcpu', whose price is "
        "metered (per_unit): an override must be metered too",
    ]


def test_an_override_keeps_an_itemized_product_itemizable(ws):
    ws.config(CATALOG.replace(
        'id = "globex"',
        'id = "globex"\nprices = { ip = { model = "volume", tiers = [ { up_to = "10", unit_price = "2" }, '
        '{ unit_price = "1" } ] } }',
    ))
    assert check_errors(ws) == [
        "hub.toml: accounts[2] \"globex\": prices.ip.model: 'volume' does not fit product 'ip', which is itemized "
        "by resource: use per_unit or flat",
    ]


def test_a_catalog_error_in_an_included_file_names_that_file(ws):
    ws.write("hub.toml", f'include = ["config/*.toml"]\n\n[hub]\ndatabase = "{ws.db_url}"\n')
    ws.write("config/catalog.toml", METERS + """
[[products]]
name = "egress"
meter = "network.egress"
per = "hour"
price = { model = "per_unit", unit_price = "0.01" }
""")
    assert check_errors(ws) == [
        "config/catalog.toml: products[1] \"egress\": per: 'hour' is only for time_weighted meters; meter "
        "'network.egress' aggregates by sum: use per = \"unit\"",
    ]


def test_catalog_errors_are_listed_with_the_other_errors(ws):
    ws.config(product("""
        name = "vcpu"
        meter = "compute.vcpu"
        granularity = "0s"
        price = { model = "per_unit", unit_price = "0.0000115" }

        [[accounts]]
        id = "a b"
    """))
    assert check_errors(ws) == [
        "hub.toml: accounts[1] \"a b\": id: 'a b' is not a valid name (letters, digits and _ . : -, starting with "
        "a letter or digit)",
        "hub.toml: products[1] \"vcpu\": granularity: '0s' must be at least 1s",
    ]
