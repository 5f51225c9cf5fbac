"""The ``csv`` usage source, end to end through ``hub pull``.

Every test runs on SQLite and on PostgreSQL (the ``workspace`` fixture).
Stored rows are read straight from the store; quarantine entries through
``hub quarantine list --json``.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from hub.store.db import create_hub_engine
from hub.store.tables import pull_runs, usage_records
from tests.conftest import HEADER, STANDARD_CONFIG

T0 = "2026-10-01T10:00:00Z"
T1 = "2026-10-01T10:12:42Z"
SUMMARY_NOTHING = "files: 0 imported, 0 updated, 0 quarantined"
QUARANTINE_HINT = "see them with: hub quarantine list"


# --------------------------------------------------------------------------
# helpers


def epoch(text: str) -> int:
    """Epoch seconds of an RFC 3339 text (``Z`` or offset)."""
    return int(datetime.fromisoformat(text).timestamp())


def line(rid: str, account: str = "acme", resource: str = "vm-1", meter: str = "compute.vcpu",
         start: str = T0, end: str = T1, quantity: str = "2", *extra: str) -> str:
    """One CSV data line (with its newline) in the standard column order."""
    return ",".join([rid, account, resource, meter, start, end, quantity, *extra]) + "\n"


def db_query(ws: Any, stmt: Any) -> list[dict[str, Any]]:
    engine = create_hub_engine(ws.db_url, ws.root)
    try:
        with engine.connect() as conn:
            return [dict(r) for r in conn.execute(stmt).mappings().all()]
    finally:
        engine.dispose()


def stored(ws: Any) -> dict[str, dict[str, Any]]:
    """The usage records of the store by record id (without the surrogate key)."""
    rows = db_query(ws, select(usage_records).order_by(usage_records.c.record_id))
    return {r["record_id"]: {k: v for k, v in r.items() if k != "id"} for r in rows}


SKIPPED = "skipped, another process is pulling this source"


def pull(ws: Any, *args: str, code: int | None = 0) -> Any:
    """``hub pull ARGS``, asserting its exit code.

    A pull skipped because another process holds the lock of its source
    writes nothing and is retried. (The lock is the store's: a pull of a
    "files" source in another store, another PostgreSQL schema, does not
    hold it; see
    test_a_pull_is_not_blocked_by_a_pull_of_the_same_source_name_in_another_store.)
    """
    for _ in range(200):
        result = ws.hub("pull", *args)
        if SKIPPED not in result.stdout:
            break
        time.sleep(0.05)
    if code is not None:
        assert result.exit_code == code, (result.exit_code, result.output)
    return result


def summary(result: Any) -> str:
    return result.stdout.strip()


def open_entries(ws: Any) -> list[dict[str, Any]]:
    return ws.json("quarantine", "list")


def all_entries(ws: Any) -> list[dict[str, Any]]:
    return ws.json("quarantine", "list", "--all")


def view(entry: dict[str, Any]) -> dict[str, Any]:
    """The parts of a quarantine entry a test compares exactly."""
    return {k: entry[k] for k in ("source", "location", "line", "raw", "errors", "record_id", "status")}


def q(line_no: int, raw: str, errors: list[str], record_id: str | None, status: str = "open",
      location: str = "usage/x.csv") -> dict[str, Any]:
    return {"source": "files", "location": location, "line": line_no, "raw": raw, "errors": errors,
            "record_id": record_id, "status": status}


# --------------------------------------------------------------------------
# idempotence and checkpoints


def test_the_same_data_pulled_twice_is_stored_once_and_unchanged(workspace):
    workspace.write("usage/x.csv", HEADER + line("r1") + line("r2", "globex", "vm-2", "network.egress", T0, "", "1.50"))
    first = pull(workspace)
    assert summary(first) == "files: 2 imported, 0 updated, 0 quarantined"
    before = stored(workspace)
    assert {rid: r["version"] for rid, r in before.items()} == {"r1": 1, "r2": 1}

    second = pull(workspace)
    assert summary(second) == SUMMARY_NOTHING
    assert second.stderr.strip() == ""
    assert stored(workspace) == before  # not even received_s moved
    assert all_entries(workspace) == []
    assert before["r2"]["quantity"] == "1.5"
    assert (before["r2"]["qty_units"], before["r2"]["qty_nanos"]) == (1, 500000000)
    assert workspace.json("usage", "--period", "2026-10", "--account", "acme") == [
        {"account": "acme", "meter": "compute.vcpu", "aggregation": "time_weighted", "unit": "vCPU",
         "period": "2026-10", "records": 1, "seconds": 762, "quantity": "1524"}]


def test_a_grown_file_imports_only_the_appended_rows(workspace):
    workspace.write("usage/x.csv", HEADER + line("r1") + line("r2"))
    assert summary(pull(workspace)) == "files: 2 imported, 0 updated, 0 quarantined"
    before = stored(workspace)
    workspace.append("usage/x.csv", line("r3", quantity="4"))
    assert summary(pull(workspace)) == "files: 1 imported, 0 updated, 0 quarantined"
    rows = stored(workspace)
    assert sorted(rows) == ["r1", "r2", "r3"]
    assert {k: rows[k] for k in ("r1", "r2")} == before  # not rewritten
    assert (rows["r3"]["quantity"], rows["r3"]["origin"], rows["r3"]["version"]) == ("4", "usage/x.csv:4", 1)


def test_a_last_line_without_newline_is_imported_then_updated_when_the_writer_completes_it(workspace):
    # A writer caught mid-write: the last row is cut inside its quantity ("2" of "25").
    workspace.write("usage/x.csv", HEADER + line("r1") + line("r2").rstrip("\n"))
    assert summary(pull(workspace)) == "files: 2 imported, 0 updated, 0 quarantined"
    assert stored(workspace)["r2"]["quantity"] == "2"
    # unchanged, still unfinished: nothing changes
    assert summary(pull(workspace)) == SUMMARY_NOTHING

    workspace.append("usage/x.csv", "5\n" + line("r3"))
    assert summary(pull(workspace)) == "files: 1 imported, 1 updated, 0 quarantined"
    rows = stored(workspace)
    assert (rows["r2"]["quantity"], rows["r2"]["version"], rows["r2"]["origin"]) == ("25", 2, "usage/x.csv:3")
    assert rows["r3"]["origin"] == "usage/x.csv:4"
    assert rows["r1"]["version"] == 1
    assert summary(pull(workspace)) == SUMMARY_NOTHING


def test_an_unfinished_invalid_last_line_pulled_twice_is_quarantined_once(workspace):
    # The writer stopped inside the end timestamp; two pulls happen before it goes on.
    workspace.write("usage/x.csv", HEADER + line("r1") + "r2,acme,vm-1,compute.vcpu,2026-10-01T10:00:00Z,2026-10-01T10:1")
    pull(workspace, code=3)
    second = pull(workspace, code=None)
    assert second.exit_code in (0, 3)
    entries = open_entries(workspace)
    assert len(entries) == 1, [view(e) for e in entries]  # not one more open duplicate per pull
    workspace.append("usage/x.csv", "2:42Z,2\n")
    pull(workspace)
    assert open_entries(workspace) == []
    assert stored(workspace)["r2"]["end_s"] == epoch(T1)


def test_an_unfinished_last_line_cut_inside_its_record_id_leaves_nothing_open_once_completed(workspace):
    workspace.write("usage/x.csv", HEADER + line("r1") + "r1")
    pull(workspace, code=None)
    workspace.append("usage/x.csv", "2,acme,vm-2,compute.vcpu,2026-10-01T10:00:00Z,,1\n")
    result = pull(workspace, code=None)
    assert sorted(stored(workspace)) == ["r1", "r12"]
    # The fragment "r1" was never a row of the file: once its line is complete
    # (and stored as r12) nothing about it may stay open.
    assert [view(e) for e in open_entries(workspace)] == []
    assert result.exit_code == 0


def test_a_row_cut_inside_a_quoted_multi_line_field_is_imported_once_the_writer_completes_it(workspace):
    workspace.write("usage/x.csv", HEADER.rstrip("\n") + ",note\n" + line("r1", "acme", "vm-1", "compute.vcpu", T0, T1, "2", '"first'))
    pull(workspace, code=None)  # the row is unfinished: whatever this pull says about it...
    workspace.append("usage/x.csv", 'second"\n')
    pull(workspace, code=None)
    rows = stored(workspace)
    # ...once complete, the row is imported and nothing stays quarantined
    assert sorted(rows) == ["r1"]  # BUG: the checkpoint moved past the open quote
    assert json.loads(rows["r1"]["labels"]) == {"note": "first\nsecond"}
    assert open_entries(workspace) == []


def test_a_file_holding_only_blank_lines_when_first_pulled_reads_its_header_later(workspace):
    workspace.write("usage/x.csv", "\n")
    assert summary(pull(workspace)) == SUMMARY_NOTHING
    workspace.append("usage/x.csv", HEADER + line("r1"))
    result = pull(workspace, code=None)
    assert open_entries(workspace) == []  # BUG: the header line is taken for a data row
    assert summary(result) == "files: 1 imported, 0 updated, 0 quarantined"
    assert stored(workspace)["r1"]["origin"] == "usage/x.csv:3"


def test_a_file_edited_in_place_is_re_read_and_rows_removed_from_it_stay_stored(workspace):
    """Editing a row updates it (version 2); deleting a row from the file does
    not delete the record: the store keeps every record it was given."""
    workspace.write("usage/x.csv", HEADER + line("r1") + line("r2") + line("r3"))
    assert summary(pull(workspace)) == "files: 3 imported, 0 updated, 0 quarantined"
    workspace.write("usage/x.csv", HEADER + line("r1") + line("r2", quantity="8"))  # r2 edited, r3 removed
    assert summary(pull(workspace)) == "files: 0 imported, 1 updated, 0 quarantined"
    rows = stored(workspace)
    assert sorted(rows) == ["r1", "r2", "r3"]
    assert {rid: (r["quantity"], r["version"]) for rid, r in rows.items()} == {
        "r1": ("2", 1), "r2": ("8", 2), "r3": ("2", 1)}
    assert summary(pull(workspace)) == SUMMARY_NOTHING


def test_a_same_size_edit_in_place_is_re_read(workspace):
    workspace.write("usage/x.csv", HEADER + line("r1") + line("r2"))
    pull(workspace)
    workspace.write("usage/x.csv", HEADER + line("r1") + line("r2", quantity="7"))  # same length
    assert summary(pull(workspace)) == "files: 0 imported, 1 updated, 0 quarantined"
    assert stored(workspace)["r2"]["quantity"] == "7"


def test_a_file_truncated_and_replaced_by_a_shorter_one_is_re_read(workspace):
    workspace.write("usage/x.csv", HEADER + line("r1") + line("r2") + line("r3"))
    pull(workspace)
    workspace.write("usage/x.csv", HEADER + line("r9", quantity="3"))
    assert summary(pull(workspace)) == "files: 1 imported, 0 updated, 0 quarantined"
    rows = stored(workspace)
    assert sorted(rows) == ["r1", "r2", "r3", "r9"]
    assert (rows["r9"]["quantity"], rows["r9"]["origin"]) == ("3", "usage/x.csv:2")
    # and it grows from there as usual
    workspace.append("usage/x.csv", line("r10"))
    assert summary(pull(workspace)) == "files: 1 imported, 0 updated, 0 quarantined"
    assert stored(workspace)["r10"]["origin"] == "usage/x.csv:3"


def test_a_record_id_twice_in_one_file_keeps_the_last_row(workspace):
    workspace.write("usage/x.csv", HEADER + line("r1", quantity="1") + line("r2") + line("r1", quantity="5"))
    assert summary(pull(workspace)) == "files: 2 imported, 0 updated, 0 quarantined"
    rows = stored(workspace)
    assert (rows["r1"]["quantity"], rows["r1"]["version"], rows["r1"]["origin"]) == ("5", 1, "usage/x.csv:4")


def test_pull_full_re_reads_everything_but_changes_nothing_on_unchanged_data(workspace):
    workspace.write("usage/a.csv", HEADER + line("r1") + line("r2"))
    workspace.write("usage/b.csv", HEADER + line("r3"))
    pull(workspace)
    before = stored(workspace)
    assert summary(pull(workspace, "--full")) == SUMMARY_NOTHING
    assert stored(workspace) == before
    assert summary(pull(workspace)) == SUMMARY_NOTHING


def test_a_second_file_matching_the_glob_is_picked_up(workspace):
    workspace.write("usage/a.csv", HEADER + line("r1"))
    pull(workspace)
    workspace.write("usage/b.csv", HEADER + line("r2"))
    workspace.write("usage/notes.txt", HEADER + line("r3"))  # not *.csv
    assert summary(pull(workspace)) == "files: 1 imported, 0 updated, 0 quarantined"
    rows = stored(workspace)
    assert {rid: r["origin"] for rid, r in rows.items()} == {"r1": "usage/a.csv:2", "r2": "usage/b.csv:2"}


def test_files_are_read_in_sorted_order(workspace):
    # written in reverse order; the same record id in both: b.csv is read last and wins
    workspace.write("usage/b.csv", HEADER + line("r1", quantity="2"))
    workspace.write("usage/a.csv", HEADER + line("r1", quantity="1") + line("bad", "nobody"))
    workspace.write("usage/c.csv", HEADER + line("bad", "nobody"))
    pull(workspace, code=3)
    rows = stored(workspace)
    # a.csv's version first (version 1), then b.csv's (version 2)
    assert (rows["r1"]["quantity"], rows["r1"]["origin"], rows["r1"]["version"]) == ("2", "usage/b.csv:2", 2)
    assert [(e["location"], e["line"]) for e in open_entries(workspace)] == [("usage/a.csv", 3), ("usage/c.csv", 2)]


# --------------------------------------------------------------------------
# file formats


def test_a_byte_order_mark_is_accepted(workspace):
    workspace.write("usage/x.csv", "\ufeff" + HEADER + line("r1") + line("r2", "nobody"))
    result = pull(workspace, code=3)
    assert summary(result) == "files: 1 imported, 0 updated, 1 quarantined"
    assert stored(workspace)["r1"]["labels"] == "{}"
    assert [view(e) for e in open_entries(workspace)] == [
        q(3, line("r2", "nobody").rstrip("\n"), ["unknown account 'nobody'"], "r2")]
    workspace.append("usage/x.csv", line("r3", "nobody"))
    assert summary(pull(workspace, code=3)) == "files: 0 imported, 0 updated, 1 quarantined"
    assert [e["line"] for e in open_entries(workspace)] == [3, 4]


def test_crlf_line_endings_are_accepted(workspace):
    text = (HEADER + line("r1") + line("r2", "nobody")).replace("\n", "\r\n")
    workspace.write("usage/x.csv", text)
    assert summary(pull(workspace, code=3)) == "files: 1 imported, 0 updated, 1 quarantined"
    rows = stored(workspace)
    assert (rows["r1"]["quantity"], rows["r1"]["end_s"], rows["r1"]["labels"]) == ("2", epoch(T1), "{}")
    assert [view(e) for e in open_entries(workspace)] == [
        q(3, line("r2", "nobody").rstrip("\n"), ["unknown account 'nobody'"], "r2")]
    workspace.append("usage/x.csv", line("r3").replace("\n", "\r\n"))
    assert summary(pull(workspace)) == "files: 1 imported, 0 updated, 0 quarantined"


def test_a_custom_delimiter_is_used(workspace):
    workspace.config(STANDARD_CONFIG + 'delimiter = ";"\n')
    workspace.write("usage/x.csv", HEADER.replace(",", ";") + line("r1", quantity="1.25").replace(",", ";")
                    + "r2;acme;vm-1;compute.vcpu;2026-10-01T10:00:00Z;;2,5\n")
    assert summary(pull(workspace, code=3)) == "files: 1 imported, 0 updated, 1 quarantined"
    assert stored(workspace)["r1"]["quantity"] == "1.25"
    assert [e["errors"] for e in open_entries(workspace)] == [["quantity: '2,5' is not a decimal number"]]


def test_extra_columns_become_labels_with_sorted_keys_and_no_empty_values(workspace):
    workspace.write("usage/x.csv",
                    HEADER.rstrip("\n") + ",zone,project,team\n"
                    + line("r1", "acme", "vm-1", "compute.vcpu", T0, T1, "2", " eu-west ", "apollo", "")
                    + line("r2", "acme", "vm-2", "compute.vcpu", T0, T1, "2", "", "", "")
                    + line("r3", "acme", "vm-3", "compute.vcpu", T0, T1, "2", "zürich", '"x,y"', "ops"))
    pull(workspace)
    rows = stored(workspace)
    assert rows["r1"]["labels"] == '{"project":"apollo","zone":"eu-west"}'
    assert rows["r2"]["labels"] == "{}"
    assert json.loads(rows["r3"]["labels"]) == {"project": "x,y", "team": "ops", "zone": "zürich"}
    assert list(json.loads(rows["r3"]["labels"])) == ["project", "team", "zone"]


def test_a_unit_column_matching_the_meter_is_accepted_and_a_mismatch_is_quarantined(workspace):
    workspace.write("usage/x.csv",
                    HEADER.rstrip("\n") + ",unit\n"
                    + line("r1", "acme", "vm-1", "compute.vcpu", T0, T1, "2", "vCPU")
                    + line("r2", "acme", "vm-1", "network.egress", T0, "", "3", "GB")
                    + line("r3", "acme", "vm-1", "compute.vcpu", T0, T1, "2", "")
                    + line("r4", "acme", "vm-1", "compute.vcpu", T0, T1, "2", "GB"))
    result = pull(workspace, code=3)
    assert summary(result) == "files: 3 imported, 0 updated, 1 quarantined"
    rows = stored(workspace)
    assert {rid: (r["unit"], r["labels"]) for rid, r in rows.items()} == {
        "r1": ("vCPU", "{}"), "r2": ("GB", "{}"), "r3": (None, "{}")}
    assert [view(e) for e in open_entries(workspace)] == [
        q(5, "r4,acme,vm-1,compute.vcpu,2026-10-01T10:00:00Z,2026-10-01T10:12:42Z,2,GB",
          ["unit 'GB' is not the unit of meter 'compute.vcpu' ('vCPU')"], "r4")]


def test_an_empty_end_is_a_running_record(workspace):
    workspace.write("usage/x.csv", HEADER + line("r1", end=""))
    pull(workspace)
    r = stored(workspace)["r1"]
    assert (r["start_s"], r["end_s"]) == (epoch(T0), None)


def test_fractions_of_a_second_are_floored(workspace):
    workspace.write("usage/x.csv", HEADER + line("r1", start="2026-10-01T10:00:00.999Z", end="2026-10-01T10:12:42.5Z")
                    + line("r2", "globex", start="2026-10-01T12:00:00.999999+02:00", end=""))
    pull(workspace)
    rows = stored(workspace)
    assert (rows["r1"]["start_s"], rows["r1"]["end_s"]) == (epoch("2026-10-01T10:00:00Z"), epoch("2026-10-01T10:12:42Z"))
    assert rows["r2"]["start_s"] == epoch("2026-10-01T10:00:00Z")
    usage = workspace.json("usage", "--period", "2026-10", "--account", "acme")
    assert (usage[0]["records"], usage[0]["seconds"], usage[0]["quantity"]) == (1, 762, "1524")


# --------------------------------------------------------------------------
# naive timestamps


def test_naive_timestamps_are_quarantined_without_a_source_timezone(workspace):
    workspace.write("usage/x.csv", HEADER + line("r1", start="2026-07-01T12:00:00", end="2026-07-01T13:00:00"))
    pull(workspace, code=3)
    hint = "has no UTC offset (end it with Z or +hh:mm, or set the source's timezone)"
    assert [e["errors"] for e in open_entries(workspace)] == [[
        f"start: '2026-07-01T12:00:00' {hint}", f"end: '2026-07-01T13:00:00' {hint}"]]
    assert stored(workspace) == {}


def test_naive_timestamps_are_read_in_the_source_timezone(workspace):
    workspace.config(STANDARD_CONFIG + 'timezone = "Europe/Paris"\n')
    workspace.write("usage/x.csv", HEADER
                    + line("summer", start="2026-07-01T12:00:00", end="2026-07-01T13:30:00")
                    + line("winter", start="2026-12-01T12:00:00", end="")
                    + line("explicit", start="2026-07-01T12:00:00Z", end="2026-07-01T15:00:00+02:00"))
    assert summary(pull(workspace)) == "files: 3 imported, 0 updated, 0 quarantined"
    rows = stored(workspace)
    assert (rows["summer"]["start_s"], rows["summer"]["end_s"]) == (
        epoch("2026-07-01T10:00:00Z"), epoch("2026-07-01T11:30:00Z"))
    assert rows["winter"]["start_s"] == epoch("2026-12-01T11:00:00Z")
    assert rows["winter"]["end_s"] is None
    assert (rows["explicit"]["start_s"], rows["explicit"]["end_s"]) == (
        epoch("2026-07-01T12:00:00Z"), epoch("2026-07-01T13:00:00Z"))


def test_ambiguous_and_non_existent_local_times_are_quarantined(workspace):
    workspace.config(STANDARD_CONFIG + 'timezone = "Europe/Paris"\n')
    workspace.write("usage/x.csv", HEADER
                    + line("fold", start="2026-10-25T02:30:00", end="2026-10-25T04:00:00")
                    + line("gap", start="2026-03-29T01:30:00", end="2026-03-29T02:30:00")
                    + line("ok", start="2026-10-25T01:30:00", end="2026-10-25T03:30:00"))
    assert summary(pull(workspace, code=3)) == "files: 1 imported, 0 updated, 2 quarantined"
    rest = "in Europe/Paris (daylight saving change); write it with an offset"
    assert [(e["line"], e["record_id"], e["errors"]) for e in open_entries(workspace)] == [
        (2, "fold", [f"start: '2026-10-25T02:30:00' is ambiguous {rest}"]),
        (3, "gap", [f"end: '2026-03-29T02:30:00' does not exist {rest}"]),
    ]
    ok = stored(workspace)["ok"]
    assert (ok["start_s"], ok["end_s"]) == (epoch("2026-10-24T23:30:00Z"), epoch("2026-10-25T02:30:00Z"))


def test_timestamps_that_are_not_rfc_3339_are_quarantined(workspace):
    # Python's fromisoformat accepts ISO 8601 forms that RFC 3339 does not.
    workspace.write("usage/x.csv", HEADER
                    + line("week", start="2026-W40-4T10:00:00Z")
                    + line("hour", start="2026-10-01T10Z")
                    + line("basic", start="20261001T100000Z"))
    result = pull(workspace, code=None)
    assert [(e["record_id"], e["errors"]) for e in open_entries(workspace)] == [
        ("week", ["start: '2026-W40-4T10:00:00Z' is not an RFC 3339 timestamp"]),
        ("hour", ["start: '2026-10-01T10Z' is not an RFC 3339 timestamp"]),
        ("basic", ["start: '20261001T100000Z' is not an RFC 3339 timestamp"]),
    ]
    assert (summary(result), result.exit_code) == ("files: 0 imported, 0 updated, 3 quarantined", 3)


# --------------------------------------------------------------------------
# quarantine: every reason, at its physical line


BAD_ROWS = {
    "bad timestamp": (line("r9", start="2026-13-01T00:00:00Z"),
                      ["start: '2026-13-01T00:00:00Z' is an impossible date: there is no month 13"], "r9"),
    "a date for a timestamp": (line("r9", end="2026-10-02"), ["end: '2026-10-02' is a date, not a timestamp"], "r9"),
    "end before start": (line("r9", end="2026-10-01T09:59:59Z"),
                         ["end: '2026-10-01T09:59:59Z' is before start '2026-10-01T10:00:00Z'"], "r9"),
    "negative quantity": (line("r9", quantity="-1"), ["quantity: '-1' is negative"], "r9"),
    "non-decimal quantity": (line("r9", quantity="two"), ["quantity: 'two' is not a decimal number"], "r9"),
    "too many decimals": (line("r9", quantity="0.0000000001"),
                          ["quantity: '0.0000000001' has more than 9 decimal places"], "r9"),
    "unknown meter": (line("r9", meter="gpu.hours"), ["unknown meter 'gpu.hours'"], "r9"),
    "unknown account": (line("r9", account="initech"), ["unknown account 'initech'"], "r9"),
    "empty resource_id": (line("r9", resource=""), ["resource_id: empty"], "r9"),
    "empty record_id": (line(""), ["record_id: empty"], None),
    "empty start": (line("r9", start=""), ["start: empty"], "r9"),
    "empty quantity": (line("r9", quantity=""), ["quantity: empty"], "r9"),
    "missing column": ("r9,acme,vm-1,compute.vcpu,2026-10-01T10:00:00Z,2026-10-01T10:12:42Z\n",
                       ["missing column quantity (the row has 6 fields, the header 7)"], "r9"),
    "too many fields": (line("r9", "acme", "vm-1", "compute.vcpu", T0, T1, "2", "surplus"),
                        ["the row has 8 fields, the header 7"], "r9"),
    "malformed quoting": ('r9,acme,vm-1,compute.vcpu,"2026-10-01T10:00:00Z"x,,2\n',
                          ["malformed CSV: ',' expected after '\"'"], None),
}


@pytest.mark.parametrize("case", list(BAD_ROWS))
def test_a_bad_row_is_quarantined_at_its_physical_line(workspace, case):
    text, errors, record_id = BAD_ROWS[case]
    workspace.write("usage/x.csv", HEADER + line("r1") + "\n" + text + line("r2"))
    result = pull(workspace, code=3)
    assert summary(result) == "files: 2 imported, 0 updated, 1 quarantined"
    assert QUARANTINE_HINT in result.stderr
    assert sorted(stored(workspace)) == ["r1", "r2"]
    assert [view(e) for e in open_entries(workspace)] == [q(4, text.rstrip("\n"), errors, record_id)]


def test_a_row_with_several_problems_lists_every_error_in_one_entry(workspace):
    text = "r9,initech,vm-1,gpu.hours,yesterday,2026-10-01T09:00:00Z,-3"
    workspace.write("usage/x.csv", HEADER + text + "\n" + "r10,acme,,compute.vcpu,,2026-10-01T09:00:00Z,1e-12\n")
    assert summary(pull(workspace, code=3)) == "files: 0 imported, 0 updated, 2 quarantined"
    assert [view(e) for e in open_entries(workspace)] == [
        q(2, text, ["start: 'yesterday' is not an RFC 3339 timestamp", "quantity: '-3' is negative",
                    "unknown account 'initech'", "unknown meter 'gpu.hours'"], "r9"),
        q(3, "r10,acme,,compute.vcpu,,2026-10-01T09:00:00Z,1e-12",
          ["resource_id: empty", "start: empty", "quantity: '1e-12' has more than 9 decimal places"], "r10"),
    ]


def test_a_header_missing_a_required_column_quarantines_every_data_row(workspace):
    header = "record_id,account,resource_id,meter,start,end\n"
    rows = ["r1,acme,vm-1,compute.vcpu,2026-10-01T10:00:00Z,", "r2,acme,vm-1,compute.vcpu,2026-10-01T10:00:00Z,"]
    workspace.write("usage/x.csv", header + "\n".join(rows) + "\n")
    assert summary(pull(workspace, code=3)) == "files: 0 imported, 0 updated, 2 quarantined"
    assert stored(workspace) == {}
    assert [view(e) for e in open_entries(workspace)] == [
        q(2, rows[0], ["missing column quantity (not in the header)"], "r1"),
        q(3, rows[1], ["missing column quantity (not in the header)"], "r2"),
    ]


def test_invalid_utf8_is_quarantined_with_its_byte_offset_and_line(workspace):
    good = HEADER + line("r1")
    bad = b"r2,acme,vm-\xff1,compute.vcpu,2026-10-01T10:00:00Z,,2\n"
    path = workspace.write("usage/x.csv", good)
    path.write_bytes(good.encode() + bad + line("r3").encode())
    assert summary(pull(workspace, code=3)) == "files: 2 imported, 0 updated, 1 quarantined"
    offset = len(good.encode()) + bad.index(b"\xff")
    assert [view(e) for e in open_entries(workspace)] == [
        q(3, "r2,acme,vm-\ufffd1,compute.vcpu,2026-10-01T10:00:00Z,,2",
          [f"invalid UTF-8 at byte {offset} (line 3)"], "r2")]
    # read again from the checkpoint: the offset is still counted from the file's start
    size = path.stat().st_size
    with open(path, "ab") as fh:
        fh.write(b"r4,acme,vm-1,compute.vcpu,2026-10-01T10:00:00Z,,\xc3(\n")
    assert summary(pull(workspace, code=3)) == "files: 0 imported, 0 updated, 1 quarantined"
    assert [(e["line"], e["errors"]) for e in open_entries(workspace)] == [
        (3, [f"invalid UTF-8 at byte {offset} (line 3)"]),
        (5, [f"invalid UTF-8 at byte {size + 48} (line 5)"]),
    ]


def test_a_quoted_field_spanning_lines_keeps_the_physical_line_numbers_after_it(workspace):
    header = HEADER.rstrip("\n") + ",note\n"
    bad = "r3,acme,vm-1,compute.vcpu,2026-10-01T10:00:00Z,,-1,"
    workspace.write("usage/x.csv", header
                    + 'r1,acme,vm-1,compute.vcpu,2026-10-01T10:00:00Z,,2,"a\nb"\n'   # lines 2-3
                    + bad + "\n"                                                      # line 4
                    + 'r2,acme,vm-1,compute.vcpu,2026-10-01T10:00:00Z,,2,"x\r\n\ny"\n'  # lines 5-7
                    + "r4,nobody,vm-1,compute.vcpu,2026-10-01T10:00:00Z,,2,\n")       # line 8
    assert summary(pull(workspace, code=3)) == "files: 2 imported, 0 updated, 2 quarantined"
    rows = stored(workspace)
    assert json.loads(rows["r1"]["labels"]) == {"note": "a\nb"}
    assert json.loads(rows["r2"]["labels"]) == {"note": "x\r\n\ny"}
    assert (rows["r1"]["origin"], rows["r2"]["origin"]) == ("usage/x.csv:2", "usage/x.csv:5")
    assert [(e["line"], e["record_id"]) for e in open_entries(workspace)] == [(4, "r3"), (8, "r4")]
    workspace.append("usage/x.csv", "r5,nobody,vm-1,compute.vcpu,2026-10-01T10:00:00Z,,2,\n")  # line 9
    pull(workspace, code=3)
    assert [(e["line"], e["record_id"]) for e in open_entries(workspace)] == [(4, "r3"), (8, "r4"), (9, "r5")]


def test_a_bad_multi_line_row_reports_its_first_line_and_its_whole_text(workspace):
    header = HEADER.rstrip("\n") + ",note\n"
    raw = 'r1,nobody,vm-1,compute.vcpu,2026-10-01T10:00:00Z,,2,"one\ntwo\nthree"'
    workspace.write("usage/x.csv", header + line("r0", "acme", "vm-1", "compute.vcpu", T0, T1, "2", "")
                    + raw + "\n" + line("r2", "nobody", "vm-1", "compute.vcpu", T0, T1, "2", ""))
    pull(workspace, code=3)
    assert [view(e) for e in open_entries(workspace)] == [
        q(3, raw, ["unknown account 'nobody'"], "r1"),
        q(6, line("r2", "nobody", "vm-1", "compute.vcpu", T0, T1, "2", "").rstrip("\n"), ["unknown account 'nobody'"], "r2"),
    ]


def test_an_unterminated_quote_swallows_the_rest_of_the_file_into_one_entry(workspace):
    raw = 'r2,acme,vm-1,compute.vcpu,"2026-10-01T10:00:00Z,,2\n' + line("r3").rstrip("\n")
    workspace.write("usage/x.csv", HEADER + line("r1") + raw + "\n")
    assert summary(pull(workspace, code=3)) == "files: 1 imported, 0 updated, 1 quarantined"
    assert [view(e) for e in open_entries(workspace)] == [q(3, raw, ["malformed CSV: unexpected end of data"], None)]


# --------------------------------------------------------------------------
# the pull's summary and exit code


def test_pull_summarises_and_exits_3_when_rows_were_quarantined(workspace):
    workspace.write("usage/x.csv", HEADER + line("r1") + line("r2", quantity="-2") + line("r3") + line("r4", "x"))
    result = pull(workspace, code=3)
    assert result.stdout == "files: 2 imported, 0 updated, 2 quarantined\n"
    assert result.stderr.strip() == QUARANTINE_HINT
    runs = db_query(workspace, select(pull_runs))
    assert [(r["source"], r["status"], r["imported"], r["updated"], r["quarantined"], r["error"]) for r in runs] == [
        ("files", "ok", 2, 0, 2, None)]


def test_pull_exits_0_without_quarantined_rows(workspace):
    workspace.write("usage/x.csv", HEADER + line("r1"))
    result = pull(workspace, code=0)
    assert result.stdout == "files: 1 imported, 0 updated, 0 quarantined\n"
    assert result.stderr.strip() == ""


def test_nothing_accepted_is_lost(workspace):
    header = HEADER.rstrip("\n") + ",note\n"
    data = [
        line("r1", "acme", "vm-1", "compute.vcpu", T0, T1, "2", ""),
        line("r2", "nobody", "vm-1", "compute.vcpu", T0, T1, "2", ""),
        line("r3", "acme", "vm-1", "compute.vcpu", T0, "", "2", '"multi\nline"'),
        line("r4", "acme", "vm-1", "compute.vcpu", T0, T1, "x", ""),
        line("r5", "globex", "vm-5", "network.egress", T0, "", "0.000000001", ""),
        "r6,acme\n",
        line("r7", "acme", "vm-1", "compute.vcpu", T0, T1, "0", ""),
        line("r8", "acme", "vm-1", "compute.vcpu", T0, T1, "2", "a", "b"),
        line("r9", "globex", "vm-9", "compute.vcpu", T0, T1, "999999999999999.999999999", ""),
        line("r10", "globex", "vm-9", "compute.vcpu", T0, T1, "1000000000000000", ""),
    ]
    workspace.write("usage/x.csv", header + "".join(data))
    result = pull(workspace, code=3)
    imported, quarantined = len(stored(workspace)), len(open_entries(workspace))
    assert summary(result) == f"files: {imported} imported, 0 updated, {quarantined} quarantined"
    assert (imported, quarantined) == (5, 5)
    assert imported + quarantined == len(data)
    rows = stored(workspace)
    assert {rid: (r["quantity"], r["qty_units"], r["qty_nanos"]) for rid, r in rows.items()} == {
        "r1": ("2", 2, 0), "r3": ("2", 2, 0), "r5": ("0.000000001", 0, 1), "r7": ("0", 0, 0),
        "r9": ("999999999999999.999999999", 999999999999999, 999999999)}
    assert {e["record_id"] for e in open_entries(workspace)} == {"r2", "r4", "r6", "r8", "r10"}


# --------------------------------------------------------------------------
# quarantine: resolution


def test_fixing_a_bad_row_in_place_imports_it_and_resolves_its_entry(workspace):
    workspace.write("usage/x.csv", HEADER + line("r1") + line("r2", quantity="-2"))
    pull(workspace, code=3)
    [entry] = open_entries(workspace)
    workspace.write("usage/x.csv", HEADER + line("r1") + line("r2", quantity="2"))
    result = pull(workspace)
    assert summary(result) == "files: 1 imported, 0 updated, 0 quarantined"
    assert stored(workspace)["r2"]["quantity"] == "2"
    assert open_entries(workspace) == []
    assert [(e["id"], e["status"], e["line"]) for e in all_entries(workspace)] == [(entry["id"], "resolved", 3)]
    assert summary(pull(workspace)) == SUMMARY_NOTHING


def test_appending_a_corrected_version_of_a_quarantined_row_resolves_it(workspace):
    workspace.write("usage/x.csv", HEADER + line("r1") + line("r2", meter="compute.cpu"))
    pull(workspace, code=3)
    workspace.append("usage/x.csv", line("r2", quantity="3"))
    result = pull(workspace)
    assert summary(result) == "files: 1 imported, 0 updated, 0 quarantined (1 earlier quarantined rows resolved)"
    assert open_entries(workspace) == []
    [entry] = all_entries(workspace)
    assert (entry["status"], entry["line"], entry["record_id"], entry["resolution"]) == (
        "resolved", 3, "r2", "a valid version was imported")
    assert (stored(workspace)["r2"]["quantity"], stored(workspace)["r2"]["origin"]) == ("3", "usage/x.csv:4")


def test_a_bad_row_replaced_later_in_the_same_file_is_stored_resolved(workspace):
    workspace.write("usage/x.csv", HEADER + line("r2", quantity="-2") + line("r1") + line("r2", quantity="3"))
    result = pull(workspace, code=0)  # nothing is left to fix: the bad row was replaced in the same pull
    assert summary(result) == "files: 2 imported, 0 updated, 0 quarantined"
    assert open_entries(workspace) == []
    [entry] = all_entries(workspace)
    assert view(entry) == q(2, line("r2", quantity="-2").rstrip("\n"), ["quantity: '-2' is negative"], "r2",
                            status="resolved")
    assert entry["resolution"] == "replaced by line 4"
    assert stored(workspace)["r2"]["quantity"] == "3"


def test_a_bad_row_replaced_in_a_later_batch_of_the_same_file_is_resolved(workspace):
    workspace.config(STANDARD_CONFIG + "batch_size = 1\n")
    workspace.write("usage/x.csv", HEADER + line("r2", quantity="-2") + line("r1") + line("r2", quantity="3"))
    pull(workspace, code=None)
    assert open_entries(workspace) == []
    assert sorted(stored(workspace)) == ["r1", "r2"]
    assert summary(pull(workspace)) == SUMMARY_NOTHING


def test_adding_the_unknown_account_imports_the_quarantined_row_without_the_file_changing(workspace):
    workspace.write("usage/a.csv", HEADER + line("r1") + line("r2", "initech"))
    workspace.write("usage/b.csv", HEADER + line("r3"))
    pull(workspace, code=3)
    before = stored(workspace)
    workspace.config(STANDARD_CONFIG + '\n[[accounts]]\nid = "initech"\nname = "Initech"\ncountry = "US"\n')
    result = pull(workspace)
    assert summary(result) == "files: 1 imported, 0 updated, 0 quarantined"
    rows = stored(workspace)
    assert sorted(rows) == ["r1", "r2", "r3"]
    assert (rows["r2"]["account"], rows["r2"]["origin"]) == ("initech", "usage/a.csv:3")
    assert {k: rows[k] for k in ("r1", "r3")} == before
    assert open_entries(workspace) == []
    assert [e["status"] for e in all_entries(workspace)] == ["resolved"]
    assert summary(pull(workspace)) == SUMMARY_NOTHING


def test_adding_the_unknown_meter_imports_the_quarantined_row(workspace):
    workspace.write("usage/x.csv", HEADER + line("r1", meter="storage.gb"))
    pull(workspace, code=3)
    workspace.config(STANDARD_CONFIG + '\n[[meters]]\nname = "storage.gb"\naggregation = "sum"\nunit = "GB"\n')
    assert summary(pull(workspace)) == "files: 1 imported, 0 updated, 0 quarantined"
    assert open_entries(workspace) == []


# --------------------------------------------------------------------------
# failure isolation


def test_a_path_matching_no_file_pulls_nothing_and_exits_0(workspace):
    result = pull(workspace)
    assert result.stdout == SUMMARY_NOTHING + "\n"
    assert result.stderr.strip() == ""
    assert stored(workspace) == {}
    runs = db_query(workspace, select(pull_runs.c.source, pull_runs.c.status, pull_runs.c.error))
    assert runs == [{"source": "files", "status": "ok", "error": None}]


class _Plugin:
    """An in-process plugin with three source types: one that fails at once,
    one that stores a batch and then fails, one that runs a callback."""

    def __init__(self) -> None:
        from hub.hookspecs import hookimpl

        self.hub_register_source_types = hookimpl(self._types)

    @staticmethod
    def _types() -> list[Any]:
        from hub.plugin_types import SourceType

        schema = {"type": "object", "additionalProperties": False, "properties": {}}
        return [SourceType(name="boom", description="fails", config_schema=schema, factory=_Boom),
                SourceType(name="halfway", description="fails midway", config_schema=schema, factory=_Halfway),
                SourceType(name="nested", description="pulls another store", config_schema=schema, factory=_Nested)]


class _Boom:
    def __init__(self, config: Any) -> None:
        pass

    def pull(self, checkpoint: Any, ctx: Any) -> Any:
        raise RuntimeError("disk on fire")
        yield  # noqa: unreachable - makes this a generator


class _Halfway:
    seen: list[Any] = []

    def __init__(self, config: Any) -> None:
        pass

    def pull(self, checkpoint: Any, ctx: Any) -> Any:
        from hub.plugin_types import PullBatch, UsageRecord

        _Halfway.seen.append(checkpoint)
        yield PullBatch((UsageRecord("h1", "acme", "vm-h", "compute.vcpu", epoch(T0), epoch(T1), Decimal("1")),),
                        checkpoint={"at": 1})
        raise ValueError("connection reset")


class _Nested:
    """A source that, while its own pull holds the lock, runs ``callback``."""

    callback: Any = None
    result: Any = None

    def __init__(self, config: Any) -> None:
        pass

    def pull(self, checkpoint: Any, ctx: Any) -> Any:
        from hub.plugin_types import PullBatch

        _Nested.result = _Nested.callback()
        yield PullBatch(checkpoint={"done": True})


TWO_SOURCES = STANDARD_CONFIG.replace('[[sources]]\nname = "files"', '[[sources]]\nname = "broken"\ntype = "boom"\n\n[[sources]]\nname = "files"')


def _host_and_config(ws: Any) -> tuple[Any, Any, Any]:
    from hub.config import load_config
    from hub.host import build_host
    from hub.store.db import open_store

    host = build_host(extra_plugins=[("test-plugin", _Plugin())])
    config = load_config(ws.config_path, host)
    return host, config, open_store(config.hub.database, config.base_dir)


def ingest(config: Any, host: Any, engine: Any) -> list[Any]:
    """``hub.ingest.pull`` of every source, retrying the ones skipped because
    another process held their lock (see :func:`pull`)."""
    from hub.ingest import pull as hub_pull

    results = hub_pull(config, host, engine)
    for _ in range(200):
        skipped = [r.source for r in results if r.skipped]
        if not skipped:
            break
        time.sleep(0.05)
        again = {r.source: r for r in hub_pull(config, host, engine, skipped)}
        results = [again.get(r.source, r) for r in results]
    return results


def test_a_failing_source_is_recorded_and_the_other_sources_still_pull(workspace):
    from hub.plugin_types import PluginFailure

    workspace.config(TWO_SOURCES)
    workspace.write("usage/x.csv", HEADER + line("r1") + line("r2", "nobody"))
    host, config, engine = _host_and_config(workspace)
    try:
        results = ingest(config, host, engine)
    finally:
        engine.dispose()
    assert [r.source for r in results] == ["broken", "files"]
    broken, files = results
    assert broken.failure == PluginFailure("broken", "pull", "RuntimeError: disk on fire")
    assert not broken.ok
    assert (broken.counts.imported, broken.counts.quarantined) == (0, 0)
    assert files.failure is None and files.ok
    assert (files.counts.imported, files.counts.updated, files.counts.quarantined) == (1, 0, 1)
    assert sorted(stored(workspace)) == ["r1"]
    runs = db_query(workspace, select(pull_runs).order_by(pull_runs.c.id))
    assert [(r["source"], r["status"], r["imported"], r["quarantined"], r["error"]) for r in runs] == [
        ("broken", "failed", 0, 0, "RuntimeError: disk on fire"),
        ("files", "ok", 1, 1, None),
    ]
    assert all(r["finished_at"] is not None for r in runs)


def test_hub_pull_exits_4_when_a_source_fails(workspace, monkeypatch):
    import hub.cli.base
    from hub.host import build_host

    monkeypatch.setattr(hub.cli.base, "build_host", lambda: build_host(extra_plugins=[("test-plugin", _Plugin())]))
    workspace.config(TWO_SOURCES)
    workspace.write("usage/x.csv", HEADER + line("r1") + line("r2", "nobody"))
    result = pull(workspace, code=4)
    assert result.stdout.splitlines() == [
        "broken: 0 imported, 0 updated, 0 quarantined; FAILED in pull: RuntimeError: disk on fire",
        "files: 1 imported, 0 updated, 1 quarantined",
    ]
    assert sorted(stored(workspace)) == ["r1"]


def test_batches_stored_before_a_failure_stay_and_the_next_pull_resumes_from_them(workspace):
    workspace.config(STANDARD_CONFIG.replace('type = "csv"\npath = "usage/*.csv"', 'type = "halfway"'))
    _Halfway.seen.clear()
    host, config, engine = _host_and_config(workspace)
    try:
        [first] = ingest(config, host, engine)
        [second] = ingest(config, host, engine)
    finally:
        engine.dispose()
    assert (first.failure.plugin, first.failure.hook, first.failure.message) == ("files", "pull", "ValueError: connection reset")
    assert (first.counts.imported, second.counts.imported, second.counts.unchanged) == (1, 0, 1)
    assert _Halfway.seen == [None, {"at": 1}]
    assert sorted(stored(workspace)) == ["h1"]
    runs = db_query(workspace, select(pull_runs.c.status, pull_runs.c.imported, pull_runs.c.error).order_by(pull_runs.c.id))
    assert runs == [{"status": "failed", "imported": 1, "error": "ValueError: connection reset"},
                    {"status": "failed", "imported": 0, "error": "ValueError: connection reset"}]


@pytest.fixture
def other_store(workspace: Any, tmp_path: Any) -> Any:
    """A second, independent hub (its own store) on the same kind of database:
    another SQLite file, or another schema of the same PostgreSQL database."""
    from sqlalchemy.engine import make_url

    from tests.conftest import POSTGRES, Workspace

    url = make_url(workspace.db_url)
    if url.get_backend_name() == "sqlite":
        yield Workspace(tmp_path / "other", f"sqlite:///{tmp_path / 'other' / 'hub.db'}")
        return
    import uuid

    import psycopg

    base = make_url(POSTGRES)
    schema = f"hub_t_{uuid.uuid4().hex[:12]}"
    params = dict(host=base.host, port=base.port or 5432, user=base.username, dbname=base.database,
                  password=base.password)
    with psycopg.connect(**params, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        other_url = base.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)
        yield Workspace(tmp_path / "other", other_url)
    finally:
        with psycopg.connect(**params, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def test_a_pull_is_not_blocked_by_a_pull_of_the_same_source_name_in_another_store(workspace, other_store):
    """Two hubs with separate stores (two SQLite files, or two schemas of one
    PostgreSQL database) must not share the lock of their "files" source."""
    other_store.config(STANDARD_CONFIG)
    other_store.write("usage/x.csv", HEADER + line("r1"))
    workspace.config(STANDARD_CONFIG.replace('type = "csv"\npath = "usage/*.csv"', 'type = "nested"'))
    _Nested.callback = lambda: other_store.hub("pull")
    _Nested.result = None
    host, config, engine = _host_and_config(workspace)
    try:
        [result] = ingest(config, host, engine)  # while it runs, the other hub pulls its own "files"
    finally:
        engine.dispose()
    assert result.ok
    assert _Nested.result.stdout == "files: 1 imported, 0 updated, 0 quarantined\n"  # not "skipped"
    assert sorted(stored(other_store)) == ["r1"]


# --------------------------------------------------------------------------
# the lock of a source's pull


def _lock_files(ws: Any) -> list[str]:
    return sorted(p.name for p in ws.root.rglob("*.lock"))


def test_a_pull_leaves_no_file_behind_in_the_workspace(workspace):
    workspace.write("usage/x.csv", HEADER + line("r1"))
    before = {p.name for p in workspace.root.iterdir()}
    assert summary(pull(workspace)) == "files: 1 imported, 0 updated, 0 quarantined"
    assert summary(pull(workspace)) == SUMMARY_NOTHING
    left = {p.name for p in workspace.root.iterdir()} - before
    # the database (and, on SQLite, its own journal files) and nothing else
    assert left <= {"hub.db", "hub.db-wal", "hub.db-shm"}, left
    assert _lock_files(workspace) == []


def test_two_pulls_of_one_source_exclude_each_other(workspace):
    """While a pull of "files" runs, a second pull of "files" in the same
    store (here another engine, as another process would have) is skipped;
    once the first ends, the next pull runs, and no lock file is left."""
    from hub.ingest import pull as hub_pull
    from hub.store.db import open_store

    workspace.config(STANDARD_CONFIG.replace('type = "csv"\npath = "usage/*.csv"', 'type = "nested"'))
    host, config, engine = _host_and_config(workspace)
    second = open_store(config.hub.database, config.base_dir)
    _Nested.callback = lambda: hub_pull(config, host, second, ["files"])
    _Nested.result = None
    try:
        [outer] = ingest(config, host, engine)
        [inner] = _Nested.result
        assert outer.ok
        assert inner.skipped == "another process is pulling this source" and not inner.ok
        assert _lock_files(workspace) == []
        _Nested.callback = lambda: None
        [again] = hub_pull(config, host, second, ["files"])
        assert again.ok and again.skipped is None
    finally:
        second.dispose()
        engine.dispose()
    assert _lock_files(workspace) == []


_HOLD_THE_LOCK = """
import sys
from pathlib import Path
from hub.ingest import _source_lock
from hub.store.db import open_store

