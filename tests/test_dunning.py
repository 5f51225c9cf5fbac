"""Reminders of overdue invoices (``[dunning] after_days``): one
``invoice.overdue`` event per invoice and step, delivered through the
outbox to every exporter that takes it, never twice for a step (the same
day, the next day, or two runs at once), the latest step only when several
are due at once, none once paid or credited to 0; ``hub dunning`` by hand
and a job of ``hub run``. The exporters here are small in-process plugins
registered like a third party's; the e-mail and webhook reminders have
their own tests (tests/test_email_exporter.py, tests/test_webhook_exporter.py).

The invoices of October 2025 are issued on 2025-11-03 with 14 days' terms:
due on 2025-11-17, so step 7 is due on 2025-11-24, step 14 on 2025-12-01
and step 30 on 2025-12-17.
"""

from __future__ import annotations

import importlib.metadata as md
import json
import threading
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from hub.app import Hub
from hub.hookspecs import ENTRY_POINT_GROUP, hookimpl
from hub.host import Host, build_host
from hub.outbox import delivery_key
from hub.plugin_types import Delivery, ExporterType
from tests.test_invoices import ACCOUNTS, BASE, OCTOBER
from tests.test_render_host import FAKES as FAKE_RENDERERS

#: what the fake targets received: (exporter, key, event, occasion, number, reminder)
SENT: list[tuple] = []
#: what the hub_invoice_overdue hook was told: (number, status, reminder)
TOLD: list[tuple] = []

DUE = "2025-11-17"
ACME, GLOBEX, INITECH, UMBRELLA, CHARITY = (f"INV-2025-00000{i}" for i in range(1, 6))


class Fake:
    def __init__(self, config: Any) -> None:
        self.name = config.name
        self.formats = ()

    def deliver(self, delivery: Delivery) -> str:
        SENT.append((self.name, delivery.key, delivery.event, delivery.occasion, delivery.invoice["number"],
                     dict(delivery.reminder) if delivery.reminder is not None else None))
        return f"ext-{delivery.key}"


class Plugin:
    @hookimpl
    def hub_register_exporter_types(self) -> list[ExporterType]:
        return [ExporterType(name="fake", description="records what it is sent", config_schema={"type": "object"},
                             factory=Fake, events=("invoice.issued", "credit_note.issued", "invoice.paid",
                                                   "invoice.overdue"))]

    @hookimpl
    def hub_invoice_overdue(self, invoice: dict, reminder: dict) -> None:
        TOLD.append((invoice["number"], invoice["status"], reminder))


def fake_host() -> Host:
    csv = [ep for ep in md.entry_points(group=ENTRY_POINT_GROUP) if ep.name == "csv"]
    return build_host(csv, extra_plugins=[("fake_exporters", Plugin()), ("fake_renderers", FAKE_RENDERERS)])


@pytest.fixture(autouse=True)
def _fakes(monkeypatch):
    import hub.cli.base

    monkeypatch.setattr(hub.cli.base, "build_host", fake_host)
    SENT.clear()
    TOLD.clear()


#: crm takes every event; erp only issued invoices (so no reminder)
EXPORTERS = """
[[exporters]]
name = "crm"
type = "fake"

[[exporters]]
name = "ledger"
type = "fake"
accounts = ["acme", "globex"]
events = ["invoice.overdue"]

[[exporters]]
name = "erp"
type = "fake"
events = ["invoice.issued"]
"""

DUNNING = """
[dunning]
after_days = [7, 14, 30]
"""


def _issue(workspace, dunning: str = DUNNING, exporters: str = EXPORTERS) -> None:
    workspace.config(BASE + ACCOUNTS + exporters + dunning)
    workspace.write("usage/2025-10.csv", OCTOBER, dedent=False)
    assert workspace.hub("pull").exit_code == 0
    issued = workspace.hub("invoice", "--period", "2025-10", "--issue-date", "2025-11-03")
    assert issued.exit_code == 0, issued.output
    delivered = workspace.hub("deliver")  # the invoice.issued ones, out of the way
    assert delivered.exit_code == 0, delivered.output
    SENT.clear()


