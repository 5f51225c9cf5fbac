"""The invoicing configuration: [seller], [tax.rates], [invoicing],
[[credits]], [[discounts]] and the invoicing keys of [[accounts]], typed
into :class:`hub.config.Config`, and every check with its exact message.

Errors read ``{file}: {table}: {key}: {message}`` (``str(ConfigError)``,
what ``hub check`` prints after ``error: ``). None of these tests needs
PostgreSQL.
"""

from __future__ import annotations

import textwrap
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from hub.config import (
    Address,
    Config,
    ConfigErrors,
    CreditConfig,
    DiscountConfig,
    InvoicingSettings,
    SellerConfig,
    load_config,
)
from hub.host import build_host
from tests.conftest import Workspace

UTC = timezone.utc

SELLER = """
[seller]
name = "Hub Cloud GmbH"
country = "DE"
vat_id = "DE136695976"

[tax.rates]
DE = "19"
FR = "20"
"""

PRODUCTS = """
[[meters]]
name = "compute.vcpu"
aggregation = "time_weighted"

[[products]]
name = "vcpu"
meter = "compute.vcpu"
price = { model = "per_unit", unit_price = "0.00001" }
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
vat_id = "FR40303265045"
"""


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path, f"sqlite:///{tmp_path / 'hub.db'}")


def load(ws: Workspace) -> Config:
    return load_config(ws.config_path, build_host())


def lines(ws: Workspace) -> list[str]:
    """The errors of the workspace's configuration, as ``hub check`` words them."""
    with pytest.raises(ConfigErrors) as info:
        load_config(ws.config_path, build_host(), check_secrets=True)
    return [str(e) for e in info.value.errors]


def with_include(ws: Workspace, body: str) -> None:
    """hub.toml including config/*.toml, with ``body``."""
    ws.write("hub.toml", f'include = ["config/*.toml"]\n\n[hub]\ndatabase = "{ws.db_url}"\n' + textwrap.dedent(body),
             dedent=False)


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# --------------------------------------------------------------------------
# Typed values


