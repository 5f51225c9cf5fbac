"""The scheduler (``hub run``, issue #4): which periods are due, closing
them once even from two processes, ``hub run --once`` end to end, and the
APScheduler jobs persisted in the store's database (a real scheduler, no
mocks).

Every test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import threading
import time
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import insert

import hub.cli.invoices  # noqa: F401 - registers the commands for the in-process runner
import hub.cli.run  # noqa: F401
from hub import due
from hub import scheduler as sched
from hub.config import load_config
from hub.host import build_host
from hub import closing, invoices
from hub.periods import parse_period, period_of
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
FR = "20"

[invoicing]
payment_terms_days = 14
grace = "1h"

[[meters]]
name = "compute.vcpu"
aggregation = "time_weighted"
unit = "vCPU"

[[products]]
name = "vcpu"
description = "Virtual CPU"
meter = "compute.vcpu"
per = "hour"
price = { model = "per_unit", unit_price = "0.05" }

[[sources]]
name = "files"
type = "csv"
path = "usage/*.csv"
"""

ACCOUNTS = """
[[accounts]]
id = "acme"
name = "ACME GmbH"
country = "DE"

[[accounts]]
id = "globex"
name = "Globex SARL"
country = "FR"
vat_id = "FR40303265045"
timezone = "Europe/Paris"

[[accounts]]
id = "initech"
name = "Initech Inc."
country = "DE"
"""

# October 2025: acme 200 vCPU-h (10.00), globex 24 vCPU-h (1.20), initech 40 vCPU-h (2.00)
OCTOBER = HEADER + "".join([
    "a1,acme,vm-1,compute.vcpu,2025-10-10T00:00:00Z,2025-10-14T04:00:00Z,2\n",
    "g1,globex,vm-2,compute.vcpu,2025-10-10T00:00:00Z,2025-10-11T00:00:00Z,1\n",
    "i1,initech,vm-3,compute.vcpu,2025-10-10T00:00:00Z,2025-10-10T10:00:00Z,4\n",
])


def _setup(workspace, accounts: str = ACCOUNTS, usage: str = OCTOBER, extra: str = ""):
    workspace.config(BASE + accounts + extra)
    workspace.write("usage/2025-10.csv", usage, dedent=False)
    pulled = workspace.hub("pull")
    assert pulled.exit_code == 0, pulled.output
    return load_config(workspace.config_path, build_host())


@pytest.fixture(autouse=True)
def _no_cached_engines():
    yield
    sched.dispose_engines()


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(timezone.utc)


def _periods(*labels: str):
    return [parse_period(p) for p in labels]


# --------------------------------------------------------------------------
# Which periods are due

SCHEDULES = """
[[accounts]]
id = "m"
name = "Monthly in New York"
country = "US"
timezone = "America/New_York"

[[accounts]]
id = "w"
name = "Weekly in Tokyo, since a Monday morning there (a Sunday in UTC)"
country = "DE"
timezone = "Asia/Tokyo"
schedule = "weekly"
since = "2025-11-16T16:00:00Z"

[[accounts]]
id = "d"
name = "Daily in New York"
country = "US"
timezone = "America/New_York"
schedule = "daily"

[[accounts]]
id = "d-child"
name = "A project of d, billed in d's time zone and schedule"
parent = "d"

[[accounts]]
id = "idle"
name = "No usage, no since"
country = "DE"
schedule = "daily"
"""

# m: 2025-10-01T02:00Z is still September 30 in New York.
# w: usage before its `since` does not count.
# d: its child's usage starts first: 2025-11-28T03:00Z is November 27 in New York.
SCHEDULE_USAGE = HEADER + "".join([
    "m1,m,vm-1,compute.vcpu,2025-10-01T02:00:00Z,2025-10-01T03:00:00Z,1\n",
    "w1,w,vm-2,compute.vcpu,2025-09-01T00:00:00Z,2025-09-01T01:00:00Z,1\n",
    "d1,d,vm-3,compute.vcpu,2025-11-29T12:00:00Z,2025-11-29T13:00:00Z,1\n",
    "c1,d-child,vm-4,compute.vcpu,2025-11-28T03:00:00Z,2025-11-28T04:00:00Z,1\n",
])


