"""The scheduler (``hub run``): it only triggers stages of the pipeline.

Two kinds of jobs, both run by APScheduler 3 in UTC and persisted in the
store's own database (table :data:`JOBS_TABLE`) so they survive restarts:

- ``pull:<source>``: pulls one source instance every ``interval`` seconds
  of its ``[[sources]]`` table (:data:`DEFAULT_PULL_INTERVAL` when unset);
- ``close``: closes every due period (:func:`close_due`), every minute by
  default.

Every job is coalesced (runs missed while the hub was down are caught up by
one run, never skipped and never repeated), never overlaps itself, and is
safe to run twice: pulling is exactly-once per record and serialised per
source across processes, and closing is idempotent (a unique constraint and
the locked number series mean a period is never invoiced twice, even by two
hub processes on one PostgreSQL database, each with its own scheduler).

Job functions are module-level and take only strings (the hub.toml path and
a source name), because the job store pickles references to them; each run
loads the configuration afresh (so edits apply at the next run) and reuses
one engine per database per process.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Engine, create_engine, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from hub.config import Config, ConfigErrors, load_config
from hub.host import Host, build_host
from hub.ingest import PullResult, pull
from hub.invoicing.closing import Closing, InvoicingError, close_account, members, period_ended, root_of
from hub.periods import Period, parse_period
from hub.store.db import database_url, open_store
from hub.store.tables import period_closings

log = logging.getLogger("hub.run")

#: seconds between two pulls of a source without an ``interval``
DEFAULT_PULL_INTERVAL = 300
#: seconds between two runs of the ``close`` job
DEFAULT_CLOSE_EVERY = 60
#: APScheduler's table in the store's database (not one of the hub's own
#: tables: migrations must leave it alone, see :func:`alembic_include_name`)
JOBS_TABLE = "apscheduler_jobs"
CLOSE_JOB = "close"
DELIVER_JOB = "deliver"
#: how often the outbox is worked through (seconds)
DEFAULT_DELIVER_EVERY = 30
PULL_PREFIX = "pull:"


# --------------------------------------------------------------------------
# Which periods are due


def period_of(kind: str, day: date) -> Period:
    """The ``kind`` period (``daily``, ``weekly``: an ISO week from Monday,
    ``monthly``) that holds the calendar date ``day``."""
    if kind == "monthly":
        return parse_period(f"{day.year:04d}-{day.month:02d}")
    if kind == "weekly":
        year, week, _ = day.isocalendar()
        return parse_period(f"{year:04d}-W{week:02d}")
    if kind == "daily":
        return parse_period(day.isoformat())
    raise ValueError(f"{kind!r} is not a schedule: daily, weekly or monthly")


#: the earliest start of each of a list of accounts, one search of
#: ``ix_usage_records_account`` (account, start_s) each; ``account IS NOT
#: NULL`` is the partial index's condition, which SQLite needs stated
_EARLIEST = ("SELECT a.account, (SELECT MIN(start_s) FROM usage_records "
             "WHERE account = a.account AND account IS NOT NULL) FROM {accounts} AS a")
_ACCOUNT_LIST = {"sqlite": "(SELECT value AS account FROM json_each(:accounts))",
                 "postgresql": "(SELECT unnest(CAST(:accounts AS text[])) AS account)"}


def earliest_usage(engine: Engine, accounts: Iterable[str]) -> dict[str, int]:
    """The earliest usage start (epoch seconds) of each of ``accounts``
    that has usage.

    One statement: a search of the index by (account, start_s) per account
    (migration 0008), not a scan of ``usage_records``, whatever its size."""
    names = sorted(set(accounts))
    if not names:
        return {}
    dialect = engine.dialect.name
    with engine.connect() as conn:
        rows = conn.execute(text(_EARLIEST.format(accounts=_ACCOUNT_LIST[dialect])),
                            {"accounts": json.dumps(names) if dialect == "sqlite" else names})
        return {account: int(start) for account, start in rows if start is not None}


def closed_periods(engine: Engine, roots: Iterable[str] | None = None) -> dict[str, set[str]]:
    """The periods closed so far (``period_closings``) of each root account
    (of ``roots`` only, when given), as period labels: one query."""
    query = select(period_closings.c.account, period_closings.c.period)
    if roots is not None:
        query = query.where(period_closings.c.account.in_(list(roots)))
    out: dict[str, set[str]] = {}
    with engine.connect() as conn:
        for account, label in conn.execute(query):
            out.setdefault(account, set()).add(label)
    return out


def first_period(config: Config, root: str, earliest_start: int | None) -> Period | None:
    """The first period ``root`` needs an invoice for: the one holding its
    ``since``, else the one holding ``earliest_start`` (the earliest usage
    of it and its members), else none; in the root's time zone."""
    account = config.accounts[root]
    since = getattr(account, "since", None)
    if since is not None:
        day = since.astimezone(account.tz).date() if isinstance(since, datetime) else since
    elif earliest_start is not None:
        day = datetime.fromtimestamp(earliest_start, timezone.utc).astimezone(account.tz).date()
    else:
        return None
    return period_of(account.schedule, day)


