"""A minimum invoice amount (issue 23): with ``[invoicing] minimum_amount =
"5.00"`` a period whose invoice total would be below it is not issued: its
closing keeps that total as ``deferred``, and its charges go on the next
invoice of the account, each line in its own period with ``carried_from``,
the invoice listing them in ``carried_periods``; the closing names that
invoice (``carried_to``), and ``hub reconcile`` shows where they went.
Never lost, never billed twice.

Every test runs on SQLite and PostgreSQL. Figures by hand in the comments
(acme is in DE: 19% VAT).
"""

from __future__ import annotations

from datetime import date, datetime, timezone

import jsonschema
from sqlalchemy import select

import hub.cli.invoices  # noqa: F401 - registers the commands for the in-process runner
from hub import closing, due
from hub.closing import close as closing_close
from hub.config import load_config
from hub.host import build_host
from hub.periods import parse_period
from hub.store.db import open_store
from hub.store.tables import invoices, period_closings
from tests.conftest import HEADER
from tests.test_invoices import ACCOUNTS, BASE, SCHEMA, _invoice, _show

MINIMUM = BASE.replace("[invoicing]\n", '[invoicing]\nminimum_amount = "5.00"\n')
assert MINIMUM != BASE

# October: 12.5 GB of egress, 1.00 + 19% = 1.19, below 5.00.
OCTOBER = HEADER + "o1,acme,vm-1,network.egress,2025-10-12T00:00:00Z,2025-10-12T00:00:00Z,12.5\n"
# November: 2 vCPU x 100 h = 200 vCPU-h, 10.00.
NOVEMBER_VCPU = HEADER + "n1,acme,vm-1,compute.vcpu,2025-11-10T00:00:00Z,2025-11-14T04:00:00Z,2\n"
# November: 12.5 GB again, 1.19 alone.
NOVEMBER_EGRESS = HEADER + "n2,acme,vm-1,network.egress,2025-11-12T00:00:00Z,2025-11-12T00:00:00Z,12.5\n"
DECEMBER_VCPU = HEADER + "d1,acme,vm-1,compute.vcpu,2025-12-10T00:00:00Z,2025-12-14T04:00:00Z,2\n"


def _setup(workspace, **files: str) -> None:
    workspace.config(MINIMUM + ACCOUNTS)
    for name, text in files.items():
        workspace.write(f"usage/{name}.csv", text, dedent=False)
    assert workspace.hub("pull").exit_code == 0


def _pull(workspace, name: str, text: str) -> None:
    workspace.write(f"usage/{name}.csv", text, dedent=False)
    assert workspace.hub("pull").exit_code == 0


def _closings(workspace) -> list[tuple]:
    """(period, invoice number, deferred, carried-to number) of acme's closings, oldest first."""
    config = load_config(workspace.config_path, build_host())
    engine = open_store(config.hub.database, config.base_dir)
    try:
        with engine.connect() as conn:
            numbers = dict(conn.execute(select(invoices.c.id, invoices.c.number)).all())
            return [(p, numbers.get(i), d, numbers.get(c)) for p, i, d, c in conn.execute(
                select(period_closings.c.period, period_closings.c.invoice_id, period_closings.c.deferred,
                       period_closings.c.carried_to)
                .where(period_closings.c.account == "acme").order_by(period_closings.c.period))]
    finally:
        engine.dispose()


def _lines(doc: dict) -> list[tuple]:
    return [(ln["product"], ln["quantity"], ln["amount"], ln["period_start"][:10], ln.get("carried_from"),
             ln["adjustment_for"]) for ln in doc["lines"]]


