"""The due periods with nothing to bill are closed at once (issue 23,
defect 8): an account whose ``since`` is years before its first usage gets
those months recorded closed by one set-based step
(:func:`hub.closing.empty.close_empty`), and only the periods with
something to bill are closed one by one (:func:`hub.closing.close_account`).

What a test here pins: which periods the step closed, which ones the
normal path closed (``close_account`` is watched), and which invoices were
issued with which lines. A period with anything billable (usage straddling
its start, a running record, a flat fee, a manual charge, a member's usage,
late usage of a closed period, a deferred total) must be closed by the
normal path, never by the step.

Every test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import insert, select

import hub.cli.invoices  # noqa: F401 - registers the commands for the in-process runner
from hub import due
from hub.closing import close as closing_close
from hub.closing.empty import close_empty
from hub.config import load_config
from hub.host import build_host
from hub.periods import parse_period
from hub.store.db import open_store
from hub.store.tables import period_closings
from tests.conftest import HEADER

BASE = """
[seller]
name = "Hub Cloud GmbH"
country = "DE"
vat_id = "DE136695976"

[tax.rates]
DE = "19"

[invoicing]
payment_terms_days = 14
grace = "1h"

[[meters]]
name = "compute.vcpu"
aggregation = "time_weighted"
unit = "vCPU"

[[meters]]
name = "storage.size"
aggregation = "latest"
unit = "GB"

[[products]]
name = "vcpu"
description = "Virtual CPU"
meter = "compute.vcpu"
per = "hour"
price = { model = "per_unit", unit_price = "0.05" }

[[products]]
name = "storage"
description = "Storage"
meter = "storage.size"
price = { model = "per_unit", unit_price = "0.10" }

[[products]]
name = "support"
description = "Support plan"
price = { model = "flat", amount = "9.00" }