_UNSET: Any = object()


def due_periods(engine: Engine, config: Config, root: str, now: datetime, *,
                earliest_start: int | None = _UNSET, closed: Iterable[str] | None = None) -> list[Period]:
    """The periods of ``root``'s schedule that :func:`close_due` closes now,
    oldest first: from :func:`first_period` up to the last one that has
    ended plus the grace at ``now``, without those already closed (in
    ``period_closings``).

    A period that overlaps one closed under another schedule (the account
    moved from monthly to weekly, say) is left out: closing it would bill
    those days a second time. The operator closes the seam by hand.

    :param earliest_start: the earliest usage start of ``root`` and its
        members, if the caller knows it already (None: no usage).
    :param closed: the labels of ``root``'s closed periods, if the caller
        read them already (:func:`closed_periods`).
    """
    account = config.accounts[root]
    if earliest_start is _UNSET:
        earliest_start = None
        if getattr(account, "since", None) is None:
            starts = earliest_usage(engine, members(config, root)).values()
            earliest_start = min(starts, default=None)
    period = first_period(config, root, earliest_start)
    if period is None:
        return []
    if closed is None:
        closed = closed_periods(engine, [root]).get(root, ())
    done = {parse_period(label) for label in closed}
    other_kinds = [p for p in done if p.kind != period.kind]
    out = []
    while period_ended(config, root, period, now) is None:
        if period not in done and not any(p.start < period.end and period.start < p.end for p in other_kinds):
            out.append(period)
        period = period.following()
    return out


def root_accounts(config: Config) -> list[str]:
    """The accounts that are invoiced (no parent), in configuration order."""
    return [a.id for a in config.accounts.values() if a.parent is None]


def close_due(engine: Engine, config: Config, now: datetime | None = None) -> list[Closing]:
    """Close every due period of every root account (:func:`due_periods`),
    oldest first, each through :func:`~hub.invoicing.closing.close_account`.

    Idempotent and safe to run in several processes at once. A failure is
    reported as a :class:`Closing` whose ``outcome`` is ``failed`` (an
    :class:`~hub.invoicing.closing.InvoicingError`: the operator must fix
    the configuration) or ``error`` (anything else), with the message in
    ``note``; that account's later periods wait (invoices keep their order),
    the other accounts go on."""
    now = now or datetime.now(timezone.utc)
    roots = root_accounts(config)
    groups: dict[str, list[str]] = {}
    for account in config.accounts:
        groups.setdefault(root_of(config, account), []).append(account)
    need_usage = [r for r in roots if getattr(config.accounts[r], "since", None) is None]
    by_account = earliest_usage(engine, (a for r in need_usage for a in groups.get(r, ())))
    closed = closed_periods(engine)
    out: list[Closing] = []
    for root in roots:
        starts = [by_account[a] for a in groups.get(root, ()) if a in by_account]
        for period in due_periods(engine, config, root, now, earliest_start=min(starts, default=None),
                                  closed=closed.get(root, ())):
            try:
                try:
                    closing = close_account(engine, config, root, period, now=now)
                except IntegrityError:
                    # Another process issued it between our check and our
                    # insert: asking again reports its invoice.
                    closing = close_account(engine, config, root, period, now=now)
            except InvoicingError as exc:
                out.append(Closing(root, period, "failed", note=str(exc)))
                break
            except Exception as exc:  # noqa: BLE001 - one account's failure stops that account only
                log.debug("closing %s %s failed", root, period, exc_info=True)
                out.append(Closing(root, period, "error", note=_describe(exc)))
                break
            out.append(closing)
    return out


