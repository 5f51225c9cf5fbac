"""hub check refuses every number, duration and format of hub.toml that
invoicing cannot use (issue 24, item 7), each with a ConfigError naming the
file, the table and the key; the largest values it accepts go through an
invoice end to end.

The bounds (docs/hub-toml.md): payment_terms_days 0 to 3650; every
duration at most 366d; every decimal at most 15 digits before its point
(leading zeros aside) and 18 after it; a number format has only {year},
{month} and {seq} with a width of at most 12 digits, and gives numbers of
letters, digits, '-', '_' and '.', starting with a letter or a digit, of at
most 64 characters.
"""

from __future__ import annotations

import pytest

from hub.config import ConfigErrors, load_config
from hub.host import build_host
from tests.conftest import Workspace
from tests.test_invoices import ACCOUNTS, BASE, HEADER

PRODUCT = """
[[meters]]
name = "network.egress"
aggregation = "sum"

[[products]]
name = "egress"
meter = "network.egress"
price = { model = "per_unit", unit_price = "0.08" }
"""


@pytest.fixture
def ws(tmp_path) -> Workspace:
    return Workspace(tmp_path, f"sqlite:///{tmp_path / 'hub.db'}")


def errors(ws: Workspace) -> list[str]:
    with pytest.raises(ConfigErrors) as info:
        load_config(ws.config_path, build_host())
    return [str(e) for e in info.value.errors]


def check(ws: Workspace) -> list[str]:
    """What hub check prints, after asserting it exits 2 (a config error)."""
    result = ws.hub("check")
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    *lines, count = result.stderr.splitlines()
    assert count == f"hub: {len(lines)} configuration error" + ("s" if len(lines) > 1 else "")
    return lines


# --------------------------------------------------------------------------
# payment terms


@pytest.mark.parametrize("days", [100_000_000, 99_999_999_999_999_999_999, 3651])
def test_payment_terms_beyond_ten_years_are_refused(ws, days):
    ws.config(f"[invoicing]\npayment_terms_days = {days}\n")
    assert check(ws) == [f"error: hub.toml: [invoicing]: payment_terms_days: {days} is greater than the maximum of 3650"]


@pytest.mark.parametrize("days", [0, 3650])
def test_payment_terms_from_0_to_3650_days_are_accepted(ws, days):
    ws.config(f"[invoicing]\npayment_terms_days = {days}\n")
    assert load_config(ws.config_path, build_host()).invoicing.payment_terms_days == days


# --------------------------------------------------------------------------
# durations

LONGER = "is longer than 366d, the longest duration the hub accepts"


@pytest.mark.parametrize("grace", ["99999999999d", "367d", "8785h", "527041m", "31622401s", "366d1s"])
def test_a_grace_longer_than_366_days_is_refused(ws, grace):
    ws.config(f'[invoicing]\ngrace = "{grace}"\n')
    assert check(ws) == [f"error: hub.toml: [invoicing]: grace: '{grace}' {LONGER}"]


def test_a_grace_of_366_days_is_accepted(ws):
    ws.config('[invoicing]\ngrace = "365d24h"\n')
    assert load_config(ws.config_path, build_host()).invoicing.grace == 366 * 86400


def test_every_duration_of_hub_toml_is_bounded(ws):
    ws.config(PRODUCT.replace('meter = "network.egress"\n', 'meter = "network.egress"\ngranularity = "400d"\n'
                                                            'minimum = "99999999999999999999s"\n') + """
        [[sources]]
        name = "files"
        type = "csv"
        path = "usage/*.csv"
        interval = "1000d"

        [[renderers]]
        name = "html"
        type = "html"
        interval = "367d"
    """)
    assert errors(ws) == [
        f"hub.toml: products[1] \"egress\": granularity: '400d' {LONGER}",
        f"hub.toml: products[1] \"egress\": minimum: '99999999999999999999s' {LONGER}",
        f"hub.toml: renderers[1] \"html\": interval: '367d' {LONGER}",
        f"hub.toml: sources[1] \"files\": interval: '1000d' {LONGER}",
    ]


# --------------------------------------------------------------------------
# decimals


