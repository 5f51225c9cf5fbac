"""The fast paths of :func:`hub.rating.rate` give the
charges of the plain per-product queries, on SQLite and on PostgreSQL.

- Every time-weighted product is rated in one scan of ``usage_records``
  (:func:`hub.rating.one_scan_sql`), several products on one meter
  included (other granularities, minimums, itemized by resource): each
  product's quantities and record counts must equal those of its own query
  (:func:`hub.rating.product_sql`, which ``hub trace`` and ``hub reconcile``
  still use).
- A large group of accounts is not filtered with ``IN`` in SQL but in
  Python: rating a few accounts, many accounts or all of them gives the
  same lines for each, and usage of an account that is no longer
  configured is never billed.
- On PostgreSQL the rating transaction runs with ``jit = off`` (compiling
  a query over millions of records took seconds), and only that
  transaction.
"""

from __future__ import annotations

import random
import threading
from collections import defaultdict
from datetime import datetime, timezone
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event, text

from hub.config import load_config
from hub.host import build_host
from hub.periods import parse_period
from hub.rating import product_params, rate, scan
from hub.rating.connection import IN_LIST_MAX as _IN_LIST_MAX
from hub.rating.sql import quantities as _quantities
from hub.store.db import open_store
from tests.conftest import HEADER, Workspace

UTC = timezone.utc
#: after every period rated here, except where a test says otherwise
NOW = datetime(2027, 1, 15, tzinfo=UTC)

METERS = """
[[meters]]
name = "compute.vcpu"
aggregation = "time_weighted"
unit = "vCPU"

[[meters]]
name = "compute.memory"
aggregation = "time_weighted"
unit = "GiB"

[[meters]]
name = "network.egress"
aggregation = "sum"
unit = "GB"

[[meters]]
name = "memory.peak"
aggregation = "max"
unit = "GiB"

[[meters]]
name = "ips"
aggregation = "unique"

[[meters]]
name = "storage.size"
aggregation = "latest"
unit = "GB"

[[sources]]
name = "files"
type = "csv"
path = "usage/*.csv"
"""

#: five products on compute.vcpu (granularities, minimums, itemized, a
#: graduated price), one on compute.memory, one on each other meter
PRODUCTS = """
[[products]]
name = "vcpu"
meter = "compute.vcpu"
price = { model = "per_unit", unit_price = "0.0000115" }

[[products]]
name = "vcpu-slices"
meter = "compute.vcpu"
granularity = "10m"
price = { model = "per_unit", unit_price = "0.0000115" }

[[products]]
name = "vcpu-minimum"
meter = "compute.vcpu"
granularity = "1m"
minimum = "2h"
price = { model = "graduated", tiers = [ { up_to = "100000", unit_price = "0.00002" }, { unit_price = "0.00001" } ] }

[[products]]
name = "vcpu-long-minimum"
meter = "compute.vcpu"
minimum = "40d"
per = "hour"
price = { model = "per_unit", unit_price = "0.0414" }

[[products]]
name = "vcpu-by-vm"
meter = "compute.vcpu"
itemize = "resource"
price = { model = "per_unit", unit_price = "0.0000115" }

[[products]]
name = "memory"
meter = "compute.memory"
granularity = "1m"
minimum = "5m"
price = { model = "per_unit", unit_price = "0.0000015" }

[[products]]
name = "egress"
meter = "network.egress"
price = { model = "per_unit", unit_price = "0.01" }

[[products]]
name = "peak"
meter = "memory.peak"
price = { model = "per_unit", unit_price = "0.5" }

[[products]]
name = "ips"
meter = "ips"
price = { model = "per_unit", unit_price = "2" }

[[products]]
name = "storage"
meter = "storage.size"
price = { model = "per_unit", unit_price = "0.02" }
"""

TIME_WEIGHTED = ("vcpu", "vcpu-slices", "vcpu-minimum", "vcpu-long-minimum", "vcpu-by-vm", "memory")


def accounts_toml(n: int, *, ghost: bool = False) -> str:
    """``n`` accounts, every third in Europe/Paris, and ``ghost`` if asked."""
    out = []
    for i in range(n):
        tz = 'timezone = "Europe/Paris"\n' if i % 3 == 2 else ""
        out.append(f'[[accounts]]\nid = "acc-{i:03d}"\nname = "Customer {i}"\n{tz}')
    if ghost:
        out.append('[[accounts]]\nid = "ghost"\nname = "Gone soon"\n')
    return "\n".join(out)


