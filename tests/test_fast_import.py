"""The fast ways through a big pull: the csv source's block path, the
hub's column check (``UsageColumns``), and the pipelined SQLite writer.

Each fast path must give exactly what the row-by-row path gives: the same
records, the same quarantine entries (file, physical line, raw text, every
error) and the same ``N imported, M updated, K quarantined``.
"""

from __future__ import annotations

import json
import os
import tempfile
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.plugin_types import PullBatch, UsageColumns
from hub.quantities import parse_quantity, quantity_parts, split_quantity
from hub.timestamps import TimestampParser, parse_timestamp
from tests.conftest import HEADER, STANDARD_CONFIG
from tests.test_csv_source import _host_and_config, ingest, open_entries, pull, stored, summary, view

ROWS = 5000
T0 = "2026-10-01T10:00:00Z"


def big_file(rows: int = ROWS, changed: dict[int, str] | None = None) -> str:
    """``rows`` valid rows of varied shapes (running records, decimals,
    two accounts and meters), with ``changed`` lines replacing some."""
    out = [HEADER.rstrip("\n") + ",zone\n"]
    for i in range(rows):
        day, minute, second = 1 + i % 28, i % 60, (i * 7) % 60
        start = f"2026-10-{day:02d}T{i % 24:02d}:{minute:02d}:{second:02d}Z"
        end = "" if i % 50 == 0 else f"2026-10-{day:02d}T{i % 24:02d}:{minute:02d}:{59:02d}Z" if second < 59 else start
        quantity = ("2", "0.5", "1.250", "16", f"{i}.{i % 1000:03d}", "0")[i % 6]
        account, meter = (("acme", "compute.vcpu"), ("globex", "network.egress"))[i % 2]
        zone = ("eu-west", "", "us-east")[i % 3]
        out.append(f"r{i},{account},vm-{i % 97},{meter},{start},{end},{quantity},{zone}\n")
    for line, text in (changed or {}).items():
        out[line - 1] = text
    return "".join(out)


