"""Rating rollups: the quantities of a closed period, kept while no usage
changes (issue #3, "Speed").

A full rating of a month scans every usage record (seconds on millions of
them); the same rating again, with no record changed, gives the same
quantities. So a rating of a **closed** period (running records billed to
its end, not to now) **by every account** stores the quantities it computed,
per product spec and period (:func:`hub.rating.rollup_key`), account and
resource, stamped with the store's *usage generation*; a later rating reads
them back (a few thousand rows) instead of scanning.

Exactness rests on two facts, both enforced by the database rather than by
the code that writes usage:

- **Any change of usage moves the generation.** Triggers on
  ``usage_records`` (migration 0006) add 1 to ``usage_generation.n`` in the
  very transaction that inserts, updates or deletes a record, whatever
  wrote it. A rollup is read only when its generation is the current one.
- **A rollup never holds newer data than its stamp says is older.** The
  generation is read *before* the scan, in a statement of its own: the scan
  sees at least the usage of that generation. If a write committed in
  between, the scan may have seen more than its stamp, but then the
  current generation is already past the stamp, and the rollup is never
  read. (A rollup may hold *older* data than the current generation only if
  stamped older: never read either.)

Rows of an older generation are deleted when new ones are stored, so the
tables hold at most the rollups of the current generation. Storing is best
effort: two ratings storing the same key at once keep the first
(``ON CONFLICT DO NOTHING``; both computed the same generation's usage).
The key holds the rating revision (:data:`hub.rating.ROLLUP_REVISION`) and
the SQL that computes the quantities, so a hub whose rating changed never
reads an older hub's rollups.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from fractions import Fraction

from sqlalchemy import Connection, bindparam, delete, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from hub.store.tables import rating_rollup_keys, rating_rollups, usage_generation

Quantities = dict[tuple[str, str | None], tuple[Fraction, int]]

_ROWS = text("SELECT account, rkey, q, records FROM rating_rollups WHERE key = :key AND generation = :generation")
_ROWS_OF = text(
    "SELECT account, rkey, q, records FROM rating_rollups WHERE key = :key AND generation = :generation "
    "AND account IN :accounts").bindparams(bindparam("accounts", expanding=True))


def generation(conn: Connection) -> int:
    """The store's usage generation (read before the scan it stamps)."""
    return int(conn.execute(select(usage_generation.c.n).where(usage_generation.c.id == 1)).scalar_one())


def stored_keys(conn: Connection, keys: Iterable[str], gen: int) -> set[str]:
    """Those of ``keys`` whose rollups of generation ``gen`` are stored."""
    keys = list(keys)
    if not keys:
        return set()
    return set(conn.execute(select(rating_rollup_keys.c.key).where(
        rating_rollup_keys.c.key.in_(keys), rating_rollup_keys.c.generation == gen)).scalars())


def read(conn: Connection, key: str, gen: int, itemized: bool, accounts: Sequence[str] | None = None) -> Quantities:
    """The quantities stored under ``key`` at ``gen``, as
    :func:`hub.rating._quantities` gives them: (Q, records) per (account,
    resource or None); only ``accounts``' when given."""
    params = {"key": key, "generation": gen}
    rows = conn.execute(_ROWS, params) if accounts is None else conn.execute(_ROWS_OF, {**params, "accounts": list(accounts)})
    return {(account, rkey if itemized else None): (Fraction(q), int(n)) for account, rkey, q, n in rows}


def store(conn: Connection, gen: int, computed: Sequence[tuple[str, Quantities]]) -> None:
    """Store each ``(key, quantities)`` of ``computed`` at ``gen`` in the
    caller's transaction, dropping every older generation's rollups."""
    if not computed:
        return
    dialect = conn.dialect.name
    conn.execute(delete(rating_rollups).where(rating_rollups.c.generation < gen))
    conn.execute(delete(rating_rollup_keys).where(rating_rollup_keys.c.generation < gen))
    # ON CONFLICT DO NOTHING: a second rating storing the same key at the
    # same generation keeps the first one's rows (both computed that
    # generation's usage); rows in one order, so two never deadlock.
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    now = datetime.now(timezone.utc)
    for key, quantities in sorted(computed, key=lambda kq: kq[0]):
        rows = [{"key": key, "generation": gen, "account": account, "rkey": rkey or "", "q": str(q), "records": n}
                for (account, rkey), (q, n) in sorted(quantities.items(), key=lambda kv: (kv[0][0], kv[0][1] or ""))]
        if rows:
            conn.execute(insert(rating_rollups).on_conflict_do_nothing(), rows)
        conn.execute(insert(rating_rollup_keys).values(key=key, generation=gen, row_count=len(rows), stored_at=now)
                     .on_conflict_do_nothing())