# --------------------------------------------------------------------------
# One line per job run


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


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


def _runtime(config_path: str) -> tuple[Config, Host, Engine] | None:
    """The configuration (read again), a plugin host of this run's own (its
    failure list is the run's) and the process's engine for the store; None,
    logged, when the configuration does not load."""
    try:
        host = build_host()
        config = load_config(config_path, host)
    except ConfigErrors as exc:
        log.error("config %s: %d error%s, the job did not run: %s", config_path, len(exc.errors),
                  "s" if len(exc.errors) != 1 else "", "; ".join(map(str, exc.errors)))
        return None
    except Exception as exc:  # noqa: BLE001 - e.g. PluginConflict: logged, the next run tries again
        log.error("config %s: %s; the job did not run", config_path, _describe(exc))
        return None
    url = database_url(config.hub.database, config.base_dir)
    with _engines_lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _engines[url] = open_store(config.hub.database, config.base_dir)
    return config, host, engine


def dispose_engines() -> None:
    """Close the engines the job functions opened in this process."""
    with _engines_lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


def pull_job(config_path: str, source: str) -> list[PullResult]:
    """The ``pull:<source>`` job: pull one source instance."""
    runtime = _runtime(config_path)
    if runtime is None:
        return []
    config, host, engine = runtime
    if source not in {s.name for s in config.sources}:
        log.warning("pull %s: no such source in %s any more; restart hub run to drop the job", source, config_path)
        return []
    try:
        results = pull(config, host, engine, [source])
    except Exception as exc:  # noqa: BLE001 - logged; the next run tries again
        log.error("pull %s: FAILED: %s", source, _describe(exc))
        return []
    for r in results:
        (log.error if r.failure else log.info)(pull_line(r))
    return results


def render_line(outcomes: Sequence[Any]) -> str:
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


def deliver_line(attempts: Sequence[Any]) -> str:
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


def close_stage(engine: Engine, config: Config, host: Host, now: datetime | None = None) -> list[Closing]:
    """Close every due period, tell the plugins what was issued, then render
    the documents of what was issued (and of anything still missing them);
    one log line per step. Raises what closing raised."""
    from hub.documents import RenderError, render_pending
    from hub.outbox import notify

    closings = close_due(engine, config, now)
    failed = any(c.outcome in ("failed", "error") for c in closings)
    (log.error if failed else log.info)(close_line(closings))
    notify(engine, host, "hub_invoice_issued", [c.number for c in closings if c.outcome == "issued" and c.number])
    try:
        # In this process: the scheduler runs its jobs in threads, and
        # forking render workers from a process with threads can leave a
        # worker waiting forever on a lock another thread held at the fork
        # (an import's, for one). `hub render --all` renders on every CPU.
        outcomes = render_pending(engine, config, host, jobs=1)
    except RenderError as exc:
        log.error("render: the renderers cannot run: %s", exc)
    except Exception as exc:  # noqa: BLE001 - logged; the next run renders what is still missing
        log.error("render: FAILED: %s", _describe(exc))
    else:
        if outcomes:
            (log.error if any(not o.ok for o in outcomes) else log.info)(render_line(outcomes))
    keep_open_rollups(engine, config, now)
    return closings


def open_periods(config: Config, now: datetime) -> list[Period]:
    """The periods of the accounts' schedules that hold ``now``, each
    account in its own time zone."""
    return sorted({period_of(a.schedule, now.astimezone(a.tz).date()) for a in config.accounts.values()})


