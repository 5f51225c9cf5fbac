"""The outbox: one delivery per invoice, exporter and event,
written with the invoice; a worker that retries with backoff, honours
Retry-After, gives up, and never sends twice what it already sent. The
exporters here are small in-process plugins registered like a third
party's; the bundled e-mail and webhook exporters have their own tests."""

from __future__ import annotations

import importlib.metadata as md
import types
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from hub.config import load_config
from hub.hookspecs import ENTRY_POINT_GROUP, hookimpl
from hub.host import Host, build_host
from hub.outbox import LEASE, backoff, deliver_pending, delivery_key, due
from hub.outbox.worker import _claim
from hub.plugin_types import Delivery, DeliveryError, ExporterType
from hub.store.db import open_store
from tests.test_invoices import ACCOUNTS, BASE, OCTOBER
from tests.test_render_host import FAKES as FAKE_RENDERERS

#: what the fake targets received: (exporter, key, event, number, attempt, documents)
SENT: list[tuple] = []
#: per exporter instance: the answers its next attempts give (an exception to raise, or an id)
SCRIPT: dict[str, list[Any]] = {}
EVENTS_SEEN: list[tuple[str, Any]] = []


class Fake:
    def __init__(self, config: Any) -> None:
        self.name = config.name
        self.formats = tuple(config.options.get("formats", ()))

    def deliver(self, delivery: Delivery) -> str | None:
        SENT.append((self.name, delivery.key, delivery.event, delivery.invoice["number"], delivery.attempt,
                     sorted(delivery.documents)))
        answers = SCRIPT.get(self.name) or []
        answer = answers.pop(0) if answers else f"ext-{delivery.invoice['number']}"
        if isinstance(answer, BaseException):
            raise answer
        return answer


SCHEMA = {"type": "object", "additionalProperties": False,
          "properties": {"formats": {"type": "array", "items": {"type": "string"}}}}


class Events:
    @hookimpl
    def hub_register_exporter_types(self) -> list[ExporterType]:
        return [ExporterType(name="fake", description="records what it is sent", config_schema=SCHEMA, factory=Fake,
                             events=("invoice.issued", "credit_note.issued", "invoice.paid"))]

    @hookimpl
    def hub_invoice_paid(self, invoice: dict) -> None:
        EVENTS_SEEN.append(("paid", invoice["number"]))

    @hookimpl
    def hub_delivery_failed(self, delivery: dict) -> None:
        EVENTS_SEEN.append(("failed", delivery["number"], delivery["attempts"], delivery["last_error"]))


def fake_host() -> Host:
    csv = [ep for ep in md.entry_points(group=ENTRY_POINT_GROUP) if ep.name == "csv"]
    return build_host(csv, extra_plugins=[("fake_exporters", Events()), ("fake_renderers", FAKE_RENDERERS)])


@pytest.fixture(autouse=True)
def _fakes(monkeypatch):
    import hub.cli.base

    monkeypatch.setattr(hub.cli.base, "build_host", fake_host)
    SENT.clear()
    SCRIPT.clear()
    EVENTS_SEEN.clear()


EXPORTERS = """
[[exporters]]
name = "crm"
type = "fake"

[[exporters]]
name = "erp"
type = "fake"
accounts = ["acme", "globex"]
events = ["invoice.issued"]
max_attempts = 3
"""


def _issue(workspace, exporters: str = EXPORTERS, accounts: str = ACCOUNTS) -> None:
    workspace.config(BASE + accounts + exporters)
    workspace.write("usage/2025-10.csv", OCTOBER, dedent=False)
    assert workspace.hub("pull").exit_code == 0
    issued = workspace.hub("invoice", "--period", "2025-10", "--issue-date", "2025-11-03")
    assert issued.exit_code == 0, issued.output


def _runtime(workspace):
    config = load_config(workspace.config_path, fake_host())
    return config, fake_host(), open_store(config.hub.database, config.base_dir)


def test_issuing_writes_one_delivery_per_matching_exporter_with_a_stable_key(workspace):
    _issue(workspace)
    rows = workspace.json("deliveries")
    assert [(d["number"], d["exporter"], d["event"], d["status"], d["attempts"]) for d in rows] == [
        ("INV-2025-000001", "crm", "invoice.issued", "pending", 0),
        ("INV-2025-000001", "erp", "invoice.issued", "pending", 0),
        ("INV-2025-000002", "crm", "invoice.issued", "pending", 0),
        ("INV-2025-000002", "erp", "invoice.issued", "pending", 0),
        ("INV-2025-000003", "crm", "invoice.issued", "pending", 0),
        ("INV-2025-000004", "crm", "invoice.issued", "pending", 0),
        ("INV-2025-000005", "crm", "invoice.issued", "pending", 0)]
    assert rows[0]["key"] == delivery_key("INV-2025-000001", "crm", "invoice.issued")
    assert len({d["key"] for d in rows}) == 7


