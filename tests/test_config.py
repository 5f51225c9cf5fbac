"""hub.toml: every kind of configuration error, with its exact message.

An error reads ``{file}: {table}: {key}: {message}`` (see
:class:`hub.config.ConfigError`); ``hub check`` prints each on its own line
after ``error: `` and ends with ``hub: N configuration errors`` (exit 2).

Tests of an array table (``[[meters]]``, ``[[sources]]``...) run ``hub check``
itself. Tests of a plain table (``[hub]``, ``[invoicing]``...) call
:func:`hub.config.load_config` the way ``hub check`` does and compare
``str(error)``, the text ``hub check`` prints after ``error: ``; that the CLI
prints it literally is pinned once, by
``test_check_prints_bracketed_table_names_literally``.

None of these tests needs PostgreSQL: every workspace is on SQLite.
"""

from __future__ import annotations

import types
from pathlib import Path

import pytest

from hub.config import ConfigError, ConfigErrors, load_config
from hub.hookspecs import hookimpl
from hub.host import Host, build_host
from hub.plugin_types import ExporterType, SourceType
from tests.conftest import STANDARD_CONFIG, Workspace

NAME_WORDS = "is not a valid name (letters, digits and _ . : -, starting with a letter or digit)"
DURATION_WORDS = "is not a duration such as 1s, 600s, 10m, 1h30m or 1d"
DATE_WORDS = "is not a date (2027-06-30) or an RFC 3339 time with an offset (2027-06-30T00:00:00Z)"
AGGREGATIONS = "time_weighted, sum, max, unique, latest"
TOP_LEVEL_KEYS = "accounts, credits, discounts, dunning, exporters, hub, include, invoicing, meters, products, renderers, seller, sources, tax"


# --------------------------------------------------------------------------
# Helpers


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    """A workspace on SQLite (configuration tests never need PostgreSQL)."""
    return Workspace(tmp_path, f"sqlite:///{tmp_path / 'hub.db'}")


def check_errors(ws: Workspace, env: dict[str, str | None] | None = None) -> list[str]:
    """Run ``hub check``; assert it failed the documented way and return its
    error lines without their ``error: `` prefix."""
    result = ws.hub("check", env=env)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    *lines, summary = result.stderr.splitlines()
    assert summary == f"hub: {len(lines)} configuration error{'' if len(lines) == 1 else 's'}", result.stderr
    assert lines and all(line.startswith("error: ") for line in lines), result.stderr
    return [line.removeprefix("error: ") for line in lines]


def load_errors(ws: Workspace, host: Host | None = None, *, check_secrets: bool = True) -> list[ConfigError]:
    """The errors ``load_config`` raises for the workspace's hub.toml."""
    with pytest.raises(ConfigErrors) as info:
        load_config(ws.config_path, host or build_host(), check_secrets=check_secrets)
    return info.value.errors


def load_lines(ws: Workspace, host: Host | None = None, *, check_secrets: bool = True) -> list[str]:
    """The errors of :func:`load_errors` as ``hub check`` words them."""
    return [str(e) for e in load_errors(ws, host, check_secrets=check_secrets)]


def ok_line(ws: Workspace, env: dict[str, str | None] | None = None) -> str:
    result = ws.hub("check", env=env)
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    return result.stdout.strip()


# An in-process plugin with secrets: a key ending in _env names an environment
# variable holding the secret; the hub.toml never holds the secret itself.
SECRET_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["url", "token_env"],
    "properties": {"url": {"type": "string"}, "token_env": {"type": "string"}},
}
PASSWORD_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["host", "password_env"],
    "properties": {"host": {"type": "string"}, "password_env": {"type": "string"}},
}


@hookimpl
def _register_exporters() -> list[ExporterType]:
    return [ExporterType(name="crmhook", description="POSTs invoices", config_schema=SECRET_SCHEMA,
                         factory=lambda config: None)]


@hookimpl
def _register_sources() -> list[SourceType]:
    return [SourceType(name="billingdb", description="reads a database", config_schema=PASSWORD_SCHEMA,
                       factory=lambda config: None)]


SECRET_PLUGIN = types.ModuleType("secret_plugin")
SECRET_PLUGIN.hub_register_exporter_types = _register_exporters  # type: ignore[attr-defined]
SECRET_PLUGIN.hub_register_source_types = _register_sources  # type: ignore[attr-defined]


def secret_host() -> Host:
    return build_host(extra_plugins=[("secrets", SECRET_PLUGIN)])


@pytest.fixture
def cli_with_secret_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    """``hub`` commands run with the in-process secret plugin installed."""
    import hub.cli.base

    monkeypatch.setattr(hub.cli.base, "build_host", secret_host)  # where the CLI's workspace builds its host


SECRET_INSTANCES = """
[[sources]]
name = "billing"
type = "billingdb"
host = "db.example"
password_env = "HUB_TEST_PASSWORD"

[[exporters]]
name = "hook"
type = "crmhook"
url = "https://hooks.example/invoices"
token_env = "HUB_TEST_TOKEN"
"""


# --------------------------------------------------------------------------
# hub check: all errors at once, the format, the exit code


def test_check_lists_every_error_at_once_each_on_its_own_line(ws):
    ws.config("""
        [[meters]]
        name = "m1"
        agregation = "sum"

        [[products]]
        name = "p"
        meter = "m1"
        per = "week"
        price = { model = "per_unit", unit_price = "0.5" }

        [[accounts]]
        id = "a b"

        [[sources]]
        name = "files"
        type = "csv"
        path = "usage/*.csv"
        interval = "5 min"
    """)
    result = ws.hub("check")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"error: hub.toml: accounts[1] \"a b\": id: 'a b' {NAME_WORDS}",
        "error: hub.toml: meters[1] \"m1\": aggregation: required key is missing",
        "error: hub.toml: meters[1] \"m1\": agregation: unknown key (did you mean 'aggregation'?)",
        "error: hub.toml: products[1] \"p\": per: 'week' is not one of: second, minute, hour, day, unit",
        f"error: hub.toml: sources[1] \"files\": interval: '5 min' {DURATION_WORDS}",
        "hub: 5 configuration errors",
    ]


