"""The render stage: which renderers run and in what order,
documents stored once per invoice and format, rejections flagged with their
rules, ``hub render`` and ``hub documents``. The renderers here are small
in-process plugins registered like a third party's; the bundled ones have
their own tests."""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import json
import types
from collections.abc import Mapping
from typing import Any

import pytest

from hub.hookspecs import ENTRY_POINT_GROUP, hookimpl
from hub.host import Host, build_host
from hub.plugin_types import Document, DocumentRejected, RenderContext, RendererType, RuleFailure
from tests.test_invoices import ACCOUNTS, BASE, OCTOBER

CALLS: list[tuple[str, str]] = []


class Text:
    format, requires = "txt", ()

    def __init__(self, config: Any) -> None:
        self.header = config.options.get("header", "INVOICE")

    def render(self, invoice: Mapping[str, Any], context: RenderContext) -> Document:
        CALLS.append(("txt", invoice["number"]))
        body = f"{self.header} {invoice['number']} {invoice['buyer']['name']} {invoice['total']} {invoice['currency']}\n"
        return Document(f"{invoice['number']}.txt", "text/plain; charset=utf-8", body.encode())


class Signed:
    """Needs the text document: signs its bytes."""

    format, requires = "sig", ("txt",)

    def __init__(self, config: Any) -> None:
        pass

    def render(self, invoice: Mapping[str, Any], context: RenderContext) -> Document:
        CALLS.append(("sig", invoice["number"]))
        digest = hashlib.sha256(context.rendered["txt"].content).hexdigest()
        return Document(f"{invoice['number']}.sig", "text/plain", digest.encode())


class Strict:
    """Refuses invoices above 100.00, as a validator refuses a broken one."""

    format, requires = "strict", ()

    def __init__(self, config: Any) -> None:
        pass

    def render(self, invoice: Mapping[str, Any], context: RenderContext) -> Document:
        if float(invoice["total"]) > 10:  # noqa: PLR2004 - a test's threshold, not money arithmetic
            raise DocumentRejected([RuleFailure("BR-TEST-01", "the total is above 10.00", "/Invoice/Total")])
        return Document(f"{invoice['number']}.strict", "text/plain", b"ok")


class Broken:
    format, requires = "broken", ()

    def __init__(self, config: Any) -> None:
        pass

    def render(self, invoice: Mapping[str, Any], context: RenderContext) -> Document:
        raise RuntimeError("the template engine fell over")


SCHEMA = {"type": "object", "additionalProperties": False, "properties": {"header": {"type": "string", "default": "INVOICE"}}}


@hookimpl
def _renderer_types() -> list[RendererType]:
    return [RendererType(name=cls.format, description=cls.__doc__ or cls.format, config_schema=SCHEMA, factory=cls)
            for cls in (Text, Signed, Strict, Broken)]


FAKES = types.ModuleType("fake_renderers")
FAKES.hub_register_renderer_types = _renderer_types  # type: ignore[attr-defined]


def fake_host() -> Host:
    """The CSV source and the fake renderers, and no other plugin."""
    csv = [ep for ep in md.entry_points(group=ENTRY_POINT_GROUP) if ep.name == "csv"]
    return build_host(csv, extra_plugins=[("fake_renderers", FAKES)])


@pytest.fixture(autouse=True)
def _fakes(monkeypatch):
    import hub.cli.base

    monkeypatch.setattr(hub.cli.base, "build_host", fake_host)
    CALLS.clear()


RENDERERS = """
[[renderers]]
name = "text"
type = "txt"
header = "RECHNUNG"

[[renderers]]
name = "signature"
type = "sig"
"""


def _issue(workspace, renderers: str = RENDERERS) -> None:
    workspace.config(BASE + ACCOUNTS + renderers)
    workspace.write("usage/2025-10.csv", OCTOBER, dedent=False)
    assert workspace.hub("pull").exit_code == 0
    issued = workspace.hub("invoice", "--period", "2025-10", "--issue-date", "2025-11-03")
    assert issued.exit_code == 0, issued.output


def test_a_renderer_runs_after_the_one_it_needs_and_gets_its_document(workspace):
    _issue(workspace)
    rendered = workspace.json("render", "INV-2025-000001")
    assert [(d["format"], d["status"], d["file_name"]) for d in rendered] == [
        ("txt", "stored", "INV-2025-000001.txt"), ("sig", "stored", "INV-2025-000001.sig")]
    text = b"RECHNUNG INV-2025-000001 ACME GmbH 13.09 EUR\n"
    assert rendered[0]["sha256"] == hashlib.sha256(text).hexdigest()
    assert rendered[0]["size"] == len(text)
    out = workspace.root / "out"
    workspace.hub("render", "INV-2025-000001", "--out", str(out))
    assert (out / "INV-2025-000001.txt").read_bytes() == text
    assert (out / "INV-2025-000001.sig").read_bytes() == hashlib.sha256(text).hexdigest().encode()


def test_rendering_again_keeps_the_stored_documents_and_force_renders_them_anew(workspace):
    _issue(workspace)
    workspace.json("render", "INV-2025-000001")
    again = workspace.json("render", "INV-2025-000001")
    assert [(d["format"], d["status"]) for d in again] == [("txt", "kept"), ("sig", "kept")]
    assert CALLS == [("txt", "INV-2025-000001"), ("sig", "INV-2025-000001")]
    forced = workspace.json("render", "INV-2025-000001", "--force")
    assert [(d["format"], d["status"], d["sha256"]) for d in forced] == [
        (d["format"], "stored", d["sha256"]) for d in again]


