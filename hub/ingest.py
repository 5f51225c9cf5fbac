"""The pull stage: source instances -> usage records, exactly once.

Each batch a source yields is stored in one transaction together with the
checkpoint that follows it. A source that fails (its factory, or midway
through its pull) is recorded as a failed pull run; the batches it stored
before failing stay, the next pull resumes from their checkpoint, and the
other sources go on. One pull of a source runs at a time per store
(:func:`_source_lock`).

This module owns the pull: the hub's own check of what a source yields
(what cannot be stored exactly is quarantined), the pull runs and the lock.
It knows sources only through the plugin host and :mod:`hub.plugin`'s
records; it must not know any source's format, nor the application layer
or the CLI above it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from itertools import compress, repeat
from operator import gt, is_not
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert, text, update

from hub.config.model import Config, SourceInstance
from hub.host import Host, describe
from hub.plugin.limits import column_text_error, record_text_errors, storable, text_error
from hub.plugin.types import Origin, PluginFailure, PullBatch, PullContext, RejectedRow, UsageColumns, UsageRecord
from hub.quantities import MAX_UNITS, NANOS, parts_error, quantity_error
from hub.store.tables import pull_runs
from hub.store.usage import WriteCounts, has_open_quarantine, load_checkpoint, utcnow
from hub.store.writer import BatchWrite, open_writer

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
            _store_batches(host, engine, instance.name, _guarded_batches(host, instance.name, started), ctx,
                           open_entries, result, progress)
        if len(host.failures) > failures_before:
            result.failure = host.failures[-1]
        with engine.begin() as conn:
            conn.execute(update(pull_runs).where(pull_runs.c.id == run_id).values(
                finished_at=utcnow(), status="failed" if result.failure else "ok",
                imported=result.counts.imported, updated=result.counts.updated,
                quarantined=result.counts.quarantined, error=result.failure.message if result.failure else None,
            ))
    return result


def _store_batches(host: Host, engine: Engine, source: str, batches: Iterator[PullBatch], ctx: PullContext,
                   open_entries: bool, result: PullResult, progress: Progress | None) -> None:
    """Store each batch in its own transaction, with its checkpoint."""

    def count_stored() -> None:
        for batch, counts in writer.take_stored():
            result.counts.add(counts)
            if progress and batch.progress:
                progress(source, *batch.progress)

    try:
        writer = open_writer(engine, source, ctx.now, open_entries)
    except Exception as exc:  # noqa: BLE001 - one source's failure stops that source only
        host.failures.append(PluginFailure(source, "store", describe(exc)))
        return
    try:
        for batch in batches:
            writer.write(_checked(batch, ctx))
            count_stored()
        writer.finish()
    except Exception as exc:  # noqa: BLE001 - one source's failure stops that source only
        # Nothing of the failed batch was stored (its transaction rolled
        # back): the next pull resumes from the last checkpoint.
        host.failures.append(PluginFailure(source, "store", describe(exc)))
    finally:
        writer.close()
        count_stored()


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
        if batch.columns is not None:
            problem = columns_shape_error(batch.columns)
            if problem:
                host.failures.append(PluginFailure(name, "pull", f"yielded malformed columns: {problem}"))
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
    errors.extend(text_errors(record))
    return errors


def text_errors(record: UsageRecord) -> list[str]:
    """What of ``record``'s text no backend could store (:mod:`hub.plugin.limits`):
    the same refusal on SQLite as on PostgreSQL."""
    labels = record.labels
    # labels of another shape are a source's bug: the store refuses them
    pairs = [(k, v) for k, v in labels.items() if isinstance(k, str) and isinstance(v, str)] \
        if labels and isinstance(labels, Mapping) else []
    return record_text_errors(((name, getattr(record, name)) for name in
                               ("record_id", "account", "resource_id", "meter", "unit")), pairs)


def columns_shape_error(cols: UsageColumns) -> str | None:
    """What makes ``cols`` unusable as a whole (a source's bug), or ``None``."""
    if not isinstance(cols, UsageColumns):
        return f"{type(cols).__name__}, not UsageColumns"
    n = len(cols.record_id)
    sized = {"account": cols.account, "resource_id": cols.resource_id, "meter": cols.meter, "start": cols.start,
             "end": cols.end, "quantity_units": cols.quantity_units, "quantity_nanos": cols.quantity_nanos,
             **({"unit": cols.unit} if cols.unit is not None else {}),
             **({"line": cols.line} if cols.line is not None else {}),
             **{f"labels[{name!r}]": values for name, values in cols.labels.items()}}
    for name, values in sized.items():
        if len(values) != n:
            return f"{name} has {len(values)} values, record_id {n}"
    if cols.location is not None and not isinstance(cols.location, str):
        return "location must be a string or None"
    if cols.line is not None and not set(map(type, cols.line)) <= _INT:
        return "line must hold integers"
    for name, values in cols.labels.items():
        if not isinstance(name, str) or not set(map(type, values)) <= _STR:
            return "labels must map strings to columns of strings"
    return None


_INT = {int}
_STR = {str}
_INT_OR_NONE = {int, type(None)}
_STR_OR_NONE = {str, type(None)}


def column_errors(cols: UsageColumns, ctx: PullContext) -> dict[int, list[str]]:
    """The errors of each bad row of ``cols`` (by index), as the hub sees
    them: :func:`record_errors` for columns. Checked a column at a time;
    row by row only when a column holds something wrong."""
    units, nanos, start, end = cols.quantity_units, cols.quantity_nanos, cols.start, cols.end
    ok = (
        set(map(type, cols.record_id)) <= _STR and "" not in cols.record_id
        and set(map(type, cols.resource_id)) <= _STR and "" not in cols.resource_id
        and set(map(type, units)) <= _INT and set(map(type, nanos)) <= _INT
        and (not units or (min(units) >= 0 and max(units) < MAX_UNITS and min(nanos) >= 0 and max(nanos) < NANOS))
        and set(map(type, start)) <= _INT and set(map(type, end)) <= _INT_OR_NONE
        and ctx.accounts.issuperset(cols.account) and set(cols.meter) <= ctx.meters.keys()
        and (cols.unit is None or set(map(type, cols.unit)) <= _STR_OR_NONE)
    )
    if ok:  # what either backend would refuse (hub.plugin.limits)
        ok = not (column_text_error("record_id", cols.record_id) or column_text_error("account", set(cols.account))
                  or column_text_error("resource_id", cols.resource_id) or column_text_error("meter", set(cols.meter))
                  or (cols.unit is not None and column_text_error("unit", set(cols.unit) - {None}))
                  or column_text_error("labels", cols.labels) or column_text_error("labels", (
                      text for values in cols.labels.values() for text in values)))
    if ok:
        if None in end:
            ends = list(map(is_not, end, repeat(None)))
            ok = not any(map(gt, compress(start, ends), compress(end, ends)))
        else:
            ok = not any(map(gt, start, end))
    if ok and cols.unit is not None:
        ok = not any(ctx.reference_errors("", m, u) for m, u in set(zip(cols.meter, cols.unit)))
    if ok:
        return {}
    bad = {}
    for i in range(len(cols.record_id)):
        errors = record_errors(UsageRecord(
            cols.record_id[i], cols.account[i], cols.resource_id[i], cols.meter[i], cols.start[i], cols.end[i],
            Decimal(0), cols.unit[i] if cols.unit is not None else None,
            {name: values[i] for name, values in cols.labels.items() if values[i]}), ctx)
        errors = [e for e in errors if not e.startswith("quantity:")]
        error = parts_error(cols.quantity_units[i], cols.quantity_nanos[i])
        if error:
            errors.append(error)
        if errors:
            bad[i] = errors
    return bad


def _take(cols: UsageColumns, rows: list[int]) -> UsageColumns:
    """The rows ``rows`` of ``cols``."""
    def pick(values: Sequence[Any]) -> list[Any]:
        return [values[i] for i in rows]

    return UsageColumns(
        pick(cols.record_id), pick(cols.account), pick(cols.resource_id), pick(cols.meter), pick(cols.start),
        pick(cols.end), pick(cols.quantity_units), pick(cols.quantity_nanos),
        pick(cols.unit) if cols.unit is not None else None,
        {name: pick(values) for name, values in cols.labels.items()}, cols.location,
        pick(cols.line) if cols.line is not None else None)


def _checked(batch: PullBatch, ctx: PullContext) -> BatchWrite:
    """``batch`` after the hub's own check, whatever the source did: a
    record it cannot attribute or store exactly is quarantined, never
    stored and never dropped."""
    valid: list[UsageRecord] = []
    rejected: list[RejectedRow] = list(batch.rejected)
    for record in batch.records:
        errors = record_errors(record, ctx)
        if errors:
            origin = record.origin or Origin(location=f"record {record.record_id}")
            rejected.append(RejectedRow(origin, tuple(errors), record.record_id))
        else:
            valid.append(record)
    cols = batch.columns
    if cols is not None:
        n = len(cols)
        bad = column_errors(cols, ctx) if n else {}
        for i, errors in bad.items():
            line = cols.line[i] if cols.line is not None else None
            origin = Origin(cols.location, line) if cols.location is not None else Origin(f"record {cols.record_id[i]}")
            rejected.append(RejectedRow(origin, tuple(errors), cols.record_id[i] if isinstance(cols.record_id[i], str) else None))
        keep = None if not bad else [i for i in range(n) if i not in bad]
        ids = cols.record_id if keep is None else [cols.record_id[i] for i in keep]
        if len(set(ids)) != len(ids):  # the last version of an id in the batch wins
            last = dict(zip(ids, keep if keep is not None else range(n)))
            keep = sorted(last.values())
        if keep is not None:
            cols = _take(cols, keep)
        if valid and len(cols):  # a record id in both: the column row wins
            in_columns = set(cols.record_id)
            valid = [r for r in valid if r.record_id not in in_columns]
    # Rows replaced by a valid version later in the same batch are stored
    # resolved and not counted: "quarantined" is what is left to fix.
    later = {}
    if rejected:
        later = {r.record_id: (r.origin.location, r.origin.line) for r in valid
                 if r.origin and r.origin.line is not None}
        if cols is not None and cols.location is not None and cols.line is not None:
            later.update(zip(cols.record_id, ((cols.location, line) for line in cols.line)))
    if cols is not None and cols.location is not None and storable(cols.location) != cols.location:
        cols = dataclasses.replace(cols, location=storable(cols.location))
    valid = [_storable_origin(r) for r in valid]
    rejected = [_storable_row(r) for r in rejected]
    # the locations of what is read again, as the entries keep them
    superseded = tuple((storable(location), line) for location, line in batch.superseded)
    later = {rid: (storable(location), line) for rid, (location, line) in later.items()}
    return BatchWrite(valid, cols, rejected, later, superseded, batch.checkpoint, tag=batch)


def _storable_origin(record: UsageRecord) -> UsageRecord:
    """``record`` with an origin every backend can store."""
    origin = record.origin
    if origin is None or storable(origin.location) == origin.location:
        return record
    return record._replace(origin=origin._replace(location=storable(origin.location)))


def _storable_row(row: RejectedRow) -> RejectedRow:
    """``row`` as quarantine can keep it on every backend: its text with a
    NUL shown as ``\\x00``; no record id when the id itself cannot be
    stored (it is an error of the row, and no fixed row can resolve it)."""
    origin, errors, record_id = row.origin, row.errors, row.record_id
    raw = origin.raw
    clean = (storable(origin.location), origin.line, storable(raw) if isinstance(raw, str) else raw)
    if clean != tuple(origin):
        origin = Origin(*clean)
    if any(isinstance(e, str) and storable(e) != e for e in errors):
        errors = tuple(storable(e) if isinstance(e, str) else e for e in errors)
    if isinstance(record_id, str) and text_error("record_id", record_id):
        record_id = None
    if (origin, errors, record_id) == (row.origin, row.errors, row.record_id):
        return row
    return RejectedRow(origin, errors, record_id)


@contextlib.contextmanager
def _source_lock(engine: Engine, source: str) -> Iterator[bool]:
    """Hold an exclusive lock on pulling ``source`` across processes.

    Yields ``False`` when another pull of ``source`` in the same store holds
    it (in this process or another); the lock goes with the process that
    holds it, however it ends.

    PostgreSQL: a session advisory lock, keyed by the schema too.

    SQLite: an ``flock`` on ``<database>.pull-<key>.lock``, a file beside the
    database that exists only while a pull holds it: it is created on
    acquiring and unlinked on release, while still locked. Deleting an
    flock file is racy by itself: a second pull may have opened the file
    before it was unlinked and gain the lock on that orphaned inode once it
    is released, while a third creates a new file at the path and locks
    that. So a pull holds the lock only if, once locked, the file it holds
    is still the one at the path (same device and inode: an inode stays
    allocated while open, so its number cannot be reused meanwhile); if not,
    it opens the path again. Only the holder unlinks, so the file a holder
    checked stays at the path until its own release.

    Not a byte range of the database file itself: POSIX record locks belong
    to the process, so two pulls in one process would not exclude each
    other, and closing any descriptor of the file drops every lock the
    process holds on it, SQLite's own included. Not a row in the database:
    a crashed pull would leave it held.
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
    with _file_lock(Path(f"{database}.pull-{key & 0xFFFFFFFF:08x}.lock")) as got:
        yield got


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[bool]:
    """An exclusive ``flock`` on ``path``, which exists only while it is
    held (see :func:`_source_lock`); ``False`` when another holds it."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            yield False
            return
        held = os.fstat(fd)
        try:
            current = os.stat(path)
        except FileNotFoundError:
            current = None
        if current is not None and (current.st_dev, current.st_ino) == (held.st_dev, held.st_ino):
            break
        os.close(fd)  # the file of a lock released since it was opened: try the one at the path now
    try:
        yield True
    finally:
        # Unlinked before the lock goes, so that nobody unlinks a file another
        # pull holds; a file left behind (it could not be removed) is merely
        # locked again by the next pull.
        with contextlib.suppress(OSError):
            path.unlink()
        os.close(fd)