def test_errors_are_listed_by_file_then_position_with_the_tenth_after_the_ninth(ws):
    body = "".join(
        f'[[sources]]\nname = "s{i}"\ntype = "csv"\npath = "u/*.csv"\n'
        + ('interval = "soon"\n' if i in (2, 10) else "")
        for i in range(1, 11)
    )
    ws.config(body)
    assert check_errors(ws) == [
        f"hub.toml: sources[2] \"s2\": interval: 'soon' {DURATION_WORDS}",
        f"hub.toml: sources[10] \"s10\": interval: 'soon' {DURATION_WORDS}",
    ]


def test_errors_found_after_the_schema_check_are_listed_with_the_schema_errors(ws):
    # One run must show everything: an unknown meter or a mistyped plugin
    # type is independent of a bad aggregation in another table.
    ws.config("""
        [[meters]]
        name = "m"
        aggregation = "avg"

        [[products]]
        name = "p"
        meter = "ghost"
        price = { model = "flat", amount = "1" }

        [[sources]]
        name = "files"
        type = "cvs"
    """)
    assert check_errors(ws) == [
        f"hub.toml: meters[1] \"m\": aggregation: 'avg' is not one of: {AGGREGATIONS}",
        "hub.toml: products[1] \"p\": meter: unknown meter 'ghost'",
        "hub.toml: sources[1] \"files\": type: unknown source type 'cvs' (did you mean 'csv'?); installed: csv",
    ]


def test_check_prints_bracketed_table_names_literally(ws):
    # "[hub]" must reach the operator as written, not be taken for markup.
    ws.write("hub.toml", """
        [invoicing]
        grace = "1 day"
    """)
    result = ws.hub("check")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"error: hub.toml: [invoicing]: grace: '1 day' {DURATION_WORDS}",
        "hub: 1 configuration error",
    ]
    ws.write("hub.toml", """
        [hub]
        timezone = "Mars/Olympus"
        currency = "XYZ"
    """)
    assert check_errors(ws) == [
        "hub.toml: [hub]: currency: 'XYZ' is not an ISO 4217 currency",
        "hub.toml: [hub]: timezone: 'Mars/Olympus' is not an IANA time zone such as Europe/Paris",
    ]


def test_check_prints_a_value_that_looks_like_markup_literally_instead_of_crashing(ws):
    ws.config("""
        [[sources]]
        name = "files"
        type = "[/x]"
    """)
    assert check_errors(ws) == [
        "hub.toml: sources[1] \"files\": type: unknown source type '[/x]'; installed: csv",
    ]


# --------------------------------------------------------------------------
# The file itself


def test_a_missing_hub_toml_says_to_run_hub_init(ws):
    result = ws.hub("check")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "error: hub.toml: file not found (run `hub init` to write a starter hub.toml)",
        "hub: 1 configuration error",
    ]


def test_a_toml_syntax_error_is_not_valid_toml_with_its_line_and_column(ws):
    ws.write("hub.toml", '[hub]\ncurrency = "EUR"\n\n[[meters]\nname = "m"\n')
    assert check_errors(ws) == [
        "hub.toml: line 4, column 9: not valid TOML: expected ']]' at the end of an array declaration",
    ]


def test_a_file_that_is_not_utf8_is_an_error_naming_the_byte(ws):
    ws.write("hub.toml", '[hub]\ncurrency = "EUR"\n# caf\xe9\n', encoding="latin-1")
    assert check_errors(ws) == ["hub.toml: not UTF-8 at byte 28"]


def test_a_utf8_byte_order_mark_is_accepted(ws):
    ws.write("hub.toml", "\ufeff" + STANDARD_CONFIG, encoding="utf-8")
    assert ok_line(ws).startswith("hub.toml: ok (2 meters, 2 accounts, ")


# --------------------------------------------------------------------------
# Keys: unknown, missing, mistyped


def test_an_unknown_top_level_key_lists_the_allowed_keys(ws):
    ws.write("hub.toml", """
        wat = 1
        [hub]
        currency = "EUR"
    """)
    assert check_errors(ws) == [f"hub.toml: wat: unknown key; allowed: {TOP_LEVEL_KEYS}"]


def test_an_unknown_top_level_key_close_to_a_known_one_says_did_you_mean(ws):
    ws.config("""
        [[meter]]
        name = "m"
        aggregation = "sum"
    """)
    assert check_errors(ws) == ["hub.toml: meter: unknown key (did you mean 'meters'?)"]


def test_an_unknown_key_in_a_table_says_did_you_mean(ws):
    ws.config("""
        [[accounts]]
        id = "acme"
        contry = "DE"
    """)
    assert check_errors(ws) == ["hub.toml: accounts[1] \"acme\": contry: unknown key (did you mean 'country'?)"]


def test_an_unknown_key_in_hub_says_did_you_mean(ws):
    ws.write("hub.toml", """
        [hub]
        timzone = "UTC"
        bogus = 1
    """)
    assert load_lines(ws) == [
        "hub.toml: [hub]: bogus: unknown key; allowed: currency, database, database_env, rounding, timezone",
        "hub.toml: [hub]: timzone: unknown key (did you mean 'timezone'?)",
    ]


def test_an_unknown_key_in_a_price_lists_the_keys_of_its_model(ws):
    ws.config("""
        [[products]]
        name = "p"
        price = { model = "per_unit", unit_price = "1", unit = "GB" }
    """)
    assert check_errors(ws) == ["hub.toml: products[1] \"p\": price.unit: unknown key; allowed: model, unit_price"]


