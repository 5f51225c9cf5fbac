"""Storing a source's batches: one transaction per batch, with its checkpoint.

:class:`BatchWriter` stores each batch before the source reads the next.
On a SQLite file, :class:`PipelinedSqliteWriter` does the same work, in the
same transactions, but lets the source read batch ``k + 1`` while batch
``k``'s upsert runs: the upsert is one SQL statement over a stage table,
run in a worker thread, and SQLite runs a statement without holding
Python's GIL, so parsing and storing use both cores. What is committed, and
when a batch counts as stored, does not change: batch ``k`` is committed
(with its checkpoint) before batch ``k + 1``'s transaction begins, and a
batch that cannot be stored stops the pull with nothing of it stored.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import Connection, Engine, text

from hub.plugin_types import RejectedRow, UsageColumns, UsageRecord
from hub.store.usage import (
    STAGE_COLUMNS,
    WriteCounts,
    column_upsert_sql,
    quarantine_rows,
    resolve_imported,
    save_checkpoint,
    stage_columns,
    supersede_locations,
    upsert_columns,
    upsert_records,
    utcnow,
)


@dataclass
class BatchWrite:
    """One batch as the hub stores it, after its own check.

    - ``records`` / ``columns``: the valid records (columns: each record id
      at most once); ``rejected``: what is quarantined.
    - ``resolved_by``: record id -> (location, line) of its valid version
      in this batch (see :func:`~hub.store.usage.quarantine_rows`).
    - ``superseded`` / ``checkpoint``: as in :class:`~hub.plugin_types.PullBatch`.
    - ``tag``: handed back with the batch's counts once it is stored.
    """

    records: Sequence[UsageRecord] = ()
    columns: UsageColumns | None = None
    rejected: Sequence[RejectedRow] = ()
    resolved_by: Mapping[str, tuple[str, int]] = field(default_factory=dict)
    superseded: Sequence[tuple[str, int]] = ()
    checkpoint: Mapping[str, Any] | None = None
    tag: Any = None

    def record_ids(self) -> list[str]:
        ids = [r.record_id for r in self.records]
        if self.columns is not None:
            ids += self.columns.record_id
        return ids


class BatchWriter:
    """Stores each batch in its own transaction, before returning."""

    def __init__(self, engine: Engine, source: str, received_s: int, open_entries: bool) -> None:
        self.engine = engine
        self.source = source
        self.received_s = received_s
        #: whether the source may have open quarantine entries (then re-read
        #: input closes them, and valid versions resolve them)
        self.open_entries = open_entries
        self._stored: list[tuple[Any, WriteCounts]] = []

    def write(self, batch: BatchWrite) -> None:
        """Store ``batch``, or start to.

        Raises when a batch cannot be stored: nothing of it is, and the
        writer must not be used any more (but :meth:`take_stored`).
        """
        with self.engine.begin() as conn:
            counts = self._before_upsert(conn, batch)
            if batch.columns is not None:
                counts.add(upsert_columns(conn, self.source, batch.columns, self.received_s))
        self._stored.append((batch.tag, counts))

    def finish(self) -> None:
        """Wait for the batch still being stored, if any."""

    def take_stored(self) -> list[tuple[Any, WriteCounts]]:
        """The batches committed since the last call: ``(tag, counts)``."""
        stored, self._stored = self._stored, []
        return stored

    def close(self) -> None:
        """Release what the writer holds (a batch not finished is rolled back)."""

    def _before_upsert(self, conn: Connection, batch: BatchWrite) -> WriteCounts:
        """Everything of a batch but the upsert of its columns, in order."""
        now = utcnow()
        if self.open_entries:
            supersede_locations(conn, self.source, batch.superseded, now)
        counts = upsert_records(conn, self.source, batch.records, self.received_s)
        if self.open_entries:
            counts.resolved = resolve_imported(conn, self.source, batch.record_ids(), now)
        counts.quarantined = quarantine_rows(conn, self.source, batch.rejected, now, batch.resolved_by)
        if batch.checkpoint is not None:
            save_checkpoint(conn, self.source, batch.checkpoint, now)
        self.open_entries = self.open_entries or counts.quarantined > 0
        return counts


#: scratch directories are named ``hub-stage-<pid>-<random>``
STAGE_PREFIX = "hub-stage-"


def _remove_orphan_stages() -> None:
    """Remove the scratch directories of pulls that were killed: those whose
    process is gone (a pull removes its own when it ends)."""
    root = Path(tempfile.gettempdir())
    for path in root.glob(f"{STAGE_PREFIX}*-*"):
        pid = path.name[len(STAGE_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


#: WAL pages between automatic checkpoints while a pipelined writer pulls
WAL_AUTOCHECKPOINT = 10_000


class PipelinedSqliteWriter(BatchWriter):
    """:class:`BatchWriter` on a SQLite file, storing batch ``k`` while the
    source reads batch ``k + 1``.

    The main thread stages a batch's column rows into one of two tables of
    a scratch database (its own file, in WAL mode, attached read-only to
    the store's connection), then opens the batch's transaction and writes
    its quarantine entries and checkpoint. A worker thread runs the upsert
    from the stage table and the COMMIT, without the GIL. The next batch is
    staged into the other table meanwhile; its transaction begins only
    after the previous one committed.
    """

    def __init__(self, engine: Engine, source: str, received_s: int, open_entries: bool) -> None:
        super().__init__(engine, source, received_s, open_entries)
        _remove_orphan_stages()
        self._dir = tempfile.mkdtemp(prefix=f"{STAGE_PREFIX}{os.getpid()}-")
        self._conn: Connection | None = None
        self._stage: sqlite3.Connection | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._pending: tuple[Future[tuple[int, int]], Any, WriteCounts, int, Any] | None = None
        self._slot = 0
        self._autocheckpoint = 1000
        try:
            path = os.path.join(self._dir, "stage.db")
            self._stage = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._stage.execute("PRAGMA journal_mode=WAL")
            self._stage.execute("PRAGMA synchronous=OFF")
            self._stage.execute("PRAGMA busy_timeout=60000")
            for slot in (0, 1):
                self._stage.execute(f"CREATE TABLE slot{slot} ({', '.join(STAGE_COLUMNS)})")
            self._conn = engine.connect()
            self._dbapi = self._conn.connection.dbapi_connection
            # Checkpoint the WAL every 40 MB instead of every 4 MB while
            # pulling: batches rewrite pages all over the start_s index, and
            # each checkpoint copies them back and syncs the disk twice
            # (12.8 -> 7.5 us a row at 1 M rows). The worker runs them.
            self._autocheckpoint = self._dbapi.execute("PRAGMA wal_autocheckpoint").fetchone()[0]  # type: ignore[union-attr]
            self._dbapi.execute(f"PRAGMA wal_autocheckpoint={max(self._autocheckpoint, WAL_AUTOCHECKPOINT)}")  # type: ignore[union-attr]
            # Read-only: BEGIN IMMEDIATE takes no write lock on it, so the
            # next batch can be staged while this one's transaction runs.
            self._dbapi.execute("ATTACH DATABASE ? AS hub_stage", (f"file:{quote(path)}?mode=ro",))  # type: ignore[union-attr]
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="hub-upsert")
        except BaseException:
            self.close()
            raise

    def write(self, batch: BatchWrite) -> None:
        assert self._conn is not None and self._stage is not None and self._pool is not None
        slot = self._slot
        self._slot ^= 1
        names: tuple[str, ...] = ()
        if batch.columns is not None and len(batch.columns):
            names, values = stage_columns(batch.columns)
            # The other slot may still be read by the previous batch's upsert.
            self._stage.execute("BEGIN IMMEDIATE")
            try:
                self._stage.execute(f"DELETE FROM slot{slot}")
                self._stage.executemany(
                    f"INSERT INTO slot{slot} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
                    zip(*values))
                self._stage.execute("COMMIT")
            except BaseException:
                self._stage.execute("ROLLBACK")
                raise
        self.finish()
        trans = self._conn.begin()  # BEGIN IMMEDIATE, after the staged rows were committed
        try:
            counts = self._before_upsert(self._conn, batch)
            before = self._conn.scalar(text("SELECT max(id) FROM usage_records")) or 0
        except BaseException:
            trans.rollback()
            raise
        sql = None
        if names:
            sql = column_upsert_sql("sqlite", f"hub_stage.slot{slot}", names, returning=False)
        params = {"source": self.source, "received": self.received_s,
                  "location": batch.columns.location if batch.columns is not None else None}
        future = self._pool.submit(_upsert_and_commit, self._dbapi, sql, params, before)
        self._pending = (future, trans, counts, len(batch.columns) if batch.columns is not None else 0, batch.tag)

    def finish(self) -> None:
        if self._pending is None:
            return
        future, trans, counts, rows, tag = self._pending
        self._pending = None
        try:
            changed, imported = future.result()
        except BaseException:
            trans.rollback()
            raise
        trans.commit()  # committed by the worker: this only closes SQLAlchemy's transaction
        counts.imported += imported
        counts.updated += changed - imported
        counts.unchanged += rows - changed
        self._stored.append((tag, counts))

    def close(self) -> None:
        if self._pending is not None:
            # A batch still in the worker when the next one failed: what the
            # worker committed is stored, and counted.
            try:
                self.finish()
            except BaseException:  # noqa: BLE001 - rolled back by finish(); the caller has a failure already
                pass
        if self._pool is not None:
            self._pool.shutdown()
        if self._conn is not None:
            try:
                if self._conn.in_transaction():
                    self._conn.rollback()
                self._dbapi.execute("DETACH DATABASE hub_stage")  # type: ignore[union-attr]
                self._dbapi.execute(f"PRAGMA wal_autocheckpoint={self._autocheckpoint}")  # type: ignore[union-attr]
            except sqlite3.Error:
                self._conn.invalidate()  # never hand a connection with the stage attached back to the pool
            self._conn.close()
        if self._stage is not None:
            self._stage.close()
        shutil.rmtree(self._dir, ignore_errors=True)


def _upsert_and_commit(dbapi: sqlite3.Connection, sql: str | None, params: dict[str, Any],
                       before: int) -> tuple[int, int]:
    """In the worker thread: the upsert and the COMMIT of a batch;
    ``(rows inserted or changed, rows inserted)``."""
    cursor = dbapi.cursor()
    try:
        changed = imported = 0
        if sql is not None:
            cursor.execute(sql, params)
            changed = cursor.rowcount
            # New rows get ids above the largest before (ids are never reused
            # below it); updated rows keep theirs.
            imported = cursor.execute("SELECT count(*) FROM usage_records WHERE id > ?", (before,)).fetchone()[0]
        cursor.execute("COMMIT")
        return changed, imported
    finally:
        cursor.close()


def open_writer(engine: Engine, source: str, received_s: int, open_entries: bool) -> BatchWriter:
    """The writer for ``engine``: pipelined on a SQLite file, plain elsewhere."""
    database = engine.url.database
    if engine.dialect.name == "sqlite" and database and database != ":memory:" and not database.startswith("file:"):
        return PipelinedSqliteWriter(engine, source, received_s, open_entries)
    return BatchWriter(engine, source, received_s, open_entries)