[[sources]]
name = "files"
type = "csv"
path = "usage/*.csv"
"""

#: the clock of every close: October 2025 has ended (plus the grace), November has not
NOW = datetime(2025, 11, 5, 8, 0, tzinfo=timezone.utc)
MONTHS = [f"2025-{m:02d}" for m in range(1, 11)]


def _account(aid: str, *lines: str) -> str:
    return "\n".join(["[[accounts]]", f'id = "{aid}"', f'name = "{aid.title()}"', 'country = "DE"', *lines, ""])


def _setup(workspace, accounts: str, usage: str = HEADER):
    workspace.config(BASE + accounts)
    workspace.write("usage/usage.csv", usage, dedent=False)
    pulled = workspace.hub("pull")
    assert pulled.exit_code == 0, pulled.output
    config = load_config(workspace.config_path, build_host())
    return config, open_store(config.hub.database, config.base_dir)


@pytest.fixture
def watched(monkeypatch):
    """The (account, period) pairs :func:`hub.due.close_due` closes one by one."""
    calls: list[tuple[str, str]] = []
    real = due.close_account

    def close_account(engine, config, root, period, **kw):
        calls.append((root, str(period)))
        return real(engine, config, root, period, **kw)

    monkeypatch.setattr(due, "close_account", close_account)
    return calls


def _outcomes(closings) -> list[tuple[str, str, str]]:
    return [(c.account, str(c.period), c.outcome) for c in closings]


def _closings(engine) -> dict[tuple[str, str], bool]:
    """Every closing record: (account, period) -> whether it has an invoice."""
    with engine.connect() as conn:
        return {(a, p): i is not None for a, p, i in conn.execute(
            select(period_closings.c.account, period_closings.c.period, period_closings.c.invoice_id))}


def _lines(workspace, number: str) -> list[tuple]:
    doc = workspace.json("invoices", "show", number)
    return [(ln["account"], ln["product"], ln["quantity"], ln["amount"], ln["adjustment_for"]) for ln in doc["lines"]]


def test_the_months_before_the_first_usage_are_closed_at_once_and_the_month_of_usage_is_invoiced(workspace, watched):
    accounts = (_account("acme", 'since = "2025-01-01"') + _account("globex", 'since = "2025-06-01"')
                + _account("initech"))  # no since, no usage: nothing is due
    usage = HEADER + "a1,acme,vm-1,compute.vcpu,2025-10-10T00:00:00Z,2025-10-10T10:00:00Z,2\n"
    config, engine = _setup(workspace, accounts, usage)
    done = due.close_due(engine, config, NOW)
    assert _outcomes(done) == ([("acme", m, "no_charges") for m in MONTHS[:9]] + [("acme", "2025-10", "issued")]
                               + [("globex", m, "no_charges") for m in MONTHS[5:]])
    assert watched == [("acme", "2025-10")]  # the only one closed one by one
    assert _closings(engine) == {**{("acme", m): False for m in MONTHS[:9]}, ("acme", "2025-10"): True,
                                 **{("globex", m): False for m in MONTHS[5:]}}
    assert [(d["number"], d["period"], d["total"]) for d in workspace.json("invoices", "list")] == [
        ("INV-2025-000001", "2025-10", "1.19")]  # 20 vCPU-h x 0.05 = 1.00, 19 % VAT
    assert _lines(workspace, "INV-2025-000001") == [("acme", "vcpu", "20", "1.00", None)]
    assert due.close_due(engine, config, NOW) == []  # a rerun: nothing is due any more
    engine.dispose()


def test_usage_straddling_a_period_start_makes_it_billable(workspace, watched):
    """July has no record starting in it: the one of 30 June 22:00 to 1 July
    02:00 bills 2 h in each month; August has none."""
    usage = HEADER + "a1,acme,vm-1,compute.vcpu,2025-06-30T22:00:00Z,2025-07-01T02:00:00Z,1\n"
    config, engine = _setup(workspace, _account("acme", 'since = "2025-01-01"'), usage)
    july, august = parse_period("2025-07"), parse_period("2025-08")
    assert _outcomes(close_empty(engine, config, {"acme": [july, august]})) == [("acme", "2025-08", "no_charges")]
    done = due.close_due(engine, config, NOW)
    assert _outcomes(done) == ([("acme", m, "no_charges") for m in MONTHS[:5]]
                               + [("acme", "2025-06", "issued"), ("acme", "2025-07", "issued")]
                               + [("acme", m, "no_charges") for m in MONTHS[8:]])
    # only June and July one by one (August was closed above, the others at once)
    assert watched == [("acme", "2025-06"), ("acme", "2025-07")]
    assert _lines(workspace, "INV-2025-000001") == [("acme", "vcpu", "2", "0.10", None)]
    assert _lines(workspace, "INV-2025-000002") == [("acme", "vcpu", "2", "0.10", None)]
    engine.dispose()


def test_a_running_record_makes_every_period_after_its_start_billable(workspace, watched):
    usage = HEADER + "a1,acme,vm-1,compute.vcpu,2025-09-30T23:00:00Z,,1\n"
    config, engine = _setup(workspace, _account("acme", 'since = "2025-01-01"'), usage)
    done = due.close_due(engine, config, NOW)
    assert _outcomes(done) == ([("acme", m, "no_charges") for m in MONTHS[:8]]
                               + [("acme", "2025-09", "issued"), ("acme", "2025-10", "issued")])
    assert watched == [("acme", "2025-09"), ("acme", "2025-10")]
    # October: the running record billed to the end of the period, 31 x 24 h
    assert _lines(workspace, "INV-2025-000002") == [("acme", "vcpu", "744", "37.20", None)]
    engine.dispose()


def test_an_account_that_cannot_be_invoiced_keeps_its_periods_after_the_first_billable_one_waiting(workspace,
                                                                                                    watched):
    """No country: May's invoice is refused, so June to October wait (the
    normal path's order), and only January to April are closed at once."""
    accounts = "\n".join(["[[accounts]]", 'id = "nowhere"', 'name = "No country"', 'since = "2025-01-01"', ""])
    usage = HEADER + "n1,nowhere,vm-1,compute.vcpu,2025-05-10T00:00:00Z,2025-05-10T01:00:00Z,1\n"
    config, engine = _setup(workspace, accounts, usage)
    done = due.close_due(engine, config, NOW)
    assert _outcomes(done) == [("nowhere", m, "no_charges") for m in MONTHS[:4]] + [("nowhere", "2025-05", "failed")]
    assert "has no country" in done[-1].note
    assert watched == [("nowhere", "2025-05")]
    assert _closings(engine) == {("nowhere", m): False for m in MONTHS[:4]}
    engine.dispose()


def test_with_a_minimum_amount_only_the_periods_before_the_first_billable_one_are_closed_at_once(workspace):
    """A total below ``minimum_amount`` moves to the next period: what
    follows a billable period is the normal path's to close."""
    workspace.config(BASE.replace('grace = "1h"', 'grace = "1h"\nminimum_amount = "5.00"') + _account("acme", 'since = "2025-01-01"'))
    workspace.write("usage/usage.csv", HEADER + "a1,acme,vm-1,compute.vcpu,2025-05-10T00:00:00Z,"
                                                "2025-05-10T01:00:00Z,1\n", dedent=False)
    assert workspace.hub("pull").exit_code == 0
    config = load_config(workspace.config_path, build_host())
    engine = open_store(config.hub.database, config.base_dir)
    done = close_empty(engine, config, {"acme": [parse_period(m) for m in MONTHS]})
    assert _outcomes(done) == [("acme", m, "no_charges") for m in MONTHS[:4]]
    engine.dispose()


