"""One account's charges through the account index.

``usage_records`` has an index by account, partial on ``account IS NOT
NULL`` (migration 0005). :func:`hub.rating.rate` for a few accounts and
:func:`hub.rating.trace` read through it; everything else scans as before.

- The index is there, partial, on both backends, and a store migrated from
  0004 with usage in it gets it and rates the same.
- SQLite: every query of a one-account rating (and of a trace) reads
  through the index, and no query of a full rating does (SQLite walked the
  index to avoid sorting by account: twice as slow on 5 M records); an
  account with too many records is scanned. The scheduler's earliest usage
  of each account is one search of the index (account, start_s) per account
  (migration 0008), no scan. PostgreSQL can use it for those queries
  (its planner chooses with statistics).
- Exactness: rating each account on its own (through the index), in a
  group, scanned, and all of them at once give the same lines, for records
  on every side of the period's edges (ending exactly at its start, before
  it, zero seconds long, running, long), in UTC and Europe/Paris, for
  months and days, every aggregation; and trace lists the same records.
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import datetime, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, text

from hub.config import load_config
from hub.host import build_host
from hub.periods import parse_period
from hub.rating import connection, rate, trace
from hub.store.db import open_store, upgrade
from hub.store.migrations import HEAD
from hub.store.queries import earliest_usage
from tests.conftest import HEADER, Workspace
from tests.test_rating_speed_paths import METERS, NOW, PRODUCTS, accounts_toml, hub_of, setup, usage_rows

UTC = timezone.utc
INDEX = "ix_usage_records_account"
PRODUCT_NAMES = [block.split('"')[1] for block in PRODUCTS.split("name = ")[1:]]


def _epoch(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp())


def _stamp(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


#: records exactly on the edges of October 2026 (UTC and Paris), and long
#: before it: ending at the period's start, before it, zero seconds long
#: at it, running since long before, a day long across each edge
EDGES = (_epoch(2026, 10, 1), _epoch(2026, 11, 1), _epoch(2026, 9, 30, 22), _epoch(2026, 10, 31, 23))


def edge_rows(accounts: list[str], first: int) -> list[str]:
    rows, i = [], first
    meters = ("compute.vcpu", "compute.memory", "network.egress", "memory.peak", "ips", "storage.size")
    for acc in accounts:
        for edge in EDGES:
            for start, end in ((edge - 3600, edge), (edge - 7200, edge - 1), (edge, edge), (edge - 1, edge + 1),
                               (edge - 86400, edge + 86400), (edge, None), (_epoch(2026, 1, 5), None),
                               (_epoch(2026, 2, 1), _epoch(2026, 3, 1)), (_epoch(2025, 6, 1), edge + 5)):
                for meter in meters[i % 3::3]:
                    rows.append(f"e{i},{acc},res-{i % 4},{meter},{_stamp(start)},"
                                f"{'' if end is None else _stamp(end)},{('2', '0.5', '16')[i % 3]}")
                    i += 1
    return rows


def _hub_with_usage(tmp_path: Any, db_url: str) -> Any:
    ws = Workspace(tmp_path, db_url)
    accounts = [f"acc-{i:03d}" for i in range(6)]
    setup(ws, 6, usage_rows(accounts, 500, seed=17) + edge_rows(accounts, 0))
    config, engine = hub_of(ws)
    yield ws, config, engine, accounts
    engine.dispose()


@pytest.fixture
def hub_with_usage(tmp_path: Any, db_url: str) -> Any:
    """Six accounts (every third in Europe/Paris) with seeded usage around
    October 2026 and the edge records."""
    yield from _hub_with_usage(tmp_path, db_url)


@pytest.fixture
def sqlite_hub_with_usage(tmp_path: Any) -> Any:
    """:func:`hub_with_usage` on SQLite only."""
    yield from _hub_with_usage(tmp_path, f"sqlite:///{tmp_path / 'hub.db'}")


class Statements:
    """The statements on ``usage_records`` an engine runs, with their plans
    on SQLite (``EXPLAIN QUERY PLAN``, taken right after each ran)."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.seen: list[tuple[str, str]] = []
        event.listen(engine, "after_cursor_execute", self._after)

    def _after(self, conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if "usage_records" not in statement or executemany or statement.lstrip().upper().startswith("EXPLAIN"):
            return
        if statement.startswith("SELECT MAX(id) FROM usage_records"):  # the size of the store, by rowid
            return
        plan = ""
        if conn.dialect.name == "sqlite":
            rows = cursor.connection.execute("EXPLAIN QUERY PLAN " + statement, parameters).fetchall()
            plan = " | ".join(str(r[-1]) for r in rows)
        self.seen.append((statement, plan))

    def take(self) -> list[tuple[str, str]]:
        seen, self.seen = self.seen, []
        return seen

    def close(self) -> None:
        event.remove(self.engine, "after_cursor_execute", self._after)


def _rates(engine: Any, config: Any, period_text: str, accounts: list[str] | None) -> list[Any]:
    return rate(engine, config, parse_period(period_text), accounts, now=NOW)


# --------------------------------------------------------------------------
# the schema


def test_the_store_indexes_usage_by_account_where_account_is_not_null(tmp_path, db_url):
    engine = open_store(db_url, tmp_path)
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            sql = conn.execute(text("SELECT sql FROM sqlite_master WHERE name = :n"), {"n": INDEX}).scalar_one()
            assert sql.endswith("ON usage_records (account, start_s) WHERE account IS NOT NULL"), sql
        else:
            sql = conn.execute(text("SELECT indexdef FROM pg_indexes WHERE indexname = :n "
                                    "AND schemaname = current_schema()"), {"n": INDEX}).scalar_one()
            assert "(account, start_s) WHERE (account IS NOT NULL)" in sql, sql
    engine.dispose()


def test_a_0004_store_with_usage_gets_the_index_and_rates_the_same(tmp_path, db_url):
    ws = Workspace(tmp_path, db_url)
    accounts = [f"acc-{i:03d}" for i in range(3)]
    ws.config(METERS + PRODUCTS + accounts_toml(3))
    config = load_config(ws.config_path, build_host())
    old = open_store(db_url, tmp_path, migrate=False)
    upgrade(old, "0004")
    rows = usage_rows(accounts, 200, seed=23)
    with old.begin() as conn:
        for i, row in enumerate(rows):
            _rid, acc, res, meter, start, end, qty = row.split(",")
            s = int(datetime.fromisoformat(start.replace("Z", "+00:00")).timestamp())
            e = int(datetime.fromisoformat(end.replace("Z", "+00:00")).timestamp()) if end else None
            units, _, frac = qty.partition(".")
            conn.execute(text(
                "INSERT INTO usage_records (source, record_id, account, resource_id, meter, start_s, end_s, quantity, "
                "qty_units, qty_nanos, labels, version, received_s) VALUES ('files', :r, :a, :res, :m, :s, :e, :q, "
                ":u, :n, '{}', 1, 0)"),
                {"r": f"r{i}", "a": acc, "res": res, "m": meter, "s": s, "e": e, "q": qty, "u": int(units),
                 "n": int((frac + "0" * 9)[:9]) if frac else 0})
    def records(engine):  # noqa: ANN001, ANN202
        with engine.connect() as conn:
            return conn.execute(text("SELECT * FROM usage_records ORDER BY id")).all()

    before = records(old)
    old.dispose()
    engine = open_store(db_url, tmp_path)  # 0004 -> HEAD
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == HEAD
    assert len(before) == 200 and records(engine) == before
    for p in ("2026-10", "2026-10-31"):
        everyone = _rates(engine, config, p, None)
        assert everyone
        assert [c for acc in sorted(accounts) for c in _rates(engine, config, p, [acc])] == everyone
    engine.dispose()


# --------------------------------------------------------------------------
# which queries use it


def test_sqlite_one_account_reads_through_the_index_and_full_ratings_scan(tmp_path):
    ws = Workspace(tmp_path, f"sqlite:///{tmp_path / 'hub.db'}")
    # more than _IN_LIST_MAX in each time zone (every third account is in
    # Paris): a full rating filters in Python
    accounts = [f"acc-{i:03d}" for i in range(200)]
    assert len(accounts) // 3 > connection.IN_LIST_MAX
    setup(ws, 200, usage_rows(accounts, 400, seed=29))
    config, engine = hub_of(ws)
    statements = Statements(engine)
    try:
        assert _rates(engine, config, "2026-10", ["acc-001"])
        one = statements.take()
        # the count that decides (index only), one scan of the time-weighted
        # products, one query per product of the other meters
        assert len(one) >= 1 + 1 + 4
        assert all(INDEX in plan for _sql, plan in one), one
        assert all("account IS NOT NULL" in sql for sql, _plan in one)

        for product in ("vcpu", "egress", "peak", "ips", "storage"):
            assert trace(engine, config, parse_period("2026-10"), "acc-002", product, now=NOW) is not None
            (counted, traced) = statements.take()
            assert INDEX in counted[1] and INDEX in traced[1], (product, traced)

        assert _rates(engine, config, "2026-10", None)
        full = statements.take()
        assert full and not any(INDEX in plan for _sql, plan in full), full
        assert not any("account IS NOT NULL" in sql for sql, _plan in full)

        earliest = earliest_usage(engine, [*accounts, "nobody"])
        (lookup,) = statements.take()  # one statement, a search of the index per account, no scan
        assert f"SEARCH usage_records USING COVERING INDEX {INDEX} (account=?)" in lookup[1], lookup
        assert "SCAN usage_records" not in lookup[1], lookup
        with engine.connect() as conn:
            aggregate = dict(conn.execute(text("SELECT account, MIN(start_s) FROM usage_records GROUP BY account")).all())
        assert earliest == aggregate and len(earliest) == 172  # the accounts with usage; "nobody" has none
    finally:
        statements.close()
        engine.dispose()


def test_sqlite_scans_an_account_with_too_many_records(sqlite_hub_with_usage, monkeypatch):
    """(PostgreSQL's planner chooses between the index and a scan itself.)"""
    ws, config, engine, accounts = sqlite_hub_with_usage
    expected = _rates(engine, config, "2026-10", accounts[:1])
    monkeypatch.setattr(connection, "_INDEX_SHARE", 0.0001)
    statements = Statements(engine)
    try:
        assert _rates(engine, config, "2026-10", accounts[:1]) == expected
        seen = statements.take()
        counts = [(sql, plan) for sql, plan in seen if sql.startswith("SELECT COUNT(*)")]
        reads = [(sql, plan) for sql, plan in seen if not sql.startswith("SELECT COUNT(*)")]
        assert len(counts) == 1 and INDEX in counts[0][1]  # the count reads the index alone
        assert reads and not any(INDEX in plan for _sql, plan in reads), reads
        assert not any("account IS NOT NULL" in sql for sql, _plan in reads)
    finally:
        statements.close()


@pytest.mark.postgresql
def test_postgresql_can_use_the_index_for_one_account(tmp_path, pg_schema_url):
    """The partial index's condition is implied by the one-account queries
    (the planner proves it from ``account = ANY(...)`` too): with scans
    disabled, each of them plans an index scan of it."""
    ws = Workspace(tmp_path, pg_schema_url)
    accounts = [f"acc-{i:03d}" for i in range(3)]
    setup(ws, 3, usage_rows(accounts, 100, seed=31))
    config, engine = hub_of(ws)
    statements = Statements(engine)
    try:
        assert _rates(engine, config, "2026-10", accounts[:1])
        seen = statements.take()
    finally:
        statements.close()
    assert seen
    with engine.connect() as conn:
        conn.exec_driver_sql("SET enable_seqscan = off")
        for sql, _plan in seen:
            plan = "\n".join(r[0] for r in conn.exec_driver_sql("EXPLAIN " + sql, _pg_params(sql, accounts[0])).all())
            assert INDEX in plan, (sql, plan)
    engine.dispose()


def _pg_params(sql: str, account: str) -> dict[str, Any]:
    """Parameters that make ``sql`` (as psycopg got it) plannable: every
    ``%(name)s`` bound to a plausible value."""
    import re

    period = parse_period("2026-10")
    p0, p1 = period.epoch_bounds(UTC)
    out: dict[str, Any] = {}
    for name in re.findall(r"%\((\w+)\)s", sql):
        if name.startswith("accounts"):
            out[name] = account
        elif name.startswith("meter"):
            out[name] = "compute.vcpu"
        elif name == "resource":
            out[name] = "res-1"
        else:  # p0, p1, run_end, g, m, b1...: bounds and durations
            out[name] = {"p0": p0, "p1": p1, "run_end": p1}.get(name, 1)
    return out


# --------------------------------------------------------------------------
# exactness


def test_each_account_alone_in_a_group_scanned_or_all_at_once_gives_the_same_lines(hub_with_usage, monkeypatch):
    ws, config, engine, accounts = hub_with_usage
    for period_text in ("2026-10", "2026-11", "2026-09", "2026-10-31", "2026-10-01", "2026-W44"):
        everything = _rates(engine, config, period_text, None)
        by_account: dict[str, list[Any]] = defaultdict(list)
        for c in everything:
            by_account[c.account].append(c)
        assert _rates(engine, config, period_text, accounts[1:4]) == \
            [c for c in everything if c.account in accounts[1:4]], period_text
        for acc in accounts:
            assert _rates(engine, config, period_text, [acc]) == by_account[acc], (period_text, acc)
    october = _rates(engine, config, "2026-10", None)
    assert {c.product for c in october} == set(PRODUCT_NAMES)
    assert {c.account for c in october} == set(accounts)
    # the same, every one-account read forced onto a scan
    monkeypatch.setattr(connection, "_INDEX_SHARE", 0.0)
    for acc in accounts:
        assert _rates(engine, config, "2026-10", [acc]) == [c for c in october if c.account == acc]


def test_trace_lists_the_same_records_through_the_index_or_a_scan(hub_with_usage, monkeypatch):
    ws, config, engine, accounts = hub_with_usage
    period = parse_period("2026-10")
    indexed = {(acc, p): trace(engine, config, period, acc, p, now=NOW)
               for acc in accounts[:3] for p in PRODUCT_NAMES}
    assert any(indexed.values())
    monkeypatch.setattr(connection, "_INDEX_SHARE", 0.0)
    for (acc, p), records in indexed.items():
        assert trace(engine, config, period, acc, p, now=NOW) == records, (acc, p)


# a property: any records, any account alone equals the full rating

_WINDOW = (_epoch(2026, 9, 29), _epoch(2026, 11, 3))
_rows = st.lists(st.tuples(
    st.sampled_from(["acc-000", "acc-001", "acc-002"]),
    st.sampled_from(["compute.vcpu", "compute.memory", "network.egress", "memory.peak", "ips", "storage.size"]),
    st.one_of(st.integers(*_WINDOW), st.sampled_from(EDGES)),
    st.one_of(st.none(), st.sampled_from([0, 1, 59, 3600, 86400 * 3]), st.integers(0, 86400 * 40)),
    st.sampled_from(["1", "0.5", "2.25", "0.931322575"]),
    st.integers(1, 3),
), min_size=1, max_size=40)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=_rows, period_text=st.sampled_from(["2026-10", "2026-10-31", "2026-11-01", "2026-09"]))
def test_property_one_account_through_the_index_equals_its_lines_of_the_full_rating(tmp_path_factory, rows,
                                                                                     period_text):
    tmp = tmp_path_factory.mktemp("prop")
    ws = Workspace(tmp, f"sqlite:///{tmp / 'hub.db'}")
    csv = [f"r{i},{acc},res-{res},{meter},{_stamp(start)},{'' if length is None else _stamp(start + length)},{q}"
           for i, (acc, meter, start, length, q, res) in enumerate(rows)]
    setup(ws, 3, csv)
    config, engine = hub_of(ws)
    try:
        everything = _rates(engine, config, period_text, None)
        for acc in ("acc-000", "acc-001", "acc-002"):
            assert _rates(engine, config, period_text, [acc]) == [c for c in everything if c.account == acc]
    finally:
        engine.dispose()


