"""``hub run``: the scheduler, or every job once (``--once``)."""

from __future__ import annotations

import logging
import signal
import sys
from datetime import datetime, timezone
from types import FrameType

import click

from hub import scheduler as sched
from hub.cli.base import EXIT_CONFIG, EXIT_QUARANTINED, EXIT_SOURCE_FAILED, Workspace, with_workspace
from hub.config.values import parse_duration, too_long
from hub.host import describe
from hub.app import Closing


class _Stop(Exception):
    """SIGTERM: stop like Ctrl-C does."""


def _setup_logging() -> None:
    """One line per event on stderr: the hub's own, and APScheduler's
    warnings and errors (a job that raised, a run missed)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%dT%H:%M:%S%z"))
    for name, level in (("hub", logging.INFO), ("apscheduler", logging.WARNING)):
        logger = logging.getLogger(name)
        logger.setLevel(level)
        for old in [h for h in logger.handlers if getattr(h, "_hub_run", False)]:
            logger.removeHandler(old)  # an earlier run's, on a stderr that may be gone
        handler._hub_run = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
        logger.propagate = False


def _duration(_ctx: click.Context, _param: click.Parameter, value: str) -> int:
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    if seconds < 1:
        raise click.BadParameter("must be at least 1s")
    if (why := too_long(seconds)) is not None:
        raise click.BadParameter(f"{value!r} {why}")
    return seconds


@click.command("run")
@click.option("--once", is_flag=True, help="Run every job once (pull every source, close what is due, remind of overdue "
                                             "invoices, deliver) and exit.")
@click.option("--close-every", default="1m", show_default=True, callback=_duration,
              help="How often due periods are closed and documents rendered (a duration: 30s, 5m, 1h).")
@click.option("--deliver-every", default="30s", show_default=True, callback=_duration,
              help="How often the outbox is worked through.")
@click.option("--dunning-every", default="1h", show_default=True, callback=_duration,
              help="How often the reminders of overdue invoices due today are looked for ([dunning] after_days).")
@with_workspace
def run_cmd(ws: Workspace, once: bool, close_every: int, deliver_every: int, dunning_every: int) -> None:
    """Run the pipeline on a schedule: pull each source every `interval`
    (default 5m), close due periods and render their documents, remind of
    overdue invoices, deliver the outbox; jobs live in the store's database.
    Ctrl-C or SIGTERM stops after the running jobs finish."""
    _setup_logging()
    log = sched.log
    hub = ws.hub()
    config = hub.config
    _ = hub.engine  # opens the store (and migrates it) before anything is scheduled
    if once:
        results = hub.pull()
        for r in results:
            (log.error if r.failure else log.info)(sched.pull_line(r))
        try:
            closings = sched.close_stage(hub)
        except Exception as exc:  # noqa: BLE001 - reported in one line, exit 1
            log.error("close: FAILED: %s", describe(exc, one_line=True))
            raise SystemExit(1) from None
        try:
            sched.dunning_stage(hub)
        except Exception as exc:  # noqa: BLE001 - reported in one line, exit 1 (after delivering what is queued)
            log.error("dunning: FAILED: %s", describe(exc, one_line=True))
            sched.deliver_stage(hub)
            raise SystemExit(1) from None
        sched.deliver_stage(hub)
        raise SystemExit(_exit_code(results, closings))

    config_path = str(ws.config_path.resolve())
    store = sched.make_jobstore(config)
    scheduler = sched.make_scheduler("blocking")
    scheduler.add_jobstore(store, "default")
    first = sched.schedule_jobs(scheduler, store, config_path, config, close_every=close_every,
                                deliver_every=deliver_every, dunning_every=dunning_every)
    log.info("hub run: store %s, jobs in table %s", hub.store_url(), sched.JOBS_TABLE)
    for s in config.sources:
        log.info("hub run: pull %s every %ds, %s", s.name, sched.pull_interval(s),
                 _when(first[sched.PULL_PREFIX + s.name]))
    log.info("hub run: close due periods every %ds, %s", close_every, _when(first[sched.CLOSE_JOB]))
    if config.dunning.after_days:
        log.info("hub run: remind of overdue invoices (after %s days) every %ds, %s",
                 ", ".join(map(str, config.dunning.after_days)), dunning_every, _when(first[sched.DUNNING_JOB]))
    log.info("hub run: deliver the outbox every %ds, %s", deliver_every, _when(first[sched.DELIVER_JOB]))

    # SIGTERM ends the main loop with an exception, as Ctrl-C does, rather
    # than calling shutdown() from the handler: APScheduler 3's loop would
    # then look for due jobs once more after its executor is gone.
    def on_sigterm(_signum: int, _frame: FrameType | None) -> None:
        raise _Stop()

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        scheduler.start()
    except (KeyboardInterrupt, _Stop):
        log.info("hub run: stopping; waiting for running jobs to finish")
    finally:
        signal.signal(signal.SIGTERM, previous)
        if scheduler.running:
            scheduler.shutdown(wait=True)
        sched.dispose_engines()
    log.info("hub run: stopped")


def _when(at: datetime, now: datetime | None = None) -> str:
    """When a job runs first, for the start-up lines: ``first run now`` (a
    new job, or one missed while no hub ran) or ``next run at <UTC time>``."""
    now = now or datetime.now(timezone.utc)
    if at <= now:
        return "first run now"
    return f"next run at {at.astimezone(timezone.utc).isoformat(timespec='seconds')}"


def _exit_code(results: list, closings: list[Closing]) -> int:
    """As ``hub pull``: 4 a source failed, 3 rows were quarantined; then 2
    a period could not be closed for a configuration problem, 1 for another
    reason."""
    if any(r.failure for r in results):
        return EXIT_SOURCE_FAILED
    if any(c.outcome == "error" for c in closings):
        return 1
    if any(c.outcome == "failed" for c in closings):
        return EXIT_CONFIG
    if any(r.counts.quarantined for r in results):
        return EXIT_QUARANTINED
    return 0


__all__ = ["run_cmd"]