def test_a_period_below_the_minimum_is_deferred_and_its_charges_go_on_the_next_invoice(workspace):
    _setup(workspace, oct=OCTOBER)
    october = _invoice(workspace, "--period", "2025-10", "--account", "acme", "--issue-date", "2025-11-03")
    assert [(r["outcome"], r["number"], r["total"], r["note"]) for r in october] == [
        ("deferred", None, "1.19", "the total 1.19 EUR is below the minimum amount 5.00 EUR: its charges go on the "
                                   "next invoice")]
    assert workspace.json("invoices", "list") == []
    assert _closings(workspace) == [("2025-10", None, "1.19", None)]
    again = _invoice(workspace, "--period", "2025-10", "--account", "acme")
    assert [(r["outcome"], r["total"], r["note"]) for r in again] == [
        ("deferred", "1.19", "its total 1.19 EUR was below the minimum amount: its charges go on the next invoice")]

    _pull(workspace, "nov", NOVEMBER_VCPU)
    november = _invoice(workspace, "--period", "2025-11", "--account", "acme", "--issue-date", "2025-12-02")
    # 10.00 + October's 1.00 = 11.00 + 19% 2.09 = 13.09
    assert [(r["outcome"], r["number"], r["total"]) for r in november] == [("issued", "INV-2025-000001", "13.09")]
    doc = _show(workspace, "INV-2025-000001")
    assert _lines(doc) == [("vcpu", "200", "10.00", "2025-11-01", None, None),
                           ("egress", "12.5", "1.00", "2025-10-01", "2025-10", None)]
    assert "carried_from" not in doc["lines"][0]
    assert doc["lines"][1]["description"] == "Internet egress (carried from 2025-10)"
    assert doc["lines"][1]["period_end"] == "2025-11-01T00:00:00+00:00"
    assert (doc["carried_periods"], doc["period"], doc["subtotal"], doc["tax"]["amount"], doc["total"]) == (
        ["2025-10"], "2025-11", "11.00", "2.09", "13.09")
    assert _closings(workspace) == [("2025-10", None, "1.19", "INV-2025-000001"),
                                    ("2025-11", "INV-2025-000001", None, None)]
    assert [(r["outcome"], r["number"], r["note"]) for r in _invoice(
        workspace, "--period", "2025-10", "--account", "acme")] == [
        ("deferred", "INV-2025-000001", "its total 1.19 EUR was below the minimum amount: billed on INV-2025-000001")]
    # December bills nothing of October again.
    _pull(workspace, "dec", DECEMBER_VCPU)
    _invoice(workspace, "--period", "2025-12", "--account", "acme", "--issue-date", "2026-01-02")
    assert _lines(_show(workspace, "INV-2026-000001")) == [("vcpu", "200", "10.00", "2025-12-01", None, None)]


def test_an_invoice_without_carried_periods_has_no_carried_keys(workspace):
    _setup(workspace, nov=NOVEMBER_VCPU)
    _invoice(workspace, "--period", "2025-11", "--account", "acme", "--issue-date", "2025-12-02")
    doc = _show(workspace, "INV-2025-000001")
    assert "carried_periods" not in doc
    assert all("carried_from" not in ln for ln in doc["lines"])


def test_a_carried_total_still_below_the_minimum_keeps_being_deferred(workspace):
    _setup(workspace, oct=OCTOBER, nov=NOVEMBER_EGRESS)
    assert _invoice(workspace, "--period", "2025-10", "--account", "acme")[0]["outcome"] == "deferred"
    november = _invoice(workspace, "--period", "2025-11", "--account", "acme")
    # 1.00 + 1.00 = 2.00 + 19% = 2.38, still below 5.00: November defers its own 1.19
    assert [(r["outcome"], r["total"], r["note"]) for r in november] == [
        ("deferred", "2.38", "the total 2.38 EUR (with 2025-10) is below the minimum amount 5.00 EUR: its charges "
                             "go on the next invoice")]
    assert _closings(workspace) == [("2025-10", None, "1.19", None), ("2025-11", None, "1.19", None)]
    _pull(workspace, "dec", DECEMBER_VCPU)
    december = _invoice(workspace, "--period", "2025-12", "--account", "acme", "--issue-date", "2026-01-02")
    # 10.00 + 1.00 + 1.00 = 12.00 + 19% 2.28 = 14.28
    assert [(r["outcome"], r["number"], r["total"]) for r in december] == [("issued", "INV-2026-000001", "14.28")]
    doc = _show(workspace, "INV-2026-000001")
    assert _lines(doc) == [("vcpu", "200", "10.00", "2025-12-01", None, None),
                           ("egress", "12.5", "1.00", "2025-10-01", "2025-10", None),
                           ("egress", "12.5", "1.00", "2025-11-01", "2025-11", None)]
    assert doc["carried_periods"] == ["2025-10", "2025-11"]
    assert _closings(workspace) == [("2025-10", None, "1.19", "INV-2026-000001"),
                                    ("2025-11", None, "1.19", "INV-2026-000001"),
                                    ("2025-12", "INV-2026-000001", None, None)]


