"""``hub deliveries resend NUMBER [--exporter NAME]``: a new delivery of an
issued invoice's (or credit note's) issued event, for every exporter that
takes it or for the one named (an exporter added since, a customer who lost
the mail): occasion ``resend:N`` with a key of its own, exactly one per
exporter and call, delivered by ``hub deliver``; refused, with a message
saying why, for a draft, an unknown number and an unknown exporter."""

from __future__ import annotations

import importlib.metadata as md
from typing import Any

import pytest

from hub.hookspecs import ENTRY_POINT_GROUP, hookimpl
from hub.host import Host, build_host
from hub.outbox import delivery_key
from hub.plugin_types import Delivery, ExporterType
from tests.test_invoices import ACCOUNTS, BASE, OCTOBER
from tests.test_render_host import FAKES as FAKE_RENDERERS

#: what the fake targets received: (exporter, key, event, occasion, number)
SENT: list[tuple] = []

ACME, GLOBEX = "INV-2025-000001", "INV-2025-000002"

EXPORTERS = """
[[exporters]]
name = "crm"
type = "fake"
accounts = ["acme", "globex"]

[[exporters]]
name = "erp"
type = "fake"
accounts = ["acme", "globex"]
events = ["invoice.issued"]

[[exporters]]
name = "payments"
type = "fake"
events = ["invoice.paid"]
"""

#: an exporter added after the invoices were issued
ADDED = """
[[exporters]]
name = "archive"
type = "fake"
accounts = ["acme"]
"""


class Fake:
    def __init__(self, config: Any) -> None:
        self.name = config.name
        self.formats = ()

    def deliver(self, delivery: Delivery) -> str:
        SENT.append((self.name, delivery.key, delivery.event, delivery.occasion, delivery.invoice["number"]))
        return f"ext-{delivery.key}"


class Plugin:
    @hookimpl
    def hub_register_exporter_types(self) -> list[ExporterType]:
        return [ExporterType(name="fake", description="records what it is sent", config_schema={"type": "object"},
                             factory=Fake, events=("invoice.issued", "credit_note.issued", "invoice.paid",
                                                   "invoice.overdue"))]


def fake_host() -> Host:
    csv = [ep for ep in md.entry_points(group=ENTRY_POINT_GROUP) if ep.name == "csv"]
    return build_host(csv, extra_plugins=[("fake_exporters", Plugin()), ("fake_renderers", FAKE_RENDERERS)])


@pytest.fixture(autouse=True)
def _fakes(monkeypatch):
    import hub.cli.base

    monkeypatch.setattr(hub.cli.base, "build_host", fake_host)
    SENT.clear()


def _issue(workspace, exporters: str = EXPORTERS) -> None:
    workspace.config(BASE + ACCOUNTS + exporters)
    workspace.write("usage/2025-10.csv", OCTOBER, dedent=False)
    assert workspace.hub("pull").exit_code == 0
    issued = workspace.hub("invoice", "--period", "2025-10", "--issue-date", "2025-11-03")
    assert issued.exit_code == 0, issued.output
    delivered = workspace.hub("deliver")
    assert delivered.stdout.strip() == "deliver: 4 delivered", delivered.output
    SENT.clear()


def _rows(workspace, number: str) -> list[tuple]:
    return [(d["exporter"], d["event"], d["occasion"], d["status"])
            for d in workspace.json("deliveries", "--invoice", number)]


def test_resend_queues_exactly_one_new_delivery_per_exporter_and_call_resend_1_then_resend_2_delivered(workspace):
    _issue(workspace)
    first = workspace.json("deliveries", "resend", ACME)
    assert [(d["number"], d["exporter"], d["event"], d["occasion"], d["key"]) for d in first] == [
        (ACME, "crm", "invoice.issued", "resend:1", delivery_key(ACME, "crm", "invoice.issued", "resend:1")),
        (ACME, "erp", "invoice.issued", "resend:1", delivery_key(ACME, "erp", "invoice.issued", "resend:1"))]
    assert _rows(workspace, ACME) == [
        ("crm", "invoice.issued", "", "delivered"), ("erp", "invoice.issued", "", "delivered"),
        ("crm", "invoice.issued", "resend:1", "pending"), ("erp", "invoice.issued", "resend:1", "pending")]
    result = workspace.hub("deliver")
    assert result.stdout.strip() == "deliver: 2 delivered", result.output
    assert SENT == [("crm", delivery_key(ACME, "crm", "invoice.issued", "resend:1"), "invoice.issued", "resend:1", ACME),
                    ("erp", delivery_key(ACME, "erp", "invoice.issued", "resend:1"), "invoice.issued", "resend:1", ACME)]

    again = workspace.hub("deliveries", "resend", ACME, "--exporter", "crm")
    assert again.exit_code == 0, again.output
    [row] = [d for d in workspace.json("deliveries", "--invoice", ACME) if d["occasion"] == "resend:2"]
    assert again.stdout == (f"delivery {row['id']}: {ACME} to crm (invoice.issued, resend:2) queued\n"
                            "hub deliver (or hub run) sends it\n")
    assert workspace.hub("deliver").stdout.strip() == "deliver: 1 delivered"
    assert SENT[2:] == [("crm", delivery_key(ACME, "crm", "invoice.issued", "resend:2"), "invoice.issued", "resend:2",
                         ACME)]
    assert _rows(workspace, ACME)[4:] == [("crm", "invoice.issued", "resend:2", "delivered")]
    # the other invoice was left alone
    assert _rows(workspace, GLOBEX) == [("crm", "invoice.issued", "", "delivered"),
                                        ("erp", "invoice.issued", "", "delivered")]
    assert workspace.hub("deliver").stdout.strip() == "deliver: nothing due"


