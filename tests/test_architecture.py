"""The shape of the code: the direction of imports, no cycles, small modules, no history in the sources.

docs/architecture.md draws what these pin down; the import contracts are in pyproject.toml
([tool.importlinter]), so ``lint-imports`` checks the same by hand.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CODE = [p for d in ("hub", "plugins") for p in sorted((ROOT / d).rglob("*.py"))]
#: a module past this many lines is asking to be split
MAX_LINES = 500


def _contracts() -> dict[str, dict]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return {c["id"]: c for c in config["tool"]["importlinter"]["contracts"]}


def test_every_import_contract_is_kept(capsys):
    from importlinter import configuration
    from importlinter.application.use_cases import lint_imports

    configuration.configure()
    kept = lint_imports(config_filename=str(ROOT / "pyproject.toml"), cache_dir=None, no_logo=True)

    assert kept, capsys.readouterr().out


def test_plugins_are_forbidden_every_module_of_the_hub_but_the_plugin_api():
    modules = {f"hub.{p.stem}" for p in (ROOT / "hub").glob("*.py") if p.stem != "__init__"}
    packages = {f"hub.{p.parent.name}" for p in (ROOT / "hub").glob("*/__init__.py")}
    forbidden = set(_contracts()["plugins"]["forbidden_modules"])

    assert (modules | packages) - {"hub.plugin"} - forbidden == set()
    assert "hub.plugin" not in forbidden


def test_the_application_layer_is_the_only_door_of_the_cli_and_hub_run():
    layers = _contracts()["layers"]["layers"]

    assert layers[:3] == ["hub.cli", "hub.scheduler", "hub.app"]
    assert layers[-1] == "hub.store"


@pytest.mark.parametrize("path", CODE, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_is_over_500_lines(path):
    assert len(path.read_text().splitlines()) <= MAX_LINES


def test_the_code_cites_the_rules_in_docs_and_no_file_outside_the_repository():
    citing = [str(p.relative_to(ROOT)) for p in CODE if "shared/BILLING_RULES" in p.read_text()]

    assert citing == []
    assert (ROOT / "docs" / "billing-rules.md").is_file()


def test_no_issue_numbers_in_code_or_docs():
    docs = sorted((ROOT / "docs").rglob("*.md")) + [ROOT / "README.md"]
    pattern = re.compile(r"\bissues? #\d+", re.IGNORECASE)
    found = [f"{p.relative_to(ROOT)}:{n}" for p in CODE + docs
             for n, line in enumerate(p.read_text().splitlines(), start=1) if pattern.search(line)]

    assert found == []


def test_the_module_map_of_docs_architecture_lists_every_module_and_no_other():
    text = (ROOT / "docs" / "architecture.md").read_text()
    section = text[text.index("## Module map"):]
    listed = {f"{folder}/{name}" for folder, table in re.findall(r"\*\*`([^`]+)/`\*\*\n(.*?)(?=\n\*\*`|\Z)", section, re.S)
              for name in re.findall(r"^\| `([^`]+\.py)` \|", table, re.M)}
    modules = {str(p.relative_to(ROOT)) for p in CODE if "migrations/versions" not in str(p)}

    assert sorted(modules - listed) == []
    assert sorted(listed - modules) == []