engine = open_store(sys.argv[1], Path(sys.argv[2]))
with _source_lock(engine, "files") as got:
    print(got, flush=True)
    sys.stdin.readline()
engine.dispose()
"""


def test_a_pull_in_another_process_holds_the_lock_until_it_ends(workspace):
    """The exclusion is across processes, and a holder that ends releases
    the lock without leaving its file."""
    import subprocess
    import sys

    from hub.ingest import _source_lock
    from hub.store.db import open_store

    workspace.write("usage/x.csv", HEADER + line("r1"))
    pull(workspace)
    child = subprocess.Popen([sys.executable, "-c", _HOLD_THE_LOCK, workspace.db_url, str(workspace.root)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    engine = open_store(workspace.db_url, workspace.root)
    try:
        assert child.stdout.readline() == "True\n"
        with _source_lock(engine, "files") as got:
            assert got is False
        with _source_lock(engine, "other source") as got:
            assert got is True  # one lock per source
        child.stdin.write("\n")
        child.stdin.flush()
        assert child.wait(timeout=30) == 0
        with _source_lock(engine, "files") as got:
            assert got is True
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        engine.dispose()
    assert _lock_files(workspace) == []


def test_a_lock_file_removed_on_release_never_lets_two_pulls_hold_the_lock(workspace):
    """Many pulls of one source racing, each releasing (and so unlinking)
    as others open, lock and re-check the file: never two holders at once."""
    import threading

    from hub.ingest import _source_lock
    from hub.store.db import open_store

    pull(workspace)
    engine = open_store(workspace.db_url, workspace.root)
    holders: list[int] = []
    overlaps: list[int] = []
    acquired = [0]
    guard = threading.Lock()
    tries = 150 if engine.dialect.name == "sqlite" else 30

    def race() -> None:
        for _ in range(tries):
            with _source_lock(engine, "files") as got:
                if not got:
                    continue
                with guard:
                    holders.append(1)
                    acquired[0] += 1
                    if len(holders) > 1:
                        overlaps.append(len(holders))
                time.sleep(0.0005)
                with guard:
                    holders.pop()

    threads = [threading.Thread(target=race) for _ in range(6)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        engine.dispose()
    assert overlaps == []
    assert acquired[0] > 0
    assert _lock_files(workspace) == []
