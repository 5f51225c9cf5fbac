"""The pull stage: source instances -> usage records, exactly once.

Each batch a source yields is stored in one transaction together with the
checkpoint that follows it. A source that fails (its factory, or midway
through its pull) is recorded as a failed pull run; the batches it stored
before failing stay, the next pull resumes from their checkpoint, and the
other sources go on.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from sqlalchemy import Engine, insert, text, update

from hub.config.model import Config, SourceInstance
from hub.host import Host, describe
from hub.plugin_types import Origin, PluginFailure, PullBatch, PullContext, RejectedRow, UsageRecord
from hub.quantities import quantity_error
from hub.store.tables import pull_runs
from hub.store.usage import (
    WriteCounts,
    has_open_quarantine,
    load_checkpoint,
    quarantine_rows,
    resolve_imported,
    save_checkpoint,
    supersede_locations,
    upsert_records,
    utcnow,
)

#: called with (source name, done, total) as a pull progresses
Progress = Callable[[str, int, int], None]


@dataclass
class PullResult:
    """The outcome of pulling one source instance."""

    source: str
    counts: WriteCounts = field(default_factory=WriteCounts)
    failure: PluginFailure | None = None
    skipped: str | None = None

    @property
    def ok(self) -> bool:
        return self.failure is None and self.skipped is None


class UnknownSource(LookupError):
    """``hub pull NAME`` named no configured source."""


def pull_context(config: Config, now: datetime) -> PullContext:
    """What sources are told at the start of a pull."""
    return PullContext(
        meters={m.name: m.unit for m in config.meters.values()},
        accounts=frozenset(config.accounts),
        now=int(now.timestamp()),
    )


def pull(config: Config, host: Host, engine: Engine, names: Sequence[str] = (), *, full: bool = False,
         now: datetime | None = None, progress: Progress | None = None) -> list[PullResult]:
    """Pull the named source instances (all when ``names`` is empty).

    :param full: ignore the saved checkpoints and read everything again
        (still idempotent: unchanged records are not rewritten).
    :raises UnknownSource: a name matches no ``[[sources]]`` entry.
    """
    configured = {s.name: s for s in config.sources}
    unknown = [n for n in names if n not in configured]
    if unknown:
        raise UnknownSource(f"no source named {', '.join(map(repr, unknown))}; configured: {', '.join(configured) or 'none'}")
    now = now or utcnow()
    ctx = pull_context(config, now)
    return [_pull_one(config, host, engine, configured[n], ctx, full, progress) for n in (names or configured)]


def _pull_one(config: Config, host: Host, engine: Engine, instance: SourceInstance, ctx: PullContext,
              full: bool, progress: Progress | None) -> PullResult:
    result = PullResult(instance.name)
    with _source_lock(engine, instance.name) as acquired:
        if not acquired:
            result.skipped = "another process is pulling this source"
            return result
        with engine.begin() as conn:
            run_id = conn.execute(insert(pull_runs).values(
                source=instance.name, started_at=utcnow(), status="running", imported=0, updated=0, quarantined=0,
            )).inserted_primary_key[0]
            checkpoint = None if full else load_checkpoint(conn, instance.name)
            open_entries = has_open_quarantine(conn, instance.name)
        registered = host.type_of("source", instance.type)
        assert registered is not None, "load_config checked the type"
        failures_before = len(host.failures)
        source = host.guard(instance.name, "factory", registered.type.factory, instance)  # type: ignore[attr-defined]
        started = host.guard(instance.name, "pull", source.pull, checkpoint, ctx) if source is not None else None
        if started is not None:
            for batch in _guarded_batches(host, instance.name, started):
                try:
                    with engine.begin() as conn:
                        counts = _store_batch(conn, instance.name, batch, ctx, open_entries)
                except Exception as exc:  # noqa: BLE001 - one source's failure stops that source only
                    # Nothing of the batch was stored (its transaction rolled
                    # back): the next pull resumes from the last checkpoint.
                    host.failures.append(PluginFailure(instance.name, "store", describe(exc)))
                    break
                open_entries = open_entries or counts.quarantined > 0
                result.counts.add(counts)
                if progress and batch.progress:
                    progress(instance.name, *batch.progress)
        if len(host.failures) > failures_before:
            result.failure = host.failures[-1]
        with engine.begin() as conn:
            conn.execute(update(pull_runs).where(pull_runs.c.id == run_id).values(
                finished_at=utcnow(), status="failed" if result.failure else "ok",
                imported=result.counts.imported, updated=result.counts.updated,
                quarantined=result.counts.quarantined, error=result.failure.message if result.failure else None,
            ))
    return result


def _guarded_batches(host: Host, name: str, batches: Iterator[PullBatch]) -> Iterator[PullBatch]:
    """Iterate a source's batches; an exception ends the pull as a failure."""
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except Exception as exc:  # noqa: BLE001 - plugin code is isolated
            host.failures.append(PluginFailure(name, "pull", describe(exc)))
            return
        if not isinstance(batch, PullBatch):
            host.failures.append(PluginFailure(name, "pull", f"yielded {type(batch).__name__}, not a PullBatch"))
            return
        yield batch


