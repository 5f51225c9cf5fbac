"""The commented examples ``hub init`` writes pass ``hub check`` once uncommented.

An example is a run of comment lines that read as TOML once their ``# `` is
taken off (a table header ``# [dunning]`` or a key ``# after_days = ...``);
prose comments end it. Each example is uncommented alone, then all of them
together, and ``hub check`` must answer ok with nothing on stderr. The
starter must hold the examples the operator guide promises: credits,
discounts, an e-mail and a webhook exporter, ``[invoicing] minimum_amount``,
``[dunning] after_days``, the seller's legal details and an account's
purchase order and buyer reference.

None of these tests touches the store: every workspace is on SQLite.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from hub.app.starter import FILES
from tests.conftest import Workspace

#: a commented line of TOML: a table header or a key (prose never starts so)
TOML_LINE = re.compile(r'^# (\[\[?[a-z_.]+\]\]?|[a-z_]+ = \S)')
#: the environment variables the examples' *_env keys name (set, as they must be before hub check)
SECRETS = {"SMTP_PASSWORD": "secret", "CRM_WEBHOOK_SECRET": "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
#: the starter's config files (usage/example.csv is not one)
CONFIG_FILES = [rel for rel in FILES if rel.endswith(".toml")]


def examples(text: str) -> list[tuple[int, int]]:
    """The examples of a file: (first line, line after the last), 0-based."""
    lines = text.splitlines()
    found: list[tuple[int, int]] = []
    i = 0
    while i < len(lines):
        if TOML_LINE.match(lines[i]):
            j = i
            while j < len(lines) and TOML_LINE.match(lines[j]):
                j += 1
            found.append((i, j))
            i = j
        else:
            i += 1
    return found


def uncommented(text: str, spans: list[tuple[int, int]]) -> str:
    lines = text.splitlines()
    for start, end in spans:
        lines[start:end] = [line.removeprefix("# ") for line in lines[start:end]]
    return "\n".join(lines) + "\n"


def starter(tmp_path: Path) -> Workspace:
    ws = Workspace(tmp_path, f"sqlite:///{tmp_path / 'hub.db'}")
    result = ws.hub("init", str(tmp_path))
    assert result.exit_code == 0, result.output
    return ws


def starter_examples() -> list[tuple[str, int, int, str]]:
    """Every example of the starter's files: (file, start, end, its first line)."""
    from importlib import resources

    template = resources.files("hub") / "templates" / "init"
    out = []
    for rel in CONFIG_FILES:
        text = template.joinpath(*rel.split("/")).read_text("utf-8")
        out += [(rel, start, end, text.splitlines()[start]) for start, end in examples(text)]
    return out


def assert_check_ok(ws: Workspace) -> None:
    result = ws.hub("check", env=SECRETS)
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert result.stdout.startswith("hub.toml: ok (3 meters, 1 account, 1 source, ")


@pytest.mark.parametrize(("rel", "start", "end", "first"), starter_examples(),
                         ids=[f"{rel}:{start + 1}:{first[2:40]}" for rel, start, _, first in starter_examples()])
def test_each_commented_example_of_hub_init_passes_check_once_uncommented(tmp_path, rel, start, end, first):
    ws = starter(tmp_path)
    path = ws.root / rel
    path.write_text(uncommented(path.read_text("utf-8"), [(start, end)]), "utf-8")
    assert_check_ok(ws)


def test_every_commented_example_of_hub_init_together_passes_check(tmp_path):
    ws = starter(tmp_path)
    for rel in CONFIG_FILES:
        path = ws.root / rel
        text = path.read_text("utf-8")
        path.write_text(uncommented(text, examples(text)), "utf-8")
    assert_check_ok(ws)
    data = tomllib.loads((ws.root / "hub.toml").read_text("utf-8"))
    assert [e["type"] for e in data["exporters"]] == ["email", "webhook"]
    assert data["invoicing"]["minimum_amount"] == "5.00"
    assert data["dunning"] == {"after_days": [7, 14, 30]}
    assert (data["credits"][0]["account"], data["discounts"][0]["account"]) == ("acme", "acme")
    assert {"legal_form", "commercial_register", "register_court", "managing_directors",
            "share_capital"} <= set(data["seller"])
    account = tomllib.loads((ws.root / "config/accounts.toml").read_text("utf-8"))["accounts"][0]
    assert (account["purchase_order"], account["buyer_reference"]) == ("PO-2026-0042", "CC-4711")


def test_the_starter_as_written_has_none_of_the_examples_set(tmp_path):
    ws = starter(tmp_path)
    data = tomllib.loads((ws.root / "hub.toml").read_text("utf-8"))
    assert not {"exporters", "credits", "discounts", "dunning"} & set(data)
    assert "minimum_amount" not in data["invoicing"]
    assert_check_ok(ws)
