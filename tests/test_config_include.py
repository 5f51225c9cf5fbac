"""``include``: the files merged into hub.toml, and the ones nothing reads.

``hub init`` writes ``include = ["config/*.toml"]``, so a file added under
config/ is read; a pattern is a glob relative to hub.toml whose matches are
merged in name order. A glob that matches nothing is only warned of (it may
match a file later); a file named alone must exist. ``hub check`` warns of
each ``.toml`` file under config/ next to hub.toml that no include reads.

None of these tests touches the store: every workspace is on SQLite.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.config import load_config
from hub.host import build_host
from tests.conftest import Workspace

ACCOUNT = '[[accounts]]\nid = "{id}"\nname = "{id} Ltd"\ncountry = "DE"\n'
UNREAD = 'not read: no include of hub.toml matches it (include = ["config/*.toml"] reads every file there)'


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path, f"sqlite:///{tmp_path / 'hub.db'}")


@pytest.fixture
def site(ws: Workspace) -> Workspace:
    """A workspace written by ``hub init``."""
    result = ws.hub("init", str(ws.root))
    assert result.exit_code == 0, result.output
    return ws


def check(ws: Workspace) -> tuple[int, str, list[str]]:
    result = ws.hub("check")
    return result.exit_code, result.stdout, result.stderr.splitlines()


def test_hub_init_includes_every_toml_file_of_config(site):
    assert 'include = ["config/*.toml"]\n' in site.config_path.read_text()


def test_a_file_added_under_config_after_hub_init_is_read(site):
    site.write("config/billing.toml", ACCOUNT.format(id="bonjour"))
    code, stdout, stderr = check(site)
    assert (code, stderr) == (0, [])
    assert stdout == "hub.toml: ok (3 meters, 2 accounts, 1 source, 0 exporters, 0 renderers)\n"


def test_an_error_in_a_file_added_under_config_fails_check_naming_that_file(site):
    site.write("config/billing.toml", '[[accounts]]\nid = "bonjour"\nname = "Bonjour SARL"\ncountry = "France"\n')
    code, stdout, stderr = check(site)
    assert (code, stdout) == (2, "")
    assert stderr == [
        "error: config/billing.toml: accounts[1] \"bonjour\": country: 'France' is not an ISO 3166 two-letter "
        "country code such as DE",
        "hub: 1 configuration error",
    ]


def test_the_files_a_glob_matches_are_merged_in_name_order_relative_to_hub_toml(ws, monkeypatch, tmp_path):
    ws.write("site/hub.toml", 'include = ["config/*.toml"]\n')
    for name in ("b", "c", "a"):
        ws.write(f"site/config/{name}.toml", ACCOUNT.format(id=name))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = load_config(ws.root / "site" / "hub.toml", build_host())
    assert list(config.accounts) == ["a", "b", "c"]
    assert config.warnings == ()


def test_a_recursive_glob_reads_the_files_of_sub_folders(ws):
    ws.write("hub.toml", 'include = ["config/**/*.toml"]\n')
    ws.write("config/accounts/eu.toml", ACCOUNT.format(id="eu"))
    ws.write("config/accounts/us.toml", ACCOUNT.format(id="us"))
    ws.write("config/top.toml", ACCOUNT.format(id="top"))
    assert list(load_config(ws.config_path, build_host()).accounts) == ["eu", "us", "top"]


def test_a_glob_matching_nothing_is_a_warning_not_an_error(ws):
    ws.write("hub.toml", 'include = ["config/*.toml", "extra/*.toml"]\n')
    ws.write("config/a.toml", ACCOUNT.format(id="a"))
    code, stdout, stderr = check(ws)
    assert code == 0
    assert stdout == "hub.toml: ok (0 meters, 1 account, 0 sources, 0 exporters, 0 renderers)\n"
    assert stderr == ["warning: hub.toml: include[2]: 'extra/*.toml' matches no file"]


def test_check_warns_of_each_toml_file_under_config_that_no_include_reads(ws):
    ws.write("hub.toml", 'include = ["config/catalog.toml", "config/accounts.toml"]\n')
    ws.write("config/catalog.toml", "")
    ws.write("config/accounts.toml", ACCOUNT.format(id="acme"))
    ws.write("config/billing.toml", ACCOUNT.format(id="bonjour"))
    ws.write("config/old/2025.toml", ACCOUNT.format(id="old"))
    ws.write("config/notes.txt", "not TOML")
    code, stdout, stderr = check(ws)
    assert code == 0
    assert stdout == "hub.toml: ok (0 meters, 1 account, 0 sources, 0 exporters, 0 renderers)\n"
    assert stderr == [f"warning: config/billing.toml: {UNREAD}", f"warning: config/old/2025.toml: {UNREAD}"]


def test_check_warns_of_files_under_config_when_hub_toml_has_no_include(ws):
    ws.write("hub.toml", ACCOUNT.format(id="acme"))
    ws.write("config/billing.toml", ACCOUNT.format(id="bonjour"))
    code, _, stderr = check(ws)
    assert code == 0
    assert stderr == [f"warning: config/billing.toml: {UNREAD}"]


def test_hub_init_workspace_checks_without_any_warning(site):
    code, _, stderr = check(site)
    assert (code, stderr) == (0, [])
