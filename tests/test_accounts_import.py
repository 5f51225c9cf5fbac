"""``hub accounts import FILE.csv`` and ``hub accounts list``.

The import writes into a TOML file hub.toml includes (config/accounts.toml
by default) with tomlkit, so comments survive; it checks every row first
(an error names the CSV line, and nothing is written), then the whole
configuration (on failure the file is restored). None of these tests needs
PostgreSQL.
"""

from __future__ import annotations

import textwrap
from datetime import datetime, timezone
from pathlib import Path

import pytest

import hub.cli.accounts  # noqa: F401 - registers the accounts commands
from hub.config import Address, load_config
from hub.host import build_host
from tests.conftest import Workspace

ACCOUNTS_TOML = """\
# The billed customers. `id` is what usage records name.
[[accounts]]
id = "acme"   # the key of usage records
name = "ACME GmbH"
country = "DE"
plans = ["support"]

# French customers below.
[[accounts]]
id = "globex"
name = "Globex"
country = "FR"
timezone = "Europe/Paris"
address = { city = "Paris" }
"""


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    """A workspace with config/accounts.toml; the CSV files are given by
    their path relative to it, as an operator working there does."""
    monkeypatch.chdir(tmp_path)
    ws = Workspace(tmp_path, f"sqlite:///{tmp_path / 'hub.db'}")
    ws.write("hub.toml", f'include = ["config/*.toml"]\n\n[hub]\ndatabase = "{ws.db_url}"\n', dedent=False)
    ws.write("config/accounts.toml", ACCOUNTS_TOML, dedent=False)
    return ws


def csv_file(ws: Workspace, text: str, name: str = "accounts.csv") -> str:
    ws.write(name, textwrap.dedent(text).lstrip("\n"))
    return name


def import_errors(ws: Workspace, *args: str) -> list[str]:
    """Run an import that must fail; its error lines, and the file untouched."""
    before = (ws.root / "config" / "accounts.toml").read_bytes()
    result = ws.hub("accounts", "import", *args)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert (ws.root / "config" / "accounts.toml").read_bytes() == before
    return result.stderr.splitlines()


def test_import_adds_and_updates_accounts_keeps_comments_and_other_keys(ws):
    path = csv_file(ws, """
        id,name,country,vat_id,email,currency,schedule,timezone,since,parent,tax_exempt,exemption_reason,street,city,postal_code,locale,peppol_id
        acme,ACME GmbH,DE,DE136695976,billing@acme.example,,,Europe/Berlin,2026-01-01,,,,Hafenstrasse 1,Hamburg,20457,de_DE,
        globex,Globex SARL,FR,FR 40 303 265 045,,,weekly,Europe/Paris,,,no,,,,,,
        charity,Charity e.V.,DE,,,,,,,,yes,Exempt under section 4 no. 22 UStG,"Am Markt 2",Berlin,10117,,0088:4000001000005
        acme-labs,ACME Labs,DE,,,,,,,acme,,,,,,,
    """)
    result = ws.hub("accounts", "import", path)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["config/accounts.toml: 2 added, 2 updated, 0 unchanged",
                                          "hub.toml: ok (4 accounts)"]
    text = (ws.root / "config" / "accounts.toml").read_text()
    # the comments, and the keys the CSV has no column for, survive
    assert text.startswith("# The billed customers. `id` is what usage records name.\n[[accounts]]\n"
                           'id = "acme"   # the key of usage records\n')
    assert "# French customers below.\n[[accounts]]\nid = \"globex\"\n" in text
    assert 'plans = ["support"]' in text
    # the empty street, city, postal_code of globex remove its address
    assert 'address = { city = "Paris" }' not in text and 'address = { city = "Paris" }' in ACCOUNTS_TOML

    config = load_config(ws.config_path, build_host())
    acme, globex, charity, labs = (config.accounts[a] for a in ("acme", "globex", "charity", "acme-labs"))
    assert acme.extra["plans"] == ["support"]
    assert (acme.vat_id, acme.email, acme.timezone, acme.locale) == (
        "DE136695976", "billing@acme.example", "Europe/Berlin", "de_DE")
    assert acme.since == datetime(2025, 12, 31, 23, tzinfo=timezone.utc)
    assert acme.address == Address(street="Hafenstrasse 1", city="Hamburg", postal_code="20457")
    assert (globex.name, globex.vat_id, globex.schedule, globex.tax_exempt, globex.address) == (
        "Globex SARL", "FR 40 303 265 045", "weekly", False, Address())
    assert (charity.tax_exempt, charity.exemption_reason, charity.peppol_id) == (
        True, "Exempt under section 4 no. 22 UStG", "0088:4000001000005")
    assert charity.address == Address(street="Am Markt 2", city="Berlin", postal_code="10117")
    assert labs.parent == "acme"

    # the same file again changes nothing
    again = ws.hub("accounts", "import", path)
    assert again.exit_code == 0, again.output
    assert again.stdout.splitlines() == [f"config/accounts.toml: unchanged (4 accounts already as in {path})"]
    assert (ws.root / "config" / "accounts.toml").read_text() == text


def test_columns_the_csv_does_not_have_are_left_as_they_are(ws):
    result = ws.hub("accounts", "import", csv_file(ws, "id,email\nglobex,compta@globex.example\n"))
    assert result.exit_code == 0, result.output
    globex = load_config(ws.config_path, build_host()).accounts["globex"]
    assert (globex.name, globex.country, globex.email, globex.address) == (
        "Globex", "FR", "compta@globex.example", Address(city="Paris"))