def test_an_exporter_for_tagged_accounts_gets_only_their_invoices(workspace):
    tagged = ACCOUNTS.replace('id = "globex"\n', 'id = "globex"\ntags = ["key-account"]\n')
    _issue(workspace, '[[exporters]]\nname = "vip"\ntype = "fake"\ntags = ["key-account"]\n', tagged)
    assert [(d["number"], d["exporter"]) for d in workspace.json("deliveries")] == [("INV-2025-000002", "vip")]


def test_the_worker_delivers_each_once_and_records_the_targets_id(workspace):
    _issue(workspace)
    result = workspace.hub("deliver")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "deliver: 7 delivered"
    assert sorted((name, number, attempt) for name, _key, _event, number, attempt, _docs in SENT) == sorted(
        [("crm", f"INV-2025-00000{i}", 1) for i in range(1, 6)] + [("erp", "INV-2025-000001", 1),
                                                                  ("erp", "INV-2025-000002", 1)])
    rows = workspace.json("deliveries", "--status", "delivered")
    assert len(rows) == 7
    assert rows[0]["external_id"] == "ext-INV-2025-000001"
    assert workspace.hub("deliver").stdout.strip() == "deliver: nothing due"
    assert len(SENT) == 7


def test_a_failing_target_is_retried_with_backoff_and_retry_after_then_succeeds(workspace):
    _issue(workspace, '[[exporters]]\nname = "crm"\ntype = "fake"\naccounts = ["acme"]\n')
    SCRIPT["crm"] = [DeliveryError("HTTP 500"), DeliveryError("HTTP 429", retry_after=600), "crm-42"]
    config, host, engine = _runtime(workspace)
    t0 = datetime(2027, 1, 5, 12, 0, tzinfo=timezone.utc)
    first = deliver_pending(engine, config, host, now=t0)
    key = delivery_key("INV-2025-000001", "crm", "invoice.issued")
    assert [(a.outcome, a.error, a.next_attempt_at) for a in first] == [("retry", "HTTP 500", t0 + backoff(key, 1))]
    assert timedelta(seconds=30) <= backoff(key, 1) <= timedelta(seconds=36)
    assert deliver_pending(engine, config, host, now=t0 + timedelta(seconds=29)) == []  # not due yet
    t1 = t0 + timedelta(seconds=40)
    second = deliver_pending(engine, config, host, now=t1)
    assert [(a.outcome, a.next_attempt_at) for a in second] == [("retry", t1 + timedelta(seconds=600))]
    assert deliver_pending(engine, config, host, now=t1 + timedelta(seconds=599)) == []  # Retry-After honoured
    third = deliver_pending(engine, config, host, now=t1 + timedelta(seconds=600))
    assert [(a.outcome, a.attempt, a.external_id) for a in third] == [("delivered", 3, "crm-42")]
    assert [(k, attempt) for _n, k, _e, _num, attempt, _d in SENT] == [(key, 1), (key, 2), (key, 3)]
    engine.dispose()
    shown = workspace.json("deliveries", "show", "1")
    assert [(a["attempt"], a["outcome"], a["error"]) for a in shown["history"]] == [
        (1, "retry", "HTTP 500"), (2, "retry", "HTTP 429"), (3, "delivered", None)]


def test_a_permanent_error_or_too_many_failures_kill_the_delivery_and_retry_queues_it_again(workspace):
    _issue(workspace)
    SCRIPT["crm"] = [DeliveryError("HTTP 400: bad payload", permanent=True)]
    SCRIPT["erp"] = [RuntimeError("connection reset")] * 6  # both of erp's deliveries, three times
    config, host, engine = _runtime(workspace)
    t = datetime(2027, 1, 5, tzinfo=timezone.utc)
    for _ in range(3):
        deliver_pending(engine, config, host, now=t)
        t += timedelta(days=1)
    engine.dispose()
    dead = workspace.json("deliveries", "--status", "dead")
    assert [(d["number"], d["exporter"], d["attempts"], d["last_error"]) for d in dead] == [
        ("INV-2025-000001", "crm", 1, "HTTP 400: bad payload"),
        ("INV-2025-000001", "erp", 3, "RuntimeError: connection reset (attempt 3 of 3: giving up)"),
        ("INV-2025-000002", "erp", 3, "RuntimeError: connection reset (attempt 3 of 3: giving up)")]
    assert ("failed", "INV-2025-000001", 1, "HTTP 400: bad payload") in EVENTS_SEEN
    again = workspace.hub("deliveries", "retry", str(dead[0]["id"]))
    assert again.exit_code == 0, again.output
    SENT.clear()
    assert workspace.hub("deliver").exit_code == 0
    assert [(name, number, attempt) for name, _k, _e, number, attempt, _d in SENT] == [("crm", "INV-2025-000001", 2)]
    refused = workspace.hub("deliveries", "retry", str(dead[0]["id"]))
    assert refused.exit_code == 2
    assert "is delivered: only a dead or blocked one can be retried" in refused.output


