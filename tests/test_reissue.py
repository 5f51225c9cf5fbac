"""Reissuing a voided period (issue 23, defect 3): ``hub invoice --period P
--account A --reissue`` issues a new invoice, with a new number, for a
period whose invoice was credited in full; the credit note and the new
invoice refer to each other. Refused when the period's invoice is not void.

Every test runs on SQLite and PostgreSQL. Figures by hand in the comments.
"""

from __future__ import annotations

import threading
from datetime import date

import pytest
from sqlalchemy import select

import hub.cli.invoices  # noqa: F401 - registers the commands for the in-process runner
from hub import closing
from hub.closing import close as closing_close
from hub.config import load_config
from hub.host import build_host
from hub.periods import parse_period
from hub.store.db import open_store
from hub.store.tables import invoices, period_closings
from tests.conftest import HEADER
from tests.test_invoices import BASE, _invoice, _show

BONJOUR = """
[[accounts]]
id = "bonjour"
name = "Bonjour SAS"
country = "FR"

[[accounts]]
id = "acme"
name = "ACME GmbH"
country = "DE"
"""

# November 2026: bonjour 2 vCPU x 100 h = 200 vCPU-h (10.00) and 12.5 GB
# (1.00): 11.00 + 20% (FR, no VAT id: its own rate) 2.20 = 13.20.
NOVEMBER = HEADER + "".join([
    "b1,bonjour,vm-1,compute.vcpu,2026-11-10T00:00:00Z,2026-11-14T04:00:00Z,2\n",
    "b2,bonjour,vm-1,network.egress,2026-11-12T00:00:00Z,2026-11-12T00:00:00Z,12.5\n",
    "a1,acme,vm-9,network.egress,2026-11-12T00:00:00Z,2026-11-12T00:00:00Z,10\n",
])


def _setup(workspace, usage: str = NOVEMBER) -> None:
    workspace.config(BASE + BONJOUR)
    workspace.write("usage/2026-11.csv", usage, dedent=False)
    assert workspace.hub("pull").exit_code == 0


def _issue_and_void(workspace) -> None:
    """INV-2026-000001 for bonjour's November, credited in full by CN-2026-000001."""
    issued = _invoice(workspace, "--period", "2026-11", "--account", "bonjour", "--issue-date", "2026-12-01")
    assert [(r["outcome"], r["number"], r["total"]) for r in issued] == [("issued", "INV-2026-000001", "13.20")]
    note = workspace.json("credit-note", "INV-2026-000001", "--reason", "wrong address", "--issue-date", "2026-12-02")
    assert (note["number"], note["total"]) == ("CN-2026-000001", "13.20")
    assert _show(workspace, "INV-2026-000001")["status"] == "void"


def _rows(workspace) -> list[tuple]:
    """(number, status, reissue, number of the invoice it reissues) of every invoice, in order."""
    config = load_config(workspace.config_path, build_host())
    engine = open_store(config.hub.database, config.base_dir)
    try:
        with engine.connect() as conn:
            numbers = dict(conn.execute(select(invoices.c.id, invoices.c.number)).all())
            return [(n, status, serial, numbers.get(of)) for n, status, serial, of in conn.execute(
                select(invoices.c.number, invoices.c.status, invoices.c.reissue, invoices.c.reissue_of)
                .where(invoices.c.kind == "invoice").order_by(invoices.c.id))]
    finally:
        engine.dispose()


def test_a_voided_period_answers_already_issued_and_says_to_reissue(workspace):
    _setup(workspace)
    _issue_and_void(workspace)
    again = workspace.hub("invoice", "--period", "2026-11", "--account", "bonjour")
    assert again.exit_code == 0, again.output
    assert "already issued  INV-2026-000001" in again.stdout
    assert ("bonjour: INV-2026-000001 is void (credited in full): hub invoice --period 2026-11 --account bonjour "
            "--reissue issues a new invoice for the period") in again.stdout
    assert [(r["outcome"], r["number"]) for r in _invoice(workspace, "--period", "2026-11", "--account", "bonjour")] \
        == [("already_issued", "INV-2026-000001")]