def test_a_latest_meters_record_counts_in_every_later_period(workspace):
    usage = HEADER + "s1,acme,disk-1,storage.size,2025-03-10T00:00:00Z,2025-03-10T00:00:00Z,50\n"
    config, engine = _setup(workspace, _account("acme", 'since = "2025-01-01"'), usage)
    assert close_empty(engine, config, {"acme": [parse_period("2025-05"), parse_period("2025-06")]}) == []
    assert _closings(engine) == {}
    assert _outcomes(close_empty(engine, config, {"acme": [parse_period(m) for m in MONTHS[:3]]})) == [
        ("acme", "2025-01", "no_charges"), ("acme", "2025-02", "no_charges")]
    engine.dispose()


def test_a_flat_fee_from_since_makes_its_periods_billable_on_a_member_too(workspace, watched):
    """The parent has no plan; its child pays the support plan from 1 April:
    January to March have nothing to bill, April on is invoiced."""
    accounts = _account("enterprise", 'since = "2025-01-01"') + "\n".join([
        "[[accounts]]", 'id = "team"', 'name = "Team"', 'parent = "enterprise"', 'plans = ["support"]',
        'since = "2025-04-01"', ""])
    config, engine = _setup(workspace, accounts)
    done = due.close_due(engine, config, NOW)
    assert _outcomes(done) == ([("enterprise", m, "no_charges") for m in MONTHS[:3]]
                               + [("enterprise", m, "issued") for m in MONTHS[3:]])
    assert watched == [("enterprise", m) for m in MONTHS[3:]]
    assert _lines(workspace, "INV-2025-000001") == [("team", "support", "1", "9.00", None)]
    engine.dispose()


def test_a_flat_fee_without_since_makes_every_period_billable(workspace, watched):
    config, engine = _setup(workspace, _account("acme", 'since = "2025-08-01"', 'plans = ["support"]'))
    assert _outcomes(due.close_due(engine, config, NOW)) == [("acme", m, "issued") for m in MONTHS[7:]]
    assert watched == [("acme", m) for m in MONTHS[7:]]
    engine.dispose()


def test_a_manual_charge_waiting_is_billed_on_the_first_due_period(workspace, watched):
    config, engine = _setup(workspace, _account("acme", 'since = "2025-07-01"'))
    added = workspace.hub("charge", "add", "acme", "--amount", "150.00", "--description", "Setup")
    assert added.exit_code == 0, added.output
    done = due.close_due(engine, config, NOW)
    assert _outcomes(done) == [("acme", "2025-07", "issued")] + [("acme", m, "no_charges") for m in MONTHS[7:]]
    assert watched == [("acme", m) for m in MONTHS[6:]]  # all of them the normal way
    assert _lines(workspace, "INV-2025-000001") == [("acme", "manual", "1", "150.00", None)]
    engine.dispose()


def test_a_members_usage_is_billed_on_its_parents_invoice(workspace, watched):
    accounts = _account("enterprise", 'since = "2025-01-01"') + "\n".join([
        "[[accounts]]", 'id = "team"', 'name = "Team"', 'parent = "enterprise"', ""])
    usage = HEADER + "t1,team,vm-1,compute.vcpu,2025-08-10T00:00:00Z,2025-08-10T04:00:00Z,1\n"
    config, engine = _setup(workspace, accounts, usage)
    done = due.close_due(engine, config, NOW)
    assert _outcomes(done) == ([("enterprise", m, "no_charges") for m in MONTHS[:7]]
                               + [("enterprise", "2025-08", "issued")]
                               + [("enterprise", m, "no_charges") for m in MONTHS[8:]])
    assert watched == [("enterprise", "2025-08")]  # September and October too are closed at once
    assert _lines(workspace, "INV-2025-000001") == [("team", "vcpu", "4", "0.20", None)]
    engine.dispose()


