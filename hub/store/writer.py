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
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import Connection, Engine, text

from hub.plugin.types import RejectedRow, UsageColumns, UsageRecord
from hub.store import rollups
from hub.store.db import sqlite_file
from hub.store.usage import (
    STAGE_COLUMNS,
    WriteCounts,
    column_upsert_sql,
    insert_columns_sqlite,
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
    - ``superseded`` / ``checkpoint``: as in :class:`~hub.plugin.types.PullBatch`.
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


#: seconds between two checkpoints of the WAL while a pipelined writer pulls
WAL_CHECKPOINT_INTERVAL = 1.0
#: WAL pages (40 MB) past which the worker has the WAL start over
WAL_RESTART_PAGES = 10_000


class _WalCheckpointer:
    """Checkpoints the store's WAL from a thread and a connection of its own
    while a pull writes, instead of the writer's COMMITs doing it.

    A checkpoint copies the WAL's pages back into the database file and
    syncs both (``synchronous=NORMAL``): seconds of waiting for the disk per
    million rows, which the worker spent in its COMMITs while the next batch
    waited for it. A PASSIVE checkpoint takes no lock that the writer needs
    and waits for no one; SQLite runs it without the GIL. Durability does
    not change: a commit is as durable as before (in the WAL), and a
    checkpoint cut short by a crash is completed or redone by the next
    connection, as SQLite always does. At most one checkpoint per
    :data:`WAL_CHECKPOINT_INTERVAL` seconds, after a commit.

    The WAL starts over from its beginning only when a write transaction
    begins with every frame checkpointed, which never happens while this
    thread checkpoints behind a writer that never stops (a 1 M row pull grew
    it to 790 MB). So once it holds :data:`WAL_RESTART_PAGES` pages,
    :attr:`large` asks the worker to checkpoint right after a COMMIT, before
    the next batch begins: what is left to copy then is what was committed
    since this thread's last checkpoint, and the next batch restarts the WAL.
    """

    def __init__(self, path: str) -> None:
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA busy_timeout=5000")  # PASSIVE waits for no lock; reading the WAL index may
        self._committed = threading.Event()
        self._stopping = threading.Event()
        self.error: BaseException | None = None
        #: checkpoints run so far
        self.checkpoints = 0
        #: the WAL holds WAL_RESTART_PAGES pages or more
        self.large = False
        self._thread = threading.Thread(target=self._run, name="hub-wal-checkpoint", daemon=True)
        self._thread.start()

    def committed(self) -> None:
        """A batch was committed: its pages are in the WAL."""
        self._committed.set()

    def _run(self) -> None:
        try:
            while True:
                self._committed.wait()
                if self._stopping.is_set():
                    return
                self._committed.clear()
                _busy, frames, _done = self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                self.checkpoints += 1
                self.large = frames >= WAL_RESTART_PAGES
                if self._stopping.wait(WAL_CHECKPOINT_INTERVAL):
                    return
        except BaseException as exc:  # noqa: BLE001 - the commits' own checkpoints take over (see stop)
            self.error = exc

    def stop(self) -> None:
        """Wait for a checkpoint under way, then close (what was committed
        since is checkpointed by the next COMMIT over wal_autocheckpoint)."""
        self._stopping.set()
        self._committed.set()
        self._thread.join()
        self._conn.close()


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
        self._pending: tuple[Future[tuple[int, int, bool]], Any, WriteCounts, int, Any] | None = None
        self._slot = 0
        self._autocheckpoint = 1000
        self._checkpointer: _WalCheckpointer | None = None
        #: rows staged so far, records in the store when the pull began
        self._written = self._records_at_open = 0
        self._index_dropped = False
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
            # Temporary storage in files (the OS caches them), not memory: an
            # upsert that updates records keeps the original of every page
            # it changes in its statement journal, which is temporary
            # storage; in memory, 50,000 late records changed in a 5 M store
            # held 180 MB there (bench/bench_rating.py, re-rate after a late
            # pull: peak 434 -> 264 MB, the pull no slower).
            self._dbapi.execute("PRAGMA temp_store=FILE")  # type: ignore[union-attr]
            # The WAL is checkpointed by a thread of its own while pulling,
            # not by the worker's COMMITs (see _WalCheckpointer).
            self._autocheckpoint = self._dbapi.execute("PRAGMA wal_autocheckpoint").fetchone()[0]  # type: ignore[union-attr]
            main = [row[2] for row in self._dbapi.execute("PRAGMA database_list") if row[1] == "main"][0]  # type: ignore[union-attr]
            self._dbapi.execute("PRAGMA wal_autocheckpoint=0")  # type: ignore[union-attr]
            self._checkpointer = _WalCheckpointer(main)
            # Read-only: BEGIN IMMEDIATE takes no write lock on it, so the
            # next batch can be staged while this one's transaction runs.
            self._dbapi.execute("ATTACH DATABASE ? AS hub_stage", (f"file:{quote(path)}?mode=ro",))  # type: ignore[union-attr]
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="hub-upsert")
            self._records_at_open = self._dbapi.execute("SELECT MAX(id) FROM usage_records").fetchone()[0] or 0  # type: ignore[union-attr]
            # dropped by a bulk load that was killed: built again at the end
            self._index_dropped = self._dbapi.execute(  # type: ignore[union-attr]
                "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = ?", (ACCOUNT_INDEX,)).fetchone()[0] == 0
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
                insert_columns_sqlite(self._stage, f"slot{slot}", names, values)
                self._stage.execute("COMMIT")
            except BaseException:
                self._stage.execute("ROLLBACK")
                raise
        self.finish()
        trans = self._conn.begin()  # BEGIN IMMEDIATE, after the staged rows were committed
        try:
            if not self._index_dropped and self._written >= BULK_MIN_ROWS and self._written >= self._records_at_open:
                # A bulk load: the account index is built again at the end
                # (close), in one sort, instead of row by row.
                self._conn.exec_driver_sql(f"DROP INDEX IF EXISTS {ACCOUNT_INDEX}")
                self._index_dropped = True
            self._written += len(batch.columns) if names and batch.columns is not None else 0
            counts = self._before_upsert(self._conn, batch)
            before = self._conn.scalar(text("SELECT max(id) FROM usage_records")) or 0
        except BaseException:
            trans.rollback()
            raise
        sql = stamp = None
        if names:
            sql = column_upsert_sql("sqlite", f"hub_stage.slot{slot}", names, returning=False)
            stamp = _STAMP_BATCH.format(stage=f"hub_stage.slot{slot}")
        params = {"source": self.source, "received": self.received_s,
                  "location": batch.columns.location if batch.columns is not None else None}
        restart = self._checkpointer is not None and self._checkpointer.large
        future = self._pool.submit(_upsert_and_commit, self._dbapi, sql, params, before, restart, stamp,
                                   f"hub_stage.slot{slot}" if names else None)
        self._pending = (future, trans, counts, len(batch.columns) if batch.columns is not None else 0, batch.tag)

    def finish(self) -> None:
        if self._pending is None:
            return
        future, trans, counts, rows, tag = self._pending
        self._pending = None
        try:
            changed, imported, restarted = future.result()
        except BaseException:
            trans.rollback()
            raise
        trans.commit()  # committed by the worker: this only closes SQLAlchemy's transaction
        if self._checkpointer is not None:
            if restarted:
                self._checkpointer.large = False
            self._checkpointer.committed()
            if self._checkpointer.error is not None:  # the commits checkpoint again, as without it
                self._dbapi.execute(f"PRAGMA wal_autocheckpoint={self._autocheckpoint}")  # type: ignore[union-attr]
                self._checkpointer.stop()
                self._checkpointer = None
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
        if self._checkpointer is not None:
            self._checkpointer.stop()
        if self._conn is not None:
            try:
                if self._conn.in_transaction():
                    self._conn.rollback()
                if self._index_dropped:
                    # its sort spills to files past the page cache, as the
                    # writer's temporary storage does: memory stays flat in
                    # the size of the store
                    self._dbapi.execute(CREATE_ACCOUNT_INDEX)  # type: ignore[union-attr]
                self._dbapi.execute("PRAGMA temp_store=MEMORY")  # type: ignore[union-attr]  # the hub's default
                self._dbapi.execute("DETACH DATABASE hub_stage")  # type: ignore[union-attr]
                self._dbapi.execute(f"PRAGMA wal_autocheckpoint={self._autocheckpoint}")  # type: ignore[union-attr]
            except sqlite3.Error:
                self._conn.invalidate()  # never hand a connection with the stage attached back to the pool
            self._conn.close()
        if self._stage is not None:
            self._stage.close()
        shutil.rmtree(self._dir, ignore_errors=True)


