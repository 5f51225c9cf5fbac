"""A rating's quantities per product: read back from rollups while they
are valid, computed otherwise (the time-weighted products in one scan, the
others one query each), and stored for the next rating.

A rating of a period by a group of at least
:data:`hub.rating.connection.IN_LIST_MAX` accounts stores each product's
quantities (:mod:`hub.store.rollups`, stamped with the store's usage
generation); the same rating again, of every account or of a few, reads
them instead of scanning, while no usage that can count in the period
changed or the writers added every change to them (time-weighted and sum
meters). An open period's time-weighted rollups hold the finished records
(the running ones are billed to now, from their index); a closed period's
hold the running ones too, billed to its end.

Knows the store's rollups and the rating's queries; knows nothing of
prices or lines.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError

from hub.config.catalog import Product
from hub.config.model import Config
from hub.periods import Period
from hub.rating.connection import index_pays
from hub.rating.keys import aggregation, kept, rollup_key, rollup_spec
from hub.rating.scan import one_scan_quantities
from hub.rating.sql import Quantities, product_params, quantities
from hub.store import rollups

log = logging.getLogger("hub.rating")


def _add(into: Quantities, more: Quantities) -> None:
    for line, (q, n) in more.items():
        have = into.get(line)
        into[line] = (q, n) if have is None else (have[0] + q, have[1] + n)


def product_quantities(conn: Connection, config: Config, products: Sequence[Product], period: Period,
                       tz: ZoneInfo, base: dict[str, Any], filter_accounts: bool
                       ) -> list[tuple[Product, Quantities]]:
    """(Q, records) per (account, resource or None) of each metered product
    of ``products``: the time-weighted ones in one scan, the others one
    query each.

    Reads the rollups of a key still valid (:mod:`hub.store.rollups`), and
    a rating of every account stores the keys it computed: those of
    time-weighted and sum meters in any period, the others' in a closed
    period only (running records billed to its end, not to now). An open
    period's time-weighted key holds the finished records' part, the
    running records' is added from their index; a closed period's holds
    both, and its first rating makes it from the key the writers kept
    while the period was open (``finished_only``) and the running records."""
    closed = base["run_end"] == base["p1"]
    gen, keys, finished_keys, stored = 0, {}, {}, {}
    to_keep = kept(config, products, base)
    if to_keep:
        gen = rollups.generation(conn)  # before any scan: see hub.store.rollups
        keys = {p.name: rollup_key(config, p, period, tz, base) for p in to_keep}
        if closed:
            finished_keys = {p.name: rollup_key(config, p, period, tz, base, finished_only=True)
                             for p in to_keep if aggregation(config, p) == "time_weighted"}
        stored = rollups.valid(conn, [*keys.values(), *finished_keys.values()], base["p1"])

    def read(key: str | None, product: Product) -> Quantities | None:
        if key not in stored:
            return None
        return rollups.read(conn, key, stored[key], product.itemize == "resource",  # type: ignore[index]
                            base["accounts"] if filter_accounts else None)

    found: dict[str, Quantities] = {}  # complete (but an open period's running records)
    partial: dict[str, Quantities] = {}  # a closed period's finished records only
    for p in products:
        got = read(keys.get(p.name), p)
        if got is not None:
            found[p.name] = got
        elif (got := read(finished_keys.get(p.name), p)) is not None:
            partial[p.name] = got
    missing = [p for p in products if p.name not in found and p.name not in partial]
    storing = not filter_accounts
    # A small group's records are read through the account index, unless
    # there are so many that a scan costs less.
    by_account = bool(missing) and filter_accounts and index_pays(conn, base["accounts"])
    time_weighted = [p for p in missing if aggregation(config, p) == "time_weighted"]
    others = [p for p in missing if aggregation(config, p) != "time_weighted"]
    # what an open period stores: the finished records only
    finished_scan = storing and not closed
    computed: list[tuple[Product, Quantities]] = []
    if time_weighted:
        computed += zip(time_weighted, one_scan_quantities(conn, time_weighted, period, tz, base, filter_accounts,
                                                           by_account, records="finished" if finished_scan else None))
    for product in others:
        params = {**base, **product_params(product, period, tz)}
        if not filter_accounts:
            params.pop("accounts")
        computed.append((product, quantities(
            conn, aggregation(config, product), product.itemize == "resource", params,
            every_account=not filter_accounts, by_account=by_account)))
    by_name = {**found, **partial, **{p.name: q for p, q in computed}}
    # the running records' part of what holds the finished records' only
    finished_only = [p for p in products if aggregation(config, p) == "time_weighted"
                     and (p.name in partial or (not closed and (p.name in found or finished_scan)))]
    running = dict(zip((p.name for p in finished_only), one_scan_quantities(
        conn, finished_only, period, tz, base, filter_accounts, records="running"))) if finished_only else {}
    for name in partial:
        _add(partial[name], running[name])  # a closed period's key, complete now
    if storing:
        to_store = [(keys[p.name], rollup_spec(config, p, period, tz, base), by_name[p.name])
                    for p in products if p.name in keys and p.name not in found]
        if to_store:
            _store_rollups(conn, gen, base["p1"], to_store)
    for p in finished_only:
        if p.name not in partial:
            _add(by_name[p.name], running[p.name])  # each a dict of this rating's own
    return [(p, by_name[p.name]) for p in products]


def _store_rollups(conn: Connection, gen: int, period_end_s: int,
                   computed: list[tuple[str, dict[str, Any] | None, Quantities]]) -> None:
    """Store rollups in a savepoint of the rating's transaction, committed
    with it; a failure to store never fails the rating."""
    try:
        with conn.begin_nested():
            rollups.store(conn, gen, period_end_s, computed)
    except (SQLAlchemyError, conn.dialect.loaded_dbapi.Error) as exc:  # best effort: the rating goes on without them
        if getattr(getattr(exc, "orig", exc), "sqlstate", None) == "40001":  # the driver's own error (COPY) too
            # PostgreSQL: usage changed after the rating's snapshot, which
            # its rollups would then be older than: the next rating computes them
            log.info("rating rollups not stored: usage changed during the rating")
        else:
            log.warning("rating rollups not stored: %s", exc)
    else:
        conn.info["hub_rollups_stored"] = True