def test_the_invoicing_tables_are_typed(ws):
    ws.config(SELLER + PRODUCTS + ACCOUNTS + """
        [seller.address]
        street = "Hafenstrasse 1"
        city = "Hamburg"
        postal_code = "20457"

        [invoicing]
        schedule = "weekly"
        grace = "1h30m"
        payment_terms_days = 14
        number_format = "R{year}{month:02d}-{seq:04d}"
        credit_note_format = "G{year}-{seq}"
        locale = "de_DE"

        [[accounts]]
        id = "kiwi"
        name = "Kiwi Ltd"
        country = "NZ"
        vat_id = "  123-456-789 "
        email = "ap@kiwi.example"
        schedule = "monthly"
        timezone = "Pacific/Auckland"
        since = "2026-03-15"
        tax_exempt = true
        exemption_reason = "Charity"
        address = { street = "1 Queen St", city = "Auckland", postal_code = "1010", region = "AUK" }
        locale = "en_NZ"
        peppol_id = "0088:9429041234567"
        tags = ["enterprise", "apac"]
        plans = ["vcpu"]

        [[credits]]
        account = "globex"
        amount = "25.00"
        kind = "promotional"
        granted = "2026-03-01T12:00:00+01:00"
        expires = "2027-06-30"
        description = "Welcome credit"

        [[credits]]
        account = "acme"
        amount = "100"
        currency = "EUR"
        kind = "prepaid"

        [[discounts]]
        account = "globex"
        product = "vcpu"
        percent = "12.5"
        valid_from = "2026-10-01"
        valid_until = "2026-10-31"

        [[discounts]]
        account = "acme"
        amount = "5.50"
        valid_until = "2026-11-01T00:00:00Z"
        description = "Goodwill"
    """)
    config = load(ws)
    assert config.seller == SellerConfig(
        name="Hub Cloud GmbH", country="DE", vat_id="DE136695976",
        address=Address(street="Hafenstrasse 1", city="Hamburg", postal_code="20457"))
    assert config.tax_rates == {"DE": Decimal("19"), "FR": Decimal("20")}
    assert config.invoicing == InvoicingSettings(schedule="weekly", grace=5400, payment_terms_days=14,
                                                 number_format="R{year}{month:02d}-{seq:04d}",
                                                 credit_note_format="G{year}-{seq}", locale="de_DE")
    acme, globex, kiwi = config.accounts["acme"], config.accounts["globex"], config.accounts["kiwi"]
    # An account without a schedule takes [invoicing]'s.
    assert (acme.schedule, globex.schedule, kiwi.schedule) == ("weekly", "weekly", "monthly")
    assert (acme.vat_id, acme.tax_exempt, acme.address, acme.tags, acme.since) == (None, False, Address(), (), None)
    assert globex.vat_id == "FR40303265045"
    # A tax number outside the EU is kept as written, stripped.
    assert kiwi.vat_id == "123-456-789"
    assert kiwi.email == "ap@kiwi.example"
    # 2026-03-15 00:00 in Auckland (NZDT, +13:00)
    assert kiwi.since == at(2026, 3, 14, 11)
    assert (kiwi.tax_exempt, kiwi.exemption_reason) == (True, "Charity")
    assert kiwi.address == Address(street="1 Queen St", city="Auckland", postal_code="1010", region="AUK")
    assert (kiwi.locale, kiwi.peppol_id, kiwi.tags) == ("en_NZ", "0088:9429041234567", ("enterprise", "apac"))
    # extra keeps every raw key but the six typed from the start (rating reads plans and since there).
    assert kiwi.extra["plans"] == ["vcpu"] and kiwi.extra["since"] == "2026-03-15"
    assert kiwi.extra["vat_id"] == "  123-456-789 "

    assert config.credits == (
        # expires 2027-06-30 is inclusive: it ends at the next midnight in Paris (CEST, +02:00).
        CreditConfig(index=0, account="globex", amount=Decimal("25.00"), currency="EUR", kind="promotional",
                     granted=at(2026, 3, 1, 11), expires=at(2027, 6, 30, 22), description="Welcome credit"),
        CreditConfig(index=1, account="acme", amount=Decimal("100"), currency="EUR", kind="prepaid",
                     granted=None, expires=None, description=""),
    )
    assert config.discounts == (
        # valid_from: midnight starting 2026-10-01 in Paris (CEST); valid_until 2026-10-31
        # inclusive: the midnight after it, in CET (+01:00) since 25 October.
        DiscountConfig(index=0, account="globex", product="vcpu", percent=Decimal("12.5"), amount=None,
                       currency=None, valid_from=at(2026, 9, 30, 22), valid_until=at(2026, 10, 31, 23)),
        # an RFC 3339 time is taken as given; a fixed amount is in the account's currency
        DiscountConfig(index=1, account="acme", product=None, percent=None, amount=Decimal("5.50"), currency="EUR",
                       valid_from=None, valid_until=at(2026, 11, 1), description="Goodwill"),
    )
    assert all(d.tzinfo == UTC for d in (kiwi.since, config.credits[0].expires, config.discounts[0].valid_until))


def test_without_invoicing_tables_the_defaults_apply(ws):
    ws.config(ACCOUNTS)
    config = load(ws)
    assert config.seller is None
    assert config.tax_rates == {}
    assert config.invoicing == InvoicingSettings()
    assert config.invoicing.number_format == "INV-{year}-{seq:06d}"
    assert config.invoicing.credit_note_format == "CN-{year}-{seq:06d}"
    assert (config.invoicing.grace, config.invoicing.payment_terms_days) == (0, 30)
    assert (config.credits, config.discounts) == ((), ())
    assert config.accounts["acme"].schedule == "monthly"


def test_toml_dates_and_times_are_read_like_strings(ws):
    ws.config(ACCOUNTS + """
        [[accounts]]
        id = "initech"
        currency = "JPY"
        timezone = "Asia/Tokyo"
        since = 2026-01-01

        [[credits]]
        account = "initech"
        amount = "1000"
        kind = "prepaid"
        granted = 2026-01-15T09:00:00+09:00
        expires = 2026-12-31
    """)
    config = load(ws)
    assert config.accounts["initech"].since == at(2025, 12, 31, 15)
    credit = config.credits[0]
    assert (credit.currency, credit.granted, credit.expires) == ("JPY", at(2026, 1, 15), at(2026, 12, 31, 15))


def test_credits_and_discounts_of_included_files_are_indexed_in_the_merged_array(ws):
    with_include(ws, ACCOUNTS + """
        [[credits]]
        account = "acme"
        amount = "1.00"
        kind = "prepaid"
    """)
    ws.write("config/credits.toml", """
        [[credits]]
        account = "globex"
        amount = "2.00"
        kind = "promotional"
    """)
    config = load(ws)
    assert [(c.index, c.account) for c in config.credits] == [(0, "acme"), (1, "globex")]