def test_due_periods_follow_each_schedule_in_the_account_time_zone_with_the_grace(workspace):
    config = _setup(workspace, accounts=SCHEDULES, usage=SCHEDULE_USAGE)
    engine = open_store(config.hub.database, config.base_dir)
    # 05:30Z on December 1 is 00:30 in New York (EST): November has ended
    # there, but not its hour of grace (until 06:00Z).
    now = _at("2025-12-01T05:30:00Z")
    assert due.due_periods(engine, config, "m", now) == _periods("2025-09", "2025-10")
    # Weeks end at Monday 00:00 in Tokyo = Sunday 15:00Z; W48 (to December 1)
    # ended with its grace at 16:00Z on November 30.
    assert due.due_periods(engine, config, "w", now) == _periods("2025-W47", "2025-W48")
    # November 30 ends at 05:00Z on December 1 in New York, plus the grace: 06:00Z.
    assert due.due_periods(engine, config, "d", now) == _periods("2025-11-27", "2025-11-28", "2025-11-29")
    assert due.due_periods(engine, config, "idle", now) == []

    later = _at("2025-12-01T06:00:00Z")
    assert due.due_periods(engine, config, "m", later) == _periods("2025-09", "2025-10", "2025-11")
    assert due.due_periods(engine, config, "d", later)[-1] == parse_period("2025-11-30")
    assert due.due_periods(engine, config, "w", _at("2025-11-30T15:59:59Z")) == _periods("2025-W47")
    assert due.due_periods(engine, config, "w", _at("2025-11-23T15:59:59Z")) == []

    # Closed periods are not due again; nor is a week overlapping a month
    # the account was billed for before it moved to a weekly schedule.
    with engine.begin() as conn:
        conn.execute(insert(period_closings), [
            dict(account="d", period="2025-11-28", closed_at=now, invoice_id=None),
            dict(account="w", period="2025-11", closed_at=now, invoice_id=None),
        ])
    assert due.due_periods(engine, config, "d", now) == _periods("2025-11-27", "2025-11-29")
    assert due.due_periods(engine, config, "w", now) == []
    engine.dispose()


def test_a_child_ends_its_parents_period_in_the_parents_time_zone(workspace):
    """A parent in Tokyo invoices a child that sets no time zone: the child
    is billed in Tokyo's time zone (it may not set another), so October
    ends for both at 2025-10-31T15:00Z and the child's running record is
    billed to that end."""
    accounts = """
[[accounts]]
id = "tokyo"
name = "Tokyo KK"
country = "DE"
timezone = "Asia/Tokyo"

[[accounts]]
id = "team"
name = "A team of Tokyo KK"
parent = "tokyo"
"""
    usage = HEADER + "n1,team,vm-1,compute.vcpu,2025-10-31T00:00:00Z,,1\n"
    config = _setup(workspace, accounts=accounts, usage=usage)
    assert config.accounts["team"].timezone == "Asia/Tokyo"
    engine = open_store(config.hub.database, config.base_dir)
    # Tokyo's October ended at 2025-10-31T15:00Z; grace 1h
    assert due.due_periods(engine, config, "tokyo", _at("2025-10-31T15:59:59Z")) == []
    assert closing.period_ended(config, "tokyo", parse_period("2025-10"), _at("2025-10-31T15:00:00Z")) == \
        _at("2025-10-31T16:00:00Z")
    (done,) = due.close_due(engine, config, _at("2025-10-31T16:00:00Z"))
    assert (done.account, str(done.period), done.outcome) == ("tokyo", "2025-10", "issued")
    doc = workspace.json("invoices", "show", done.number)
    # the running record billed to Tokyo's end of October: 2025-10-31T00:00Z to 15:00Z = 15 h at 0.05
    assert [(x["account"], x["quantity"], x["amount"]) for x in doc["lines"]] == [("team", "15", "0.75")]
    engine.dispose()


