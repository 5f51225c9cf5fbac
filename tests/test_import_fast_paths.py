"""The vectorized parts of a big pull give exactly what the plain ones give.

- :func:`hub.timestamps.utc_z_column` and :func:`hub.quantities.plain_parts_column`
  (numpy) against :func:`~hub.timestamps.parse_timestamp` and
  :func:`~hub.quantities.quantity_parts`, value for value;
- the csv source's block path against its row path on files that mix good
  and bad rows, odd timestamps and quantities, quoted fields, a BOM, CRLF,
  blank lines and a file that grows mid-line: the same stored rows, the same
  quarantine entries (line, raw text, every error), the same counts;
- a bad row in a big block costs the row path a small block, not the batch;
- the pipelined SQLite writer's own WAL checkpointer, and its multi-row stage
  inserts.
"""

from __future__ import annotations

import random
import sqlite3
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.quantities import plain_parts_column, quantity_parts
from hub.timestamps import TimestampParser, parse_timestamp, utc_z_column
from tests.conftest import HEADER, STANDARD_CONFIG, Workspace
from tests.test_csv_source import all_entries, pull, stored, summary, view

# --------------------------------------------------------------------------
# timestamps


def _reference(texts: list[str]) -> tuple[list[int | None], set[int]]:
    values, bad = [], set()
    for i, text in enumerate(texts):
        value, error = parse_timestamp(text)
        values.append(value)
        if error:
            bad.add(i)
    return values, bad


def _agrees(texts: list[str]) -> None:
    """utc_z_column gives parse_timestamp's value for every text it takes,
    and leaves to it every text it does not take; it takes every valid
    ``YYYY-MM-DDTHH:MM:SSZ``."""
    found = utc_z_column(texts)
    assert found is not None
    values, others = found
    expected, bad = _reference(texts)
    assert bad <= set(others)
    for i, text in enumerate(texts):
        if i not in others:
            assert values[i] == expected[i], text
        elif text[10:11] == "T" and text[19:] == "Z":
            assert i in bad, f"{text} is valid and of the usual shape: it should not be left over"


EDGES = [
    "1970-01-01T00:00:00Z", "1969-12-31T23:59:59Z", "0001-01-01T00:00:00Z", "0000-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z", "2000-02-29T12:00:00Z", "1900-02-29T12:00:00Z", "2100-02-29T00:00:00Z",
    "2024-02-29T23:59:59Z", "2025-02-29T00:00:00Z", "2025-02-28T23:59:59Z", "2025-03-01T00:00:00Z",
    "2025-04-31T00:00:00Z", "2025-12-31T23:59:59Z", "2025-13-01T00:00:00Z", "2025-00-10T00:00:00Z",
    "2025-01-00T00:00:00Z", "2025-01-32T00:00:00Z", "2025-03-05T24:00:00Z", "2025-03-05T23:60:00Z",
    "2025-03-05T23:59:60Z", "2025-03-05t10:00:00Z", "2025-03-05T10:00:00z", "2025-03-05 10:00:00Z",
    "2025-03-05T10:00:0aZ", "2025/03/05T10:00:00Z", "2025-03-05T10-00:00Z", "+025-03-05T10:00:00Z",
    "2025-03-05T10:00:00X", "-025-03-05T10:00:00Z", "2025-03-05T10:00:00 ", "2025-03-05T10:00:00\x00",
]