def test_a_date_in_a_time_zone_with_a_dst_change_that_day_ends_at_the_next_midnight(ws):
    ws.config(ACCOUNTS + """
        [[discounts]]
        account = "globex"
        percent = "10"
        valid_from = "2026-03-29"
        valid_until = "2026-03-29"
    """)
    d = load(ws).discounts[0]
    # 29 March 2026 in Paris is 23 hours long (CET -> CEST at 02:00)
    assert (d.valid_from, d.valid_until) == (at(2026, 3, 28, 23), at(2026, 3, 29, 22))


# --------------------------------------------------------------------------
# [[accounts]]


def test_an_invalid_vat_id_names_the_account(ws):
    ws.config(SELLER + """
        [[accounts]]
        id = "acme"
        country = "DE"
        vat_id = "DE136695977"

        [[accounts]]
        id = "globex"
        country = "FR"
        vat_id = "DE136695976"

        [[accounts]]
        id = "hellas"
        country = "GR"
        vat_id = "GR094259216"

        [[accounts]]
        id = "short"
        country = "AT"
        vat_id = "ATU1234"
    """)
    assert lines(ws) == [
        "hub.toml: accounts[1] \"acme\": vat_id: 'DE136695977' is not a valid VAT id: its check digits are wrong",
        "hub.toml: accounts[2] \"globex\": vat_id: 'DE136695976' is not a valid VAT id for country FR: "
        "it starts with DE, expected FR",
        "hub.toml: accounts[3] \"hellas\": vat_id: 'GR094259216' is not a valid VAT id: "
        "Greek VAT ids start with EL, not GR",
        "hub.toml: accounts[4] \"short\": vat_id: 'ATU1234' is not a valid VAT id: "
        "it has the wrong number of characters for AT",
    ]


def test_a_valid_vat_id_may_be_written_with_spaces_and_a_tax_number_outside_the_eu_is_not_checked(ws):
    ws.config("""
        [[accounts]]
        id = "globex"
        country = "FR"
        vat_id = "FR 40 303 265 045"

        [[accounts]]
        id = "swiss"
        country = "CH"
        vat_id = "CHE-123.456.788 MWST"
    """)
    config = load(ws)
    assert config.accounts["globex"].vat_id == "FR 40 303 265 045"
    assert config.accounts["swiss"].vat_id == "CHE-123.456.788 MWST"


def test_an_empty_vat_id_is_an_error(ws):
    ws.config('[[accounts]]\nid = "acme"\ncountry = "DE"\nvat_id = " "\n')
    assert lines(ws) == ['hub.toml: accounts[1] "acme": vat_id: a VAT id cannot be empty']


def test_a_vat_id_of_an_account_without_a_country_must_be_an_eu_vat_id(ws):
    ws.config('[[accounts]]\nid = "acme"\nvat_id = "12345"\n')
    assert lines(ws) == [
        "hub.toml: accounts[1] \"acme\": vat_id: '12345' is not a valid VAT id: it must start with the two-letter "
        "prefix of an EU member state (DE, FR, EL...)",
    ]


def test_tax_exempt_needs_an_exemption_reason(ws):
    ws.config("""
        [[accounts]]
        id = "charity"
        country = "DE"
        tax_exempt = true

        [[accounts]]
        id = "blank"
        country = "DE"
        tax_exempt = true
        exemption_reason = "  "

        [[accounts]]
        id = "ok"
        country = "DE"
        tax_exempt = false
    """)
    reason = "exemption_reason: required when tax_exempt = true: an exempt invoice states why (EN 16931 BR-E-10)"
    assert lines(ws) == [
        f'hub.toml: accounts[1] "charity": {reason}',
        f'hub.toml: accounts[2] "blank": {reason}',
    ]