def test_reissuing_a_fully_credited_period_issues_a_new_number_and_the_documents_refer_to_each_other(workspace):
    _setup(workspace)
    _issue_and_void(workspace)
    reissued = _invoice(workspace, "--period", "2026-11", "--account", "bonjour", "--reissue",
                        "--issue-date", "2026-12-03")
    assert [(r["account"], r["outcome"], r["number"], r["total"], r["note"]) for r in reissued] == [
        ("bonjour", "issued", "INV-2026-000002", "13.20", "reissues INV-2026-000001")]
    new = _show(workspace, "INV-2026-000002")
    assert (new["status"], new["period"], new["issue_date"], new["reissue_of"], new["replaces_credit_note"]) == (
        "issued", "2026-11", "2026-12-03", "INV-2026-000001", "CN-2026-000001")
    assert [(ln["product"], ln["quantity"], ln["amount"]) for ln in new["lines"]] == [
        ("egress", "12.5", "1.00"), ("vcpu", "200", "10.00")]
    assert (new["subtotal"], new["tax"]["amount"], new["total"], new["amount_due"], new["open_balance"]) == (
        "11.00", "2.20", "13.20", "13.20", "13.20")
    old = _show(workspace, "INV-2026-000001")
    assert (old["status"], old["reissued_as"]) == ("void", "INV-2026-000002")
    assert _show(workspace, "CN-2026-000001")["reissued_as"] == "INV-2026-000002"
    assert _rows(workspace) == [("INV-2026-000001", "void", 0, None),
                                ("INV-2026-000002", "issued", 1, "INV-2026-000001")]
    # Without --reissue the period now answers with its reissue.
    assert [(r["outcome"], r["number"], r["note"]) for r in _invoice(
        workspace, "--period", "2026-11", "--account", "bonjour")] == [("already_issued", "INV-2026-000002", "")]


def test_reissuing_twice_issues_one_invoice(workspace):
    _setup(workspace)
    _issue_and_void(workspace)
    _invoice(workspace, "--period", "2026-11", "--account", "bonjour", "--reissue", "--issue-date", "2026-12-03")
    again = _invoice(workspace, "--period", "2026-11", "--account", "bonjour", "--reissue")
    assert [(r["outcome"], r["number"], r["note"]) for r in again] == [
        ("already_issued", "INV-2026-000002", "INV-2026-000002 reissued INV-2026-000001 already; it is issued, not "
                                              "void: a period is reissued once its invoice is credited in full")]
    assert len(_rows(workspace)) == 2


def test_a_voided_reissue_is_reissued_again(workspace):
    _setup(workspace)
    _issue_and_void(workspace)
    _invoice(workspace, "--period", "2026-11", "--account", "bonjour", "--reissue", "--issue-date", "2026-12-03")
    workspace.json("credit-note", "INV-2026-000002", "--reason", "wrong again", "--issue-date", "2026-12-04")
    third = _invoice(workspace, "--period", "2026-11", "--account", "bonjour", "--reissue",
                     "--issue-date", "2026-12-05")
    assert [(r["outcome"], r["number"]) for r in third] == [("issued", "INV-2026-000003")]
    assert _show(workspace, "INV-2026-000003")["replaces_credit_note"] == "CN-2026-000002"
    assert _rows(workspace) == [("INV-2026-000001", "void", 0, None), ("INV-2026-000002", "void", 1, "INV-2026-000001"),
                                ("INV-2026-000003", "issued", 2, "INV-2026-000002")]


def test_a_reissue_is_refused_when_the_periods_invoice_is_not_void(workspace):
    _setup(workspace)
    _invoice(workspace, "--period", "2026-11", "--account", "bonjour", "--issue-date", "2026-12-01")
    workspace.json("credit-note", "INV-2026-000001", "--lines", "1", "--reason", "egress", "--issue-date", "2026-12-02")
    refused = workspace.hub("invoice", "--period", "2026-11", "--account", "bonjour", "--reissue")
    assert refused.exit_code == 2
    assert ("error: bonjour: not reissued: INV-2026-000001 is issued, not void: only a period whose invoice was "
            "credited in full (hub credit-note INV-2026-000001 --reason ...) can be reissued") in refused.stderr
    # No invoice at all: plain hub invoice closes the period.
    none = workspace.hub("invoice", "--period", "2026-10", "--account", "bonjour", "--reissue")
    assert none.exit_code == 2
    assert ("error: bonjour: not reissued: 2026-10 has no invoice to reissue (it is not closed yet): hub invoice "
            "without --reissue closes a period") in none.stderr
    every = workspace.hub("invoice", "--period", "2026-11", "--reissue")
    assert every.exit_code == 2
    assert "--reissue needs --account" in every.stderr
    assert _rows(workspace) == [("INV-2026-000001", "issued", 0, None)]