def test_a_missing_required_key_is_an_error(ws):
    ws.config("""
        [[meters]]
        name = "m"

        [[products]]
        name = "p"
        price = { model = "per_unit" }

        [[sources]]
        type = "csv"
        path = "usage/*.csv"
    """)
    assert check_errors(ws) == [
        "hub.toml: meters[1] \"m\": aggregation: required key is missing",
        "hub.toml: products[1] \"p\": price.unit_price: required key is missing",
        "hub.toml: sources[1]: name: required key is missing",
    ]


def test_a_missing_required_key_of_a_plain_table_is_an_error(ws):
    ws.write("hub.toml", """
        [seller]
        name = "Hub GmbH"
    """)
    assert load_lines(ws) == ["hub.toml: [seller]: country: required key is missing"]


def test_a_value_of_the_wrong_type_says_what_was_expected_and_what_was_given(ws):
    ws.config("""
        [[meters]]
        name = 5
        aggregation = "sum"

        [[products]]
        name = "p"
        price = { model = "flat", amount = 1 }

        [[accounts]]
        id = "acme"
        tax_exempt = "yes"
    """)
    assert check_errors(ws) == [
        "hub.toml: accounts[1] \"acme\": tax_exempt: expected a boolean (true or false), got a string ('yes')",
        "hub.toml: meters[1]: name: expected a string, got an integer (5)",
        "hub.toml: products[1] \"p\": price.amount: expected a string, got an integer (1)",
    ]


def test_a_value_of_the_wrong_type_in_hub_is_an_error(ws):
    ws.write("hub.toml", """
        [hub]
        database = 5
    """)
    assert load_lines(ws) == ["hub.toml: [hub]: database: expected a string, got an integer (5)"]


def test_a_value_outside_an_enum_lists_the_choices(ws):
    ws.config("""
        [[meters]]
        name = "m"
        aggregation = "avg"

        [[products]]
        name = "p"
        price = { model = "tiered" }
    """)
    assert check_errors(ws) == [
        f"hub.toml: meters[1] \"m\": aggregation: 'avg' is not one of: {AGGREGATIONS}",
        "hub.toml: products[1] \"p\": price.model: 'tiered' is not one of: per_unit, graduated, volume, package, flat",
    ]


def test_a_value_outside_an_enum_in_hub_lists_the_choices(ws):
    ws.write("hub.toml", """
        [hub]
        rounding = "up"
    """)
    assert load_lines(ws) == ["hub.toml: [hub]: rounding: 'up' is not one of: half_up, half_even"]


def test_an_empty_value_or_list_must_not_be_empty(ws):
    ws.config("""
        [[meters]]
        name = "m"
        aggregation = "sum"
        unit = ""

        [[products]]
        name = "p"
        price = { model = "volume", tiers = [] }
    """)
    assert check_errors(ws) == [
        "hub.toml: meters[1] \"m\": unit: must not be empty",
        "hub.toml: products[1] \"p\": price.tiers: must not be empty",
    ]


def test_a_discount_must_set_exactly_one_of_percent_or_amount(ws):
    ws.config("""
        [[discounts]]
        account = "acme"
        percent = "10"
        amount = "5"
    """)
    assert check_errors(ws) == ["hub.toml: discounts[1]: set exactly one of percent or amount"]


# --------------------------------------------------------------------------
# Value formats: decimals, durations, names, dates


def test_a_float_price_is_an_error_that_says_to_write_a_string(ws):
    ws.config("""
        [[products]]
        name = "vcpu"
        price = { model = "per_unit", unit_price = 0.0000115 }
    """)
    # The message quotes the value as the operator wrote it, not Python's 1.15e-05.
    assert check_errors(ws) == [
        "hub.toml: products[1] \"vcpu\": price.unit_price: 0.0000115 is a TOML float, which is not exact; "
        "write decimal values as strings, such as \"0.0000115\"",
    ]


def test_a_float_is_refused_wherever_a_decimal_is_expected(ws):
    ws.config("""
        [[products]]
        name = "memory"
        price = { model = "graduated", tiers = [ { up_to = "1000", unit_price = 0.0055 } ] }

        [[accounts]]
        id = "acme"
        prices = { memory = { model = "per_unit", unit_price = 0.5 } }
    """)
    assert check_errors(ws) == [
        "hub.toml: accounts[1] \"acme\": prices.memory.unit_price: 0.5 is a TOML float, which is not exact; "
        "write decimal values as strings, such as \"0.5\"",
        "hub.toml: products[1] \"memory\": price.tiers[1].unit_price: 0.0055 is a TOML float, which is not exact; "
        "write decimal values as strings, such as \"0.0055\"",
    ]


def test_a_float_tax_rate_is_refused(ws):
    ws.write("hub.toml", """
        [tax]
        rates = { DE = 0.19 }
    """)
    assert load_lines(ws) == [
        "hub.toml: [tax]: rates.DE: 0.19 is a TOML float, which is not exact; "
        "write decimal values as strings, such as \"0.19\"",
    ]


def test_a_decimal_string_that_is_not_a_number_is_an_error(ws):
    ws.config("""
        [[products]]
        name = "p"
        price = { model = "per_unit", unit_price = "0,5" }
    """)
    assert check_errors(ws) == [
        "hub.toml: products[1] \"p\": price.unit_price: '0,5' is not a decimal number written as a string, "
        "such as \"0.0000115\"",
    ]


def test_a_bad_duration_is_an_error(ws):
    ws.config("""
        [[products]]
        name = "p"
        granularity = "10 min"
        price = { model = "flat", amount = "1" }
    """)
    assert check_errors(ws) == [f"hub.toml: products[1] \"p\": granularity: '10 min' {DURATION_WORDS}"]


def test_a_bad_name_is_an_error(ws):
    ws.config("""
        [[meters]]
        name = "compute vcpu"
        aggregation = "sum"

        [[sources]]
        name = "-files"
        type = "csv"
        path = "usage/*.csv"
    """)
    assert check_errors(ws) == [
        f"hub.toml: meters[1] \"compute vcpu\": name: 'compute vcpu' {NAME_WORDS}",
        f"hub.toml: sources[1] \"-files\": name: '-files' {NAME_WORDS}",
    ]