def test_since_locale_and_email_of_an_account_are_checked(ws):
    ws.config("""
        [[accounts]]
        id = "acme"
        since = "2026-02-30"
        locale = "xx_YY"
        email = "billing at acme"
        schedule = "yearly"
        peppol_id = "9930DE136695976"
    """)
    assert lines(ws) == [
        "hub.toml: accounts[1] \"acme\": email: 'billing at acme' is not an e-mail address",
        "hub.toml: accounts[1] \"acme\": locale: 'xx_YY' is not a locale such as en, de or fr_CH",
        "hub.toml: accounts[1] \"acme\": peppol_id: '9930DE136695976' does not match ^[0-9]{4}:.+$",
        "hub.toml: accounts[1] \"acme\": schedule: 'yearly' is not one of: daily, weekly, monthly",
        "hub.toml: accounts[1] \"acme\": since: '2026-02-30' is an impossible date: February 2026 has 28 days",
    ]


# --------------------------------------------------------------------------
# [seller] and [tax.rates]


def test_the_seller_vat_id_is_checked(ws):
    ws.config("""
        [seller]
        name = "Hub Cloud GmbH"
        country = "DE"
        vat_id = "DE 136 695 970"

        [tax.rates]
        DE = "19"
    """)
    assert lines(ws) == ["hub.toml: [seller]: vat_id: 'DE 136 695 970' is not a valid VAT id: its check digits are wrong"]


def test_the_seller_iban_and_bic_are_checked_and_a_phone_must_look_like_one(ws):
    ws.config("""
        [seller]
        name = "Hub Cloud GmbH"
        country = "DE"
        iban = "DE89 3704 0044 0532 0130 01"
        bic = "COBADEFF1"
        phone = "call us"

        [tax.rates]
        DE = "19"
    """)
    assert lines(ws) == [
        "hub.toml: [seller]: bic: 'COBADEFF1' is not a BIC: The number has an invalid length.",
        "hub.toml: [seller]: iban: 'DE89 3704 0044 0532 0130 01' is not an IBAN: The number's checksum or check "
        "digit is invalid.",
        "hub.toml: [seller]: phone: 'call us' is not a telephone number (5 to 30 digits, spaces and + ( ) . / -, "
        "a + only first)",
    ]


def test_the_seller_bank_account_is_kept_compact(ws):
    ws.config(SELLER.replace('vat_id = "DE136695976"', 'vat_id = "DE136695976"\niban = "de89 3704 0044 0532 0130 00"\n'
                             'bic = "COBADEFFXXX"\nphone = "+49 40 123456-0"') + PRODUCTS + ACCOUNTS)
    seller = load(ws).seller
    assert (seller.iban, seller.bic, seller.phone) == ("DE89370400440532013000", "COBADEFFXXX", "+49 40 123456-0")


def test_the_tax_rates_need_the_seller_country_and_are_percentages(ws):
    ws.config("""
        [seller]
        name = "Hub Cloud GmbH"
        country = "DE"

        [tax.rates]
        FR = "120"
        AT = "-1"
        NL = "21"
    """)
    assert lines(ws) == [
        "hub.toml: [tax]: rates: no standard rate for the seller's country DE: add DE = \"...\" to [tax.rates]",
        "hub.toml: [tax]: rates.AT: a tax rate is a percentage between 0 and 100, not -1",
        "hub.toml: [tax]: rates.FR: a tax rate is a percentage between 0 and 100, not 120",
    ]


def test_a_seller_without_tax_rates_is_an_error(ws):
    ws.config('[seller]\nname = "Hub Cloud GmbH"\ncountry = "FR"\n')
    assert lines(ws) == [
        "hub.toml: [tax]: rates: no standard rate for the seller's country FR: add FR = \"...\" to [tax.rates]",
    ]


def test_an_account_taxed_at_its_own_country_rate_needs_that_rate(ws):
    # globex (FR, no VAT id) is taxed at the French rate; umbrella (NL) has a
    # VAT id (reverse charge), initech is outside the EU, charity is exempt,
    # and a child account is taxed as its parent.
    ws.config(SELLER.replace('FR = "20"\n', "") + """
        [[accounts]]
        id = "globex"
        country = "FR"

        [[accounts]]
        id = "umbrella"
        country = "NL"
        vat_id = "NL004495445B01"

        [[accounts]]
        id = "initech"
        country = "US"

        [[accounts]]
        id = "charity"
        country = "BE"
        tax_exempt = true
        exemption_reason = "Exempt"

        [[accounts]]
        id = "child"
        country = "IT"
        parent = "initech"
    """)
    assert lines(ws) == [
        "hub.toml: accounts[1] \"globex\": country: no standard tax rate is configured for FR ([tax.rates] FR = \"...\")",
    ]