def record_errors(record: UsageRecord, ctx: PullContext) -> list[str]:
    """What keeps ``record`` out of the store, as the hub sees it (sources
    may check more; they cannot check less)."""
    errors = []
    if not isinstance(record.record_id, str) or not record.record_id:
        errors.append("record_id: must be a non-empty string")
    if not isinstance(record.resource_id, str) or not record.resource_id:
        errors.append("resource_id: must be a non-empty string")
    if type(record.quantity) is not Decimal:
        errors.append(f"quantity: must be a decimal.Decimal, not {type(record.quantity).__name__}")
    else:
        error = quantity_error(record.quantity)
        if error:
            errors.append(error)
    if type(record.start) is not int:
        errors.append(f"start: must be whole epoch seconds (int), not {type(record.start).__name__}")
    elif record.end is not None and (type(record.end) is not int or record.end < record.start):
        errors.append("end: must be whole epoch seconds (int) not before start, or None while running")
    errors.extend(ctx.reference_errors(record.account, record.meter, record.unit))
    return errors


def _store_batch(conn, source: str, batch: PullBatch, ctx: PullContext, open_entries: bool) -> WriteCounts:  # type: ignore[no-untyped-def]
    now = utcnow()
    if open_entries:
        supersede_locations(conn, source, batch.superseded, now)
    valid: list[UsageRecord] = []
    rejected: list[RejectedRow] = list(batch.rejected)
    for record in batch.records:
        # The hub's own check, whatever the source did: a record it cannot
        # attribute or store exactly is quarantined, never stored and never
        # dropped.
        errors = record_errors(record, ctx)
        if errors:
            origin = record.origin or Origin(location=f"record {record.record_id}")
            rejected.append(RejectedRow(origin, tuple(errors), record.record_id))
        else:
            valid.append(record)
    counts = upsert_records(conn, source, valid, ctx.now)
    if open_entries:
        counts.resolved = resolve_imported(conn, source, [r.record_id for r in valid], now)
    later = {r.record_id: (r.origin.location, r.origin.line) for r in valid
             if r.origin and r.origin.line is not None} if rejected else {}
    # Rows replaced by a valid version later in the same batch are stored
    # resolved and not counted: "quarantined" is what is left to fix.
    counts.quarantined = quarantine_rows(conn, source, rejected, now, later)
    if batch.checkpoint is not None:
        save_checkpoint(conn, source, batch.checkpoint, now)
    return counts


@contextlib.contextmanager
def _source_lock(engine: Engine, source: str) -> Iterator[bool]:
    """Hold an exclusive lock on pulling ``source`` across processes.

    PostgreSQL: a session advisory lock. SQLite: an flock on a file beside
    the database. Yields ``False`` when another process holds it.
    """
    key = int.from_bytes(hashlib.blake2b(f"hub.pull:{source}".encode(), digest_size=4).digest(), "big", signed=True)
    if engine.dialect.name == "postgresql":
        # Keyed by schema too: hubs in two schemas of one database are apart.
        with engine.connect() as conn:
            got = conn.scalar(text("SELECT pg_try_advisory_lock(:k, hashtext(current_schema()))"), {"k": key})
            conn.commit()
            try:
                yield bool(got)
            finally:
                if got:
                    conn.execute(text("SELECT pg_advisory_unlock(:k, hashtext(current_schema()))"), {"k": key})
                    conn.commit()
        return
    database = engine.url.database
    if not database or database == ":memory:":
        yield True
        return
    lock_path = Path(f"{database}.pull-{key & 0xFFFFFFFF:08x}.lock")
    with open(lock_path, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