def test_a_row_is_checked_as_the_account_it_makes(ws):
    # globex is in FR: a German VAT id does not fit it, though the row has no country
    assert import_errors(ws, csv_file(ws, "id,vat_id\nglobex,DE136695976\n")) == [
        "error: accounts.csv: line 2: vat_id: 'DE136695976' is not a valid VAT id for country FR: "
        "it starts with DE, expected FR",
        "hub: 1 error in accounts.csv; nothing written",
    ]


def test_bad_rows_are_reported_with_their_line_and_nothing_is_written(ws):
    path = csv_file(ws, """
        id,name,country,vat_id,timezone,tax_exempt,parent,since,email
        ok,Fine,DE,,,,,,
        bad,"Two
        lines",DE,DE136695977,Mars/Base,maybe,,2026-02-30,nobody
        ,No id,DE,,,,,,

        ok,Again,DE,,,,,,
        kid,Kid,de,,,,nobody,,
        free,Free,DE,,,true,,,
        extra,Extra,DE,,,,,,,one too many
    """)
    assert import_errors(ws, path) == [
        "error: accounts.csv: line 3: tax_exempt: 'maybe' is not true or false (or yes/no, 1/0)",
        "error: accounts.csv: line 3: vat_id: 'DE136695977' is not a valid VAT id: its check digits are wrong",
        "error: accounts.csv: line 3: since: '2026-02-30' is an impossible date: February 2026 has 28 days",
        "error: accounts.csv: line 3: email: 'nobody' is not an e-mail address",
        "error: accounts.csv: line 3: timezone: 'Mars/Base' is not an IANA time zone such as Europe/Paris",
        "error: accounts.csv: line 5: id: is empty",
        "error: accounts.csv: line 7: id: 'ok' is already on line 2",
        "error: accounts.csv: line 8: country: 'de' is not an ISO 3166 two-letter country code such as DE",
        "error: accounts.csv: line 8: parent: unknown account 'nobody'",
        "error: accounts.csv: line 9: exemption_reason: required when tax_exempt = true: an exempt invoice states "
        "why (EN 16931 BR-E-10)",
        "error: accounts.csv: line 10: has 10 fields, the header 9",
        "hub: 11 errors in accounts.csv; nothing written",
    ]


def test_an_unknown_or_missing_column_is_reported_on_line_1(ws):
    assert import_errors(ws, csv_file(ws, "name,contry,vat\nACME,DE,x\n")) == [
        "error: accounts.csv: line 1: contry: unknown column (did you mean 'country'?)",
        "error: accounts.csv: line 1: vat: unknown column (did you mean 'vat_id'?)",
        "error: accounts.csv: line 1: id: the header has no id column",
        "hub: 3 errors in accounts.csv; nothing written",
    ]


def test_an_import_the_configuration_refuses_restores_the_file(ws):
    # each row is fine alone; together the parents form a loop
    assert import_errors(ws, csv_file(ws, "id,parent\nacme,globex\nglobex,acme\n")) == [
        'error: config/accounts.toml: accounts[1] "acme": parent: the parents form a loop: acme -> globex -> acme',
        'error: config/accounts.toml: accounts[2] "globex": parent: the parents form a loop: globex -> acme -> globex',
        "hub: the configuration with these accounts has 2 errors; nothing written",
    ]


def test_the_target_must_be_included_by_hub_toml_and_hold_the_accounts_it_updates(ws):
    path = csv_file(ws, "id,name\nnew,New\n")
    assert import_errors(ws, path, "--into", str(ws.root / "elsewhere.toml")) == [
        "hub: elsewhere.toml is not included by hub.toml: add it to its include list, or choose an included file "
        "with --into",
    ]
    assert not (ws.root / "elsewhere.toml").exists()
    # acme lives in config/accounts.toml, not in the new config/more.toml
    assert import_errors(ws, csv_file(ws, "id,name\nacme,ACME\nnew,New\n"),
                         "--into", str(ws.root / "config" / "more.toml")) == [
        "error: accounts.csv: line 2: id: account 'acme' is defined in another file than config/more.toml; "
        "import it into that file with --into",
        "hub: 1 error in accounts.csv; nothing written",
    ]
    assert not (ws.root / "config" / "more.toml").exists()


def test_import_into_a_new_included_file(ws):
    result = ws.hub("accounts", "import", csv_file(ws, "id,name,country\nnew,New AG,AT\n"),
                    "--into", str(ws.root / "config" / "more.toml"))
    assert result.exit_code == 0, result.output
    assert (ws.root / "config" / "more.toml").read_text() == '[[accounts]]\nid = "new"\nname = "New AG"\ncountry = "AT"\n'
    assert load_config(ws.config_path, build_host()).accounts["new"].country == "AT"


def test_accounts_list(ws):
    ws.hub("accounts", "import", csv_file(ws, "id,vat_id,tax_exempt,exemption_reason\n"
                                              "acme,DE136695976,,\nglobex,,true,Charity\n"))
    result = ws.hub("accounts", "list")
    assert result.exit_code == 0, result.output
    assert [line.split() for line in result.stdout.splitlines()] == [
        ["id", "name", "country", "currency", "timezone", "schedule", "vat", "id", "parent", "email"],
        ["acme", "ACME", "GmbH", "DE", "EUR", "UTC", "monthly", "DE136695976"],
        ["globex", "Globex", "FR", "EUR", "Europe/Paris", "monthly", "exempt"],
        ["2", "accounts"],
    ]
    listed = ws.json("accounts", "list")
    assert listed[1] == {
        "id": "globex", "name": "Globex", "country": "FR", "currency": "EUR", "timezone": "Europe/Paris",
        "schedule": "monthly", "parent": None, "vat_id": None, "email": None, "since": None, "tax_exempt": True,
        "exemption_reason": "Charity", "address": {"city": "Paris"}, "locale": None, "peppol_id": None, "tags": [],
    }