def test_a_float_tax_rate_is_refused(ws):
    ws.config(SELLER.replace('DE = "19"', "DE = 19.0"))
    assert lines(ws) == [
        "hub.toml: [tax]: rates.DE: 19.0 is a TOML float, which is not exact; write decimal values as strings, "
        "such as \"19.0\"",
    ]


# --------------------------------------------------------------------------
# [invoicing]


@pytest.mark.parametrize(("fmt", "message"), [
    ("INV-{yr}-{seq}", "'INV-{yr}-{seq}' names an unknown field {yr}; it may use {year}, {month} and {seq}"),
    ("INV-{}-{seq}", "'INV-{}-{seq}' has a positional field {}; name the fields: {year}, {month} and {seq}"),
    ("INV-{year}", "'INV-{year}' must contain {seq}, the number in the series (such as {seq:06d})"),
    ("INV-{seq:s}", "'INV-{seq:s}' cannot be formatted with {year}, {month} and {seq}: "
                    "Unknown format code 's' for object of type 'int'"),
    ("INV-{year", "'INV-{year' cannot be formatted with {year}, {month} and {seq}: "
                  "expected '}' before end of string"),
    ("INV-{month:02d}-{seq}", "'INV-{month:02d}-{seq}' shows the month without the year: "
                              "its numbers would repeat every year"),
])
def test_a_number_format_must_format_with_year_month_and_seq(ws, fmt, message):
    ws.config(f"[invoicing]\nnumber_format = {fmt!r}\ncredit_note_format = {fmt!r}\n")
    assert lines(ws) == [f"hub.toml: [invoicing]: credit_note_format: {message}",
                         f"hub.toml: [invoicing]: number_format: {message}"]


def test_invoices_and_credit_notes_cannot_share_their_numbers(ws):
    ws.config('[invoicing]\ncredit_note_format = "INV-{year}-{seq:06d}"\n')
    assert lines(ws) == [
        "hub.toml: [invoicing]: credit_note_format: invoices and credit notes would get the same numbers "
        "(INV-2026-000001): give them different formats",
    ]


def test_grace_is_a_duration_and_the_other_invoicing_keys_are_checked(ws):
    ws.config("""
        [invoicing]
        grace = "1 day"
        schedule = "quarterly"
        payment_terms_days = -1
        locale = "nowhere"
    """)
    assert lines(ws) == [
        "hub.toml: [invoicing]: grace: '1 day' is not a duration such as 1s, 600s, 10m, 1h30m or 1d",
        "hub.toml: [invoicing]: locale: 'nowhere' is not a locale such as en, de or fr_CH",
        "hub.toml: [invoicing]: payment_terms_days: -1 is less than the minimum of 0",
        "hub.toml: [invoicing]: schedule: 'quarterly' is not one of: daily, weekly, monthly",
    ]


# --------------------------------------------------------------------------
# [[credits]]


def credits_config(ws: Workspace, *tables: str) -> None:
    ws.config(ACCOUNTS + """
        [[accounts]]
        id = "yen"
        currency = "JPY"

        [[accounts]]
        id = "child"
        parent = "acme"
    """ + "".join(f"\n[[credits]]\n{t.strip()}\n" for t in tables))


def test_a_credit_names_a_known_account_that_is_invoiced_itself(ws):
    credits_config(ws, 'account = "acne"\namount = "5.00"\nkind = "prepaid"',
                   'account = "child"\namount = "5.00"\nkind = "prepaid"')
    assert lines(ws) == [
        "hub.toml: credits[1]: account: unknown account 'acne'",
        "hub.toml: credits[2]: account: account 'child' is invoiced through its parent 'acme': "
        "give the credit to 'acme'",
    ]


def test_a_credit_amount_is_positive_and_fits_its_currency(ws):
    credits_config(
        ws,
        'account = "acme"\namount = "0"\nkind = "prepaid"',
        'account = "acme"\namount = "-5.00"\nkind = "prepaid"',
        'account = "acme"\namount = "10.001"\nkind = "prepaid"',
        'account = "yen"\namount = "100.5"\nkind = "promotional"',
        'account = "acme"\namount = "10.000"\nkind = "prepaid"',  # 10.00 written with a trailing zero: fine
        'account = "yen"\namount = "100"\nkind = "prepaid"',
    )
    assert lines(ws) == [
        "hub.toml: credits[1]: amount: must be greater than 0, not 0",
        "hub.toml: credits[2]: amount: must be greater than 0, not -5.00",
        "hub.toml: credits[3]: amount: 10.001 has more decimals than EUR's minor unit (2)",
        "hub.toml: credits[4]: amount: 100.5 has more decimals than JPY's minor unit (0)",
    ]


