"""The scheduler (``hub run``): it only triggers stages of the pipeline.

Two kinds of jobs, both run by APScheduler 3 in UTC and persisted in the
store's own database (table :data:`JOBS_TABLE`) so they survive restarts:

- ``pull:<source>``: pulls one source instance every ``interval`` seconds
  of its ``[[sources]]`` table (:data:`DEFAULT_PULL_INTERVAL` when unset);
- ``close``: closes every due period (:meth:`hub.app.Hub.close_due`) and
  renders the documents of what it issued, every minute by default;
- ``dunning`` (when ``[dunning] after_days`` is set): records the reminders
  of overdue invoices due today (:meth:`hub.app.Hub.dunning`) and queues their
  deliveries, every hour by default: a reminder leaves within the hour its
  day starts in the hub's time zone, and a run finds nothing more to do
  until the next day (once per invoice and step);
- ``deliver``: works through the outbox, every 30 seconds by default.

Every job is coalesced (runs missed while the hub was down are caught up by
one run, never skipped and never repeated), never overlaps itself, and is
safe to run twice: pulling is exactly-once per record and serialised per
source across processes, and closing is idempotent (a unique constraint and
the locked number series mean a period is never invoiced twice, even by two
hub processes on one PostgreSQL database, each with its own scheduler).

Job functions are module-level and take only strings (the hub.toml path and
a source name), because the job store pickles references to them; each run
opens the :class:`~hub.app.Hub` afresh (so edits of hub.toml apply at the
next run) and reuses one engine per database per process. Every job calls
the application layer; this module holds no billing logic.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Engine, create_engine, inspect, select
from sqlalchemy.engine import make_url

from hub.app import Attempt, Closing, Hub, HubError, Outcome, PullResult
from hub.app.reminders import Reminder
from hub.config import Config, ConfigErrors
from hub.host import describe
from hub.money import money_str
from hub.periods import Period
from hub.store.db import database_url
from hub.store.tables import JOBS_TABLE, alembic_include_name

log = logging.getLogger("hub.run")

#: seconds between two pulls of a source without an ``interval``
DEFAULT_PULL_INTERVAL = 300
#: seconds between two runs of the ``close`` job
DEFAULT_CLOSE_EVERY = 60
CLOSE_JOB = "close"
DELIVER_JOB = "deliver"
DUNNING_JOB = "dunning"
#: seconds between two runs of the ``dunning`` job
DEFAULT_DUNNING_EVERY = 3600
#: how often the outbox is worked through (seconds)
DEFAULT_DELIVER_EVERY = 30
PULL_PREFIX = "pull:"


# --------------------------------------------------------------------------
# One line per job run


def pull_line(r: PullResult) -> str:
    """One source's pull, in one line."""
    if r.skipped:
        return f"pull {r.source}: skipped, {r.skipped}"
    c = r.counts
    line = f"pull {r.source}: {c.imported} imported, {c.updated} updated, {c.quarantined} quarantined"
    if c.resolved:
        line += f", {c.resolved} resolved"
    if r.failure:
        line += f"; FAILED in {r.failure.hook}: {r.failure.message}"
    return line


def close_line(closings: Sequence[Closing]) -> str:
    """What a close run did, in one line."""
    issued = [c for c in closings if c.outcome == "issued"]
    empty = [c for c in closings if c.outcome == "no_charges"]
    failed = [c for c in closings if c.outcome in ("failed", "error")]
    if not closings:
        return "close: nothing due"
    parts = []
    if issued:
        parts.append(f"{len(issued)} invoice{'s' if len(issued) != 1 else ''} issued ("
                     + ", ".join(f"{c.number} {c.account} {c.period} {c.total} {c.currency}" for c in issued) + ")")
    if empty:
        by_account: dict[str, list[Period]] = {}
        for c in empty:
            by_account.setdefault(c.account, []).append(c.period)
        spans = [f"{account} {ps[0]}" if len(ps) == 1 else
                 f"{account} {ps[0]}, {ps[1]}" if len(ps) == 2 else f"{account} {ps[0]} to {ps[-1]}"
                 for account, ps in by_account.items()]
        parts.append(f"{len(empty)} period{'s' if len(empty) != 1 else ''} closed without charges ("
                     + ", ".join(spans) + ")")
    others = [c for c in closings if c.outcome not in ("issued", "no_charges", "failed", "error")]
    if others:
        parts.append(", ".join(f"{c.account} {c.period} {c.outcome.replace('_', ' ')}" for c in others))
    if failed:
        parts.append(f"{len(failed)} FAILED (" + "; ".join(f"{c.account} {c.period}: {c.note}" for c in failed) + ")")
    warnings = [f"{c.account}: {w}" for c in closings for w in c.warnings]
    if warnings:
        parts.append("warnings: " + "; ".join(warnings))
    return "close: " + "; ".join(parts)