#: the account index of ``usage_records`` (migration 0005), which a bulk
#: load drops after :data:`BULK_MIN_ROWS` rows, once it has written at least
#: as many rows as the store held, and builds again when it ends: one sort
#: instead of an insert into the index per row (about 3 us a row). A pull
#: killed meanwhile leaves it dropped: the next pull of any source into the
#: SQLite file builds it; ratings are exact without it, only one account's
#: charges are slower meanwhile.
ACCOUNT_INDEX = "ix_usage_records_account"
CREATE_ACCOUNT_INDEX = (f"CREATE INDEX IF NOT EXISTS {ACCOUNT_INDEX} ON usage_records (account, start_s) "
                        "WHERE account IS NOT NULL")
BULK_MIN_ROWS = 200_000


#: the usage generation and change days of a whole staged batch, for the
#: rating rollups (migration 0006): ``n`` + 1 and the batch flag before the
#: upsert (the per-row insert trigger then stays quiet), the days of the
#: batch's starts stamped after it, the flag cleared before the COMMIT (no
#: other connection ever sees it set). Updated rows' old days are stamped by
#: the update trigger, which always runs.
_BEGIN_BATCH = "UPDATE usage_generation SET n = n + 1, batch = 1 WHERE id = 1"
_STAMP_BATCH = ("INSERT INTO usage_change_days (day, generation) "
                "SELECT DISTINCT start_s / 86400, (SELECT n FROM usage_generation WHERE id = 1) FROM {stage} WHERE true "
                "ON CONFLICT (day) DO UPDATE SET generation = excluded.generation")