def test_a_credit_in_another_currency_than_its_account_is_an_error(ws):
    credits_config(ws, 'account = "acme"\namount = "5.00"\ncurrency = "USD"\nkind = "prepaid"',
                   'account = "acme"\namount = "5.00"\ncurrency = "XYZ"\nkind = "prepaid"',
                   'account = "yen"\namount = "5.00"\ncurrency = "EUR"\nkind = "prepaid"')
    assert lines(ws) == [
        "hub.toml: credits[1]: currency: USD differs from account acme's EUR",
        "hub.toml: credits[2]: currency: 'XYZ' is not an ISO 4217 currency",
        "hub.toml: credits[3]: currency: EUR differs from account yen's JPY",
    ]


def test_a_float_credit_amount_is_refused_as_not_exact(ws):
    credits_config(ws, 'account = "acme"\namount = 25.5\nkind = "prepaid"')
    assert lines(ws) == [
        'hub.toml: credits[1]: amount: 25.5 is a TOML float, which is not exact; write decimal values as strings, '
        'such as "25.5"',
    ]


def test_a_credit_needs_its_keys_and_its_dates_in_order(ws):
    credits_config(
        ws,
        'account = "acme"\namount = "5.00"\nkind = "gift"',
        'account = "acme"\nkind = "prepaid"',
        'account = "acme"\namount = "5.00"\nkind = "prepaid"\ngranted = "2026-06-01"\nexpires = "2026-05-31"',
        'account = "acme"\namount = "5.00"\nkind = "prepaid"\ngranted = "2026-06-01"\nexpires = "2026-06-01"',
        'account = "acme"\namount = "5.00"\nkind = "prepaid"\nexpires = "2026-13-01"',
        'account = "acme"\namount = "5.00"\nkind = "prepaid"\nexpires = "next year"',
    )
    assert lines(ws) == [
        "hub.toml: credits[1]: kind: 'gift' is not one of: prepaid, promotional",
        "hub.toml: credits[2]: amount: required key is missing",
        "hub.toml: credits[3]: expires: '2026-05-31' is not after granted '2026-06-01'",
        "hub.toml: credits[5]: expires: '2026-13-01' is an impossible date: there is no month 13",
        "hub.toml: credits[6]: expires: 'next year' is not a date (2027-06-30) or an RFC 3339 time with an offset "
        "(2027-06-30T00:00:00Z)",
    ]


def test_an_error_in_an_included_file_names_that_file_and_its_own_position(ws):
    with_include(ws, ACCOUNTS + """
        [[credits]]
        account = "acme"
        amount = "1.00"
        kind = "prepaid"
    """)
    ws.write("config/credits.toml", """
        [[credits]]
        account = "globex"
        amount = "2.00"
        kind = "promotional"

        [[credits]]
        account = "globex"
        amount = "2.00"
        currency = "CHF"
        kind = "promotional"
    """)
    assert lines(ws) == ["config/credits.toml: credits[2]: currency: CHF differs from account globex's EUR"]


# --------------------------------------------------------------------------
# [[discounts]]


def discounts_config(ws: Workspace, *tables: str) -> None:
    ws.config(PRODUCTS + ACCOUNTS + """
        [[accounts]]
        id = "dinar"
        currency = "BHD"

        [[accounts]]
        id = "child"
        parent = "acme"
    """ + "".join(f"\n[[discounts]]\n{t.strip()}\n" for t in tables))


def test_a_discount_names_a_known_account_and_product(ws):
    discounts_config(ws, 'account = "acne"\npercent = "10"', 'account = "acme"\nproduct = "gpu"\npercent = "10"',
                     'account = "child"\namount = "5.00"')
    assert lines(ws) == [
        "hub.toml: discounts[1]: account: unknown account 'acne'",
        "hub.toml: discounts[2]: product: unknown product 'gpu'",
        "hub.toml: discounts[3]: account: account 'child' is invoiced through its parent 'acme': "
        "give the discount to 'acme'",
    ]