def test_a_bad_country_code_is_an_error(ws):
    ws.config("""
        [[accounts]]
        id = "acme"
        country = "de"
    """)
    assert check_errors(ws) == [
        "hub.toml: accounts[1] \"acme\": country: 'de' is not an ISO 3166 two-letter country code such as DE",
    ]


def test_toml_dates_and_offset_datetimes_are_accepted(ws):
    ws.config("""
        [[accounts]]
        id = "acme"
        since = 2026-01-01

        [[accounts]]
        id = "globex"
        since = 2026-01-01T00:00:00Z
    """)
    config = load_config(ws.config_path, build_host(), check_secrets=True)
    assert config.accounts["acme"].extra["since"] == "2026-01-01"
    assert config.accounts["globex"].extra["since"] == "2026-01-01T00:00:00+00:00"
    assert ok_line(ws) == "hub.toml: ok (0 meters, 2 accounts, 0 sources, 0 exporters, 0 renderers)"


def test_a_local_datetime_without_offset_or_a_bare_time_is_rejected(ws):
    ws.config("""
        [[accounts]]
        id = "acme"
        since = 2026-01-01T00:00:00

        [[accounts]]
        id = "globex"
        since = 10:30:00
    """)
    assert check_errors(ws) == [
        f"hub.toml: accounts[1] \"acme\": since: '2026-01-01T00:00:00' {DATE_WORDS}",
        f"hub.toml: accounts[2] \"globex\": since: '10:30:00' {DATE_WORDS}",
    ]


# --------------------------------------------------------------------------
# Cross-references: names, time zones, currencies, parents, meters, products


def test_duplicate_names_of_meters_products_accounts_and_sources_are_errors(ws):
    ws.config("""
        [[meters]]
        name = "x"
        aggregation = "sum"

        [[meters]]
        name = "x"
        aggregation = "max"

        [[products]]
        name = "p"
        price = { model = "flat", amount = "1" }

        [[products]]
        name = "p"
        price = { model = "flat", amount = "2" }

        [[accounts]]
        id = "acme"

        [[accounts]]
        id = "acme"

        [[sources]]
        name = "files"
        type = "csv"
        path = "a/*.csv"

        [[sources]]
        name = "files"
        type = "csv"
        path = "b/*.csv"
    """)
    assert check_errors(ws) == [
        "hub.toml: accounts[2] \"acme\": id: 'acme' is already used by accounts[1] \"acme\" in hub.toml",
        "hub.toml: meters[2] \"x\": name: 'x' is already used by meters[1] \"x\" in hub.toml",
        "hub.toml: products[2] \"p\": name: 'p' is already used by products[1] \"p\" in hub.toml",
        "hub.toml: sources[2] \"files\": name: 'files' is already used by sources[1] \"files\" in hub.toml",
    ]


def test_an_account_is_named_by_its_id_not_its_display_name(ws):
    ws.config("""
        [[accounts]]
        id = "acme"
        name = "ACME GmbH"
        country = "de"

        [[accounts]]
        id = "acme"
        name = "ACME Two"
    """)
    assert check_errors(ws) == [
        "hub.toml: accounts[1] \"acme\": country: 'de' is not an ISO 3166 two-letter country code such as DE",
        "hub.toml: accounts[2] \"acme\": id: 'acme' is already used by accounts[1] \"acme\" in hub.toml",
    ]
    ws.config("""
        [[accounts]]
        id = "acme"
        name = "ACME GmbH"

        [[accounts]]
        id = "acme"
        name = "ACME Two"
    """)
    assert check_errors(ws) == [
        "hub.toml: accounts[2] \"acme\": id: 'acme' is already used by accounts[1] \"acme\" in hub.toml",
    ]


def test_an_unknown_time_zone_in_hub_is_an_error(ws):
    ws.write("hub.toml", """
        [hub]
        timezone = "Mars/Olympus"
    """)
    assert load_lines(ws) == ["hub.toml: [hub]: timezone: 'Mars/Olympus' is not an IANA time zone such as Europe/Paris"]


def test_an_unknown_time_zone_in_an_account_is_an_error(ws):
    ws.config("""
        [[accounts]]
        id = "acme"
        timezone = "Europe/Pariss"
    """)
    assert check_errors(ws) == [
        "hub.toml: accounts[1] \"acme\": timezone: 'Europe/Pariss' is not an IANA time zone such as Europe/Paris",
    ]


def test_a_time_zone_naming_a_region_not_a_zone_is_an_error_not_a_crash(ws):
    # "America/Argentina" and "Europe" are directories of the zone database.
    ws.config("""
        [[accounts]]
        id = "acme"
        timezone = "America/Argentina"
    """)
    assert check_errors(ws) == [
        "hub.toml: accounts[1] \"acme\": timezone: 'America/Argentina' is not an IANA time zone such as Europe/Paris",
    ]
    ws.write("hub.toml", """
        [hub]
        timezone = "Europe"
    """)
    assert load_lines(ws) == ["hub.toml: [hub]: timezone: 'Europe' is not an IANA time zone such as Europe/Paris"]


def test_an_unknown_currency_is_an_error(ws):
    ws.config("""
        [[accounts]]
        id = "globex"
        currency = "eur"
    """)
    assert check_errors(ws) == [
        "hub.toml: accounts[1] \"globex\": currency: 'eur' is not an ISO 4217 currency code such as EUR",
    ]
    ws.write("hub.toml", """
        [hub]
        currency = "XYZ"

        [[accounts]]
        id = "acme"
        currency = "EUX"
    """)
    assert load_lines(ws) == [
        "hub.toml: [hub]: currency: 'XYZ' is not an ISO 4217 currency",
        "hub.toml: accounts[1] \"acme\": currency: 'EUX' is not an ISO 4217 currency",
    ]