def test_resend_to_an_exporter_added_since_sends_to_it_alone(workspace):
    _issue(workspace)
    workspace.append("hub.toml", ADDED)
    [queued] = workspace.json("deliveries", "resend", ACME, "--exporter", "archive")
    assert (queued["exporter"], queued["occasion"]) == ("archive", "resend:1")
    assert workspace.hub("deliver").stdout.strip() == "deliver: 1 delivered"
    assert SENT == [("archive", delivery_key(ACME, "archive", "invoice.issued", "resend:1"), "invoice.issued",
                     "resend:1", ACME)]
    # without --exporter: every exporter that takes it, archive included
    assert [(d["exporter"], d["occasion"]) for d in workspace.json("deliveries", "resend", ACME)] == [
        ("crm", "resend:1"), ("erp", "resend:1"), ("archive", "resend:2")]


def test_resending_a_credit_note_delivers_credit_note_issued_again(workspace):
    _issue(workspace)
    noted = workspace.hub("credit-note", ACME, "--reason", "goodwill", "--issue-date", "2025-11-20")
    assert noted.exit_code == 0, noted.output
    assert workspace.hub("deliver").exit_code == 0
    SENT.clear()
    queued = workspace.json("deliveries", "resend", "CN-2025-000001")
    assert [(d["exporter"], d["event"], d["occasion"]) for d in queued] == [
        ("crm", "credit_note.issued", "resend:1")]
    assert workspace.hub("deliver").stdout.strip() == "deliver: 1 delivered"
    assert [s[2:] for s in SENT] == [("credit_note.issued", "resend:1", "CN-2025-000001")]


def test_resend_is_refused_for_a_draft_an_unknown_number_an_unknown_exporter_and_one_that_does_not_take_it(workspace):
    workspace.config(BASE + ACCOUNTS + EXPORTERS)
    workspace.write("usage/2025-10.csv", OCTOBER, dedent=False)
    assert workspace.hub("pull").exit_code == 0
    drafted = workspace.hub("invoice", "--period", "2025-10", "--account", "acme", "--draft")
    assert drafted.exit_code == 0, drafted.output
    issued = workspace.hub("invoice", "--period", "2025-10", "--account", "globex", "--issue-date", "2025-11-03")
    assert issued.exit_code == 0, issued.output
    [draft] = [d for d in workspace.json("invoices", "list") if d["status"] == "draft"]
    [number] = [d["number"] for d in workspace.json("invoices", "list") if d["status"] != "draft"]
    assert number == "INV-2025-000001"
    ref = f"draft:{draft['draft_id']}"
    for args, message in [
        ((ref,), f"{ref} is a draft: only an issued invoice or credit note can be resent (issue it first: "
                 f"hub invoice --period ...)"),
        (("INV-2025-999999",), "no invoice numbered 'INV-2025-999999' (see hub invoices list)"),
        ((number, "--exporter", "mail"), "unknown exporter 'mail' (the [[exporters]] of hub.toml: crm, erp, payments)"),
        ((number, "--exporter", "payments"), "exporter 'payments' does not take invoice.issued of account 'globex' "
                                             "(its events, accounts or tags in hub.toml): nothing to resend to it"),
    ]:
        result = workspace.hub("deliveries", "resend", *args)
        assert result.exit_code == 2, (args, result.output)
        assert " ".join(result.stderr.split()) == f"hub: {message}", args
    assert [(d["number"], d["exporter"], d["occasion"]) for d in workspace.json("deliveries")] == [
        (number, "crm", ""), (number, "erp", "")]


def test_resend_with_no_exporter_taking_the_event_says_so(workspace):
    workspace.config(BASE + ACCOUNTS + '[[exporters]]\nname = "payments"\ntype = "fake"\nevents = ["invoice.paid"]\n')
    workspace.write("usage/2025-10.csv", OCTOBER, dedent=False)
    assert workspace.hub("pull").exit_code == 0
    assert workspace.hub("invoice", "--period", "2025-10", "--issue-date", "2025-11-03").exit_code == 0
    result = workspace.hub("deliveries", "resend", ACME)
    assert result.exit_code == 2
    assert " ".join(result.stderr.split()) == (f"hub: no exporter takes invoice.issued of account 'acme': nothing "
                                               f"to resend {ACME} to")