# --------------------------------------------------------------------------
# The job functions (pickled by reference: keep their names and signatures)

_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


def _runtime(config_path: str) -> Hub | None:
    """The hub of ``config_path``, its configuration read again and a plugin
    host of this run's own (its failure list is the run's), on the process's
    engine for the store; None, logged, when the configuration does not
    load."""
    try:
        hub = Hub.open(config_path)
    except ConfigErrors as exc:
        log.error("config %s: %d error%s, the job did not run: %s", config_path, len(exc.errors),
                  "s" if len(exc.errors) != 1 else "", "; ".join(map(str, exc.errors)))
        return None
    except Exception as exc:  # noqa: BLE001 - e.g. PluginConflict: logged, the next run tries again
        log.error("config %s: %s; the job did not run", config_path, describe(exc, one_line=True))
        return None
    with _engines_lock:
        engine = _engines.get(hub.store_key)
        if engine is None:
            engine = _engines[hub.store_key] = hub.engine
        else:
            hub.use_engine(engine)
    return hub


def dispose_engines() -> None:
    """Close the engines the job functions opened in this process."""
    with _engines_lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


def pull_job(config_path: str, source: str) -> list[PullResult]:
    """The ``pull:<source>`` job: pull one source instance."""
    hub = _runtime(config_path)
    if hub is None:
        return []
    if source not in {s.name for s in hub.config.sources}:
        log.warning("pull %s: no such source in %s any more; restart hub run to drop the job", source, config_path)
        return []
    try:
        results = hub.pull([source])
    except Exception as exc:  # noqa: BLE001 - logged; the next run tries again
        log.error("pull %s: FAILED: %s", source, describe(exc, one_line=True))
        return []
    for r in results:
        (log.error if r.failure else log.info)(pull_line(r))
    return results


def render_line(outcomes: Sequence[Outcome]) -> str:
    """What a render run did, in one line."""
    stored = [o for o in outcomes if o.ok]
    bad = [o for o in outcomes if not o.ok]
    if not outcomes:
        return "render: nothing to render"
    line = f"render: {len(stored)} document{'s' if len(stored) != 1 else ''} stored"
    if bad:
        line += f"; {len(bad)} REJECTED or FAILED (" + "; ".join(
            f"{o.number} {o.format}: " + ", ".join(f.rule for f in o.failures) for o in bad) + ")"
    return line


def deliver_line(attempts: Sequence[Attempt]) -> str:
    """What a deliver run did, in one line."""
    if not attempts:
        return "deliver: nothing due"
    counts: dict[str, int] = {}
    for a in attempts:
        counts[a.outcome] = counts.get(a.outcome, 0) + 1
    line = "deliver: " + ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items()))
    problems = [a for a in attempts if a.outcome != "delivered"]
    if problems:
        line += " (" + "; ".join(f"{a.number} to {a.exporter}: {a.error}" for a in problems) + ")"
    return line


def dunning_line(reminders: Sequence[Reminder]) -> str:
    """What a dunning run did, in one line."""
    if not reminders:
        return "dunning: nothing due"
    queued = sum(r.deliveries for r in reminders)
    return (f"dunning: {len(reminders)} reminder{'s' if len(reminders) != 1 else ''} recorded ("
            + ", ".join(f"{r.number} {r.account} step {r.step}, {r.days_overdue} days overdue, "
                        f"{money_str(r.open_balance, r.currency)} {r.currency} open" for r in reminders)
            + f"), {queued} deliver{'y' if queued == 1 else 'ies'} queued")


def dunning_stage(hub: Hub, now: datetime | None = None) -> list[Reminder]:
    """Record today's reminders of overdue invoices and queue their
    deliveries (nothing without ``[dunning] after_days``); one log line when
    one was recorded. Raises what dunning raised."""
    if not hub.config.dunning.after_days:
        return []
    reminders = hub.dunning(now=now)
    if reminders:
        log.info(dunning_line(reminders))
    return reminders


