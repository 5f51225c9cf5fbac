"""A bulk load into SQLite builds the account index once, at the end
(hub/store/writer.py).

The pipelined SQLite writer drops ``ix_usage_records_account`` (migration
0005) once a pull has written ``BULK_MIN_ROWS`` rows and at least as many
as the store held, and builds it again when the pull ends: one sort
instead of an index insert per row. These tests pin that the index is
there after every pull, that a small pull into a large store keeps it all
along, that a pull finds it missing (a bulk load killed midway) and builds
it, and that the rows stored are the same either way. SQLite only: the
PostgreSQL writer keeps its indexes.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event, text

from hub.config import load_config
from hub.host import build_host
from hub.ingest import pull
from hub.store import writer
from hub.store.db import open_store
from tests.conftest import HEADER, STANDARD_CONFIG, Workspace

INDEX = writer.ACCOUNT_INDEX


def _csv(first: int, rows: int) -> str:
    return HEADER + "".join(
        f"r{i},{('acme', 'globex')[i % 2]},vm-{i % 50},compute.vcpu,2026-10-01T10:00:00Z,"
        f"2026-10-01T10:{i % 60:02d}:00Z,{i % 7}.5\n" for i in range(first, first + rows))


@pytest.fixture
def ws(tmp_path: Any) -> Workspace:
    ws = Workspace(tmp_path, f"sqlite:///{tmp_path / 'hub.db'}")
    ws.config(STANDARD_CONFIG + "batch_size = 500\n")
    return ws


def _pull(ws: Workspace) -> tuple[list[str], Any]:
    """Pull in this process; the DDL statements the pull ran on the store."""
    config = load_config(ws.config_path, build_host())
    engine = open_store(config.hub.database, config.base_dir)
    ddl: list[str] = []
    event.listen(engine, "before_cursor_execute",
                 lambda conn, cursor, statement, *rest: ddl.append(statement) if "INDEX" in statement else None)
    [result] = pull(config, build_host(), engine)
    assert result.ok and result.counts.quarantined == 0, result
    return ddl, engine


def _index_sql(engine: Any) -> str | None:
    with engine.connect() as conn:
        return conn.scalar(text("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = :n"), {"n": INDEX})


def _records(engine: Any) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return conn.execute(text("SELECT record_id, account, start_s, end_s, qty_units, qty_nanos "
                                 "FROM usage_records ORDER BY record_id")).all()


def test_a_bulk_load_drops_the_account_index_and_builds_it_again_at_the_end(ws, monkeypatch):
    monkeypatch.setattr(writer, "BULK_MIN_ROWS", 2000)
    ws.write("usage/a.csv", _csv(0, 6000), dedent=False)
    ddl, engine = _pull(ws)
    assert ddl == [f"DROP INDEX IF EXISTS {INDEX}"]  # the rebuild runs on the raw connection, at close
    assert _index_sql(engine) == ("CREATE INDEX ix_usage_records_account ON usage_records (account, start_s) "
                                  "WHERE account IS NOT NULL")
    assert len(_records(engine)) == 6000


def test_a_small_pull_into_a_larger_store_keeps_the_index_all_along(ws, monkeypatch):
    monkeypatch.setattr(writer, "BULK_MIN_ROWS", 2000)
    ws.write("usage/a.csv", _csv(0, 6000), dedent=False)
    _pull(ws)
    ws.write("usage/b.csv", _csv(6000, 3000), dedent=False)  # 3,000 new rows into a store of 6,000
    ddl, engine = _pull(ws)
    assert ddl == []
    assert _index_sql(engine) is not None and len(_records(engine)) == 9000


def test_a_pull_that_finds_the_index_missing_builds_it(ws):
    ws.write("usage/a.csv", _csv(0, 1000), dedent=False)
    _ddl, engine = _pull(ws)
    with engine.begin() as conn:  # as a bulk load killed midway leaves it
        conn.execute(text(f"DROP INDEX {INDEX}"))
    ws.write("usage/b.csv", _csv(1000, 10), dedent=False)
    _pull(ws)
    assert _index_sql(engine) is not None


def test_the_same_rows_are_stored_with_and_without_the_bulk_path(tmp_path, monkeypatch):
    stored = []
    for bulk in (10**9, 1000):
        monkeypatch.setattr(writer, "BULK_MIN_ROWS", bulk)
        ws = Workspace(tmp_path / str(bulk), f"sqlite:///{tmp_path / str(bulk) / 'hub.db'}")
        ws.config(STANDARD_CONFIG + "batch_size = 500\n")
        ws.write("usage/a.csv", _csv(0, 4000), dedent=False)
        ddl, engine = _pull(ws)
        assert bool(ddl) == (bulk == 1000)
        stored.append(_records(engine))
    assert stored[0] == stored[1] and len(stored[0]) == 4000