def test_late_usage_of_a_deferred_period_is_billed_once(workspace):
    _setup(workspace, oct=OCTOBER)
    _invoice(workspace, "--period", "2025-10", "--account", "acme")
    # October usage received while October is deferred: carried with it, no adjustment.
    _pull(workspace, "late1", HEADER + "l1,acme,vm-1,network.egress,2025-10-20T00:00:00Z,2025-10-20T00:00:00Z,12.5\n")
    _pull(workspace, "nov", NOVEMBER_VCPU)
    _invoice(workspace, "--period", "2025-11", "--account", "acme", "--issue-date", "2025-12-02")
    assert _lines(_show(workspace, "INV-2025-000001")) == [("vcpu", "200", "10.00", "2025-11-01", None, None),
                                                           ("egress", "25", "2.00", "2025-10-01", "2025-10", None)]
    # October usage received after it was carried: an adjustment of that usage alone.
    _pull(workspace, "late2", HEADER + "l2,acme,vm-1,network.egress,2025-10-21T00:00:00Z,2025-10-21T00:00:00Z,10\n")
    _pull(workspace, "dec", DECEMBER_VCPU)
    december = _invoice(workspace, "--period", "2025-12", "--account", "acme", "--issue-date", "2026-01-02")
    assert december[0]["warnings"] == []
    doc = _show(workspace, "INV-2026-000001")
    assert _lines(doc) == [("vcpu", "200", "10.00", "2025-12-01", None, None),
                           ("egress", "10", "0.80", "2025-10-01", None, "2025-10")]
    assert "carried_periods" not in doc


def test_reissuing_a_carrying_invoice_carries_the_deferred_periods_again(workspace):
    _setup(workspace, oct=OCTOBER, nov=NOVEMBER_VCPU)
    _invoice(workspace, "--period", "2025-10", "--account", "acme")
    _invoice(workspace, "--period", "2025-11", "--account", "acme", "--issue-date", "2025-12-02")
    workspace.json("credit-note", "INV-2025-000001", "--reason", "wrong address", "--issue-date", "2025-12-03")
    reissued = _invoice(workspace, "--period", "2025-11", "--account", "acme", "--reissue",
                        "--issue-date", "2025-12-04")
    assert [(r["outcome"], r["number"], r["total"]) for r in reissued] == [("issued", "INV-2025-000002", "13.09")]
    doc = _show(workspace, "INV-2025-000002")
    assert _lines(doc) == [("vcpu", "200", "10.00", "2025-11-01", None, None),
                           ("egress", "12.5", "1.00", "2025-10-01", "2025-10", None)]
    assert (doc["carried_periods"], doc["reissue_of"]) == (["2025-10"], "INV-2025-000001")
    assert _closings(workspace) == [("2025-10", None, "1.19", "INV-2025-000002"),
                                    ("2025-11", "INV-2025-000002", None, None)]


def test_a_draft_below_the_minimum_says_issuing_would_defer_it(workspace):
    _setup(workspace, oct=OCTOBER)
    draft = _invoice(workspace, "--period", "2025-10", "--account", "acme", "--draft")
    assert [(r["outcome"], r["total"], r["warnings"]) for r in draft] == [
        ("draft", "1.19", ["the total 1.19 EUR is below the minimum amount 5.00 EUR: issuing defers it to the next "
                           "invoice"])]
    # Issuing removes the draft: there is no invoice.
    assert _invoice(workspace, "--period", "2025-10", "--account", "acme")[0]["outcome"] == "deferred"
    assert workspace.json("invoices", "list") == []