def test_the_usual_timestamps_are_computed_exactly_as_parse_timestamp_computes_them():
    _agrees(EDGES)
    rng = random.Random(20250301)
    texts = [f"{rng.choice([1, 4, 100, 400, 1600, 1900, 1970, 2000, 2024, 2025, 2100, rng.randint(0, 9999)]):04d}-"
             f"{rng.randint(0, 13):02d}-{rng.randint(0, 32):02d}T{rng.randint(0, 25):02d}:"
             f"{rng.randint(0, 61):02d}:{rng.randint(0, 61):02d}Z" for _ in range(20_000)]
    _agrees(texts)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.datetimes(min_value=__import__("datetime").datetime(1970, 1, 1)).map(
    lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ").rjust(20, "0")), min_size=1, max_size=40))
def test_any_valid_utc_time_of_the_usual_shape_is_its_epoch_second(texts):
    values, others = utc_z_column(texts)
    assert others == []
    assert values == [parse_timestamp(t)[0] for t in texts]


def test_texts_not_all_of_twenty_characters_are_left_to_the_parser_whole():
    assert utc_z_column(["2025-03-05T10:00:00Z", "2025-03-05T10:00:00+00:00"]) is None
    assert utc_z_column(["2025-03-05T10:00:0Z", "2025-03-05T10:00:000Z"]) is None  # 20 a text on average
    assert utc_z_column(["2025-03-05T10:00:0٥Z"]) is None  # 20 characters, 21 bytes
    assert utc_z_column([]) == ([], [])


@pytest.mark.parametrize("zone", [None, "Europe/Paris"])
def test_a_long_column_of_mixed_shapes_gives_what_parse_timestamp_gives(zone):
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(zone) if zone else None
    good = ["2026-10-01T10:00:00Z", "2026-10-01t10:00:00z", "2026-10-01T12:00:00+02:00", "2026-10-01T10:00:00.9Z",
            "2026-10-01 10:00:00Z", "2026-03-29T01:59:59Z", "2024-02-29T00:00:00Z"]
    texts = [good[i % len(good)] for i in range(70)]
    parser = TimestampParser(tz)
    assert parser.column(texts) == [parse_timestamp(t, tz)[0] for t in texts]
    same_length = [t for t in texts if len(t) == 20]
    assert len(same_length) >= 16  # the numpy path, with the lower-case shapes left to parse()
    assert parser.column(same_length) == [parse_timestamp(t, tz)[0] for t in same_length]
    assert parser.column([*same_length, "2026-02-30T10:00:00Z"]) is None
    naive = ["2026-10-25T02:30:00"] + same_length  # ambiguous in Paris, no offset without a zone: an error either way
    assert parser.column(naive) is None


# --------------------------------------------------------------------------
# quantities


@settings(max_examples=500, deadline=None)
@given(st.lists(st.one_of(
    st.from_regex(r"[0-9]{0,17}(\.[0-9]{0,11})?", fullmatch=True),
    st.from_regex(r"[+-]?[0-9]{0,3}(\.[0-9]{0,3})?([eE][+-]?[0-9]{1,2})?", fullmatch=True),
    st.text(alphabet="0123456789.eE+-_ ٣\r\t", max_size=12)), min_size=1, max_size=40))
def test_plain_quantities_are_split_exactly_as_quantity_parts_splits_them(texts):
    units, nanos, others = plain_parts_column(texts)
    for i, text in enumerate(texts):
        parts, error = quantity_parts(text)
        if i in others:
            continue
        assert error is None and parts == (units[i], nanos[i]), text
        assert text.replace(".", "").isdigit()


def test_quantities_at_the_limits():
    texts = ["0", "0.0", "1.", ".5", "999999999999999", "999999999999999.999999999", "0.000000001", "007.50",
             "1000000000000000", "0.0000000001", ".", "", "1.2.3", "1e3", "-1", "+1", " 1", "000000000000000001"]
    units, nanos, others = plain_parts_column(texts)
    taken = {texts[i]: (units[i], nanos[i]) for i in range(len(texts)) if i not in others}
    assert taken == {"0": (0, 0), "0.0": (0, 0), "1.": (1, 0), ".5": (0, 500_000_000),
                     "999999999999999": (999_999_999_999_999, 0),
                     "999999999999999.999999999": (999_999_999_999_999, 999_999_999),
                     "0.000000001": (0, 1), "007.50": (7, 500_000_000)}
    # the others are quantity_parts' to tell: errors, or valid through a Decimal
    assert [quantity_parts(texts[i]) for i in others] == [
        (None, "quantity: '1000000000000000' is too large (the limit is 10^15)"),
        (None, "quantity: '0.0000000001' has more than 9 decimal places"),
        (None, "quantity: '.' is not a decimal number"), (None, "quantity: '' is not a decimal number"),
        (None, "quantity: '1.2.3' is not a decimal number"), ((1000, 0), None),
        (None, "quantity: '-1' is negative"), ((1, 0), None), (None, "quantity: ' 1' is not a decimal number"),
        ((1, 0), None)]
    assert plain_parts_column(["1\n2"]) is None


# --------------------------------------------------------------------------
# the csv source: block path against row path


def _row(i: int) -> str:
    day, second = 1 + i % 28, (i * 7) % 60
    start = f"2026-10-{day:02d}T{i % 24:02d}:{i % 60:02d}:{second:02d}Z"
    end = "" if i % 40 == 0 else f"2026-10-{day:02d}T{i % 24:02d}:{i % 60:02d}:59Z"
    quantity = ("2", "0.5", "1.250", f"{i}.{i % 1000:03d}", "0", "16")[i % 6]
    account, meter = (("acme", "compute.vcpu"), ("globex", "network.egress"))[i % 2]
    return f"r{i},{account},vm-{i % 97},{meter},{start},{end},{quantity},{('eu', '', 'us')[i % 3]}"


ODD = [
    # bad rows: every error of each
    "r{i},initech,vm-1,gpu.hours,2026-10-02T10:00:00Z,,2,eu",
    "r{i},acme,,compute.vcpu,2026-10-02T10:00:00Z,2026-10-02T09:00:00Z,1.2.3,",
    "r{i},acme,vm-1,compute.vcpu,2026-02-30T10:00:00Z,2026-10-02T24:00:00Z,-1,",
    "r{i},acme,vm-1,compute.vcpu,2026-10-02T10:00:60Z,,0.0000000001,",
    "r{i},acme,vm-1,compute.vcpu,2026-10-02T10:00:00,,1000000000000000,",
    "r{i},acme,vm-1,compute.vcpu,2026-10-02,,2,",
    "r{i},acme,vm-1,compute.vcpu,2026-10-02T10:00:00Z,,2",
    "r{i},acme,vm-1,compute.vcpu,2026-10-02T10:00:00Z,,2,eu,extra",
    "r{i},acme,vm-1,compute.vcpu,2026-10-02T10:00:00Z,,٣,",
    # good rows of unusual shapes
    "r{i},acme,vm-1,compute.vcpu,2026-10-02t10:00:00z,2026-10-02T12:00:00+02:00,1e3,eu",
    "r{i},acme,vm-1,compute.vcpu,2026-10-02T10:00:00.75Z,2026-10-02 11:00:00Z,000000000000000001,",
    'r{i},acme,"vm,quoted",compute.vcpu,2026-10-02T10:00:00Z,,"2.5","a ""b"""',
    'r{i},acme,vm-1,compute.vcpu,2026-10-02T10:00:00Z,,2,"multi\nline"',
    "r{i},acme,vm-1,compute.vcpu,2024-02-29T23:59:59Z,2024-03-01T00:00:00Z,.5,",
    "r{i},acme, vm-1 ,compute.vcpu,2026-10-02T10:00:00Z,,  7 ,",
    "r{i},acme,vm-1,compute.vcpu,2026-10-02T10:00:00Z,,2,eu\r",
    "",  # a blank line
    "r{i},globex,vm-é,network.egress,2026-10-02T10:00:00Z,,3.25,zürich",
]


def _mixed_file(rows: int, seed: int, *, bom: bool = False, crlf: bool = False) -> str:
    """``rows`` rows, plain but for two clusters of every odd row of
    :data:`ODD` (shuffled), and with ``crlf`` a cluster of CRLF lines: most
    blocks take the block path, the clusters the row path."""
    rng = random.Random(seed)
    lines = [HEADER.rstrip("\n") + ",zone"] + [_row(i) for i in range(rows)]
    for at in (rows // 4, rows * 3 // 4):
        kinds = list(ODD)
        rng.shuffle(kinds)
        for k, kind in enumerate(kinds):
            lines[at + k] = kind.format(i=at + k - 1)
    if crlf:
        for k in range(rows // 2, rows // 2 + 50):
            lines[k] += "\r"
    return ("\ufeff" if bom else "") + "\n".join(lines) + "\n"


def _state(ws: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    rows = {rid: {k: v for k, v in r.items() if k != "received_s"} for rid, r in stored(ws).items()}
    return rows, [view(e) for e in all_entries(ws)]


def _empty_store(ws: Any) -> None:
    from sqlalchemy import text

    from hub.store.db import create_hub_engine

    engine = create_hub_engine(ws.db_url, ws.root)
    try:
        with engine.begin() as conn:
            for table in ("usage_records", "quarantine", "checkpoints"):
                conn.execute(text(f"DELETE FROM {table}"))
    finally:
        engine.dispose()


def _both_paths(ws: Any, monkeypatch: pytest.MonkeyPatch, steps: list[tuple[str, str]]) -> list[str]:
    """Run ``steps`` (write or append, text), pulling after each, with the
    block path and then, on an emptied store, without it; both must give the
    same summaries, rows and quarantine entries. Returns the summaries."""
    from hub_plugins.usage_sources import csv_source

    original = csv_source.CsvSource._record
    row_path: list[int] = []

    def counted(self: Any, *args: Any) -> Any:
        row_path.append(args[2])
        return original(self, *args)

    monkeypatch.setattr(csv_source.CsvSource, "_record", counted)
    outcomes = []
    for fast in (True, False):
        if not fast:
            _empty_store(ws)
            monkeypatch.setattr(csv_source._FastPath, "for_layout", classmethod(lambda cls, *a: None))
        summaries = []
        for how, text in steps:
            if how == "write":
                ws.write("usage/x.csv", text, dedent=False)
            else:
                ws.append("usage/x.csv", text)
            summaries.append(summary(pull(ws, code=None)))
        outcomes.append((summaries, _state(ws)))
        if fast:
            fast_rows, row_path[:] = len(row_path), []
    assert outcomes[0] == outcomes[1]
    assert fast_rows < len(row_path) / 2  # the block path took most rows
    return outcomes[0][0]


@pytest.mark.parametrize("shape", ["plain", "bom", "crlf"])
def test_files_mixing_good_and_bad_rows_are_stored_by_the_block_path_as_by_the_row_path(workspace, monkeypatch, shape):
    workspace.config(STANDARD_CONFIG + "batch_size = 1500\n")
    text = _mixed_file(16_000, seed=len(shape), bom=shape == "bom", crlf=shape == "crlf")
    [result] = _both_paths(workspace, monkeypatch, [("write", text)])
    # 8 bad rows twice; the blank lines are no rows; the row short of its
    # (optional) label column is fine
    assert result == "files: 15982 imported, 0 updated, 16 quarantined"
    rows, entries = _state(workspace)
    assert len(rows) == 15982
    assert sorted(tuple(e["errors"]) for e in entries) == sorted(2 * [
        ("start: '2026-10-02T10:00:00' has no UTC offset (end it with Z or +hh:mm, or set the source's timezone)",
         "quantity: '1000000000000000' is too large (the limit is 10^15)"),
        ("start: '2026-10-02' is a date, not a timestamp",),
        ("resource_id: empty", "end: '2026-10-02T09:00:00Z' is before start '2026-10-02T10:00:00Z'",
         "quantity: '1.2.3' is not a decimal number"),
        ("start: '2026-02-30T10:00:00Z' is an impossible date: February 2026 has 28 days",
         "end: '2026-10-02T24:00:00Z' is an impossible time: hours go from 00 to 23", "quantity: '-1' is negative"),
        ("start: '2026-10-02T10:00:60Z' is a leap second, which the hub does not count: write :59",
         "quantity: '0.0000000001' has more than 9 decimal places"),
        ("the row has 9 fields, the header 8",),
        ("unknown account 'initech'", "unknown meter 'gpu.hours'"),
        ("quantity: '٣' is not a decimal number",),
    ])
    assert rows["r4999"]["origin"] == "usage/x.csv:5002"  # physical lines: one quoted line break before it


def test_a_file_grown_mid_line_is_read_alike_by_both_paths(workspace, monkeypatch):
    workspace.config(STANDARD_CONFIG + "batch_size = 700\n")
    text = _mixed_file(3000, seed=7)
    cut = text.index("\n", len(text) // 2) + 12  # inside a row
    more = "".join(_row(i) + "\n" for i in range(3000, 3500))
    summaries = _both_paths(workspace, monkeypatch, [("write", text[:cut]), ("append", text[cut:] + more)])
    assert summaries[1].startswith("files: ")


def test_naive_timestamps_in_the_source_s_time_zone_are_read_alike_by_both_paths(workspace, monkeypatch):
    workspace.config(STANDARD_CONFIG + 'timezone = "Europe/Paris"\nbatch_size = 1000\n')
    odd = ("2026-10-25T02:30:00", "2026-03-29T02:30:00", "2026-10-01T10:00:00", "2026-10-01T10:00:00Z",
           "2026-10-01T10:00:00+05:30")  # ambiguous, nonexistent in Paris; fine
    rows = [HEADER.rstrip("\n")]
    for i in range(4000):
        start = odd[i % 5] if 1500 <= i < 1540 else f"2026-10-0{1 + i % 9}T1{i % 10}:00:00"
        rows.append(f"r{i},acme,vm-1,compute.vcpu,{start},,{i % 13}.5")
    [result] = _both_paths(workspace, monkeypatch, [("write", "\n".join(rows) + "\n")])
    assert result == "files: 3984 imported, 0 updated, 16 quarantined"


def test_a_bad_row_in_a_big_batch_sends_only_a_small_block_to_the_row_path(workspace, monkeypatch):
    from hub_plugins.usage_sources import csv_fast, csv_source

    calls = []
    original = csv_source.CsvSource._record

    def counted(self: Any, *args: Any) -> Any:
        calls.append(args[2])
        return original(self, *args)

    monkeypatch.setattr(csv_source.CsvSource, "_record", counted)
    lines = [_row(i) for i in range(20_000)]
    lines[5_000] = "r5000,initech,vm-1,compute.vcpu,2026-10-02T10:00:00Z,,2,eu"
    workspace.write("usage/x.csv", HEADER.rstrip("\n") + ",zone\n" + "\n".join(lines) + "\n", dedent=False)
    assert summary(pull(workspace, code=3)) == "files: 19999 imported, 0 updated, 1 quarantined"
    assert 1 <= len(calls) <= csv_fast.SMALL_BLOCK
    assert min(calls) <= 5_002 <= max(calls)


# --------------------------------------------------------------------------
# the pipelined SQLite writer


def test_the_wal_checkpointer_copies_committed_pages_into_the_database_file(tmp_path):
    from hub.store.writer import _WalCheckpointer

    path = tmp_path / "wal.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute("CREATE TABLE t (x)")
    conn.execute("INSERT INTO t SELECT zeroblob(1000) FROM generate_series(1, 2000)"
                 if sqlite3.sqlite_version_info >= (3, 41) else
                 "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000) "
                 "INSERT INTO t SELECT zeroblob(1000) FROM n")
    before = path.stat().st_size
    checkpointer = _WalCheckpointer(str(path))
    checkpointer.committed()
    deadline = time.monotonic() + 30
    while not checkpointer.checkpoints and time.monotonic() < deadline:
        time.sleep(0.01)
    checkpointer.stop()
    assert checkpointer.error is None
    assert before < 100_000 < 2_000_000 < path.stat().st_size  # the rows were only in the WAL before
    conn.close()


@pytest.mark.parametrize("per", [1, 7, 500])
def test_stage_rows_inserted_many_per_statement_keep_their_values_and_order(tmp_path, monkeypatch, per):
    from hub.store import usage

    monkeypatch.setattr(usage, "STAGE_ROWS", per)
    conn = sqlite3.connect(tmp_path / "s.db", isolation_level=None)
    conn.execute("CREATE TABLE s (a, b, c)")
    values = [[f"id-{i}" for i in range(1003)], list(range(1003)), [None if i % 5 else "x" for i in range(1003)]]
    usage.insert_columns_sqlite(conn, "s", ("a", "b", "c"), values)
    assert conn.execute("SELECT a, b, c FROM s ORDER BY rowid").fetchall() == list(zip(*values))
    usage.insert_columns_sqlite(conn, "s", ("a", "b", "c"), [[], [], []])
    assert conn.execute("SELECT count(*) FROM s").fetchone() == (1003,)


def test_the_wal_of_a_long_pull_starts_over_instead_of_growing_with_every_batch(tmp_path, monkeypatch):
    import threading

    workspace = Workspace(tmp_path, f"sqlite:///{tmp_path / 'hub.db'}")  # the WAL is SQLite's

    from hub.store import writer

    monkeypatch.setattr(writer, "WAL_CHECKPOINT_INTERVAL", 0.0)
    monkeypatch.setattr(writer, "WAL_RESTART_PAGES", 50)
    workspace.config(STANDARD_CONFIG + "batch_size = 500\n")
    workspace.write("usage/x.csv", HEADER.rstrip("\n") + ",zone\n" + "".join(_row(i) + "\n" for i in range(30_000)),
                    dedent=False)
    wal = workspace.root / "hub.db-wal"
    largest, done = [0], threading.Event()

    def watch() -> None:
        while not done.is_set():
            if wal.exists():
                largest[0] = max(largest[0], wal.stat().st_size)
            time.sleep(0.005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        assert summary(pull(workspace)) == "files: 30000 imported, 0 updated, 0 quarantined"
    finally:
        done.set()
        watcher.join()
    database = (workspace.root / "hub.db").stat().st_size
    # 60 batches wrote several times the database's pages into the WAL;
    # restarted every 50 pages (and a batch or two), it stays a fraction
    assert 0 < largest[0] < database / 2, (largest[0], database)