def test_invoices_closed_in_one_run_are_dated_in_the_hubs_time_zone_so_dates_follow_numbers(workspace):
    """At 2025-12-01T02:00Z Tokyo's 30 November and Los Angeles' 29 November
    are due: each account's own "today" would date Tokyo's invoice 1
    December and the next one, Los Angeles', 30 November. Dated in the
    hub's time zone (UTC), both are 2025-12-01, in number order."""
    accounts = """
[[accounts]]
id = "tokyo"
name = "Tokyo KK"
country = "DE"
timezone = "Asia/Tokyo"
schedule = "daily"

[[accounts]]
id = "la"
name = "LA Inc"
country = "DE"
timezone = "America/Los_Angeles"
schedule = "daily"
"""
    usage = HEADER + ("t1,tokyo,vm-1,compute.vcpu,2025-11-30T01:00:00Z,2025-11-30T02:00:00Z,1\n"
                      "l1,la,vm-2,compute.vcpu,2025-11-29T20:00:00Z,2025-11-29T21:00:00Z,1\n")
    config = _setup(workspace, accounts=accounts, usage=usage)
    engine = open_store(config.hub.database, config.base_dir)
    done = due.close_due(engine, config, _at("2025-12-01T02:00:00Z"))
    assert [(c.account, str(c.period), c.outcome, c.number) for c in done] == [
        ("tokyo", "2025-11-30", "issued", "INV-2025-000001"), ("la", "2025-11-29", "issued", "INV-2025-000002")]
    assert [workspace.json("invoices", "show", c.number)["issue_date"] for c in done] == ["2025-12-01", "2025-12-01"]
    engine.dispose()


def test_period_of_builds_the_period_holding_a_date():
    assert period_of("monthly", date(2025, 12, 31)) == parse_period("2025-12")
    assert period_of("weekly", date(2025, 12, 29)) == parse_period("2026-W01")  # ISO year 2026
    assert period_of("weekly", date(2027, 1, 3)) == parse_period("2026-W53")
    assert period_of("daily", date(2024, 2, 29)) == parse_period("2024-02-29")
    with pytest.raises(ValueError):
        period_of("yearly", date(2025, 1, 1))


# --------------------------------------------------------------------------
# Closing what is due


def test_close_due_finds_due_periods_in_two_statements_whatever_the_number_of_accounts(workspace):
    """The close job runs every minute: the earliest usage of every account
    (one search of the account index each, no scan of usage_records) and
    every closed period are read once, not once per account."""
    from sqlalchemy import event

    accounts = "".join(f'\n[[accounts]]\nid = "a{i:02d}"\nname = "A{i:02d}"\ncountry = "DE"\n' for i in range(30))
    usage = HEADER + "".join(f"r{i},a{i:02d},vm-{i},compute.vcpu,2025-10-{1 + i % 28:02d}T00:00:00Z,"
                             f"2025-10-{1 + i % 28:02d}T01:00:00Z,1\n" for i in range(0, 30, 2))
    config = _setup(workspace, accounts=accounts, usage=usage)
    engine = open_store(config.hub.database, config.base_dir)
    now = _at("2025-11-05T08:00:00Z")
    first = due.close_due(engine, config, now)
    assert [(c.account, str(c.period), c.outcome) for c in first] == [
        (f"a{i:02d}", "2025-10", "issued") for i in range(0, 30, 2)]
    statements: list[str] = []
    listener = lambda conn, cursor, sql, *args: statements.append(sql)  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        assert due.close_due(engine, config, now) == []  # nothing due any more
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 2, selects
    assert "MIN(start_s) FROM usage_records WHERE account = a.account" in selects[0]
    assert "GROUP BY" not in selects[0]
    assert selects[1].startswith("SELECT period_closings.account, period_closings.period")
    engine.dispose()