def _dunning(workspace, as_of: str) -> list[dict]:
    return workspace.json("dunning", "--as-of", as_of)


def _overdue(workspace) -> list[tuple]:
    return [(d["number"], d["exporter"], d["occasion"], d["status"]) for d in workspace.json("deliveries")
            if d["event"] == "invoice.overdue"]


def _reminder(number: str, account: str, step: int, as_of: str, balance: str, deliveries: int,
              passed: tuple[int, ...] = ()) -> dict:
    return {"number": number, "account": account, "step": step, "as_of": as_of, "due_date": DUE,
            "days_overdue": (date.fromisoformat(as_of) - date.fromisoformat(DUE)).days, "open_balance": balance,
            "currency": "EUR", "deliveries": deliveries, "passed": list(passed)}


def _totals(workspace) -> dict[str, str]:
    return {d["number"]: d["open_balance"] for d in workspace.json("invoices", "list") if d["kind"] == "invoice"}


def test_an_invoice_7_days_past_due_gets_one_overdue_delivery_per_exporter_that_takes_the_event(workspace):
    _issue(workspace)
    assert _dunning(workspace, "2025-11-23") == []  # 6 days past due: nothing yet
    assert _overdue(workspace) == []
    balances = _totals(workspace)
    assert balances == {ACME: "13.09", GLOBEX: "1.20", INITECH: "2.00", UMBRELLA: "0.61", CHARITY: "1.00"}
    assert _dunning(workspace, "2025-11-24") == [
        _reminder(ACME, "acme", 7, "2025-11-24", "13.09", 2), _reminder(GLOBEX, "globex", 7, "2025-11-24", "1.20", 2),
        _reminder(INITECH, "initech", 7, "2025-11-24", "2.00", 1),
        _reminder(UMBRELLA, "umbrella", 7, "2025-11-24", "0.61", 1),
        _reminder(CHARITY, "charity", 7, "2025-11-24", "1.00", 1)]
    assert _overdue(workspace) == [
        (ACME, "crm", "overdue:7", "pending"), (ACME, "ledger", "overdue:7", "pending"),
        (GLOBEX, "crm", "overdue:7", "pending"), (GLOBEX, "ledger", "overdue:7", "pending"),
        (INITECH, "crm", "overdue:7", "pending"), (UMBRELLA, "crm", "overdue:7", "pending"),
        (CHARITY, "crm", "overdue:7", "pending")]
    rows = {(d["number"], d["exporter"]): d for d in workspace.json("deliveries") if d["event"] == "invoice.overdue"}
    assert rows[(ACME, "crm")]["key"] == delivery_key(ACME, "crm", "invoice.overdue", "overdue:7")
    assert rows[(ACME, "crm")]["key"] != delivery_key(ACME, "crm", "invoice.overdue", "overdue:14")
    assert rows[(ACME, "crm")]["key"] != delivery_key(ACME, "crm", "invoice.overdue")

    result = workspace.hub("deliver")
    assert result.stdout.strip() == "deliver: 7 delivered", result.output
    acme_crm = next(s for s in SENT if s[0] == "crm" and s[4] == ACME)
    assert acme_crm == ("crm", delivery_key(ACME, "crm", "invoice.overdue", "overdue:7"), "invoice.overdue",
                        "overdue:7", ACME, {"step": 7, "as_of": "2025-11-24", "due_date": DUE, "days_overdue": 7,
                                            "open_balance": "13.09", "currency": "EUR"})
    # the plugins were told, once per reminder, after the fact
    assert [(n, s, r["step"], r["days_overdue"], r["open_balance"]) for n, s, r in TOLD] == [
        (ACME, "issued", 7, 7, "13.09"), (GLOBEX, "issued", 7, 7, "1.20"), (INITECH, "issued", 7, 7, "2.00"),
        (UMBRELLA, "issued", 7, 7, "0.61"), (CHARITY, "issued", 7, 7, "1.00")]