def close_stage(hub: Hub, now: datetime | None = None) -> list[Closing]:
    """Close every due period (the plugins are told what was issued), then
    render the documents of what was issued (and of anything still missing
    them), then rate the open periods that have no rollups yet; one log line
    per step. Raises what closing raised."""
    closings = hub.close_due(now)
    failed = any(c.outcome in ("failed", "error") for c in closings)
    (log.error if failed else log.info)(close_line(closings))
    try:
        # In this process: the scheduler runs its jobs in threads, and
        # forking render workers from a process with threads can leave a
        # worker waiting forever on a lock another thread held at the fork
        # (an import's, for one). `hub render --all` renders on every CPU.
        outcomes = hub.render_pending(jobs=1)
    except HubError as exc:
        log.error("render: the renderers cannot run: %s", exc)
    except Exception as exc:  # noqa: BLE001 - logged; the next run renders what is still missing
        log.error("render: FAILED: %s", describe(exc, one_line=True))
    else:
        if outcomes:
            (log.error if any(not o.ok for o in outcomes) else log.info)(render_line(outcomes))
    keep_open_rollups(hub, now)
    return closings


def keep_open_rollups(hub: Hub, now: datetime | None = None) -> list[Period]:
    """Rate the open periods whose rollups no rating has stored yet
    (:meth:`hub.app.Hub.keep_rollups`), so that the pulls keep them up to
    date from then on; one log line for each rating, a failure logged
    (closing never depends on it)."""
    now = now or datetime.now(timezone.utc)
    started = time.monotonic()
    try:
        rated = hub.keep_rollups(hub.open_periods(now), now=now)
    except Exception as exc:  # noqa: BLE001 - logged; ratings compute what they need without rollups
        log.error("rollups: FAILED: %s", describe(exc, one_line=True))
        return []
    if rated:
        log.info("rollups: rated %s for every account in %.1f s; the pulls keep them up to date from now on",
                 ", ".join(str(p) for p in rated), time.monotonic() - started)
    return rated


def deliver_stage(hub: Hub, now: datetime | None = None) -> list[Attempt]:
    """Attempt every due delivery of the outbox once; one log line."""
    attempts = hub.deliver(now)
    if attempts:
        (log.error if any(a.outcome in ("dead", "blocked") for a in attempts) else log.info)(deliver_line(attempts))
    return attempts


def close_job(config_path: str) -> list[Closing]:
    """The ``close`` job: :func:`close_stage`."""
    hub = _runtime(config_path)
    if hub is None:
        return []
    try:
        return close_stage(hub)
    except Exception as exc:  # noqa: BLE001 - logged; the next run tries again
        log.error("close: FAILED: %s", describe(exc, one_line=True))
        return []


def dunning_job(config_path: str) -> list[Reminder]:
    """The ``dunning`` job: :func:`dunning_stage`."""
    hub = _runtime(config_path)
    if hub is None:
        return []
    try:
        return dunning_stage(hub)
    except Exception as exc:  # noqa: BLE001 - logged; the next run tries again (reminders are once per step)
        log.error("dunning: FAILED: %s", describe(exc, one_line=True))
        return []


def deliver_job(config_path: str) -> list[Attempt]:
    """The ``deliver`` job: :func:`deliver_stage`."""
    hub = _runtime(config_path)
    if hub is None:
        return []
    try:
        return deliver_stage(hub)
    except Exception as exc:  # noqa: BLE001 - logged; the next run tries again
        log.error("deliver: FAILED: %s", describe(exc, one_line=True))
        return []


# --------------------------------------------------------------------------
# The scheduler and its job store


def jobstore_engine(config: Config) -> Engine:
    """An engine of the job store's own on the hub's database.

    Not the hub's engine: on SQLite that one starts every transaction with
    ``BEGIN IMMEDIATE`` and APScheduler polls with reads. This one waits for
    the write lock as long as the hub's engine does (30 s)."""
    url = database_url(config.hub.database, config.base_dir)
    if make_url(url).get_backend_name() == "sqlite":
        return create_engine(url, connect_args={"timeout": 30})
    return create_engine(url)


def make_jobstore(config: Config) -> Any:
    """APScheduler's SQLAlchemy job store on the hub's database."""
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore

    return SQLAlchemyJobStore(engine=jobstore_engine(config), tablename=JOBS_TABLE)