def test_close_due_issues_each_invoice_once_and_a_second_run_issues_nothing(workspace):
    accounts = ACCOUNTS + '\n[[accounts]]\nid = "nowhere"\nname = "No country"\n'
    usage = OCTOBER + "n1,nowhere,vm-9,compute.vcpu,2025-10-10T00:00:00Z,2025-10-10T01:00:00Z,1\n"
    config = _setup(workspace, accounts=accounts, usage=usage)
    engine = open_store(config.hub.database, config.base_dir)
    now = _at("2025-11-05T08:00:00Z")
    first = due.close_due(engine, config, now)
    assert [(c.account, str(c.period), c.outcome, c.number, c.total) for c in first] == [
        ("acme", "2025-10", "issued", "INV-2025-000001", "11.90"),
        ("globex", "2025-10", "issued", "INV-2025-000002", "1.20"),
        ("initech", "2025-10", "issued", "INV-2025-000003", "2.38"),
        ("nowhere", "2025-10", "failed", None, None),
    ]
    assert "no country" in first[-1].note
    line = sched.close_line(first)
    assert line.startswith("close: 3 invoices issued (INV-2025-000001 acme 2025-10 11.90 EUR, ")
    assert "1 FAILED (nowhere 2025-10: account 'nowhere' has no country" in line
    assert "\n" not in line

    again = due.close_due(engine, config, now)
    assert [(c.account, c.outcome) for c in again] == [("nowhere", "failed")]
    assert [d["number"] for d in invoices.list_invoices(engine)] == [f"INV-2025-00000{i}" for i in range(1, 4)]
    doc = workspace.json("invoices", "show", "INV-2025-000002")
    assert (doc["issue_date"], doc["period"]) == ("2025-11-05", "2025-10")
    engine.dispose()


def test_a_period_without_charges_is_closed_once(workspace):
    usage = HEADER + "a1,acme,vm-1,compute.vcpu,2025-09-30T00:00:00Z,2025-09-30T01:00:00Z,1\n"
    config = _setup(workspace, accounts=ACCOUNTS.split("[[accounts]]\nid = \"globex\"")[0], usage=usage)
    engine = open_store(config.hub.database, config.base_dir)
    done = due.close_due(engine, config, _at("2025-11-05T08:00:00Z"))
    assert [(str(c.period), c.outcome) for c in done] == [("2025-09", "issued"), ("2025-10", "no_charges")]
    assert sched.close_line(done).endswith("1 period closed without charges (acme 2025-10)")
    assert due.close_due(engine, config, _at("2025-11-05T09:00:00Z")) == []
    assert sched.close_line([]) == "close: nothing due"
    engine.dispose()


def test_two_processes_closing_due_periods_at_once_issue_each_invoice_once_without_gaps(workspace):
    config = _setup(workspace)
    now = _at("2025-11-05T08:00:00Z")
    start = threading.Barrier(3)
    results: list[list[closing.Closing]] = []
    errors: list[BaseException] = []

    def run() -> None:
        engine = open_store(config.hub.database, config.base_dir)
        try:
            start.wait()
            results.append(due.close_due(engine, config, now))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    issued = [c for r in results for c in r if c.outcome == "issued"]
    assert sorted(c.number for c in issued) == ["INV-2025-000001", "INV-2025-000002", "INV-2025-000003"]
    assert sorted(c.account for c in issued) == ["acme", "globex", "initech"]
    # The others report already_issued (or, on PostgreSQL, sometimes
    # no_charges: closing._state reads the invoice, then the closing, and
    # the issuer may commit in between); never a failure.
    assert [(c.account, c.outcome, c.note) for r in results for c in r
            if c.outcome not in ("issued", "already_issued", "no_charges")] == []
    listed = workspace.json("invoices", "list")
    assert sorted(d["number"] for d in listed) == ["INV-2025-000001", "INV-2025-000002", "INV-2025-000003"]
    assert sorted(d["account"] for d in listed) == ["acme", "globex", "initech"]


# --------------------------------------------------------------------------
# hub run --once