def test_running_dunning_twice_on_the_same_day_or_the_next_sends_nothing_more(workspace):
    _issue(workspace)
    assert len(_dunning(workspace, "2025-11-24")) == 5
    assert _dunning(workspace, "2025-11-24") == []
    assert _dunning(workspace, "2025-11-25") == []
    assert _dunning(workspace, "2025-11-30") == []
    assert len(_overdue(workspace)) == 7
    result = workspace.hub("dunning", "--as-of", "2025-11-24")
    assert (result.exit_code, result.stdout) == (0, "dunning: nothing due\n")
    assert workspace.hub("deliver").stdout.strip() == "deliver: 7 delivered"
    assert _dunning(workspace, "2025-11-24") == []
    assert workspace.hub("deliver").stdout.strip() == "deliver: nothing due"
    assert len(TOLD) == 5


def test_step_14_is_sent_on_day_14_and_step_30_on_day_30(workspace):
    _issue(workspace, exporters=EXPORTERS.split("[[exporters]]\nname = \"ledger\"")[0])
    assert [r["step"] for r in _dunning(workspace, "2025-11-24")] == [7] * 5
    assert _dunning(workspace, "2025-11-30") == []  # 13 days
    assert _dunning(workspace, "2025-12-01")[0] == _reminder(ACME, "acme", 14, "2025-12-01", "13.09", 1)
    assert _dunning(workspace, "2025-12-16") == []
    assert [(r["number"], r["step"], r["days_overdue"]) for r in _dunning(workspace, "2025-12-17")][:2] == [
        (ACME, 30, 30), (GLOBEX, 30, 30)]
    assert _dunning(workspace, "2026-03-01") == []  # no step after 30
    assert [(n, o) for n, _e, o, _s in _overdue(workspace) if n == ACME] == [
        (ACME, "overdue:7"), (ACME, "overdue:14"), (ACME, "overdue:30")]
    assert workspace.hub("deliver").stdout.strip() == "deliver: 15 delivered"
    assert sorted({s[1] for s in SENT if s[4] == ACME}) == sorted(
        delivery_key(ACME, "crm", "invoice.overdue", f"overdue:{step}") for step in (7, 14, 30))


def test_when_several_steps_are_due_at_once_only_the_latest_is_sent_and_the_earlier_are_passed_over(workspace):
    _issue(workspace, exporters=EXPORTERS.split("[[exporters]]\nname = \"ledger\"")[0])
    # the hub was down from before day 7 to day 20: one reminder, step 14, not two
    first = _dunning(workspace, "2025-12-07")
    assert first[0] == _reminder(ACME, "acme", 14, "2025-12-07", "13.09", 1, passed=(7,))
    assert [r["step"] for r in first] == [14] * 5
    assert _dunning(workspace, "2025-12-08") == []  # step 7 is never sent late
    assert [o for n, _e, o, _s in _overdue(workspace) if n == ACME] == ["overdue:14"]
    result = workspace.hub("dunning", "--as-of", "2025-12-17")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "2025-12-17: 5 reminders recorded, 5 deliveries queued"
    assert lines[2].split() == [ACME, "acme", "30", "days", DUE, "30", "13.09", "EUR", "1"]
    assert lines[-1] == "hub deliver (or hub run) sends them"