def test_a_reissue_bills_what_the_period_holds_now_and_late_usage_after_it_counts_once(workspace):
    _setup(workspace)
    assert workspace.hub("charge", "add", "bonjour", "--amount", "50.00", "--description", "Setup fee").exit_code == 0
    _invoice(workspace, "--period", "2026-11", "--account", "bonjour", "--issue-date", "2026-12-01")
    assert [ln["product"] for ln in _show(workspace, "INV-2026-000001")["lines"]] == ["egress", "vcpu", "manual"]
    workspace.json("credit-note", "INV-2026-000001", "--reason", "wrong prices", "--issue-date", "2026-12-02")
    # November usage received after the invoice, and a new manual charge.
    workspace.write("usage/late.csv", HEADER + "l1,bonjour,vm-1,network.egress,2026-11-20T00:00:00Z,"
                                              "2026-11-20T00:00:00Z,25\n", dedent=False)
    assert workspace.hub("pull").exit_code == 0
    assert workspace.hub("charge", "add", "bonjour", "--amount", "5.00", "--description", "Support").exit_code == 0
    reissued = _invoice(workspace, "--period", "2026-11", "--account", "bonjour", "--reissue",
                        "--issue-date", "2026-12-03")
    # The voided invoice's manual charge was credited with it: not billed again, and said so.
    assert reissued[0]["note"] == ("reissues INV-2026-000001; the manual charges of INV-2026-000001 (Setup fee "
                                   "50.00) were credited with it and are not billed again: hub charge add bills "
                                   "one that is still owed")
    new = _show(workspace, "INV-2026-000002")
    # 37.5 GB x 0.08 = 3.00, 10.00 vCPU, 5.00 support: 18.00 + 20% 3.60 = 21.60
    assert [(ln["product"], ln["quantity"], ln["amount"], ln["adjustment_for"]) for ln in new["lines"]] == [
        ("egress", "37.5", "3.00", None), ("vcpu", "200", "10.00", None), ("manual", "1", "5.00", None)]
    assert (new["subtotal"], new["tax"]["amount"], new["total"]) == ("18.00", "3.60", "21.60")
    # Late usage after the reissue: December adjusts November against the reissue alone.
    workspace.write("usage/later.csv", HEADER + "l2,bonjour,vm-1,network.egress,2026-11-21T00:00:00Z,"
                                               "2026-11-21T00:00:00Z,10\n"
                                               "d1,bonjour,vm-1,network.egress,2026-12-02T00:00:00Z,"
                                               "2026-12-02T00:00:00Z,5\n", dedent=False)
    assert workspace.hub("pull").exit_code == 0
    config = load_config(workspace.config_path, build_host())
    engine = open_store(config.hub.database, config.base_dir)
    try:
        (december,) = closing.close_period(engine, config, parse_period("2026-12"), ["bonjour"],
                                           now=closing_close.utcnow().replace(year=2027, month=1, day=2),
                                           issue_date=date(2027, 1, 2))
    finally:
        engine.dispose()
    assert (december.outcome, december.warnings) == ("issued", ())
    doc = _show(workspace, december.number)
    assert [(ln["quantity"], ln["amount"], ln["adjustment_for"]) for ln in doc["lines"]] == [
        ("5", "0.40", None), ("10", "0.80", "2026-11")]