def test_a_worker_that_died_while_sending_is_replaced_after_its_lease_with_the_same_key(workspace):
    _issue(workspace, '[[exporters]]\nname = "crm"\ntype = "fake"\naccounts = ["acme"]\n')
    config, host, engine = _runtime(workspace)
    t0 = datetime(2027, 1, 5, tzinfo=timezone.utc)
    [row_id] = due(engine, t0)
    assert _claim(engine, row_id, t0) == 1  # a worker took it, sent it maybe, and died before recording
    assert deliver_pending(engine, config, host, now=t0 + LEASE - timedelta(seconds=1)) == []
    [after] = deliver_pending(engine, config, host, now=t0 + LEASE)
    assert (after.outcome, after.attempt) == ("delivered", 2)
    assert [k for _n, k, *_ in SENT] == [delivery_key("INV-2025-000001", "crm", "invoice.issued")]
    engine.dispose()
    shown = workspace.json("deliveries", "show", "1")
    assert [(a["attempt"], a["outcome"], a["finished_at"] is None) for a in shown["history"]] == [
        (1, None, True), (2, "delivered", False)]


def test_an_exporter_gets_the_documents_it_needs_and_a_rejected_one_blocks_the_delivery(workspace):
    exporters = ('[[renderers]]\nname = "text"\ntype = "txt"\n\n[[renderers]]\nname = "strict"\ntype = "strict"\n\n'
                 '[[exporters]]\nname = "mail"\ntype = "fake"\nformats = ["txt", "strict"]\n')
    _issue(workspace, exporters)
    result = workspace.hub("deliver")
    assert result.exit_code == 7
    assert {(number, tuple(docs)) for _n, _k, _e, number, _a, docs in SENT} == {
        (f"INV-2025-00000{i}", ("strict", "txt")) for i in range(2, 6)}
    blocked = workspace.json("deliveries", "--status", "blocked")
    assert [(d["number"], d["last_error"]) for d in blocked] == [
        ("INV-2025-000001", "strict document rejected: [BR-TEST-01] the total is above 10.00")]


def test_paying_an_invoice_in_full_queues_invoice_paid_and_tells_the_plugins(workspace):
    _issue(workspace)
    assert workspace.hub("invoices", "pay", "INV-2025-000002", "--amount", "1.00", "--date", "2025-11-10").exit_code == 0
    assert [d["event"] for d in workspace.json("deliveries", "--invoice", "INV-2025-000002")] == [
        "invoice.issued", "invoice.issued"]
    paid = workspace.hub("invoices", "pay", "INV-2025-000002", "--amount", "0.20", "--date", "2025-11-12")
    assert paid.exit_code == 0, paid.output
    rows = workspace.json("deliveries", "--invoice", "INV-2025-000002")
    # erp only takes invoice.issued
    assert [(d["exporter"], d["event"]) for d in rows] == [
        ("crm", "invoice.issued"), ("erp", "invoice.issued"), ("crm", "invoice.paid")]
    assert EVENTS_SEEN == [("paid", "INV-2025-000002")]


def test_a_credit_note_is_delivered_as_credit_note_issued(workspace):
    _issue(workspace)
    noted = workspace.hub("credit-note", "INV-2025-000003", "--reason", "goodwill", "--issue-date", "2025-11-20")
    assert noted.exit_code == 0, noted.output
    rows = workspace.json("deliveries", "--invoice", "CN-2025-000001")
    assert [(d["exporter"], d["event"]) for d in rows] == [("crm", "credit_note.issued")]


def test_exporter_keys_of_the_hub_are_checked(workspace):
    workspace.config(BASE + ACCOUNTS + '[[exporters]]\nname = "x"\ntype = "fake"\naccounts = ["nobody"]\n'
                     'events = ["invoice.paid", "invoice.issued"]\n\n[[exporters]]\nname = "y"\ntype = "fake"\n'
                     'max_attempts = 0\n')
    result = workspace.hub("check")
    assert result.exit_code == 2
    assert 'hub.toml: exporters[1] "x": accounts: unknown account \'nobody\'' in result.output
    assert 'exporters[2] "y": max_attempts' in result.output