def test_a_paid_invoice_and_a_fully_credited_one_get_no_reminder_and_a_partly_paid_one_its_open_balance(workspace):
    _issue(workspace, exporters=EXPORTERS.split("[[exporters]]\nname = \"ledger\"")[0])
    paid = workspace.hub("invoices", "pay", GLOBEX, "--amount", "1.20", "--date", "2025-11-20")
    assert paid.exit_code == 0, paid.output
    credited = workspace.hub("credit-note", INITECH, "--reason", "goodwill", "--issue-date", "2025-11-20")
    assert credited.exit_code == 0, credited.output
    part = workspace.hub("invoices", "pay", ACME, "--amount", "10.00", "--date", "2025-11-20")
    assert part.exit_code == 0, part.output
    assert _totals(workspace) == {
        ACME: "3.09", GLOBEX: "0.00", INITECH: "0.00", UMBRELLA: "0.61", CHARITY: "1.00"}
    reminded = _dunning(workspace, "2025-11-24")
    assert [(r["number"], r["step"], r["open_balance"]) for r in reminded] == [
        (ACME, 7, "3.09"), (UMBRELLA, 7, "0.61"), (CHARITY, 7, "1.00")]
    # paid after its first reminder: no second one
    assert workspace.hub("invoices", "pay", UMBRELLA, "--amount", "0.61", "--date", "2025-11-25").exit_code == 0
    assert [r["number"] for r in _dunning(workspace, "2025-12-01")] == [ACME, CHARITY]
    assert [(n, o) for n, _e, o, _s in _overdue(workspace)] == [
        (ACME, "overdue:7"), (UMBRELLA, "overdue:7"), (CHARITY, "overdue:7"), (ACME, "overdue:14"),
        (CHARITY, "overdue:14")]