def _stored_next_run_times(store: Any) -> dict[str, datetime | None]:
    """The jobs in the store and their next run times, read before the
    scheduler starts (it would otherwise recompute them)."""
    table = store.jobs_t
    if not inspect(store.engine).has_table(table.name, schema=table.schema):
        return {}
    with store.engine.connect() as conn:
        return {row.id: None if row.next_run_time is None else datetime.fromtimestamp(row.next_run_time, timezone.utc)
                for row in conn.execute(select(table.c.id, table.c.next_run_time))}


def _drop_stored(store: Any, ids: Iterable[str]) -> None:
    ids = list(ids)
    if ids:
        with store.engine.begin() as conn:
            conn.execute(store.jobs_t.delete().where(store.jobs_t.c.id.in_(ids)))


def pull_interval(source: Any) -> int:
    return source.interval or DEFAULT_PULL_INTERVAL


def schedule_jobs(scheduler: Any, store: Any, config_path: str, config: Config, *,
                  close_every: int = DEFAULT_CLOSE_EVERY, deliver_every: int = DEFAULT_DELIVER_EVERY,
                  dunning_every: int = DEFAULT_DUNNING_EVERY, now: datetime | None = None) -> dict[str, datetime]:
    """Add the hub's jobs to ``scheduler`` (not started yet) in ``store``
    (which the caller adds as the scheduler's ``default`` job store); returns
    each job's id and first run time.

    A job already in the store keeps its next run time, so a run missed
    while no hub was running happens at start (once: jobs are coalesced);
    a job that is new, or whose interval got shorter than the wait, runs at
    start. ``pull:`` jobs of sources no longer configured are removed, and
    so is the ``dunning`` job when ``[dunning] after_days`` is not set (it
    is scheduled only when it is)."""
    from apscheduler.triggers.interval import IntervalTrigger

    now = now or datetime.now(timezone.utc)
    stored = _stored_next_run_times(store)
    wanted = {f"{PULL_PREFIX}{s.name}": (pull_job, [config_path, s.name], pull_interval(s), f"pull {s.name}")
              for s in config.sources}
    wanted[CLOSE_JOB] = (close_job, [config_path], close_every, "close due periods and render their documents")
    if config.dunning.after_days:
        wanted[DUNNING_JOB] = (dunning_job, [config_path], dunning_every, "remind of overdue invoices")
    wanted[DELIVER_JOB] = (deliver_job, [config_path], deliver_every, "deliver the outbox")
    _drop_stored(store, [i for i in stored if (i.startswith(PULL_PREFIX) or i == DUNNING_JOB) and i not in wanted])
    first: dict[str, datetime] = {}
    for job_id, (fn, args, every, name) in wanted.items():
        before = stored.get(job_id)
        at = now if before is None else min(before, now + timedelta(seconds=every))
        scheduler.add_job(fn, IntervalTrigger(seconds=every, timezone=timezone.utc), args=args, id=job_id, name=name,
                          replace_existing=True, coalesce=True, max_instances=1, misfire_grace_time=None,
                          next_run_time=at)
        first[job_id] = at
    return first


def make_scheduler(kind: str = "blocking", **options: Any) -> Any:
    """An APScheduler 3 scheduler in UTC (``kind``: blocking or background)."""
    if kind == "blocking":
        from apscheduler.schedulers.blocking import BlockingScheduler as Scheduler
    else:
        from apscheduler.schedulers.background import BackgroundScheduler as Scheduler
    return Scheduler(timezone=timezone.utc, job_defaults={"coalesce": True, "max_instances": 1,
                                                          "misfire_grace_time": None}, **options)


__all__ = [
    "CLOSE_JOB", "DEFAULT_CLOSE_EVERY", "DEFAULT_DELIVER_EVERY", "DEFAULT_DUNNING_EVERY", "DELIVER_JOB",
    "DUNNING_JOB", "close_stage", "deliver_job", "deliver_stage", "dunning_job", "dunning_line", "dunning_stage",
    "DEFAULT_PULL_INTERVAL", "JOBS_TABLE", "PULL_PREFIX", "alembic_include_name",
    "close_job", "close_line", "dispose_engines", "keep_open_rollups", "make_jobstore", "make_scheduler",
    "pull_job", "pull_line", "render_line", "schedule_jobs",
]