def test_hub_check_warns_of_a_product_priced_in_a_currency_billed_to_an_account_in_another(ws):
    """The hub converts no currency: a product whose ``currency`` is EUR,
    billed to a USD account without a price of its own, has its amounts
    read as dollars. ``hub check`` warns of it (a warning, not an error: a
    catalog that names its currency for the record keeps loading). A flat
    product counts only for the accounts with it in ``plans``; a product
    without ``currency`` is priced in each account's."""
    ws.config("""
        [[meters]]
        name = "compute.vcpu"
        aggregation = "time_weighted"

        [[products]]
        name = "vcpu"
        meter = "compute.vcpu"
        currency = "EUR"
        price = { model = "per_unit", unit_price = "0.0000115" }

        [[products]]
        name = "support"
        currency = "EUR"
        price = { model = "flat", amount = "9.00" }

        [[products]]
        name = "anywhere"
        meter = "compute.vcpu"
        price = { model = "per_unit", unit_price = "0.00001" }

        [[accounts]]
        id = "acme"

        [[accounts]]
        id = "us"
        currency = "USD"
        plans = ["support"]

        [[accounts]]
        id = "us-contract"
        currency = "USD"
        prices = { vcpu = { model = "per_unit", unit_price = "0.000012" } }
    """)
    result = ws.hub("check")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "hub.toml: ok (1 meter, 3 accounts, 0 sources, 0 exporters, 0 renderers)"
    assert result.stderr.splitlines() == [
        "warning: hub.toml: accounts[2] \"us\": prices.vcpu: product 'vcpu' is priced in EUR and this account is "
        "billed in USD: its amounts are billed as USD as they are; give it a price in USD here",
        "warning: hub.toml: accounts[2] \"us\": prices.support: product 'support' is priced in EUR and this account "
        "is billed in USD: its amounts are billed as USD as they are; give it a price in USD here",
    ]


def test_a_child_account_takes_its_parents_currency_and_may_not_set_another(ws):
    """A child is invoiced through its parent, in the parent's currency:
    without a currency of its own it takes its parent's (up the tree), not
    the hub's; another one is refused by hub check, not at invoicing."""
    ws.config("""
        [[accounts]]
        id = "j"
        currency = "JPY"

        [[accounts]]
        id = "kid"
        parent = "j"

        [[accounts]]
        id = "grandkid"
        parent = "kid"
    """)
    config = load_config(ws.config_path, build_host())
    assert {a.id: a.currency for a in config.accounts.values()} == {"j": "JPY", "kid": "JPY", "grandkid": "JPY"}
    ws.config("""
        [[accounts]]
        id = "j"
        currency = "JPY"

        [[accounts]]
        id = "kid"
        parent = "j"
        currency = "EUR"

        [[accounts]]
        id = "twin"
        parent = "j"
        currency = "JPY"
    """)
    assert check_errors(ws) == [
        "hub.toml: accounts[2] \"kid\": currency: 'EUR' is not the currency of its parent 'j' (JPY), through which "
        "it is invoiced: leave it out to take the parent's",
    ]


def test_an_unknown_parent_account_is_an_error(ws):
    ws.config("""
        [[accounts]]
        id = "acme-eu"
        parent = "acme"
    """)
    assert check_errors(ws) == ["hub.toml: accounts[1] \"acme-eu\": parent: unknown account 'acme'"]


def test_an_account_cannot_be_its_own_parent(ws):
    ws.config("""
        [[accounts]]
        id = "acme"
        parent = "acme"
    """)
    assert check_errors(ws) == ["hub.toml: accounts[1] \"acme\": parent: an account cannot be its own parent"]


def test_a_cycle_of_parent_accounts_is_an_error(ws):
    ws.config("""
        [[accounts]]
        id = "a"
        parent = "b"

        [[accounts]]
        id = "b"
        parent = "a"
    """)
    result = ws.hub("check")
    assert result.exit_code == 2, result.output
    errors = load_errors(ws)
    assert errors and all(e.key == "parent" for e in errors), errors


def test_a_product_with_an_unknown_meter_is_an_error(ws):
    ws.config("""
        [[meters]]
        name = "compute.vcpu"
        aggregation = "time_weighted"

        [[products]]
        name = "vcpu"
        meter = "compute.cpu"
        price = { model = "per_unit", unit_price = "0.0000115" }
    """)
    assert check_errors(ws) == ["hub.toml: products[1] \"vcpu\": meter: unknown meter 'compute.cpu'"]


def test_account_prices_for_an_unknown_product_are_an_error(ws):
    ws.config("""
        [[meters]]
        name = "compute.vcpu"
        aggregation = "time_weighted"

        [[products]]
        name = "vcpu"
        meter = "compute.vcpu"
        price = { model = "per_unit", unit_price = "0.0000115" }

        [[accounts]]
        id = "acme"
        prices = { vpcu = { model = "per_unit", unit_price = "0.00001" } }
    """)
    assert check_errors(ws) == ["hub.toml: accounts[1] \"acme\": prices.vpcu: unknown product 'vpcu'"]


# --------------------------------------------------------------------------
# Plugin instances: the type, and the keys against the type's own schema


def test_an_unknown_plugin_type_suggests_the_closest_and_lists_the_installed(ws):
    ws.config("""
        [[sources]]
        name = "files"
        type = "cvs"
        path = "usage/*.csv"
    """)
    assert check_errors(ws) == [
        "hub.toml: sources[1] \"files\": type: unknown source type 'cvs' (did you mean 'csv'?); installed: csv",
    ]