def test_a_unit_price_of_21_digits_is_refused(ws):
    ws.config(PRODUCT.replace('"0.08"', '"100000000000000000000"'))
    assert check(ws) == ["error: hub.toml: products[1] \"egress\": price.unit_price: '100000000000000000000' has 21 "
                         "digits before the decimal point; the hub accepts at most 15"]


def test_every_decimal_of_hub_toml_is_bounded_in_digits(ws):
    ws.config(PRODUCT.replace('"0.08"', '"0.0000000000000000001"') + """
        [invoicing]
        minimum_amount = "-1000000000000000"

        [seller]
        name = "Hub Cloud GmbH"
        country = "DE"
        share_capital = "25000000000000000"

        [tax.rates]
        DE = "19.0000000000000000000"

        [[accounts]]
        id = "acme"

        [[credits]]
        account = "acme"
        amount = "1234567890123456.00"
        kind = "prepaid"
    """)
    assert errors(ws) == [
        "hub.toml: [invoicing]: minimum_amount: '-1000000000000000' has 16 digits before the decimal point; "
        "the hub accepts at most 15",
        "hub.toml: [tax]: rates.DE: '19.0000000000000000000' has 19 digits after the decimal point; "
        "the hub accepts at most 18",
        "hub.toml: [seller]: share_capital: '25000000000000000' has 17 digits before the decimal point; "
        "the hub accepts at most 15",
        "hub.toml: credits[1]: amount: '1234567890123456.00' has 16 digits before the decimal point; "
        "the hub accepts at most 15",
        "hub.toml: products[1] \"egress\": price.unit_price: '0.0000000000000000001' has 19 digits after the decimal "
        "point; the hub accepts at most 18",
    ]


def test_leading_zeros_do_not_count_as_digits(ws):
    ws.config(PRODUCT.replace('"0.08"', '"000000000000000000000.5"'))
    load_config(ws.config_path, build_host())


# --------------------------------------------------------------------------
# number formats

FIELD = "a field is {year}, {month} or {seq}, with a width such as {seq:06d}"
WIDTH = "a field takes only a width of at most 12 digits, such as {seq:06d}"
CHARACTERS = "a document number holds only letters, digits, '-', '_' and '.' (it names the documents' files)"


@pytest.mark.parametrize(("fmt", "message"), [
    ("{seq:099999999d}", f"'{{seq:099999999d}}' has the field {{seq:099999999d}}: {WIDTH}"),
    ("INV-{seq:013d}", f"'INV-{{seq:013d}}' has the field {{seq:013d}}: {WIDTH}"),
    ("INV-{seq:.99999999}", f"'INV-{{seq:.99999999}}' has the field {{seq:.99999999}}: {WIDTH}"),
    ("INV-{seq:>8}", f"'INV-{{seq:>8}}' has the field {{seq:>8}}: {WIDTH}"),
    ("INV-{seq:{year}}", f"'INV-{{seq:{{year}}}}' has the field {{seq:{{year}}}}: {WIDTH}"),
    ("{seq.__class__}", f"'{{seq.__class__}}' has the field {{seq.__class__}}: {FIELD}"),
    ("INV-{seq!r}", f"'INV-{{seq!r}}' has the field {{seq!r}}: {FIELD}"),
    ("../../{year}/{seq}", f"'../../{{year}}/{{seq}}' gives numbers with '/' (such as '../../2026/1'): {CHARACTERS}"),
    ("INV {seq}", f"'INV {{seq}}' gives numbers with ' ' (such as 'INV 1'): {CHARACTERS}"),
    ("INV-{seq:8d}", f"'INV-{{seq:8d}}' gives numbers with ' ' (such as 'INV-       1'): {CHARACTERS}"),
    ("RE-{seq}-€", f"'RE-{{seq}}-€' gives numbers with '€' (such as 'RE-1-€'): {CHARACTERS}"),
    (".{seq}", "'.{seq}' gives numbers starting with '.' (such as '.1'): start it with a letter or a digit"),
    ("-{seq}", "'-{seq}' gives numbers starting with '-' (such as '-1'): start it with a letter or a digit"),
    ("I" * 50 + "-{year}-{seq:06d}", f"'{'I' * 50}-{{year}}-{{seq:06d}}' gives numbers of up to 65 characters; "
                                      "a document number has at most 64"),
])
def test_a_number_format_that_cannot_name_a_document_is_refused(ws, fmt, message):
    ws.config(f"[invoicing]\nnumber_format = {fmt!r}\n")
    assert check(ws) == [f"error: hub.toml: [invoicing]: number_format: {message}"]


