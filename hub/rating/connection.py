"""A rating's connection and its groups of accounts: the session settings
a rating runs with, the accounts by time zone, and whether a group's
records are read through the account index or by a scan.

- On PostgreSQL the rating's transaction runs with ``jit = off`` and a
  larger ``work_mem``, in one snapshot (``REPEATABLE READ``); on SQLite
  the sorter of its ``GROUP BY`` gets helper threads.
- A rating pauses Python's cyclic garbage collector
  (:func:`cyclic_gc_paused`).
- A time zone's group of accounts is filtered with ``IN`` only when it is
  small (:data:`IN_LIST_MAX`), otherwise in Python.
- On SQLite a group with more than :data:`_INDEX_SHARE` of the store's
  records is scanned instead of read through ``ix_usage_records_account``:
  walking the index to half a million records costs more than a scan
  (:func:`index_pays`).

Knows connections and the accounts' time zones; knows nothing of products,
prices or rollups.
"""

from __future__ import annotations

import gc
import os
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, bindparam, text

from hub.config.model import Config
from hub.periods import Period
from hub.rating.sql import BY_ACCOUNT

#: a group at least this large is not filtered in SQL (see :func:`groups`)
IN_LIST_MAX = 64
#: on SQLite, a group with more than this share of the store's records is
#: scanned rather than read through the index: a record read through the
#: index costs about 30 times one read by a scan
_INDEX_SHARE = 1 / 32

#: SQLite's sorter threads for a rating's ``GROUP BY`` (it sorts millions
#: of rows; with helper threads it sorts its spilled runs in parallel)
_SQLITE_SORTER_THREADS = max(1, min(4, os.cpu_count() or 1))

#: PostgreSQL's memory per hash aggregate of a rating (the default 4 MB made
#: the aggregate of 10,000 accounts x 6 products spill to disk in batches)
_PG_WORK_MEM = "64MB"


@contextmanager
def _rating_session(conn: Connection) -> Iterator[None]:
    """The connection's settings for a rating, put back after it.

    - PostgreSQL: ``SET LOCAL jit = off``. JIT compiled each big query for
      seconds (a scan of every record costs far above ``jit_above_cost``)
      and gains nothing on these simple expressions; LOCAL: only this
      transaction, which the pool's connection ends.
    - SQLite: ``PRAGMA threads`` (helper threads of the sorter), put back
      to its value before, since the pool keeps the connection.
    """
    dialect = conn.dialect.name
    if dialect == "postgresql":
        conn.execute(text("SET LOCAL jit = off"))
        conn.execute(text(f"SET LOCAL work_mem = '{_PG_WORK_MEM}'"))
        yield
        return
    if dialect != "sqlite":
        yield
        return
    before = int(conn.exec_driver_sql("PRAGMA threads").scalar() or 0)
    conn.exec_driver_sql(f"PRAGMA threads = {int(_SQLITE_SORTER_THREADS)}")
    try:
        yield
    finally:
        conn.exec_driver_sql(f"PRAGMA threads = {before}")


@contextmanager
def rating_connection(engine: Engine) -> Iterator[Connection]:
    """A connection for a rating, in :func:`_rating_session`, committing
    the rollups it stored (the rest of its transaction only read)."""
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            # one snapshot for every statement of the rating: the rollups or
            # finished records it reads and the running records it adds
            # must be the same usage's
            conn.execution_options(isolation_level="REPEATABLE READ")
        with _rating_session(conn):
            yield conn
        if conn.info.pop("hub_rollups_stored", False):
            conn.commit()


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused for a rating, then as it was.

    A rating of every account makes a few hundred thousand objects that
    live on (charges, their breakdowns, the rows they came from) and no
    reference cycle: each of them counts towards the collector's
    thresholds, so it runs full collections again and again, each
    traversing every live object, the configuration's accounts included
    (measured: 0.55 s of a 1.5 s rating of 10,000 accounts). What the
    rating drops is freed by reference counting all the same; a cycle made
    meanwhile elsewhere waits for the next collection."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


_COUNT_BY_ACCOUNT = text(f"SELECT COUNT(*) FROM usage_records WHERE {BY_ACCOUNT}").bindparams(
    bindparam("accounts", expanding=True))


def index_pays(conn: Connection, ids: Sequence[str]) -> bool:
    """Whether to read the records of the accounts ``ids`` through the
    account index rather than by a scan.

    PostgreSQL weighs the two with its statistics: always. SQLite has no
    such statistics (and would walk the index for the largest account, 10%
    of the store, three times slower than a scan): there the accounts'
    records are counted in the index alone (a range of it, no table read)
    against the largest id (about the number of records)."""
    if conn.dialect.name != "sqlite":
        return True
    n = conn.execute(_COUNT_BY_ACCOUNT, {"accounts": list(ids)}).scalar() or 0
    total = conn.exec_driver_sql("SELECT MAX(id) FROM usage_records").scalar() or 0
    return n <= total * _INDEX_SHARE


def groups(config: Config, period: Period, accounts: Sequence[str] | None, now_s: int
           ) -> Iterator[tuple[ZoneInfo, list[str], dict[str, Any], bool]]:
    """The accounts to rate by time zone: ``(tz, ids, base parameters,
    filter_accounts)``."""
    by_tz: dict[str, list[str]] = defaultdict(list)
    for acc in accounts if accounts is not None else list(config.accounts):
        account = config.accounts.get(acc)
        by_tz[account.timezone if account else config.hub.timezone].append(acc)
    for tz_name, ids in by_tz.items():
        tz = ZoneInfo(tz_name)
        p0, p1 = period.epoch_bounds(tz)
        # A large group is not filtered in SQL: a scan reads every record
        # anyway, and an IN list of thousands of accounts costs a lookup
        # per record (and made PostgreSQL compile the query); the rows of
        # other accounts are dropped by the caller instead.
        filter_accounts = len(ids) < IN_LIST_MAX
        yield tz, ids, {"p0": p0, "p1": p1, "run_end": min(now_s, p1), "accounts": ids}, filter_accounts