def test_a_running_record_that_ends_moves_in_the_index(tmp_path, db_url):
    """A record pulled while running, then again once it ended (before the
    period rated): the one-account rating follows its last version."""
    ws = Workspace(tmp_path, db_url)
    ws.config(METERS + PRODUCTS + accounts_toml(2))
    running = f"r1,acc-000,vm-1,compute.vcpu,{_stamp(_epoch(2026, 9, 20))},,2\n"
    ws.write("usage/a.csv", HEADER + running)
    assert ws.hub("pull").exit_code == 0
    config, engine = hub_of(ws)
    assert [c.product for c in _rates(engine, config, "2026-10", ["acc-000"])] == \
        ["vcpu", "vcpu-by-vm", "vcpu-long-minimum", "vcpu-minimum", "vcpu-slices"]
    ended = f"r1,acc-000,vm-1,compute.vcpu,{_stamp(_epoch(2026, 9, 20))},{_stamp(_epoch(2026, 9, 30))},2\n"
    ws.write("usage/a.csv", HEADER + ended)
    assert ws.hub("pull", "--full").exit_code == 0
    assert _rates(engine, config, "2026-10", ["acc-000"]) == []
    assert _rates(engine, config, "2026-09", ["acc-000"]) == \
        [c for c in _rates(engine, config, "2026-09", None) if c.account == "acc-000"]
    engine.dispose()


def test_random_groups_of_a_few_accounts(hub_with_usage):
    ws, config, engine, accounts = hub_with_usage
    rng = random.Random(5)
    everything = _rates(engine, config, "2026-10", None)
    for _ in range(6):
        group = rng.sample(accounts, rng.randint(1, len(accounts) - 1))
        assert _rates(engine, config, "2026-10", group) == [c for c in everything if c.account in group]