def test_late_usage_of_a_closed_period_is_billed_on_the_next_invoice(workspace, watched):
    """January was closed with nothing to bill; usage for it arrives later:
    the next due period (February) carries its adjustment, so the step
    leaves the account to the normal path."""
    config, engine = _setup(workspace, _account("acme", 'since = "2025-01-01"'))
    assert workspace.json("invoice", "--period", "2025-01")[0]["outcome"] == "no_charges"
    workspace.write("usage/late.csv", HEADER + "l1,acme,vm-1,compute.vcpu,2025-01-10T00:00:00Z,"
                                               "2025-01-10T10:00:00Z,1\n", dedent=False)
    assert workspace.hub("pull").exit_code == 0
    done = due.close_due(engine, config, NOW)
    assert _outcomes(done) == [("acme", "2025-02", "issued")] + [("acme", m, "no_charges") for m in MONTHS[2:]]
    assert watched == [("acme", m) for m in MONTHS[1:]]
    assert _lines(workspace, "INV-2025-000001") == [("acme", "vcpu", "10", "0.50", "2025-01")]
    engine.dispose()


def test_a_deferred_total_not_carried_yet_leaves_the_account_to_the_normal_path(workspace):
    config, engine = _setup(workspace, _account("acme", 'since = "2025-01-01"') + _account("globex", 'since = "2025-01-01"'))
    with engine.begin() as conn:
        conn.execute(insert(period_closings).values(account="acme", period="2024-12", closed_at=NOW, invoice_id=None,
                                                    deferred="3.00", carried_to=None))
    assert _outcomes(close_empty(engine, config, {r: [parse_period("2025-01")] for r in ("acme", "globex")})) == [
        ("globex", "2025-01", "no_charges")]
    engine.dispose()


def test_closing_at_once_twice_or_beside_another_closer_writes_each_period_once(workspace):
    config, engine = _setup(workspace, _account("acme", 'since = "2025-01-01"'))
    periods = [parse_period(m) for m in MONTHS[:4]]
    # another process closed February meanwhile (the normal path: nothing to bill)
    assert closing_close.close_account(engine, config, "acme", periods[1], now=NOW).outcome == "no_charges"
    first = close_empty(engine, config, {"acme": periods})
    assert _outcomes(first) == [("acme", m, "no_charges") for m in ("2025-01", "2025-03", "2025-04")]
    assert close_empty(engine, config, {"acme": periods}) == []  # a rerun writes nothing, fails nothing
    assert _closings(engine) == {("acme", m): False for m in MONTHS[:4]}
    # what the normal path says afterwards of a period closed at once
    assert closing_close.close_account(engine, config, "acme", periods[0], now=NOW).outcome == "no_charges"
    engine.dispose()


def test_usage_received_after_the_step_closed_a_period_is_an_adjustment(workspace):
    config, engine = _setup(workspace, _account("acme", 'since = "2025-01-01"'))
    assert len(close_empty(engine, config, {"acme": [parse_period("2025-03")]})) == 1
    workspace.write("usage/late.csv", HEADER + "l1,acme,vm-1,compute.vcpu,2025-03-10T00:00:00Z,"
                                               "2025-03-10T02:00:00Z,1\n", dedent=False)
    assert workspace.hub("pull").exit_code == 0
    assert workspace.json("invoice", "--period", "2025-04", "--issue-date", "2025-05-02")[0]["number"] == \
        "INV-2025-000001"
    assert _lines(workspace, "INV-2025-000001") == [("acme", "vcpu", "2", "0.10", "2025-03")]
    engine.dispose()


def test_three_processes_closing_at_once_close_each_period_once_and_issue_each_invoice_once(workspace):
    import threading

    accounts = _account("acme", 'since = "2025-01-01"') + _account("globex", 'since = "2025-03-01"')
    usage = HEADER + "a1,acme,vm-1,compute.vcpu,2025-10-10T00:00:00Z,2025-10-10T10:00:00Z,2\n"
    config, engine = _setup(workspace, accounts, usage)
    engine.dispose()
    start = threading.Barrier(3)
    results: list[list] = []
    errors: list[BaseException] = []

    def run() -> None:
        own = open_store(config.hub.database, config.base_dir)
        try:
            start.wait()
            results.append(due.close_due(own, config, NOW))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            own.dispose()

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert [c for r in results for c in r if c.outcome not in ("issued", "already_issued", "no_charges")] == []
    assert sorted(c.number for r in results for c in r if c.outcome == "issued") == ["INV-2025-000001"]
    engine = open_store(config.hub.database, config.base_dir)
    assert _closings(engine) == {**{("acme", m): m == "2025-10" for m in MONTHS},
                                 **{("globex", m): False for m in MONTHS[2:]}}
    assert [(d["number"], d["account"]) for d in workspace.json("invoices", "list")] == [("INV-2025-000001", "acme")]
    engine.dispose()