def keep_open_rollups(engine: Engine, config: Config, now: datetime | None = None) -> list[Period]:
    """Rate the open periods whose rollups no rating has stored yet
    (:func:`hub.rating.keep_rollups`), so that the pulls keep them up to
    date from then on; one log line for each rating, a failure logged
    (closing never depends on it)."""
    from hub.rating import keep_rollups

    now = now or datetime.now(timezone.utc)
    started = time.monotonic()
    try:
        rated = keep_rollups(engine, config, open_periods(config, now), now=now)
    except Exception as exc:  # noqa: BLE001 - logged; ratings compute what they need without rollups
        log.error("rollups: FAILED: %s", _describe(exc))
        return []
    if rated:
        log.info("rollups: rated %s for every account in %.1f s; the pulls keep them up to date from now on",
                 ", ".join(str(p) for p in rated), time.monotonic() - started)
    return rated


def deliver_stage(engine: Engine, config: Config, host: Host, now: datetime | None = None) -> list[Any]:
    """Attempt every due delivery of the outbox once; one log line."""
    from hub.outbox import deliver_pending

    attempts = deliver_pending(engine, config, host, now=now)
    if attempts:
        (log.error if any(a.outcome in ("dead", "blocked") for a in attempts) else log.info)(deliver_line(attempts))
    return attempts


def close_job(config_path: str) -> list[Closing]:
    """The ``close`` job: :func:`close_stage`."""
    runtime = _runtime(config_path)
    if runtime is None:
        return []
    config, host, engine = runtime
    try:
        return close_stage(engine, config, host)
    except Exception as exc:  # noqa: BLE001 - logged; the next run tries again
        log.error("close: FAILED: %s", _describe(exc))
        return []


def deliver_job(config_path: str) -> list[Any]:
    """The ``deliver`` job: :func:`deliver_stage`."""
    runtime = _runtime(config_path)
    if runtime is None:
        return []
    config, host, engine = runtime
    try:
        return deliver_stage(engine, config, host)
    except Exception as exc:  # noqa: BLE001 - logged; the next run tries again
        log.error("deliver: FAILED: %s", _describe(exc))
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


def alembic_include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    """For Alembic's ``include_name``: autogenerate ignores APScheduler's
    table (it is not in the hub's metadata and must not be dropped)."""
    return not (type_ == "table" and name == JOBS_TABLE)


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
                  now: datetime | None = None) -> dict[str, datetime]:
    """Add the hub's jobs to ``scheduler`` (not started yet) in ``store``
    (which the caller adds as the scheduler's ``default`` job store); returns
    each job's id and first run time.

    A job already in the store keeps its next run time, so a run missed
    while no hub was running happens at start (once: jobs are coalesced);
    a job that is new, or whose interval got shorter than the wait, runs at
    start. ``pull:`` jobs of sources no longer configured are removed."""
    from apscheduler.triggers.interval import IntervalTrigger

    now = now or datetime.now(timezone.utc)
    stored = _stored_next_run_times(store)
    wanted = {f"{PULL_PREFIX}{s.name}": (pull_job, [config_path, s.name], pull_interval(s), f"pull {s.name}")
              for s in config.sources}
    wanted[CLOSE_JOB] = (close_job, [config_path], close_every, "close due periods and render their documents")
    wanted[DELIVER_JOB] = (deliver_job, [config_path], deliver_every, "deliver the outbox")
    _drop_stored(store, [i for i in stored if i.startswith(PULL_PREFIX) and i not in wanted])
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
    "CLOSE_JOB", "DEFAULT_CLOSE_EVERY", "DEFAULT_DELIVER_EVERY", "DELIVER_JOB", "close_stage", "deliver_job",
    "deliver_stage", "DEFAULT_PULL_INTERVAL", "JOBS_TABLE", "PULL_PREFIX", "alembic_include_name",
    "close_due", "close_job", "close_line", "closed_periods", "dispose_engines", "due_periods", "earliest_usage", "first_period",
    "make_jobstore", "make_scheduler", "period_of", "pull_job", "pull_line", "root_accounts", "schedule_jobs",
]
