"""``hub check`` reports what invoicing would refuse, before a period is closed.

A configuration that sets up invoicing (``[seller]``, ``[invoicing]`` or
``[tax]``, as ``hub init`` writes them) is checked as the close stage would
build each account's invoice (:mod:`hub.closing.readiness`): every error is
listed, each naming its file, table and key, and the command exits 2. A
rating-only configuration is not checked for invoicing.

None of these tests touches the store: every workspace is on SQLite.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import METERS_AND_ACCOUNTS, Workspace

SELLER_MISSING = ("error: hub.toml: [seller]: no [seller] is configured: the invoices' issuer (name, country, "
                  "vat_id) is required")


@pytest.fixture
def site(tmp_path: Path) -> Workspace:
    """A workspace written by ``hub init``."""
    ws = Workspace(tmp_path, f"sqlite:///{tmp_path / 'hub.db'}")
    result = ws.hub("init", str(tmp_path))
    assert result.exit_code == 0, result.output
    return ws


def without_seller(ws: Workspace) -> None:
    """Remove ``[seller]`` (and its commented lines) from hub init's hub.toml."""
    text = ws.config_path.read_text()
    cut = re.sub(r"\n\[seller\]\n.*?(?=\n# Standard VAT rates)", "\n", text, flags=re.S)
    assert cut != text and "[seller]" not in cut
    ws.config_path.write_text(cut)


def check_stderr(ws: Workspace) -> list[str]:
    """``hub check``'s stderr lines; it must have failed with exit 2 and printed nothing on stdout."""
    result = ws.hub("check")
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    return result.stderr.splitlines()


def test_a_hub_init_config_without_a_seller_fails_check_naming_the_seller_table(site):
    without_seller(site)
    assert check_stderr(site) == [SELLER_MISSING, "hub: 1 configuration error"]


def test_an_account_without_a_country_fails_check_at_its_table_in_its_file(site):
    site.append("config/accounts.toml", '\n[[accounts]]\nid = "nowhere"\nname = "Nowhere Ltd"\n')
    assert check_stderr(site) == [
        "error: config/accounts.toml: accounts[2] \"nowhere\": country: account 'nowhere' has no country: "
        "the tax of its invoices depends on it",
        "hub: 1 configuration error",
    ]


def test_a_discount_given_to_a_child_account_fails_check_naming_the_parent(site):
    site.append("config/accounts.toml", '\n[[accounts]]\nid = "acme-lab"\nname = "ACME Lab"\nparent = "acme"\n')
    site.append("hub.toml", '\n[[discounts]]\naccount = "acme-lab"\npercent = "10"\n')
    assert check_stderr(site) == [
        "error: hub.toml: discounts[1]: account: account 'acme-lab' is invoiced through its parent 'acme': "
        "give the discount to 'acme'",
        "hub: 1 configuration error",
    ]


def test_a_member_billed_in_another_currency_than_its_parent_fails_check(site):
    site.append("config/accounts.toml",
                '\n[[accounts]]\nid = "acme-us"\nname = "ACME US"\nparent = "acme"\ncurrency = "USD"\n')
    assert check_stderr(site) == [
        "error: config/accounts.toml: accounts[2] \"acme-us\": currency: 'USD' is not the currency of its parent "
        "'acme' (EUR), through which it is invoiced: leave it out to take the parent's",
        "hub: 1 configuration error",
    ]


def test_check_lists_every_invoicing_error_at_once(site):
    without_seller(site)
    site.append("config/accounts.toml", '\n[[accounts]]\nid = "nowhere"\nname = "Nowhere Ltd"\n'
                                        '\n[[accounts]]\nid = "elsewhere"\nname = "Elsewhere Ltd"\n')
    assert check_stderr(site) == [
        SELLER_MISSING,
        "error: config/accounts.toml: accounts[2] \"nowhere\": country: account 'nowhere' has no country: "
        "the tax of its invoices depends on it",
        "error: config/accounts.toml: accounts[3] \"elsewhere\": country: account 'elsewhere' has no country: "
        "the tax of its invoices depends on it",
        "hub: 3 configuration errors",
    ]


def test_without_a_seller_check_names_the_seller_even_when_no_account_has_a_country(site):
    without_seller(site)
    site.write("config/accounts.toml", '[[accounts]]\nid = "nowhere"\nname = "Nowhere Ltd"\n')
    assert check_stderr(site) == [
        SELLER_MISSING,
        "error: config/accounts.toml: accounts[1] \"nowhere\": country: account 'nowhere' has no country: "
        "the tax of its invoices depends on it",
        "hub: 2 configuration errors",
    ]


def test_a_child_account_without_a_country_is_not_an_error_its_parent_is_invoiced(site):
    site.append("config/accounts.toml", '\n[[accounts]]\nid = "acme-lab"\nname = "ACME Lab"\nparent = "acme"\n')
    result = site.hub("check")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""


def test_a_rating_only_config_without_seller_invoicing_or_tax_is_ok(tmp_path):
    ws = Workspace(tmp_path, f"sqlite:///{tmp_path / 'hub.db'}")
    ws.config(METERS_AND_ACCOUNTS + '\n[[accounts]]\nid = "nowhere"\nname = "Nowhere Ltd"\n')
    result = ws.hub("check")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert result.stdout == "hub.toml: ok (2 meters, 3 accounts, 0 sources, 0 exporters, 0 renderers)\n"