@pytest.mark.parametrize("fmt", ["INV-{year}-{seq:06d}", "R{year}{month:02d}-{seq:04d}", "{year}.{seq:012d}",
                                 "A_b-{seq:d}", "I" * 49 + "-{year}-{seq:06d}"])
def test_a_plain_number_format_is_accepted(ws, fmt):
    ws.config(f"[invoicing]\nnumber_format = {fmt!r}\n")
    assert load_config(ws.config_path, build_host()).invoicing.number_format == fmt


def test_the_credit_note_format_is_bounded_as_the_number_format(ws):
    ws.config('[invoicing]\ncredit_note_format = "CN/{year}/{seq}"\n')
    assert check(ws) == ["error: hub.toml: [invoicing]: credit_note_format: 'CN/{year}/{seq}' gives numbers with '/' "
                         f"(such as 'CN/2026/1'): {CHARACTERS}"]


# --------------------------------------------------------------------------
# the largest values accepted, end to end

LARGEST_PRICE = "999999999999999.999999999999999999"


def test_the_largest_values_accepted_go_through_an_invoice(workspace):
    config = (BASE.replace('unit_price = "0.08"', f'unit_price = "{LARGEST_PRICE}"')
              .replace("payment_terms_days = 14", 'payment_terms_days = 3650\ngrace = "0s"\n'
                                                  f'number_format = "{"I" * 46}-{{year}}-{{seq:012d}}"'))
    workspace.config(config + ACCOUNTS)
    workspace.write("usage/2025-10.csv", HEADER + "a1,acme,vm-1,network.egress,2025-10-12T00:00:00Z,,1\n", dedent=False)
    checked = workspace.hub("check")
    assert checked.exit_code == 0, checked.output
    assert workspace.hub("pull").exit_code == 0
    [issued] = workspace.json("invoice", "--period", "2025-10", "--account", "acme", "--issue-date", "2025-11-02")
    number = "I" * 46 + "-2025-000000000001"
    assert issued["number"] == number
    doc = workspace.json("invoices", "show", number)
    assert (doc["due_date"], doc["subtotal"], doc["total"], doc["amount_due"]) == (
        "2035-10-31", "1000000000000000.00", "1190000000000000.00", "1190000000000000.00")
    [line] = doc["lines"]
    assert (line["quantity"], line["unit_price"], line["amount"]) == ("1", LARGEST_PRICE, "1000000000000000.00")
    rendered = workspace.hub("render", number)
    assert rendered.exit_code == 0, rendered.output
    assert rendered.stdout.splitlines()[0] == "1 invoice, 4 documents stored, 0 rejected or failed"


# --------------------------------------------------------------------------
# any number


def test_no_value_is_an_infinite_float_or_an_integer_beyond_64_bits(ws):
    ws.config("""
        [[sources]]
        name = "files"
        type = "csv"
        path = "usage/*.csv"
        batch_size = 99999999999999999999

        [[exporters]]
        name = "mail"
        type = "email"
        maildir = "mail"
        from = "billing@hub.example"
        timeout = inf

        [invoicing]
        payment_terms_days = 99999999999999999999
    """)
    assert errors(ws) == [
        "hub.toml: [invoicing]: payment_terms_days: 99999999999999999999 is greater than the maximum of 3650",
        "hub.toml: exporters[1] \"mail\": timeout: inf is not a finite number",
        "hub.toml: sources[1] \"files\": batch_size: 99999999999999999999 is too large: the hub accepts integers of "
        "at most 9223372036854775807",
    ]


def test_a_nan_is_not_a_finite_number(ws):
    ws.config("""
        [[exporters]]
        name = "mail"
        type = "email"
        maildir = "mail"
        from = "billing@hub.example"
        timeout = nan
    """)
    assert errors(ws) == ["hub.toml: exporters[1] \"mail\": timeout: nan is not a finite number"]