def test_a_discount_percent_is_above_0_and_at_most_100(ws):
    discounts_config(ws, 'account = "acme"\npercent = "0"', 'account = "acme"\npercent = "100.5"',
                     'account = "acme"\npercent = "-10"', 'account = "acme"\npercent = "100"',
                     'account = "acme"\npercent = "0.5"')
    assert lines(ws) == [
        "hub.toml: discounts[1]: percent: must be greater than 0 and at most 100, not 0",
        "hub.toml: discounts[2]: percent: must be greater than 0 and at most 100, not 100.5",
        "hub.toml: discounts[3]: percent: must be greater than 0 and at most 100, not -10",
    ]


def test_a_fixed_discount_is_positive_and_fits_the_account_currency(ws):
    discounts_config(ws, 'account = "acme"\namount = "0.00"', 'account = "acme"\namount = "1.005"',
                     'account = "dinar"\namount = "1.005"', 'account = "dinar"\namount = "1.0005"',
                     'account = "acme"\namount = 5.0')
    assert lines(ws) == [
        "hub.toml: discounts[1]: amount: must be greater than 0, not 0.00",
        "hub.toml: discounts[2]: amount: 1.005 has more decimals than EUR's minor unit (2)",
        "hub.toml: discounts[4]: amount: 1.0005 has more decimals than BHD's minor unit (3)",
        'hub.toml: discounts[5]: amount: 5.0 is a TOML float, which is not exact; write decimal values as strings, '
        'such as "5.0"',
    ]


def test_a_discount_is_valid_from_before_until(ws):
    discounts_config(
        ws,
        'account = "acme"\npercent = "10"\nvalid_from = "2026-06-01"\nvalid_until = "2026-05-31"',
        'account = "acme"\npercent = "10"\nvalid_from = "2026-06-01"\nvalid_until = "2026-06-01"',  # one day
        'account = "acme"\npercent = "10"\nvalid_from = "2026-06-01T00:00:00Z"\nvalid_until = "2026-06-01T00:00:00Z"',
        'account = "acme"\npercent = "10"\nvalid_from = "2026-02-29"',
    )
    assert lines(ws) == [
        "hub.toml: discounts[1]: valid_until: '2026-05-31' is not after valid_from '2026-06-01'",
        "hub.toml: discounts[3]: valid_until: '2026-06-01T00:00:00Z' is not after valid_from '2026-06-01T00:00:00Z'",
        "hub.toml: discounts[4]: valid_from: '2026-02-29' is an impossible date: February 2026 has 28 days",
    ]


def test_a_discount_with_both_percent_and_amount_reports_that_alone(ws):
    discounts_config(ws, 'account = "nobody"\npercent = "10"\namount = "5.00"')
    assert lines(ws) == ["hub.toml: discounts[1]: set exactly one of percent or amount"]


# --------------------------------------------------------------------------
# All at once, through hub check


def test_hub_check_lists_every_invoicing_error_at_once(ws):
    ws.config("""
        [seller]
        name = "Hub Cloud GmbH"
        country = "DE"
        vat_id = "DE000"

        [invoicing]
        number_format = "INV-{year}"

        [[accounts]]
        id = "acme"
        country = "DE"
        tax_exempt = true

        [[credits]]
        account = "acme"
        amount = "5.00"
        currency = "USD"
        kind = "prepaid"

        [[discounts]]
        account = "acme"
        percent = "150"
    """)
    result = ws.hub("check")
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [
        "error: hub.toml: [invoicing]: number_format: 'INV-{year}' must contain {seq}, the number in the series "
        "(such as {seq:06d})",
        "error: hub.toml: [tax]: rates: no standard rate for the seller's country DE: add DE = \"...\" to [tax.rates]",
        "error: hub.toml: [seller]: vat_id: 'DE000' is not a valid VAT id: its format is wrong for DE",
        "error: hub.toml: accounts[1] \"acme\": exemption_reason: required when tax_exempt = true: an exempt invoice "
        "states why (EN 16931 BR-E-10)",
        "error: hub.toml: credits[1]: currency: USD differs from account acme's EUR",
        "error: hub.toml: discounts[1]: percent: must be greater than 0 and at most 100, not 150",
        "hub: 6 configuration errors",
    ]


def test_the_demo_configuration_is_valid_and_typed():
    from importlib import resources

    with resources.as_file(resources.files("hub") / "demo" / "hub.toml") as path:
        config = load_config(path, build_host())
    if config.seller is not None:
        assert config.seller.country in config.tax_rates
    for credit in config.credits:
        assert credit.currency == config.accounts[credit.account].currency