@pytest.fixture
def no_fast_path(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Turns the csv source's block path off: every row goes the row path."""
    from hub_plugins.usage_sources import csv_source

    def turn_off() -> None:
        monkeypatch.setattr(csv_source._FastPath, "for_layout", classmethod(lambda cls, *a: None))

    return turn_off


def _store_and_quarantine(ws: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    rows = {rid: {k: v for k, v in r.items() if k != "received_s"} for rid, r in stored(ws).items()}
    return rows, [view(e) for e in open_entries(ws)]


# --------------------------------------------------------------------------
# the csv source's block path


def test_a_big_file_is_stored_exactly_as_the_row_by_row_path_stores_it(workspace, tmp_path, no_fast_path):
    bad = {
        1200: "r1198,initech,vm-1,compute.vcpu,2026-10-02T10:00:00Z,,2,eu\n",
        2400: "r2398,acme,vm-1,compute.vcpu,2026-10-02T10:00:00Z,2026-10-02T09:00:00Z,1.2.3,\n",
        2401: 'r2399,acme,vm-1,compute.vcpu,2026-10-02T10:00:00Z,,2,"a\nb"\n',
        3600: "r3598,acme,vm-1,compute.vcpu,2026-10-02T10:00:00+02:00,2026-10-02T10:00:00.5Z,  7 ,\n",
    }
    workspace.config(STANDARD_CONFIG + "batch_size = 1000\n")
    workspace.write("usage/x.csv", big_file(changed=bad))
    fast = pull(workspace, code=3)
    fast_state = _store_and_quarantine(workspace)

    from tests.conftest import Workspace

    other = Workspace(tmp_path / "slow", f"sqlite:///{tmp_path / 'slow' / 'hub.db'}")
    if not workspace.db_url.startswith("sqlite"):
        other = workspace  # the same PostgreSQL schema, emptied below
        from sqlalchemy import create_engine, text

        engine = create_engine(workspace.db_url)
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM usage_records"))
            conn.execute(text("DELETE FROM quarantine"))
            conn.execute(text("DELETE FROM checkpoints"))
        engine.dispose()
    other.config(STANDARD_CONFIG + "batch_size = 1000\n")
    other.write("usage/x.csv", big_file(changed=bad))
    no_fast_path()
    slow = pull(other, code=3)

    assert summary(fast) == summary(slow) == "files: 4998 imported, 0 updated, 2 quarantined"
    assert _store_and_quarantine(other) == fast_state
    rows, entries = fast_state
    assert [(e["line"], e["record_id"], e["errors"]) for e in entries] == [
        (1200, "r1198", ["unknown account 'initech'"]),
        (2400, "r2398", ["end: '2026-10-02T09:00:00Z' is before start '2026-10-02T10:00:00Z'",
                         "quantity: '1.2.3' is not a decimal number"]),
    ]
    assert rows["r2399"]["labels"] == '{"zone":"a\\nb"}' and rows["r2399"]["origin"] == "usage/x.csv:2401"
    assert rows["r3598"]["quantity"] == "7" and rows["r3598"]["origin"] == "usage/x.csv:3601"
    assert rows["r4999"]["origin"] == "usage/x.csv:5002"  # physical lines, after the quoted line break


def test_bad_rows_inside_big_blocks_are_quarantined_at_their_lines_and_the_rest_imported(workspace):
    bad = {
        2: "r0,acme,vm-1,gpu.hours,2026-10-02T10:00:00Z,,2,\n",
        1500: "r1498,acme,vm-1,compute.vcpu,2026-10-02T24:00:00Z,,2,\n",
        5001: "r4999,acme,,compute.vcpu,2026-10-02T10:00:00Z,,-1,\n",
    }
    workspace.write("usage/x.csv", big_file(changed=bad))
    result = pull(workspace, code=3)
    assert summary(result) == "files: 4997 imported, 0 updated, 3 quarantined"
    assert [view(e) for e in open_entries(workspace)] == [
        {"source": "files", "location": "usage/x.csv", "line": line, "raw": bad[line].rstrip("\n"),
         "errors": errors, "record_id": rid, "status": "open"}
        for line, rid, errors in (
            (2, "r0", ["unknown meter 'gpu.hours'"]),
            (1500, "r1498", ["start: '2026-10-02T24:00:00Z' is an impossible time: hours go from 00 to 23"]),
            (5001, "r4999", ["resource_id: empty", "quantity: '-1' is negative"]),
        )]
    rows = stored(workspace)
    assert len(rows) == 4997 and "r1498" not in rows
    assert (rows["r1499"]["origin"], rows["r1499"]["version"]) == ("usage/x.csv:1501", 1)


def test_a_big_file_changed_in_place_counts_imported_and_updated_exactly(workspace):
    workspace.config(STANDARD_CONFIG + "batch_size = 700\n")
    workspace.write("usage/x.csv", big_file())
    assert summary(pull(workspace)) == f"files: {ROWS} imported, 0 updated, 0 quarantined"
    before = stored(workspace)
    # 120 rows edited, 30 rows appended, one record id twice in the file
    edits = {line: f"r{line - 2},acme,vm-edited,compute.vcpu,2026-10-03T10:00:00Z,,3.5,\n"
             for line in range(100, 4900, 40)}
    text = big_file(changed=edits) + "".join(
        f"n{i},globex,vm-n,network.egress,2026-10-04T10:00:00Z,,0.000000001,\n" for i in range(30))
    text += "r5,acme,vm-last,compute.vcpu,2026-10-05T10:00:00Z,,1,\n"
    workspace.write("usage/x.csv", text)
    assert summary(pull(workspace)) == "files: 30 imported, 121 updated, 0 quarantined"
    rows = stored(workspace)
    assert len(rows) == ROWS + 30
    changed = {rid for rid, r in rows.items() if rid in before and r != before[rid]}
    assert changed == {f"r{line - 2}" for line in edits} | {"r5"}
    assert {rows[rid]["version"] for rid in changed} == {2}
    assert (rows["r5"]["resource_id"], rows["r5"]["origin"]) == ("vm-last", f"usage/x.csv:{ROWS + 32}")
    assert (rows["n0"]["quantity"], rows["n0"]["qty_units"], rows["n0"]["qty_nanos"]) == ("0.000000001", 0, 1)
    assert summary(pull(workspace)) == "files: 0 imported, 0 updated, 0 quarantined"
    assert stored(workspace) == rows


def test_a_big_file_grown_while_its_last_line_was_unfinished_is_completed_exactly_once(workspace):
    text = big_file(2000)
    workspace.write("usage/x.csv", text + "late,acme,vm-1,compute.vcpu,2026-10-01T10:00:00Z,,1")  # cut mid-quantity
    assert summary(pull(workspace)) == "files: 2001 imported, 0 updated, 0 quarantined"
    workspace.append("usage/x.csv", "5,\n" + "after,acme,vm-1,compute.vcpu,2026-10-01T10:00:00Z,,2,\n")
    assert summary(pull(workspace)) == "files: 1 imported, 1 updated, 0 quarantined"
    rows = stored(workspace)
    assert (rows["late"]["quantity"], rows["late"]["version"], rows["late"]["origin"]) == ("15", 2, "usage/x.csv:2002")
    assert rows["after"]["origin"] == "usage/x.csv:2003"


def test_labels_units_and_offsets_on_the_block_path_are_stored_as_the_row_path_stores_them(workspace, no_fast_path):
    header = "record_id,account,resource_id,meter,start,end,quantity,unit,team,zone\n"
    body = "".join(
        f"r{i},acme,vm-{i},{('compute.vcpu', 'network.egress')[i % 2]},2026-10-01T10:{i % 60:02d}:{i % 59:02d}Z,"
        f"{('', '2026-10-01T14:00:00+02:00', '2026-10-01T11:00:00Z')[i % 3]},{i % 5}.{i % 7}0,"
        f"{('', ('vCPU', 'GB')[i % 2])[i % 4 == 1]},{('ops', '', 'dev')[i % 3]},{('', 'eu')[i % 2]}\n"
        for i in range(3000))
    workspace.write("usage/x.csv", header + body)
    assert summary(pull(workspace)) == "files: 3000 imported, 0 updated, 0 quarantined"
    fast = stored(workspace)
    assert (fast["r1"]["unit"], fast["r1"]["labels"], fast["r1"]["quantity"]) == ("GB", '{"zone":"eu"}', "1.1")
    assert (fast["r2"]["unit"], fast["r2"]["labels"], fast["r2"]["end_s"]) == (None, '{"team":"dev"}', 1790852400)
    no_fast_path()
    # the row path reads every row again and finds nothing to change
    assert summary(pull(workspace, "--full")) == "files: 0 imported, 0 updated, 0 quarantined"
    assert stored(workspace) == fast


# --------------------------------------------------------------------------
# a source that hands over columns


class _Columns:
    batches: list[PullBatch] = []

    def __init__(self, config: Any) -> None:
        pass

    def pull(self, checkpoint: Any, ctx: Any) -> Any:
        yield from _Columns.batches


def _columns_plugin() -> Any:
    from hub.hookspecs import hookimpl
    from hub.plugin_types import SourceType

    class Plugin:
        @hookimpl
        def hub_register_source_types(self) -> list[Any]:
            schema = {"type": "object", "additionalProperties": False, "properties": {}}
            return [SourceType(name="columns", description="columns", config_schema=schema, factory=_Columns)]

    return Plugin()


def _pull_columns(ws: Any, batches: list[PullBatch]) -> Any:
    from hub.config import load_config
    from hub.host import build_host
    from hub.store.db import open_store

    ws.config(STANDARD_CONFIG.replace('type = "csv"\npath = "usage/*.csv"', 'type = "columns"'))
    _Columns.batches = batches
    host = build_host(extra_plugins=[("columns-plugin", _columns_plugin())])
    config = load_config(ws.config_path, host)
    engine = open_store(config.hub.database, config.base_dir)
    try:
        [result] = ingest(config, host, engine)
    finally:
        engine.dispose()
    return result


def _open_quarantine(ws: Any) -> list[dict[str, Any]]:
    """The open quarantine entries, from the store (the CLI does not know
    this test's source type)."""
    from sqlalchemy import select

    from hub.store.tables import quarantine
    from tests.test_csv_source import db_query

    return [dict(e, errors=json.loads(e["errors"])) for e in db_query(
        ws, select(quarantine).where(quarantine.c.status == "open").order_by(quarantine.c.id))]


def _cols(ids: list[str], **changes: Any) -> UsageColumns:
    n = len(ids)
    values: dict[str, Any] = dict(
        record_id=ids, account=["acme"] * n, resource_id=["vm"] * n, meter=["compute.vcpu"] * n,
        start=[1790848800 + i for i in range(n)], end=[1790849800 + i for i in range(n)],
        quantity_units=[2] * n, quantity_nanos=[500_000_000] * n, location="feed", line=list(range(1, n + 1)))
    values.update(changes)
    return UsageColumns(**values)


def test_column_rows_the_hub_cannot_store_exactly_are_quarantined_with_every_error(workspace):
    cols = _cols(["a", "b", "c", "d", "e", "f", "g"],
                 account=["acme", "nobody", "acme", "acme", "acme", "acme", "acme"],
                 start=[1790848800, 1790848800, 1.5, 1790848800, 1790848800, 1790848800, 1790848800],
                 end=[None, 1790848800, None, 1790848799, None, None, None],
                 quantity_units=[0, 1, 1, 1, -1, 10**15, 3], quantity_nanos=[1, 0, 0, 0, 0, 0, 10**9],
                 labels={"team": ["ops", "", "", "", "", "", ""]})
    result = _pull_columns(workspace, [PullBatch(columns=cols, checkpoint={"at": 1})])
    assert (result.counts.imported, result.counts.quarantined, result.failure) == (1, 6, None)
    rows = stored(workspace)
    assert list(rows) == ["a"]
    assert (rows["a"]["quantity"], rows["a"]["labels"], rows["a"]["origin"], rows["a"]["end_s"]) == (
        "0.000000001", '{"team":"ops"}', "feed:1", None)
    assert [(e["location"], e["line"], e["record_id"], e["errors"]) for e in _open_quarantine(workspace)] == [
        ("feed", 2, "b", ["unknown account 'nobody'"]),
        ("feed", 3, "c", ["start: must be whole epoch seconds (int), not float"]),
        ("feed", 4, "d", ["end: must be whole epoch seconds (int) not before start, or None while running"]),
        ("feed", 5, "e", ["quantity: -1 units is negative"]),
        ("feed", 6, "f", ["quantity: 1000000000000000 units is too large (the limit is 10^15)"]),
        ("feed", 7, "g", ["quantity: nanos 1000000000 is not between 0 and 10^9 - 1"]),
    ]


def test_the_last_row_of_a_record_id_wins_across_records_and_columns_of_a_batch(workspace):
    from hub.plugin_types import UsageRecord

    record = UsageRecord("x", "acme", "vm-record", "compute.vcpu", 1790848800, None, Decimal("9"))
    cols = _cols(["x", "y", "y"], resource_id=["vm-col", "vm-first", "vm-last"])
    result = _pull_columns(workspace, [PullBatch(records=(record,), columns=cols, checkpoint={"at": 1})])
    assert (result.counts.imported, result.counts.updated, result.counts.unchanged) == (2, 0, 0)
    rows = stored(workspace)
    assert {rid: (r["resource_id"], r["version"], r["quantity"]) for rid, r in rows.items()} == {
        "x": ("vm-col", 1, "2.5"), "y": ("vm-last", 1, "2.5")}


def test_columns_of_unequal_lengths_fail_the_source_and_store_nothing_of_that_batch(workspace):
    good = _cols(["a"])
    bad = _cols(["b", "c"], meter=["compute.vcpu"])
    result = _pull_columns(workspace, [PullBatch(columns=good, checkpoint={"at": 1}),
                                       PullBatch(columns=bad, checkpoint={"at": 2})])
    assert (result.failure.hook, result.failure.message) == (
        "pull", "yielded malformed columns: meter has 1 values, record_id 2")
    assert result.counts.imported == 1
    assert sorted(stored(workspace)) == ["a"]


def test_a_batch_that_cannot_be_stored_stops_the_source_and_keeps_the_batches_before_it(workspace):
    from sqlalchemy import create_engine, select

    from hub.store.tables import checkpoints

    batches = [PullBatch(columns=_cols([f"a{i}" for i in range(300)]), checkpoint={"at": 1}),
               PullBatch(columns=_cols([f"b{i}" for i in range(300)]), checkpoint={"at": 2}),
               PullBatch(columns=_cols(["c"], start=[2 ** 70], end=[None]), checkpoint={"at": 3}),
               PullBatch(columns=_cols(["d"]), checkpoint={"at": 4})]
    result = _pull_columns(workspace, batches)
    assert result.failure.hook == "store"
    assert (result.counts.imported, result.counts.updated) == (600, 0)
    assert len(stored(workspace)) == 600
    engine = create_engine(workspace.db_url)
    with engine.connect() as conn:
        assert json.loads(conn.scalar(select(checkpoints.c.state))) == {"at": 2}
    engine.dispose()


def test_a_pull_leaves_no_scratch_file_and_nothing_attached_to_the_store(workspace, tmp_path, monkeypatch):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    workspace.config(STANDARD_CONFIG + "batch_size = 500\n")
    workspace.write("usage/x.csv", big_file(2000))
    assert summary(pull(workspace)) == "files: 2000 imported, 0 updated, 0 quarantined"
    assert os.listdir(scratch) == []
    if workspace.db_url.startswith("sqlite"):
        from hub.store.db import open_store

        engine = open_store(workspace.db_url, workspace.root)
        with engine.connect() as conn:
            assert [row[1] for row in conn.exec_driver_sql("PRAGMA database_list")] == ["main"]
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 1000
        engine.dispose()


def test_the_sqlite_writer_keeps_its_temporary_storage_in_files_and_hands_its_connection_back_as_it_was(tmp_path):
    # An upsert that updates records journals the original of every page it
    # changes in temporary storage: in memory (the hub's default), 50,000
    # late records in a 5 M store held 180 MB there (bench/bench_rating.py).
    from hub.store.db import open_store
    from hub.store.writer import BatchWrite, open_writer

    engine = open_store(f"sqlite:///{tmp_path / 'hub.db'}", tmp_path)
    file_, memory = 1, 2  # PRAGMA temp_store
    writer = open_writer(engine, "files", 1_790_000_000, open_entries=False)
    try:
        dbapi = writer._dbapi  # type: ignore[attr-defined]
        assert dbapi.execute("PRAGMA temp_store").fetchone()[0] == file_
        columns = UsageColumns(record_id=["r1", "r2"], account=["acme"] * 2, resource_id=["vm-1"] * 2,
                               meter=["compute.vcpu"] * 2, start=[1_790_000_000] * 2, end=[1_790_000_060, None],
                               quantity_units=[2, 1], quantity_nanos=[0, 500_000_000])
        writer.write(BatchWrite(columns=columns))
        writer.finish()
        assert dbapi.execute("PRAGMA temp_store").fetchone()[0] == file_
    finally:
        writer.close()
    assert dbapi.execute("PRAGMA temp_store").fetchone()[0] == memory
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM usage_records").scalar() == 2
    engine.dispose()


# --------------------------------------------------------------------------
# the parsers behind the fast paths give what the plain ones give


_TIMESTAMP_PIECES = st.sampled_from(["2026-10-01T10:00:", "2026-02-28T23:59:", "2026-10-25T02:30:", "2026-13-01T00:00:",
                                     "2026-10-01 10:00:", "2026-10-01t10:00:", "2026-10-01T1:00:", ""])
_TIMESTAMP_ENDS = st.sampled_from(["00Z", "59Z", "60Z", "07z", "07.5Z", "07+02:00", "07", "7Z", "07Z ", "0١Z", ""])


@settings(max_examples=400, deadline=None)
@given(texts=st.lists(st.tuples(_TIMESTAMP_PIECES, _TIMESTAMP_ENDS).map("".join), min_size=1, max_size=30),
       zoned=st.booleans())
def test_the_timestamp_parser_gives_exactly_what_parse_timestamp_gives(texts, zoned):
    from zoneinfo import ZoneInfo

    tz = ZoneInfo("Europe/Paris") if zoned else None
    parser = TimestampParser(tz)
    for _ in range(2):  # the second time from what it remembers
        assert [parser.parse(t) for t in texts] == [parse_timestamp(t, tz) for t in texts]
        expected = [parse_timestamp(t, tz) for t in texts]
        column = parser.column(texts)
        assert column == (None if any(e for _v, e in expected) else [v for v, _e in expected])


@settings(max_examples=600, deadline=None)
@given(text=st.one_of(
    st.from_regex(r"[+-]?[0-9]{0,17}(\.[0-9]{0,11})?([eE][+-]?[0-9]{1,3})?", fullmatch=True),
    st.text(alphabet="0123456789.eE+-_ ٣", max_size=12)))
def test_quantity_parts_are_exactly_the_parsed_quantity(text):
    value, error = parse_quantity(text)
    parts, parts_error = quantity_parts(text)
    assert parts_error == error
    if value is not None:
        _text, units, nanos = split_quantity(value)
        assert parts == (units, nanos)