def test_a_crash_while_reissuing_leaves_no_gap_and_the_rerun_reissues_once(workspace, monkeypatch):
    _setup(workspace)
    _issue_and_void(workspace)
    real_save = closing_close.save

    def crash(conn, built, **kw):
        if kw["number"] is not None:
            raise RuntimeError("the machine died while reissuing")
        return real_save(conn, built, **kw)

    config = load_config(workspace.config_path, build_host())
    engine = open_store(config.hub.database, config.base_dir)
    period = parse_period("2026-11")
    try:
        monkeypatch.setattr(closing_close, "save", crash)
        with pytest.raises(RuntimeError):
            closing.close_period(engine, config, period, ["bonjour"], reissue=True, issue_date=date(2026, 12, 3))
        monkeypatch.setattr(closing_close, "save", real_save)
        assert _rows(workspace) == [("INV-2026-000001", "void", 0, None)]
        errors: list[BaseException] = []
        results: list[str] = []

        def reissue() -> None:
            own = open_store(config.hub.database, config.base_dir)
            try:
                (c,) = closing.close_period(own, config, period, ["bonjour"], reissue=True,
                                            issue_date=date(2026, 12, 3))
                results.append(c.outcome)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
            finally:
                own.dispose()

        threads = [threading.Thread(target=reissue) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert sorted(results) == ["already_issued", "already_issued", "issued"]
        with engine.connect() as conn:
            closed = conn.execute(select(invoices.c.number).join(
                period_closings, period_closings.c.invoice_id == invoices.c.id).where(
                period_closings.c.account == "bonjour", period_closings.c.period == "2026-11")).scalar()
    finally:
        engine.dispose()
    assert _rows(workspace) == [("INV-2026-000001", "void", 0, None),
                                ("INV-2026-000002", "issued", 1, "INV-2026-000001")]
    assert closed == "INV-2026-000002"  # the period's closing names its reissue


def test_a_reissue_does_not_bill_again_the_late_usage_a_later_invoice_billed_as_an_adjustment(workspace):
    _setup(workspace)
    _invoice(workspace, "--period", "2026-11", "--account", "bonjour", "--issue-date", "2026-12-01")
    # 25 GB of November arrive late; December's invoice bills them as an adjustment (2.00).
    workspace.write("usage/late.csv", HEADER + "l1,bonjour,vm-1,network.egress,2026-11-20T00:00:00Z,"
                                              "2026-11-20T00:00:00Z,25\n"
                                              "d1,bonjour,vm-1,network.egress,2026-12-02T00:00:00Z,"
                                              "2026-12-02T00:00:00Z,5\n", dedent=False)
    assert workspace.hub("pull").exit_code == 0
    config = load_config(workspace.config_path, build_host())
    engine = open_store(config.hub.database, config.base_dir)
    try:
        (december,) = closing.close_period(engine, config, parse_period("2026-12"), ["bonjour"],
                                           now=closing_close.utcnow().replace(year=2027, month=1, day=2),
                                           issue_date=date(2027, 1, 2))
    finally:
        engine.dispose()
    assert [(ln["quantity"], ln["amount"], ln["adjustment_for"]) for ln in _show(workspace, december.number)["lines"]] \
        == [("5", "0.40", None), ("25", "2.00", "2026-11")]
    workspace.json("credit-note", "INV-2026-000001", "--reason", "wrong address", "--issue-date", "2026-12-02")
    (reissued,) = _invoice(workspace, "--period", "2026-11", "--account", "bonjour", "--reissue",
                           "--issue-date", "2026-12-03")
    assert reissued["warnings"] == ["bonjour egress: 25 (2.00 EUR) of 2026-11 were billed as an adjustment on a "
                                    "later invoice; the reissue bills 12.5 (1.00 EUR)"]
    doc = _show(workspace, reissued["number"])
    # 37.5 GB now, 25 of them on December's invoice: 12.5 GB (1.00) and 10.00 of vCPU, + 20% = 13.20, as voided.
    assert [(ln["product"], ln["quantity"], ln["amount"], ln["description"]) for ln in doc["lines"]] == [
        ("egress", "12.5", "1.00", "Internet egress (less what was billed as an adjustment)"),
        ("vcpu", "200", "10.00", "Virtual CPU")]
    assert doc["total"] == "13.20"


def test_a_reissue_that_another_process_issued_after_the_check_is_not_issued_again(workspace, monkeypatch):
    """Each statement sees the latest commits: a process whose checks ran
    before another's reissue committed finds that reissue, not the voided
    invoice, and reports it."""
    _setup(workspace)
    _issue_and_void(workspace)
    _invoice(workspace, "--period", "2026-11", "--account", "bonjour", "--reissue", "--issue-date", "2026-12-03")
    real_state, calls = closing_close._state, []

    def checked_before_the_other_commit(*args, **kw):
        calls.append(1)
        return None if len(calls) <= 2 else real_state(*args, **kw)

    monkeypatch.setattr(closing_close, "_state", checked_before_the_other_commit)
    config = load_config(workspace.config_path, build_host())
    engine = open_store(config.hub.database, config.base_dir)
    try:
        (c,) = closing.close_period(engine, config, parse_period("2026-11"), ["bonjour"], reissue=True,
                                    issue_date=date(2026, 12, 3))
    finally:
        engine.dispose()
    assert (c.outcome, c.number) == ("already_issued", "INV-2026-000002")
    assert _rows(workspace) == [("INV-2026-000001", "void", 0, None),
                                ("INV-2026-000002", "issued", 1, "INV-2026-000001")]


def test_a_reissue_can_be_drafted_first_and_issuing_numbers_that_draft(workspace):
    _setup(workspace)
    _issue_and_void(workspace)
    (draft,) = _invoice(workspace, "--period", "2026-11", "--account", "bonjour", "--reissue", "--draft")
    assert (draft["outcome"], draft["number"], draft["total"]) == ("draft", None, "13.20")
    drafts = [d for d in workspace.json("invoices", "list") if d["number"] is None]
    assert [(d["period"], d["status"]) for d in drafts] == [("2026-11", "draft")]
    (issued,) = _invoice(workspace, "--period", "2026-11", "--account", "bonjour", "--reissue",
                         "--issue-date", "2026-12-03")
    assert (issued["outcome"], issued["number"]) == ("issued", "INV-2026-000002")
    assert [d["number"] for d in workspace.json("invoices", "list")] == [
        "INV-2026-000001", "CN-2026-000001", "INV-2026-000002"]
    assert _rows(workspace) == [("INV-2026-000001", "void", 0, None),
                                ("INV-2026-000002", "issued", 1, "INV-2026-000001")]
