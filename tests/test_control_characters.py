"""hub check refuses a control character in any value of hub.toml (issue
24, item 5): names, e-mail addresses, subjects and numbers end up in mail
headers, file names and documents, where a CR/LF starts a header nobody
wrote. Each error names the key; a description or an e-mail template may
hold line breaks and tabs (nothing else; the e-mail exporter folds its
subject onto one line).
"""

from __future__ import annotations

import pytest

from hub.config import ConfigErrors, load_config
from hub.config.text import control_character
from hub.host import build_host
from tests.conftest import Workspace


@pytest.fixture
def ws(tmp_path) -> Workspace:
    return Workspace(tmp_path, f"sqlite:///{tmp_path / 'hub.db'}")


def errors(ws: Workspace) -> list[str]:
    with pytest.raises(ConfigErrors) as info:
        load_config(ws.config_path, build_host())
    return [str(e) for e in info.value.errors]


def test_an_account_name_with_cr_lf_is_refused_by_hub_check(ws):
    ws.config('[[accounts]]\nid = "acme"\nname = "ACME\\r\\nBcc: victim@example.com"\n')
    result = ws.hub("check")
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [
        "error: hub.toml: accounts[1] \"acme\": name: 'ACME\\r\\nBcc: victim@example.com' holds a carriage return "
        "(U+000D), which it may not; write it on one line",
        "hub: 1 configuration error",
    ]


def test_every_header_bound_value_is_checked_with_its_key(ws):
    ws.config("""
        [seller]
        name = "Hub Cloud\\u0000 GmbH"
        country = "DE"
        email = "billing@hub.example\\n"
        managing_directors = ["Ada\\u2028Lovelace"]
        address = { street = "Hafenstrasse 1\\u0085", city = "Hamburg" }

        [tax.rates]
        DE = "19"

        [[accounts]]
        id = "acme"
        name = "ACME"
        email = "ap@acme.example\\r\\nBcc: x@evil.example"
        purchase_order = "PO\\t42"
        tags = ["vip\\u001b[31m"]

        [[exporters]]
        name = "mail"
        type = "email"
        maildir = "mail"
        from = "billing@hub.example"
        subject = "Invoice {{ invoice.number }}\\r\\nBcc: x@evil.example"
    """)
    assert errors(ws) == [
        "hub.toml: [seller]: address.street: 'Hafenstrasse 1\\x85' holds a control character (U+0085), which it may "
        "not; write it on one line",
        "hub.toml: [seller]: email: 'billing@hub.example\\n' holds a line feed (U+000A), which it may not; write it on "
        "one line",
        "hub.toml: [seller]: managing_directors[1]: 'Ada\\u2028Lovelace' holds a line separator (U+2028), which it may "
        "not; write it on one line",
        "hub.toml: [seller]: name: 'Hub Cloud\\x00 GmbH' holds a NUL (U+0000), which it may not; write it on one line",
        "hub.toml: accounts[1] \"acme\": email: 'ap@acme.example\\r\\nBcc: x@evil.example' holds a carriage return "
        "(U+000D), which it may not; write it on one line",
        "hub.toml: accounts[1] \"acme\": purchase_order: 'PO\\t42' holds a tab (U+0009), which it may not; write it on "
        "one line",
        "hub.toml: accounts[1] \"acme\": tags[1]: 'vip\\x1b[31m' holds a control character (U+001B), which it may not; "
        "write it on one line",
        "hub.toml: exporters[1] \"mail\": subject: 'Invoice {{ invoice.number }}\\r\\nBcc: x@evil.example' holds a "
        "carriage return (U+000D), which it may not",
    ]


def test_a_description_may_hold_line_breaks_and_tabs_but_no_other_control_character(ws):
    ws.config("""
        [[meters]]
        name = "m"
        aggregation = "sum"

        [[products]]
        name = "p"
        meter = "m"
        description = "Egress\\n\\tper GB"
        price = { model = "per_unit", unit_price = "0.08" }

        [[products]]
        name = "q"
        meter = "m"
        description = "Egress\\r\\n"
        price = { model = "per_unit", unit_price = "0.08" }
    """)
    assert errors(ws) == ["hub.toml: products[2] \"q\": description: 'Egress\\r\\n' holds a carriage return (U+000D), "
                          "which it may not"]


def test_an_email_template_may_span_lines(ws):
    ws.config("""
        [[exporters]]
        name = "mail"
        type = "email"
        maildir = "mail"
        from = "billing@hub.example"
        subject = "Invoice {{ number }}\\n from {{ seller.name }}"
        body = "Hello,\\n\\nyour invoice {{ invoice.number }} is attached.\\n"
    """)
    assert load_config(ws.config_path, build_host()).exporters[0].name == "mail"


@pytest.mark.parametrize(("text", "found"), [
    ("plain text, €, ü and 日本", None), ("a\x7fb", "a control character (U+007F)"),
    ("a\x9fb", "a control character (U+009F)"), ("a\u2029b", "a paragraph separator (U+2029)"),
    ("a\nb", "a line feed (U+000A)"),
])
def test_control_characters_are_the_unicode_cc_category_and_the_line_separators(text, found):
    assert control_character(text) == found