def test_reconcile_shows_a_deferred_period_and_the_invoice_it_was_carried_to(workspace):
    _setup(workspace, oct=OCTOBER)
    _invoice(workspace, "--period", "2025-10", "--account", "acme")
    deferred = workspace.json("reconcile", "--period", "2025-10", "--account", "acme")
    assert deferred["closings"] == [{"account": "acme", "state": "deferred", "invoice": None, "status": None,
                                     "deferred": "1.19", "carried_to": None, "currency": "EUR"}]
    assert deferred["balanced"] is True
    text = workspace.hub("reconcile", "--period", "2025-10", "--account", "acme")
    assert text.exit_code == 0, text.output
    assert "acme     deferred           1.19 EUR  the next invoice" in text.stdout
    _pull(workspace, "nov", NOVEMBER_VCPU)
    _invoice(workspace, "--period", "2025-11", "--account", "acme", "--issue-date", "2025-12-02")
    assert workspace.json("reconcile", "--period", "2025-10", "--account", "acme")["closings"] == [
        {"account": "acme", "state": "carried", "invoice": None, "status": None, "deferred": "1.19",
         "carried_to": "INV-2025-000001", "currency": "EUR"}]
    assert workspace.json("reconcile", "--period", "2025-11")["closings"] == [
        {"account": "acme", "state": "invoiced", "invoice": "INV-2025-000001", "status": "issued", "deferred": None,
         "carried_to": None, "currency": "EUR"}]


def test_the_close_job_defers_then_carries_in_one_run(workspace):
    _setup(workspace, oct=OCTOBER, nov=NOVEMBER_VCPU)
    workspace.config(MINIMUM + ACCOUNTS.split('[[accounts]]\nid = "globex"')[0])  # acme alone
    config = load_config(workspace.config_path, build_host())
    engine = open_store(config.hub.database, config.base_dir)
    try:
        done = due.close_due(engine, config, datetime(2025, 12, 5, 8, tzinfo=timezone.utc))
    finally:
        engine.dispose()
    assert [(c.account, str(c.period), c.outcome, c.number, c.total) for c in done] == [
        ("acme", "2025-10", "deferred", None, "1.19"), ("acme", "2025-11", "issued", "INV-2025-000001", "13.09")]
    doc = _show(workspace, "INV-2025-000001")
    jsonschema.validate(doc, SCHEMA)
    assert doc["carried_periods"] == ["2025-10"]


def test_deferred_periods_another_process_carried_meanwhile_are_not_billed_again(workspace, monkeypatch):
    """A process that read October as deferred before another one's invoice
    carried it finds it carried when it writes, and starts over without it:
    no second bill, and no number lost."""
    _setup(workspace, oct=OCTOBER, nov=NOVEMBER_VCPU, dec=DECEMBER_VCPU)
    _invoice(workspace, "--period", "2025-10", "--account", "acme")
    _invoice(workspace, "--period", "2025-11", "--account", "acme", "--issue-date", "2025-12-02")
    real, calls = closing_close._carried, []

    def read_before_the_other_commit(conn, root, period, replaced):
        calls.append(1)
        return [parse_period("2025-10")] if len(calls) <= 2 else real(conn, root, period, replaced)

    monkeypatch.setattr(closing_close, "_carried", read_before_the_other_commit)
    config = load_config(workspace.config_path, build_host())
    engine = open_store(config.hub.database, config.base_dir)
    try:
        (c,) = closing.close_period(engine, config, parse_period("2025-12"), ["acme"], issue_date=date(2026, 1, 2))
    finally:
        engine.dispose()
    assert (c.outcome, c.number, c.total) == ("issued", "INV-2026-000001", "11.90")
    assert _lines(_show(workspace, "INV-2026-000001")) == [("vcpu", "200", "10.00", "2025-12-01", None, None)]
    assert _closings(workspace)[0] == ("2025-10", None, "1.19", "INV-2025-000001")