def test_an_unknown_exporter_type_says_that_none_is_installed(ws, monkeypatch):
    import importlib.metadata as md

    import hub.cli.base
    from hub.hookspecs import ENTRY_POINT_GROUP

    csv_only = [ep for ep in md.entry_points(group=ENTRY_POINT_GROUP) if ep.name == "csv"]
    monkeypatch.setattr(hub.cli.base, "build_host", lambda: build_host(csv_only))
    ws.config("""
        [[exporters]]
        name = "hook"
        type = "webhook"

        [[renderers]]
        name = "pdf"
        type = "pdf"
    """)
    assert check_errors(ws) == [
        "hub.toml: exporters[1] \"hook\": type: unknown exporter type 'webhook'; no exporter type is installed",
        "hub.toml: renderers[1] \"pdf\": type: unknown renderer type 'pdf'; no renderer type is installed",
    ]


def test_an_unknown_exporter_type_lists_the_installed_ones(ws):
    ws.config("""
        [[exporters]]
        name = "chat"
        type = "slack"
    """)
    assert check_errors(ws) == [
        "hub.toml: exporters[1] \"chat\": type: unknown exporter type 'slack'; installed: email, webhook",
    ]


def test_a_csv_source_is_validated_against_the_csv_schema(ws):
    ws.config("""
        [[sources]]
        name = "files"
        type = "csv"
        pth = "usage/*.csv"

        [[sources]]
        name = "paris"
        type = "csv"
        path = "paris/*.csv"
        timezone = "Europe/Pariss"
        delimiter = ";;"
        batch_size = 0

        [[sources]]
        name = "empty"
        type = "csv"
        path = 5
        delimiter = ""
    """)
    assert check_errors(ws) == [
        "hub.toml: sources[1] \"files\": path: required key is missing",
        "hub.toml: sources[1] \"files\": pth: unknown key (did you mean 'path'?)",
        "hub.toml: sources[2] \"paris\": batch_size: 0 is less than the minimum of 1",
        "hub.toml: sources[2] \"paris\": delimiter: ';;' is too long",
        "hub.toml: sources[2] \"paris\": timezone: 'Europe/Pariss' is not an IANA time zone such as Europe/Paris",
        "hub.toml: sources[3] \"empty\": delimiter: must not be empty",
        "hub.toml: sources[3] \"empty\": path: expected a string, got an integer (5)",
    ]


def test_a_csv_source_time_zone_naming_a_region_is_an_error_not_a_crash(ws):
    ws.config("""
        [[sources]]
        name = "files"
        type = "csv"
        path = "usage/*.csv"
        timezone = "Europe"
    """)
    assert check_errors(ws) == [
        "hub.toml: sources[1] \"files\": timezone: 'Europe' is not an IANA time zone such as Europe/Paris",
    ]


def test_a_plugin_declaring_an_invalid_schema_is_reported_not_a_crash(ws):
    broken = types.ModuleType("broken_plugin")

    @hookimpl
    def hub_register_source_types() -> list[SourceType]:
        return [SourceType(name="broken", description="x", config_schema={"type": "strin"},
                           factory=lambda config: None)]

    broken.hub_register_source_types = hub_register_source_types  # type: ignore[attr-defined]
    ws.config("""
        [[sources]]
        name = "b"
        type = "broken"
    """)
    errors = load_errors(ws, build_host(extra_plugins=[("broken", broken)]))
    assert [(e.file, e.table, e.key) for e in errors] == [("hub.toml", 'sources[1] "b"', "type")]
    assert errors[0].message.startswith("plugin 'broken' declares an invalid schema for type 'broken': "), errors[0].message


# --------------------------------------------------------------------------
# Secrets: *_env keys name environment variables


def test_an_unset_secret_variable_is_an_error_for_check_only(ws, monkeypatch):
    monkeypatch.delenv("HUB_TEST_TOKEN", raising=False)
    monkeypatch.delenv("HUB_TEST_PASSWORD", raising=False)
    ws.config(SECRET_INSTANCES)
    assert load_lines(ws, secret_host(), check_secrets=True) == [
        "hub.toml: exporters[1] \"hook\": token_env: environment variable HUB_TEST_TOKEN is not set",
        "hub.toml: sources[1] \"billing\": password_env: environment variable HUB_TEST_PASSWORD is not set",
    ]
    config = load_config(ws.config_path, secret_host(), check_secrets=False)
    assert [e.options["token_env"] for e in config.exporters] == ["HUB_TEST_TOKEN"]
    assert [s.options["password_env"] for s in config.sources] == ["HUB_TEST_PASSWORD"]


def test_check_reports_an_unset_secret_variable_and_other_commands_do_not(ws, monkeypatch, cli_with_secret_plugin):
    monkeypatch.delenv("HUB_TEST_TOKEN", raising=False)
    ws.config(SECRET_INSTANCES)
    env = {"HUB_TEST_PASSWORD": "pw-not-printed-9731"}
    assert check_errors(ws, env=env) == [
        "hub.toml: exporters[1] \"hook\": token_env: environment variable HUB_TEST_TOKEN is not set",
    ]
    upgrade = ws.hub("db", "upgrade", env=env)
    assert upgrade.exit_code == 0, upgrade.output
    from hub.store.migrations import HEAD

    assert upgrade.stdout.strip() == f"schema at revision {HEAD}"


def test_a_secret_value_never_appears_in_any_output(ws, monkeypatch, cli_with_secret_plugin):
    secrets = {
        "HUB_TEST_TOKEN": "tok-SECRET-VALUE-4711",
        "HUB_TEST_PASSWORD": "pw-SECRET-VALUE-0815",
        "HUB_TEST_DB": "postgresql+psycopg://hub:db-SECRET-VALUE-1234@db.invalid/hub",
    }
    ws.write("hub.toml", '[hub]\ndatabase_env = "HUB_TEST_DB"\n' + SECRET_INSTANCES)
    result = ws.hub("check", env=secrets)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("hub.toml: ok (0 meters, 0 accounts, ")
    for value in secrets.values():
        assert value not in result.stdout + result.stderr
    ws.append("hub.toml", '\n[[products]]\nname = "p"\nmeter = "ghost"\nprice = { model = "flat", amount = "1" }\n')
    result = ws.hub("check", env={**secrets, "HUB_TEST_PASSWORD": None})
    assert result.exit_code == 2
    assert "environment variable HUB_TEST_PASSWORD is not set" in result.stderr
    for value in secrets.values():
        assert value not in result.stdout + result.stderr