_END_BATCH = "UPDATE usage_generation SET batch = 0 WHERE id = 1"


def _upsert_and_commit(dbapi: sqlite3.Connection, sql: str | None, params: dict[str, Any],
                       before: int, restart: bool = False, stamp: str | None = None,
                       stage: str | None = None) -> tuple[int, int, bool]:
    """In the worker thread: the upsert and the COMMIT of a batch, with its
    ``stamp`` of the days it changed and its changes added to the rating
    rollups (from its ``stage`` table); then (``restart``) a checkpoint of
    the WAL so that the next batch restarts it; ``(rows inserted or
    changed, rows inserted, whether it was checkpointed whole)``."""
    cursor = dbapi.cursor()
    try:
        changed = imported = 0
        if sql is not None:
            execute = rollups.dbapi_execute(cursor)
            carried = rollups.apply_batch(execute, "sqlite", stage, params["source"]) if stage else []
            if stamp is not None:
                cursor.execute(_BEGIN_BATCH)
            cursor.execute(sql, params)
            changed = cursor.rowcount
            if stamp is not None:
                cursor.execute(stamp)
                cursor.execute(_END_BATCH)
            rollups.carry(execute, carried)
            # New rows get ids above the largest before (ids are never reused
            # below it); updated rows keep theirs.
            imported = cursor.execute("SELECT count(*) FROM usage_records WHERE id > ?", (before,)).fetchone()[0]
        cursor.execute("COMMIT")
        restarted = False
        if restart:
            try:
                busy, frames, done = cursor.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                restarted = not busy and frames == done
            except sqlite3.Error:  # the batch is committed; the WAL is only longer
                pass
        return changed, imported, restarted
    finally:
        cursor.close()


def open_writer(engine: Engine, source: str, received_s: int, open_entries: bool) -> BatchWriter:
    """The writer for ``engine``: pipelined on a SQLite file, plain elsewhere."""
    if sqlite_file(engine) is not None:
        return PipelinedSqliteWriter(engine, source, received_s, open_entries)
    return BatchWriter(engine, source, received_s, open_entries)
