"""Rating rollups: the quantities of a closed period, kept while its usage
does not change (issue #3, "Speed").

A full rating of a month scans every usage record (seconds on millions of
them); the same rating again, with no record of that month changed, gives
the same quantities. So a rating of a **closed** period (running records
billed to its end, not to now) **by every account** stores the quantities
it computed, per product spec and period (:func:`hub.rating.rollup_key`),
account and resource, stamped with the store's *usage generation*; a later
rating reads them back (a few thousand rows) instead of scanning, for as
long as they are *valid*.

Validity rests on facts the database enforces, not on the code that writes
usage:

- **Every change of usage is stamped.** Triggers on ``usage_records``
  (migration 0006) add 1 to ``usage_generation.n`` in the very transaction
  that inserts, updates or deletes a record, whatever wrote it, and stamp
  the UTC day of the record's start (of both versions on an update) with
  the new ``n`` in ``usage_change_days``.
- **A record counts in no period that ends before it starts** (a minimum
  top-up goes to the period holding its start; a ``latest`` meter looks at
  starts before the period's end). So the rollups of a period ending at
  ``p1`` and stamped ``G`` are valid while no day up to the one of ``p1 -
  1`` is stamped above ``G`` (:func:`valid`): usage of later days, the
  current month's, can keep arriving.
- **A stamp never claims newer usage than the scan saw.** The generation is
  read *before* the scan, in a statement of its own; the scan then sees at
  least that generation's usage. A write that commits in between stamps
  its days above ``G``: if they matter to the period, the rollups are never
  read.
- **Rows and their key come and go together.** A key's row and its rollups
  are stored in one transaction, rollups first, and deleted rollups first;
  a read takes the key and its rollups in one statement (one snapshot), so
  it never sees a key without its rows.

Storing is best effort: two ratings storing the same key at the same
generation keep the first one's rows (``ON CONFLICT DO NOTHING``: both
computed that generation's usage). Storing also drops what is no longer
valid, older generations of the keys it stores and what was stored more
than :data:`RETENTION` ago, so the tables hold what recent full ratings
computed, not every period ever rated. The key holds the
rating revision (:data:`hub.rating.ROLLUP_REVISION`) and the SQL that
computes the quantities, so a hub whose rating changed never reads an older
hub's rollups.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta, timezone
from fractions import Fraction

from sqlalchemy import Connection, bindparam, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from hub.store.tables import rating_rollup_keys, rating_rollups

Quantities = dict[tuple[str, str | None], tuple[Fraction, int]]

#: rollups stored longer ago are dropped when others are stored: every
#: period, catalog and time zone rated in full would otherwise stay (a
#: month that is rated again later is computed again, and stored anew)
RETENTION = timedelta(days=31)

#: the latest generation of a change of usage that can count in a period
#: ending at ``:p1`` (the triggers' day, ``start_s / 86400``, is truncated the
#: same way, and truncation keeps the order: ``start_s < p1`` puts its day
#: at or before ``(p1 - 1) / 86400``)
_LAST_CHANGE = "(SELECT COALESCE(MAX(generation), 0) FROM usage_change_days WHERE day <= (:p1 - 1) / 86400)"

_VALID = text(
    f"SELECT key, MAX(generation) FROM rating_rollup_keys WHERE key IN :keys AND generation >= {_LAST_CHANGE} "
    "GROUP BY key").bindparams(bindparam("keys", expanding=True))

#: a key's rollups with the key itself, in one statement: no row at all when
#: the key is gone, one row of NULLs when it has no rollups
_READ = ("SELECT r.account, r.rkey, r.q, r.records FROM rating_rollup_keys k "
         "LEFT JOIN rating_rollups r ON r.key = k.key AND r.generation = k.generation{accounts} "
         "WHERE k.key = :key AND k.generation = :generation")
_READ_ALL = text(_READ.format(accounts=""))
_READ_SOME = text(_READ.format(accounts=" AND r.account IN :accounts")).bindparams(
    bindparam("accounts", expanding=True))

#: keys whose period has had a change of usage since they were computed
_STALE = (f"SELECT key, generation FROM rating_rollup_keys WHERE generation < "
          f"{_LAST_CHANGE.replace(':p1', 'rating_rollup_keys.period_end_s')}")


def generation(conn: Connection) -> int:
    """The store's usage generation (read before the scan it stamps)."""
    return int(conn.execute(text("SELECT n FROM usage_generation WHERE id = 1")).scalar_one())


def valid(conn: Connection, keys: Iterable[str], period_end_s: int) -> dict[str, int]:
    """Those of ``keys`` (of a period ending at ``period_end_s``) with valid
    rollups, and the generation to read (the newest valid one)."""
    keys = list(keys)
    if not keys:
        return {}
    return {key: int(gen) for key, gen in conn.execute(_VALID, {"keys": keys, "p1": period_end_s})}


def read(conn: Connection, key: str, gen: int, itemized: bool,
         accounts: Sequence[str] | None = None) -> Quantities | None:
    """The quantities stored under ``key`` at ``gen``, as
    :func:`hub.rating._quantities` gives them: (Q, records) per (account,
    resource or None); only ``accounts``' when given. ``None`` when the
    key is gone (a rating storing newer rollups dropped it meanwhile)."""
    params = {"key": key, "generation": gen}
    rows = (conn.execute(_READ_ALL, params).all() if accounts is None
            else conn.execute(_READ_SOME, {**params, "accounts": list(accounts)}).all())
    if not rows:
        return None
    return {(account, rkey if itemized else None): (Fraction(q), int(n))
            for account, rkey, q, n in rows if account is not None}


def store(conn: Connection, gen: int, period_end_s: int, computed: Sequence[tuple[str, Quantities]]) -> None:
    """Store each ``(key, quantities)`` of ``computed`` at ``gen`` in the
    caller's transaction, for a period ending at ``period_end_s``; drop the
    rollups no longer valid and the older generations of these keys."""
    if not computed:
        return
    keys = sorted(key for key, _ in computed)
    now = datetime.now(timezone.utc)
    doomed = [tuple(row) for row in conn.execute(text(_STALE))]
    doomed += [tuple(row) for row in conn.execute(
        select(rating_rollup_keys.c.key, rating_rollup_keys.c.generation)
        .where(rating_rollup_keys.c.stored_at < now - RETENTION))]
    doomed += [tuple(row) for row in conn.execute(
        text("SELECT key, generation FROM rating_rollup_keys WHERE key IN :keys AND generation < :generation")
        .bindparams(bindparam("keys", expanding=True)), {"keys": keys, "generation": gen})]
    for table in (rating_rollups, rating_rollup_keys):  # rollups first: never a key without its rows
        for key, old in sorted(set(doomed)):
            conn.execute(table.delete().where(table.c.key == key, table.c.generation == old))
    # ON CONFLICT DO NOTHING: a second rating storing the same key at the
    # same generation keeps the first one's rows (both computed that
    # generation's usage); rows in one order, so two never deadlock.
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    for key, quantities in sorted(computed, key=lambda kq: kq[0]):
        rows = [{"key": key, "generation": gen, "account": account, "rkey": rkey or "", "q": str(q), "records": n}
                for (account, rkey), (q, n) in sorted(quantities.items(), key=lambda kv: (kv[0][0], kv[0][1] or ""))]
        if rows:
            conn.execute(insert(rating_rollups).on_conflict_do_nothing(), rows)
        conn.execute(insert(rating_rollup_keys).values(key=key, generation=gen, period_end_s=period_end_s,
                                                       row_count=len(rows), stored_at=now).on_conflict_do_nothing())