def test_database_env_naming_an_unset_variable_is_an_error(ws, monkeypatch):
    monkeypatch.delenv("HUB_TEST_DB_UNSET", raising=False)
    ws.write("hub.toml", """
        [hub]
        database_env = "HUB_TEST_DB_UNSET"
    """)
    assert load_lines(ws) == ["hub.toml: [hub]: database_env: environment variable HUB_TEST_DB_UNSET is not set"]


def test_database_env_that_is_not_a_variable_name_is_an_error(ws):
    ws.write("hub.toml", """
        [hub]
        database_env = "HUB DB"
    """)
    assert load_lines(ws) == ["hub.toml: [hub]: database_env: 'HUB DB' is not an environment variable name"]


def test_an_unset_database_env_is_listed_with_the_other_errors(ws, monkeypatch):
    monkeypatch.delenv("HUB_TEST_DB_UNSET", raising=False)
    ws.write("hub.toml", """
        [hub]
        database_env = "HUB_TEST_DB_UNSET"

        [[products]]
        name = "p"
        meter = "ghost"
        price = { model = "flat", amount = "1" }
    """)
    assert load_lines(ws) == [
        "hub.toml: [hub]: database_env: environment variable HUB_TEST_DB_UNSET is not set",
        "hub.toml: products[1] \"p\": meter: unknown meter 'ghost'",
    ]


def test_an_unset_database_env_in_an_included_file_names_that_file(ws, monkeypatch):
    monkeypatch.delenv("HUB_TEST_DB_UNSET", raising=False)
    ws.write("hub.toml", 'include = ["config/*.toml"]\n')
    ws.write("config/hub.toml", '[hub]\ndatabase_env = "HUB_TEST_DB_UNSET"\n')
    assert load_lines(ws) == [
        "config/hub.toml: [hub]: database_env: environment variable HUB_TEST_DB_UNSET is not set",
    ]


# --------------------------------------------------------------------------
# include


CATALOG = """
[[meters]]
name = "compute.memory"
aggregation = "time_weighted"
unit = "GiB"

[[meters]]
name = "jobs"
aggregation = "sum"
"""


def test_included_files_merge_their_meters_and_accounts(ws):
    ws.write("hub.toml", """
        include = ["config/*.toml"]

        [[meters]]
        name = "compute.vcpu"
        aggregation = "time_weighted"
    """)
    ws.write("config/catalog.toml", CATALOG)
    ws.write("config/accounts.toml", '[[accounts]]\nid = "acme"\n\n[[accounts]]\nid = "globex"\n')
    config = load_config(ws.config_path, build_host(), check_secrets=True)
    assert list(config.meters) == ["compute.vcpu", "compute.memory", "jobs"]
    assert list(config.accounts) == ["acme", "globex"]
    assert ok_line(ws) == "hub.toml: ok (3 meters, 2 accounts, 0 sources, 0 exporters, 0 renderers)"


def test_an_error_in_an_included_file_names_that_file_and_its_own_position(ws):
    ws.write("hub.toml", """
        include = ["config/*.toml"]

        [[meters]]
        name = "compute.vcpu"
        aggregation = "time_weighted"
    """)
    ws.write("config/catalog.toml", CATALOG + '\n[[meters]]\nname = "x"\naggregation = "avg"\n')
    ws.write("config/accounts.toml", '[[accounts]]\nid = "acme"\n')
    assert check_errors(ws) == [
        f"config/catalog.toml: meters[3] \"x\": aggregation: 'avg' is not one of: {AGGREGATIONS}",
    ]
    ws.write("config/catalog.toml", CATALOG + '\n[[meters]]\nname = "compute.vcpu"\naggregation = "sum"\n')
    ws.write("config/accounts.toml", '[[accounts]]\nid = "acme"\nparent = "nobody"\n')
    assert check_errors(ws) == [
        "config/accounts.toml: accounts[1] \"acme\": parent: unknown account 'nobody'",
        "config/catalog.toml: meters[3] \"compute.vcpu\": name: 'compute.vcpu' is already used by "
        "meters[1] \"compute.vcpu\" in hub.toml",
    ]


def test_a_syntax_error_in_an_included_file_names_that_file(ws):
    ws.write("hub.toml", 'include = ["config/catalog.toml"]\n')
    ws.write("config/catalog.toml", '[[meters]\nname = "x"\n')
    assert check_errors(ws) == [
        "config/catalog.toml: line 1, column 9: not valid TOML: expected ']]' at the end of an array declaration",
    ]


def test_an_included_file_that_does_not_exist_is_an_error(ws):
    ws.write("hub.toml", 'include = ["config/*.toml", "catalog/main.toml"]\n')
    ws.write("config/catalog.toml", CATALOG)
    assert check_errors(ws) == ["hub.toml: include[2]: 'catalog/main.toml' matches no file"]


def test_an_included_file_cannot_include_others(ws):
    ws.write("hub.toml", 'include = ["config/catalog.toml"]\n')
    ws.write("config/catalog.toml", 'include = ["more.toml"]\n' + CATALOG)
    ws.write("config/more.toml", '[[accounts]]\nid = "acme"\n')
    assert check_errors(ws) == ["config/catalog.toml: include: included files cannot include others"]


def test_a_table_defined_in_two_files_is_an_error(ws):
    ws.write("hub.toml", 'include = ["config/*.toml"]\n\n[invoicing]\nschedule = "monthly"\n')
    ws.write("config/a.toml", '[invoicing]\nschedule = "weekly"\n')
    ws.write("config/b.toml", '[hub]\ncurrency = "USD"\n')
    ws.write("config/c.toml", '[hub]\ncurrency = "EUR"\n')
    assert load_lines(ws) == [
        "config/a.toml: [invoicing]: is already defined in hub.toml",
        "config/c.toml: [hub]: is already defined in config/b.toml",
    ]