def test_hub_run_once_pulls_closes_and_logs_one_line_per_job(workspace):
    url = workspace.db_url
    if url.startswith("postgresql"):
        # The local server trusts 127.0.0.1: the password is ignored, but it
        # must never be printed.
        url = url.replace("postgres@", "postgres:s3cr3t-pw@")
    workspace.db_url = url
    workspace.config(BASE + ACCOUNTS)
    workspace.write("usage/2025-10.csv", OCTOBER, dedent=False)
    first = workspace.hub("run", "--once")
    assert first.exit_code == 0, first.output
    lines = first.stderr.splitlines()
    assert [ln.split(" ", 2)[2] for ln in lines if " pull " in ln] == [
        "pull files: 3 imported, 0 updated, 0 quarantined"]
    close = [ln for ln in lines if " close: " in ln]
    year = datetime.now(timezone.utc).year
    assert len(close) == 1 and f"close: 3 invoices issued (INV-{year}-000001 acme 2025-10 11.90 EUR, " in close[0]
    assert "s3cr3t" not in first.output
    assert [d["account"] for d in workspace.json("invoices", "list")] == ["acme", "globex", "initech"]

    again = workspace.hub("run", "--once")
    assert again.exit_code == 0, again.output
    assert "pull files: 0 imported, 0 updated, 0 quarantined" in again.stderr
    assert again.stderr.rstrip().endswith("close: nothing due")
    assert len(workspace.json("invoices", "list")) == 3


def test_hub_run_once_exits_2_when_a_period_cannot_be_closed(workspace):
    workspace.config(BASE.replace('[seller]\nname = "Hub Cloud GmbH"\ncountry = "DE"\nvat_id = "DE136695976"\n', "")
                     + ACCOUNTS)
    workspace.write("usage/2025-10.csv", OCTOBER, dedent=False)
    result = workspace.hub("run", "--once")
    assert result.exit_code == 2, result.output
    assert "close: 3 FAILED (acme 2025-10: no [seller] is configured" in result.stderr


def test_hub_run_refuses_a_bad_close_every(workspace):
    result = workspace.hub("run", "--close-every", "soon")
    assert result.exit_code == 2
    assert "not a duration" in result.output


# --------------------------------------------------------------------------
# The jobs in the store's database

TWO_SOURCES = '\n[[sources]]\nname = "more"\ntype = "csv"\npath = "more/*.csv"\ninterval = "1h"\n'


def _scheduler(config):
    store = sched.make_jobstore(config)
    scheduler = sched.make_scheduler("background")
    scheduler.add_jobstore(store, "default")
    return scheduler, store


def _jobs(scheduler):
    return {j.id: (j.next_run_time, j.trigger.interval.total_seconds(), j.args, j.coalesce, j.max_instances,
                   j.misfire_grace_time) for j in scheduler.get_jobs()}


def test_jobs_persist_in_the_store_database_across_schedulers(workspace):
    config = _setup(workspace, extra=TWO_SOURCES)
    path = str(workspace.config_path)
    later = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=1)

    # Started paused, with nothing due: APScheduler 3 processes due jobs
    # once more while it shuts down.
    scheduler, store = _scheduler(config)
    first = sched.schedule_jobs(scheduler, store, path, config, close_every=120, deliver_every=45, now=later)
    assert first == {"pull:files": later, "pull:more": later, "close": later, "deliver": later}
    scheduler.start(paused=True)
    jobs = _jobs(scheduler)
    scheduler.shutdown()
    assert jobs == {
        "pull:files": (later, 300.0, (path, "files"), True, 1, None),
        "pull:more": (later, 3600.0, (path, "more"), True, 1, None),
        "close": (later, 120.0, (path,), True, 1, None),
        "deliver": (later, 45.0, (path,), True, 1, None),
    }

    # Another scheduler on the same database sees the same jobs.
    scheduler, store = _scheduler(config)
    scheduler.start(paused=True)
    assert _jobs(scheduler) == jobs
    scheduler.shutdown()

    # Started again with one source less: its job goes; a stored run time
    # further away than the interval is brought in.
    workspace.config(BASE + ACCOUNTS)
    config = load_config(workspace.config_path, build_host())
    now = datetime.now(timezone.utc)
    scheduler, store = _scheduler(config)
    again = sched.schedule_jobs(scheduler, store, path, config, now=now)
    assert again == {"pull:files": now + timedelta(seconds=300), "close": now + timedelta(seconds=60),
                     "deliver": now + timedelta(seconds=30)}
    scheduler.start(paused=True)
    assert {j.id: j.next_run_time for j in scheduler.get_jobs()} == again
    scheduler.shutdown()

    # The job store's table is not the hub's: starting the store again (and
    # its migrations) leaves it alone.
    engine = open_store(config.hub.database, config.base_dir)
    from sqlalchemy import inspect
    assert sched.JOBS_TABLE in inspect(engine).get_table_names()
    engine.dispose()