def _stamp(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def usage_rows(accounts: list[str], n: int, seed: int) -> list[str]:
    """``n`` seeded records around October 2026 (both sides of its edges,
    running ones, short ones below the minimums, zero-length ones)."""
    rng = random.Random(seed)
    lo = int(datetime(2026, 9, 28, tzinfo=UTC).timestamp())
    hi = int(datetime(2026, 11, 4, tzinfo=UTC).timestamp())
    edges = [int(datetime(2026, 10, 1, tzinfo=UTC).timestamp()), int(datetime(2026, 11, 1, tzinfo=UTC).timestamp()),
             int(datetime(2026, 9, 30, 22, tzinfo=UTC).timestamp()),  # Paris' October starts here
             int(datetime(2026, 10, 31, 23, tzinfo=UTC).timestamp())]  # ... and ends here (CET)
    meters = ("compute.vcpu", "compute.vcpu", "compute.memory", "network.egress", "memory.peak", "ips",
              "storage.size")
    rows = []
    for i in range(n):
        acc = rng.choice(accounts)
        meter = rng.choice(meters)
        start = rng.choice(edges) + rng.randint(-400, 400) if rng.random() < 0.3 else rng.randint(lo, hi)
        length = rng.choice((0, rng.randint(1, 300), rng.randint(1, 9000), rng.randint(1, 40 * 86400)))
        end = "" if rng.random() < 0.08 else _stamp(start + length)
        quantity = rng.choice(("1", "2", "0.5", "0.931322575", "16", "3.25"))
        rows.append(f"r{i},{acc},res-{rng.randint(1, 6)},{meter},{_stamp(start)},{end},{quantity}")
    return rows


def setup(ws: Any, n_accounts: int, rows: list[str], *, ghost: bool = False) -> None:
    ws.config(METERS + PRODUCTS + accounts_toml(n_accounts, ghost=ghost))
    ws.write("usage/x.csv", HEADER + "".join(r + "\n" for r in rows))
    result = ws.hub("pull")
    assert result.exit_code == 0, result.output


def hub_of(ws: Any) -> tuple[Any, Any]:
    config = load_config(ws.config_path, build_host())
    return config, open_store(config.hub.database, config.base_dir)


def product_by_product(engine: Any, config: Any, period: Any) -> dict[tuple[str, str, str | None], tuple[Fraction, int]]:
    """(Q in the meter's unit, records) per (account, product, resource) of
    each time-weighted product through its own query, one account at a
    time (the plain path of :func:`hub.rating.product_sql`)."""
    out: dict[tuple[str, str, str | None], tuple[Fraction, int]] = {}
    with engine.connect() as conn:
        for acc_id, account in config.accounts.items():
            tz = ZoneInfo(account.timezone)
            p0, p1 = period.epoch_bounds(tz)
            for name in TIME_WEIGHTED:
                product = config.catalog.product(name)
                params = {"p0": p0, "p1": p1, "run_end": min(int(NOW.timestamp()), p1), "accounts": [acc_id],
                          **product_params(product, period, tz)}
                for (acc, res), (q, n) in _quantities(conn, "time_weighted", product.itemize == "resource",
                                                      params).items():
                    if q:
                        out[(acc, name, res)] = (q, n)
    return out


_PER = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


def test_every_time_weighted_product_in_one_scan_gives_each_product_s_own_quantities(tmp_path, db_url):
    from tests.conftest import Workspace

    ws = Workspace(tmp_path, db_url)
    accounts = [f"acc-{i:03d}" for i in range(6)]
    setup(ws, 6, usage_rows(accounts, 400, seed=7))
    config, engine = hub_of(ws)
    for period_text in ("2026-10", "2026-09", "2026-11", "2026-10-31"):
        period = parse_period(period_text)
        expected = product_by_product(engine, config, period)
        got = {(c.account, c.product, c.resource_id): (c.exact_quantity * _PER[c.unit], c.records)
               for c in rate(engine, config, period, now=NOW) if c.product in TIME_WEIGHTED}
        assert got == expected, period_text
    engine.dispose()


def test_several_products_on_one_meter_rated_together_or_alone(tmp_path, db_url):
    """Dropping the other products from the catalog changes nothing for
    the one left: the products of a meter do not leak into each other."""
    from tests.conftest import Workspace

    ws = Workspace(tmp_path, db_url)
    accounts = [f"acc-{i:03d}" for i in range(3)]
    setup(ws, 3, usage_rows(accounts, 150, seed=11))
    config, engine = hub_of(ws)
    period = parse_period("2026-10")
    together = rate(engine, config, period, now=NOW)
    blocks = PRODUCTS.split("[[products]]")[1:]
    for block in blocks:
        ws.config(METERS + "[[products]]" + block + accounts_toml(3))
        alone_config, _ = hub_of(ws)
        (name,) = [p.name for p in alone_config.catalog]
        alone = rate(engine, alone_config, period, now=NOW)
        assert alone == [c for c in together if c.product == name], name
        assert [c.records for c in alone] == [c.records for c in together if c.product == name]
    engine.dispose()


def test_accounts_filtered_in_sql_or_in_python_give_the_same_lines(tmp_path, db_url):
    """More accounts than ``_IN_LIST_MAX`` in a time zone: the full rating
    reads every account's usage and keeps the configured ones; a few
    accounts are filtered in SQL; a long list is filtered in Python."""
    from tests.conftest import Workspace

    n = 3 * _IN_LIST_MAX // 2 + 3  # more than _IN_LIST_MAX in UTC, fewer in Paris (every third)
    assert n * 2 // 3 >= _IN_LIST_MAX > n // 3
    ws = Workspace(tmp_path, db_url)
    accounts = [f"acc-{i:03d}" for i in range(n)]
    setup(ws, n, usage_rows(accounts + ["ghost"] * 10, 600, seed=3), ghost=True)
    # the ghost's usage stays in the store, but the account leaves the hub
    ws.config(METERS + PRODUCTS + accounts_toml(n))
    config, engine = hub_of(ws)
    period = parse_period("2026-10")
    everything = rate(engine, config, period, now=NOW)
    assert {c.account for c in everything} <= set(accounts)
    assert len({c.account for c in everything}) > _IN_LIST_MAX
    by_account: dict[str, list[Any]] = defaultdict(list)
    for c in everything:
        by_account[c.account].append(c)
    few = accounts[:2] + accounts[-1:]
    assert rate(engine, config, period, few, now=NOW) == [c for c in everything if c.account in few]
    # every UTC account but one, the ghost and every other Paris account:
    # the UTC group is filtered in Python, the Paris group in SQL
    utc = [a for i, a in enumerate(accounts) if i % 3 != 2]
    paris = [a for i, a in enumerate(accounts) if i % 3 == 2]
    many = utc[1:] + ["ghost"] + paris[::2]
    assert len(utc[1:]) + 1 >= _IN_LIST_MAX > len(paris[::2])
    # the ghost, asked for by name, is rated in the hub's time zone
    ghost = rate(engine, config, period, ["ghost"], now=NOW)
    assert ghost and {c.account for c in ghost} == {"ghost"}
    got = rate(engine, config, period, many, now=NOW)
    assert [c for c in got if c.account != "ghost"] == [c for c in everything if c.account in many]
    assert [c for c in got if c.account == "ghost"] == ghost
    for acc in accounts[:8]:
        assert rate(engine, config, period, [acc], now=NOW) == by_account[acc]
    engine.dispose()


@pytest.mark.postgresql
def test_postgresql_rates_with_jit_off_in_its_own_transaction_only(tmp_path, pg_schema_url):
    from tests.conftest import Workspace

    ws = Workspace(tmp_path, pg_schema_url)
    accounts = [f"acc-{i:03d}" for i in range(3)]
    setup(ws, 3, usage_rows(accounts, 50, seed=5))
    config, engine = hub_of(ws)
    with engine.connect() as conn:
        default = conn.execute(text("SHOW jit")).scalar_one()
    seen: list[tuple[str, str]] = []

    @event.listens_for(engine, "after_cursor_execute")
    def _jit_during(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if "usage_records" in statement:
            seen.append((statement.split()[0], cursor.connection.execute("SHOW jit").fetchone()[0]))

    charges = rate(engine, config, parse_period("2026-10"), now=NOW)
    event.remove(engine, "after_cursor_execute", _jit_during)
    assert charges
    assert seen and all(jit == "off" for _, jit in seen), seen
    with engine.connect() as conn:
        assert conn.execute(text("SHOW jit")).scalar_one() == default
    engine.dispose()


def test_a_period_with_no_usage_and_an_empty_catalog_of_time_weighted_products(tmp_path, db_url):
    from tests.conftest import Workspace

    ws = Workspace(tmp_path, db_url)
    accounts = [f"acc-{i:03d}" for i in range(3)]
    setup(ws, 3, usage_rows(accounts, 60, seed=9))
    config, engine = hub_of(ws)
    assert rate(engine, config, parse_period("2025-01"), now=NOW) == []
    # only the other meters' products: no one-scan query at all
    others = "[[products]]" + "[[products]]".join(
        b for b in PRODUCTS.split("[[products]]")[1:] if "compute." not in b)
    ws.config(METERS + others + accounts_toml(3))
    config2, _ = hub_of(ws)
    period = parse_period("2026-10")
    full = rate(engine, config, period, now=NOW)
    assert rate(engine, config2, period, now=NOW) == [c for c in full if c.product not in TIME_WEIGHTED]
    engine.dispose()


def test_sqlite_sorts_with_helper_threads_during_a_rating_only(tmp_path):
    from tests.conftest import Workspace

    from hub.rating.connection import _SQLITE_SORTER_THREADS

    ws = Workspace(tmp_path, f"sqlite:///{tmp_path / 'hub.db'}")
    accounts = [f"acc-{i:03d}" for i in range(3)]
    setup(ws, 3, usage_rows(accounts, 50, seed=5))
    config, engine = hub_of(ws)
    seen: list[int] = []

    @event.listens_for(engine, "after_cursor_execute")
    def _threads_during(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if "usage_records" in statement:
            seen.append(cursor.connection.execute("PRAGMA threads").fetchone()[0])

    assert rate(engine, config, parse_period("2026-10"), now=NOW)
    event.remove(engine, "after_cursor_execute", _threads_during)
    assert seen and set(seen) == {_SQLITE_SORTER_THREADS}
    with engine.connect() as conn:  # the pool's one connection: put back
        assert conn.exec_driver_sql("PRAGMA threads").scalar() == 0
    engine.dispose()


@pytest.mark.postgresql
def test_postgresql_usage_report_runs_with_jit_off(tmp_path, pg_schema_url):
    from tests.conftest import Workspace

    from hub.usage_report import usage_lines

    ws = Workspace(tmp_path, pg_schema_url)
    accounts = [f"acc-{i:03d}" for i in range(3)]
    setup(ws, 3, usage_rows(accounts, 50, seed=5))
    config, engine = hub_of(ws)
    seen: list[str] = []

    @event.listens_for(engine, "after_cursor_execute")
    def _jit_during(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if "usage_records" in statement:
            seen.append(cursor.connection.execute("SHOW jit").fetchone()[0])

    assert usage_lines(engine, config, parse_period("2026-10"), now=NOW)
    event.remove(engine, "after_cursor_execute", _jit_during)
    assert seen and set(seen) == {"off"}
    engine.dispose()


def test_sums_beyond_64_bits_are_an_error_on_sqlite_and_exact_on_postgresql(tmp_path, db_url):
    """3,500 records of 999,999,999,999,999 units for a whole October: the
    unit-seconds need more than 64 bits in SQLite's split sums. SQLite's
    ``+`` would turn them into a float: the rating refuses instead;
    PostgreSQL sums exactly."""
    from tests.conftest import Workspace

    ws = Workspace(tmp_path, db_url)
    big = "999999999999999"
    rows = [f"acc-000,vm-{i},compute.vcpu,2026-10-01T00:00:00Z,2026-11-01T00:00:00Z,{big}" for i in range(3500)]
    ws.config(METERS + PRODUCTS.split("[[products]]\nname = \"vcpu-slices\"")[0] + accounts_toml(1))
    ws.write("usage/x.csv", HEADER + "".join(f"r{i},{r}\n" for i, r in enumerate(rows)))
    assert ws.hub("pull").exit_code == 0
    config, engine = hub_of(ws)
    period = parse_period("2026-10")
    if engine.dialect.name == "sqlite":
        with pytest.raises(OverflowError, match="acc-000"):
            rate(engine, config, period, now=NOW)
    else:
        (line,) = rate(engine, config, period, now=NOW)
        assert line.exact_quantity == 3500 * int(big) * 31 * 86400
    engine.dispose()


def test_a_sqlite_full_scan_split_over_two_connections_gives_the_same_lines(tmp_path, monkeypatch):
    ws = Workspace(tmp_path, f"sqlite:///{tmp_path / 'hub.db'}")
    accounts = [f"acc-{i:03d}" for i in range(200)]  # both time zones' groups are scanned, not filtered
    setup(ws, 200, usage_rows(accounts, 3000, seed=41))
    config, engine = hub_of(ws)
    period = parse_period("2026-10")
    workers: list[str] = []

    class Counted(threading.Thread):
        def start(self) -> None:
            workers.append(self.name)
            super().start()

    monkeypatch.setattr(scan.threading, "Thread", Counted)
    monkeypatch.setattr(scan, "_SPLIT_MIN_RECORDS", 10**9)  # one connection
    whole = rate(engine, config, period, now=NOW)
    assert workers == []
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM rating_rollup_keys"))
    monkeypatch.setattr(scan, "_SPLIT_MIN_RECORDS", 2)  # two
    split = rate(engine, config, period, now=NOW)
    assert workers and set(workers) == {"hub-rating-scan"}
    assert split == whole and len(whole) > 100