def test_an_error_in_a_plain_table_of_an_included_file_names_that_file(ws):
    ws.write("hub.toml", 'include = ["config/*.toml"]\n')
    ws.write("config/invoicing.toml", '[invoicing]\nshedule = "monthly"\n')
    assert load_lines(ws) == [
        "config/invoicing.toml: [invoicing]: shedule: unknown key (did you mean 'schedule'?)",
    ]


def test_an_unknown_top_level_key_in_an_included_file_names_that_file(ws):
    ws.write("hub.toml", 'include = ["config/*.toml"]\n')
    ws.write("config/catalog.toml", '[[meter]]\nname = "m"\naggregation = "sum"\n')
    assert check_errors(ws) == ["config/catalog.toml: meter: unknown key (did you mean 'meters'?)"]


def test_an_array_written_as_a_table_in_an_included_file_is_an_error_not_a_crash(ws):
    # [meters] instead of [[meters]] while hub.toml already has [[meters]].
    ws.write("hub.toml", 'include = ["config/*.toml"]\n\n[[meters]]\nname = "a"\naggregation = "sum"\n')
    ws.write("config/catalog.toml", '[meters]\nname = "b"\naggregation = "sum"\n')
    errors = load_errors(ws)
    assert [(e.file, e.table) for e in errors] == [("config/catalog.toml", "[meters]")], errors


def test_an_include_naming_a_directory_is_an_error_not_a_crash(ws):
    ws.write("hub.toml", 'include = ["config"]\n')
    ws.write("config/catalog.toml", CATALOG)
    lines = check_errors(ws)
    assert len(lines) == 1 and "config" in lines[0] and "directory" in lines[0], lines


def test_a_file_matched_by_two_include_patterns_is_merged_once(ws):
    ws.write("hub.toml", 'include = ["config/*.toml", "config/catalog.toml"]\n')
    ws.write("config/catalog.toml", CATALOG)
    assert ok_line(ws) == "hub.toml: ok (2 meters, 0 accounts, 0 sources, 0 exporters, 0 renderers)"


def test_an_include_glob_matching_hub_toml_itself_does_not_include_it_again(ws):
    ws.write("hub.toml", 'include = ["*.toml"]\n\n[hub]\ncurrency = "EUR"\n')
    ws.write("catalog.toml", CATALOG)
    assert ok_line(ws) == "hub.toml: ok (2 meters, 0 accounts, 0 sources, 0 exporters, 0 renderers)"


# --------------------------------------------------------------------------
# A valid config, and hub init


def test_a_valid_config_prints_ok_with_the_counts(ws):
    ws.config(STANDARD_CONFIG + '\n[[sources]]\nname = "more"\ntype = "csv"\npath = "more/*.csv"\ninterval = "1h30m"\n')
    result = ws.hub("check")
    assert result.exit_code == 0
    assert result.stderr == ""
    assert result.stdout == "hub.toml: ok (2 meters, 2 accounts, 2 sources, 0 exporters, 0 renderers)\n"


def test_the_ok_line_counts_a_single_item_in_the_singular(ws):
    ws.config("""
        [[meters]]
        name = "m"
        aggregation = "sum"

        [[accounts]]
        id = "acme"

        [[sources]]
        name = "files"
        type = "csv"
        path = "usage/*.csv"
    """)
    assert ok_line(ws) == "hub.toml: ok (1 meter, 1 account, 1 source, 0 exporters, 0 renderers)"


def test_hub_init_writes_a_starter_config_that_check_accepts(tmp_path):
    site = Workspace(tmp_path / "site", f"sqlite:///{tmp_path / 'hub.db'}")
    result = site.hub("init", str(site.root))
    assert result.exit_code == 0, result.output
    for rel in ("hub.toml", "config/catalog.toml", "config/accounts.toml", "usage/example.csv"):
        assert (site.root / rel).is_file(), rel
    assert result.stdout.splitlines()[-1] == f"next: hub --config {site.root / 'hub.toml'} check"
    checked = site.hub("check")
    assert checked.exit_code == 0, checked.output
    assert checked.stderr == ""
    assert checked.stdout.startswith("hub.toml: ok (3 meters, ")


def test_hub_init_refuses_to_overwrite_without_force(ws):
    ws.write("hub.toml", "# mine\n")
    result = ws.hub("init", str(ws.root))
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.strip() == f"hub: {ws.root / 'hub.toml'} exists; nothing written (--force overwrites)"
    assert ws.config_path.read_text() == "# mine\n"
    forced = ws.hub("init", "--force", str(ws.root))
    assert forced.exit_code == 0, forced.output
    assert ws.config_path.read_text() != "# mine\n"
    assert ws.hub("check").exit_code == 0


def test_hub_init_writes_nothing_when_any_of_its_files_exists(ws):
    ws.write("config/catalog.toml", "# my catalog\n")
    result = ws.hub("init", str(ws.root))
    assert result.exit_code == 2
    assert result.stderr.strip() == f"hub: {ws.root / 'config/catalog.toml'} exists; nothing written (--force overwrites)"
    assert (ws.root / "config/catalog.toml").read_text() == "# my catalog\n"
    assert sorted(str(p.relative_to(ws.root)) for p in ws.root.rglob("*")) == ["config", "config/catalog.toml"]


def test_a_float_where_an_integer_is_expected_is_an_error(ws):
    ws.config("""
        [[sources]]
        name = "files"
        type = "csv"
        path = "usage/*.csv"
        batch_size = 10.0
    """)
    assert check_errors(ws) == ['hub.toml: sources[1] "files": batch_size: expected an integer, got a float (10.0)']