def test_a_run_missed_while_no_hub_was_running_runs_once_at_start(workspace):
    from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_MISSED

    config = _setup(workspace)
    path = str(workspace.config_path)
    scheduler, store = _scheduler(config)
    sched.schedule_jobs(scheduler, store, path, config, now=datetime.now(timezone.utc) + timedelta(days=1))
    scheduler.start(paused=True)
    scheduler.shutdown()

    # The hub was down for an hour: 60 runs of `close`, 120 of `deliver`
    # and 12 of the pull missed.
    hour_ago = datetime.now(timezone.utc) - timedelta(hours=1)
    scheduler, store = _scheduler(config)
    store.start(scheduler, "default")
    for job in store.get_all_jobs():
        job.next_run_time = hour_ago
        store.update_job(job)
    store.shutdown()

    scheduler, store = _scheduler(config)
    events: list[tuple[str, int, object]] = []
    scheduler.add_listener(lambda e: events.append((e.job_id, e.code, getattr(e, "retval", None))),
                           EVENT_JOB_EXECUTED | EVENT_JOB_ERROR | EVENT_JOB_MISSED)
    assert sched.schedule_jobs(scheduler, store, path, config) == {
        "pull:files": hour_ago, "close": hour_ago, "deliver": hour_ago}
    started = datetime.now(timezone.utc)
    scheduler.start()
    deadline = time.monotonic() + 60
    while len(events) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)  # a second run would show up now
    next_runs = {j.id: j.next_run_time for j in scheduler.get_jobs()}
    scheduler.shutdown()

    assert sorted((job_id, code) for job_id, code, _ in events) == [
        ("close", EVENT_JOB_EXECUTED), ("deliver", EVENT_JOB_EXECUTED), ("pull:files", EVENT_JOB_EXECUTED)]
    retval = {job_id: r for job_id, _, r in events}
    # Closed up to last month: October 2025 is invoiced, the months since
    # are closed without charges.
    assert [(c.account, str(c.period)) for c in retval["close"] if c.outcome == "issued"] == [
        ("acme", "2025-10"), ("globex", "2025-10"), ("initech", "2025-10")]
    assert {c.outcome for c in retval["close"]} == {"issued", "no_charges"}
    assert all(t > started for t in next_runs.values())
    assert len(workspace.json("invoices", "list")) == 3


def test_migrations_can_ignore_the_job_store_table(workspace):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from hub.store.tables import metadata

    config = _setup(workspace)
    scheduler, store = _scheduler(config)
    scheduler.start(paused=True)
    scheduler.shutdown()
    engine = open_store(config.hub.database, config.base_dir)
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"include_name": sched.alembic_include_name,
                                                     "compare_type": True})
        diff = compare_metadata(ctx, metadata)
    assert not [d for d in diff if sched.JOBS_TABLE in repr(d)]
    engine.dispose()


def test_hub_run_stops_cleanly_on_sigterm(workspace):
    import signal
    import subprocess
    import sys

    if workspace.db_url.startswith("postgresql"):
        workspace.db_url = workspace.db_url.replace("postgres@", "postgres:s3cr3t-pw@")  # trusted: ignored
    _setup(workspace)
    err = workspace.root / "run.err"
    with open(err, "wb") as fh:
        proc = subprocess.Popen([sys.executable, "-c", "from hub.cli.main import main; main()",
                                 "--config", str(workspace.config_path), "run", "--close-every", "1s"],
                                stdout=subprocess.DEVNULL, stderr=fh, cwd=workspace.root)
    try:
        deadline = time.monotonic() + 60
        while err.read_text().count(" close: ") < 2 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    log = err.read_text()
    assert "hub run: close due periods every 1s" in log
    assert "close: 3 invoices issued" in log
    assert log.rstrip().endswith("hub run: stopped")
    assert "Traceback" not in log
    assert "hub run: store " in log and "s3cr3t" not in log