def test_two_runs_at_once_record_each_reminder_and_queue_its_deliveries_once(workspace):
    _issue(workspace)
    hubs = [Hub.open(workspace.config_path, host=fake_host()) for _ in range(4)]
    start = threading.Barrier(len(hubs))
    results: list[list] = []

    def run(hub: Hub) -> None:
        start.wait()
        results.append(hub.dunning(date(2025, 11, 24)))

    threads = [threading.Thread(target=run, args=(h,)) for h in hubs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for h in hubs:
        h.engine.dispose()
    assert sorted(r.number for rs in results for r in rs) == [ACME, GLOBEX, INITECH, UMBRELLA, CHARITY]
    assert len(_overdue(workspace)) == 7
    assert len(TOLD) == 5


def test_hub_run_once_sends_the_reminder_due_today_then_none_again(workspace):
    _issue(workspace, exporters=EXPORTERS.split("[[exporters]]\nname = \"ledger\"")[0])
    result = workspace.hub("run", "--once")
    assert result.exit_code == 0, result.output
    # today is long after 2025-12-17: the latest step, 30, for each
    assert [(n, o, s) for n, _e, o, s in _overdue(workspace)] == [
        (number, "overdue:30", "delivered") for number in (ACME, GLOBEX, INITECH, UMBRELLA, CHARITY)]
    assert [(s[4], s[3]) for s in SENT] == [(n, "overdue:30") for n in (ACME, GLOBEX, INITECH, UMBRELLA, CHARITY)]
    again = workspace.hub("run", "--once")
    assert again.exit_code == 0, again.output
    assert len(_overdue(workspace)) == 5


def test_the_dunning_line_of_hub_run_says_what_was_reminded(workspace):
    from hub.scheduler import dunning_line

    _issue(workspace, exporters=EXPORTERS.split("[[exporters]]\nname = \"ledger\"")[0])
    hub = Hub.open(workspace.config_path, host=fake_host())
    try:
        reminders = hub.dunning(date(2025, 11, 24))
        assert dunning_line(reminders[:2]) == (
            "dunning: 2 reminders recorded (INV-2025-000001 acme step 7, 7 days overdue, 13.09 EUR open, "
            "INV-2025-000002 globex step 7, 7 days overdue, 1.20 EUR open), 2 deliveries queued")
        assert dunning_line(reminders[:1]) == (
            "dunning: 1 reminder recorded (INV-2025-000001 acme step 7, 7 days overdue, 13.09 EUR open), "
            "1 delivery queued")
        assert dunning_line([]) == "dunning: nothing due"
    finally:
        hub.engine.dispose()


def test_a_day_in_the_future_is_refused_and_without_steps_nothing_is_reminded(workspace):
    _issue(workspace, dunning="")
    result = workspace.hub("dunning")
    assert (result.exit_code, result.stdout) == (
        0, "no reminder steps: set [dunning] after_days = [7, 14, 30] in hub.toml\n")
    assert _overdue(workspace) == []
    workspace.append("hub.toml", DUNNING)
    future = (date.today() + timedelta(days=3)).isoformat()
    result = workspace.hub("dunning", "--as-of", future)
    assert result.exit_code == 2
    assert f"--as-of {future} is in the future" in result.stderr
    assert _overdue(workspace) == []
    bad = workspace.hub("dunning", "--as-of", "2025-11-31")
    assert bad.exit_code == 2
    assert "--as-of: '2025-11-31' is an impossible date: November 2025 has 30 days" in bad.stderr


def test_the_start_up_lines_of_hub_run_say_first_run_now_or_when_the_next_run_is():
    from hub.cli.run import _when

    now = datetime(2026, 12, 8, 0, 30, tzinfo=timezone.utc)
    assert _when(now, now) == "first run now"
    assert _when(now - timedelta(seconds=5), now) == "first run now"
    assert _when(now + timedelta(minutes=5), now) == "next run at 2026-12-08T00:35:00+00:00"


def test_invoice_overdue_is_a_known_event_that_hub_toml_may_name():
    from hub.plugin import EVENTS

    assert EVENTS == ("invoice.issued", "credit_note.issued", "invoice.paid", "invoice.overdue")
    schema = json.loads((Path(__file__).parent.parent / "schemas" / "hub.schema.json").read_text("utf-8"))
    assert "invoice.overdue" in json.dumps(schema)


def test_hub_run_schedules_the_dunning_job_hourly_only_when_steps_are_set(workspace):
    from hub import scheduler as sched
    from hub.config import load_config

    def jobs() -> dict[str, float]:
        config = load_config(workspace.config_path, fake_host())
        store = sched.make_jobstore(config)
        scheduler = sched.make_scheduler("background")
        scheduler.add_jobstore(store, "default")
        later = datetime.now(timezone.utc) + timedelta(days=1)
        first = sched.schedule_jobs(scheduler, store, str(workspace.config_path), config, now=later)
        scheduler.start(paused=True)
        found = {j.id: j.trigger.interval.total_seconds() for j in scheduler.get_jobs()}
        scheduler.shutdown()
        store.engine.dispose()
        assert set(first) == set(found)
        return found

    _issue(workspace)
    assert jobs() == {"pull:files": 300, "close": 60, "dunning": 3600, "deliver": 30}
    workspace.config(BASE + ACCOUNTS + EXPORTERS)  # [dunning] removed: so is its job
    assert jobs() == {"pull:files": 300, "close": 60, "deliver": 30}


def test_a_reminder_whose_invoice_was_paid_before_it_left_is_cancelled_not_sent(workspace):
    _issue(workspace, exporters=EXPORTERS.split("[[exporters]]\nname = \"ledger\"")[0])
    assert len(_dunning(workspace, "2025-11-24")) == 5
    # paid (and credited to 0) while the reminders waited, say for a target that was down
    assert workspace.hub("invoices", "pay", ACME, "--amount", "13.09", "--date", "2025-11-24").exit_code == 0
    assert workspace.hub("credit-note", GLOBEX, "--reason", "goodwill", "--issue-date", "2025-11-24").exit_code == 0
    result = workspace.hub("deliver")
    assert result.exit_code == 0, result.output
    assert [(s[2], s[4]) for s in SENT if s[2] == "invoice.overdue"] == [
        ("invoice.overdue", INITECH), ("invoice.overdue", UMBRELLA), ("invoice.overdue", CHARITY)]
    rows = [d for d in workspace.json("deliveries") if d["event"] == "invoice.overdue"]
    assert [(d["number"], d["status"], d["last_error"]) for d in rows][:2] == [
        (ACME, "cancelled", f"not sent: {ACME} was settled after the reminder was queued (paid, open balance 0.00)"),
        (GLOBEX, "cancelled", f"not sent: {GLOBEX} was settled after the reminder was queued (void, open balance "
                              f"0.00)")]
    assert [d["number"] for d in workspace.json("deliveries", "--status", "cancelled")] == [ACME, GLOBEX]
    assert workspace.hub("deliver").stdout.strip() == "deliver: nothing due"