def test_render_all_renders_each_issued_invoice_once(workspace):
    _issue(workspace)
    first = workspace.json("render", "--all")
    assert sorted({d["number"] for d in first}) == [f"INV-2025-00000{i}" for i in range(1, 6)]
    assert len(first) == 10
    assert workspace.json("render", "--all") == []
    listed = workspace.json("documents")
    assert [(d["number"], d["format"], d["status"], d["renderer"]) for d in listed[:2]] == [
        ("INV-2025-000001", "sig", "stored", "signature"), ("INV-2025-000001", "txt", "stored", "text")]


def test_one_format_renders_with_what_it_needs_only(workspace):
    _issue(workspace)
    rendered = workspace.json("render", "INV-2025-000002", "--format", "sig")
    assert [d["format"] for d in rendered] == ["txt", "sig"]
    unknown = workspace.hub("render", "INV-2025-000002", "--format", "pdf")
    assert unknown.exit_code == 2
    assert "no renderer makes 'pdf'; available: sig, txt" in unknown.output


def test_a_rejected_document_is_not_stored_and_flags_the_invoice_with_its_rule(workspace):
    _issue(workspace, '[[renderers]]\nname = "strict"\ntype = "strict"\n')
    result = workspace.hub("render", "--all")
    assert result.exit_code == 6
    # acme's total is 13.09: refused; the others are below 10.00
    assert "INV-2025-000001 strict rejected: [BR-TEST-01] the total is above 10.00 (at /Invoice/Total)" in result.output
    flagged = workspace.json("documents", "--flagged")
    assert [(d["number"], d["status"], d["failures"], d["sha256"]) for d in flagged] == [
        ("INV-2025-000001", "rejected",
         [{"rule": "BR-TEST-01", "message": "the total is above 10.00", "location": "/Invoice/Total"}], None)]
    assert workspace.json("documents", "--rejected") == flagged  # the glossary's word; --flagged the same
    assert len(workspace.json("documents")) == 5
    # Rejected documents are tried again by the next --all (a fixed template may pass).
    retried = workspace.hub("render", "--all", "--json")
    assert retried.exit_code == 6
    assert [(d["number"], d["status"]) for d in json.loads(retried.stdout)] == [("INV-2025-000001", "rejected")]


def test_a_renderer_that_raises_is_recorded_as_failed_and_the_others_go_on(workspace):
    _issue(workspace, RENDERERS + '\n[[renderers]]\nname = "oops"\ntype = "broken"\n')
    result = workspace.hub("render", "INV-2025-000003", "--json")
    assert result.exit_code == 6
    docs = json.loads(result.stdout)
    assert [(d["format"], d["status"]) for d in docs] == [("broken", "failed"), ("txt", "stored"), ("sig", "stored")]
    assert docs[0]["failures"] == [{"rule": "error", "message": "RuntimeError: the template engine fell over",
                                    "location": None}]


def test_without_renderers_in_hub_toml_every_installed_type_renders_with_its_defaults(workspace):
    _issue(workspace, "")
    rendered = workspace.json("render", "INV-2025-000005", "--format", "txt", "--format", "sig")
    assert [(d["format"], d["status"]) for d in rendered] == [("txt", "stored"), ("sig", "stored")]
    out = workspace.root / "o"
    workspace.hub("render", "INV-2025-000005", "--format", "txt", "--out", str(out))
    assert (out / "INV-2025-000005.txt").read_text() == "INVOICE INV-2025-000005 Charity e.V. 1.00 EUR\n"


def test_two_renderers_of_one_format_and_unknown_invoices_are_clear_errors(workspace):
    _issue(workspace, RENDERERS + '\n[[renderers]]\nname = "text2"\ntype = "txt"\n')
    twice = workspace.hub("render", "INV-2025-000001")
    assert twice.exit_code == 2
    assert "renderers 'text' and 'text2' both make 'txt': keep one" in twice.output
    workspace.config(BASE + ACCOUNTS + RENDERERS)
    missing = workspace.hub("render", "INV-2099-000001")
    assert missing.exit_code == 2
    assert "no issued invoice or credit note is numbered 'INV-2099-000001'" in missing.output
    neither = workspace.hub("render")
    assert neither.exit_code == 2
    assert "pass --all" in neither.output


def test_the_close_job_of_hub_run_renders_what_it_issued(workspace, monkeypatch, caplog):
    import logging

    import hub.app.core
    from hub import scheduler

    monkeypatch.setattr(hub.app.core, "build_host", fake_host)
    workspace.config(BASE + ACCOUNTS + RENDERERS)
    workspace.write("usage/2025-10.csv", OCTOBER, dedent=False)
    assert workspace.hub("pull").exit_code == 0
    logger = logging.getLogger("hub.run")  # `hub run` may have stopped it propagating to the root
    logger.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.INFO, logger="hub.run"):
            closings = scheduler.close_job(str(workspace.config_path))
    finally:
        logger.removeHandler(caplog.handler)
        scheduler.dispose_engines()
    assert len([c for c in closings if c.outcome == "issued"]) == 5
    assert "render: 10 documents stored" in caplog.messages
    assert {(d["format"], d["status"]) for d in workspace.json("documents")} == {("txt", "stored"), ("sig", "stored")}
    assert len(workspace.json("documents")) == 10
