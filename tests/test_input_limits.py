"""What either backend would refuse is refused at the input, the same way on
both: a NUL character or a text over its column's size in a usage row is
quarantined with what it broke, and the rest of the file (and every later
file) is stored. On PostgreSQL such a row used to fail its whole batch at
every pull, blocking the source; SQLite stored it.

Every test runs on SQLite and on PostgreSQL (the ``workspace`` fixture).
"""

from __future__ import annotations

from decimal import Decimal
import json
from typing import Any

from sqlalchemy import String, select

from hub.plugin.limits import TEXT_LIMITS, storable, text_error
from hub.store.tables import quarantine, usage_records
from tests.conftest import HEADER, STANDARD_CONFIG
from tests.test_csv_source import (
    QUARANTINE_HINT,
    T0,
    T1,
    db_query,
    epoch,
    ingest,
    line,
    open_entries,
    pull,
    q,
    stored,
    summary,
    view,
)


def test_the_limits_are_the_sizes_of_the_columns_that_store_them():
    sizes = {name: usage_records.c[name].type.length for name in TEXT_LIMITS}
    assert sizes == TEXT_LIMITS == {"record_id": 500, "account": 200, "resource_id": 500, "meter": 200, "unit": 100}
    assert isinstance(quarantine.c.record_id.type, String)
    assert quarantine.c.record_id.type.length == TEXT_LIMITS["record_id"]


def test_text_error_names_the_field_and_the_limit():
    assert text_error("record_id", "r" * 500) is None
    assert text_error("record_id", "r" * 501) == "record_id: 501 characters, over the limit of 500"
    assert text_error("resource_id", "vm-\x001") == "resource_id: holds a NUL character (byte 0), which cannot be stored"
    assert text_error("label 'note'", "a\ud800b") == (
        "label 'note': is not valid Unicode (a lone surrogate), which cannot be stored")
    assert text_error("label 'note'", "x" * 100_000) is None  # labels have no size limit
    assert storable("a\x00b\ud800") == "a\\x00b\\ud800"


# --------------------------------------------------------------------------
# a NUL character


def test_a_row_with_a_nul_byte_is_quarantined_and_the_rest_of_the_file_and_later_files_are_stored(workspace):
    bad = line("r2", resource="vm-\x002")
    workspace.write("usage/a.csv", HEADER + line("r1") + bad + line("r3"))
    workspace.write("usage/b.csv", HEADER + line("r4"))
    result = pull(workspace, code=3)
    assert summary(result) == "files: 3 imported, 0 updated, 1 quarantined"
    assert QUARANTINE_HINT in result.stderr
    assert sorted(stored(workspace)) == ["r1", "r3", "r4"]
    assert [view(e) for e in open_entries(workspace)] == [
        q(3, bad.rstrip("\n").replace("\x00", "\\x00"),
          ["resource_id: holds a NUL character (byte 0), which cannot be stored"], "r2", location="usage/a.csv")]
    # the source is not blocked: a later file is pulled, and the entry stays one
    workspace.write("usage/c.csv", HEADER + line("r5"))
    assert summary(pull(workspace)) == "files: 1 imported, 0 updated, 0 quarantined"
    assert sorted(stored(workspace)) == ["r1", "r3", "r4", "r5"]
    assert len(open_entries(workspace)) == 1


def test_a_nul_byte_in_a_record_id_or_a_label_is_quarantined_without_the_id(workspace):
    header = HEADER.rstrip("\n") + ",note\n"
    rid = line("r\x002", "acme", "vm-1", "compute.vcpu", T0, T1, "2", "ok")
    label = line("r3", "acme", "vm-1", "compute.vcpu", T0, T1, "2", '"a\x00b"')
    workspace.write("usage/x.csv", header + line("r1", "acme", "vm-1", "compute.vcpu", T0, T1, "2", "") + rid + label)
    assert summary(pull(workspace, code=3)) == "files: 1 imported, 0 updated, 2 quarantined"
    assert sorted(stored(workspace)) == ["r1"]
    assert [view(e) for e in open_entries(workspace)] == [
        q(3, rid.rstrip("\n").replace("\x00", "\\x00"),
          ["record_id: holds a NUL character (byte 0), which cannot be stored"], None),
        q(4, label.rstrip("\n").replace("\x00", "\\x00"),
          ["label 'note': holds a NUL character (byte 0), which cannot be stored"], "r3"),
    ]


def test_a_nul_byte_in_a_field_the_source_refuses_anyway_is_quarantined_with_every_error(workspace):
    bad = line("r2", account="nob\x00dy", quantity="-1")
    workspace.write("usage/x.csv", HEADER + line("r1") + bad)
    assert summary(pull(workspace, code=3)) == "files: 1 imported, 0 updated, 1 quarantined"
    assert [view(e) for e in open_entries(workspace)] == [
        q(3, bad.rstrip("\n").replace("\x00", "\\x00"),
          ["quantity: '-1' is negative", "unknown account 'nob\\x00dy'",
           "account: holds a NUL character (byte 0), which cannot be stored"], "r2")]


# --------------------------------------------------------------------------
# texts over their limit


def test_a_record_id_at_the_limit_is_stored_and_one_over_it_is_quarantined_with_the_limit(workspace):
    at, over = "r" * 500, "s" * 501
    workspace.write("usage/x.csv", HEADER + line(at) + line(over) + line("r3"))
    result = pull(workspace, code=3)
    assert summary(result) == "files: 2 imported, 0 updated, 1 quarantined"
    assert sorted(stored(workspace)) == sorted([at, "r3"])
    assert stored(workspace)[at]["record_id"] == at
    assert [view(e) for e in open_entries(workspace)] == [
        q(3, line(over).rstrip("\n"), ["record_id: 501 characters, over the limit of 500"], None)]


def test_a_resource_id_over_its_limit_is_quarantined_in_a_big_plain_block_too(workspace):
    # 3,000 plain rows: the block path reads them; the long one goes to the row path
    rows = [line(f"r{i}", resource=f"vm-{i}") for i in range(3000)]
    rows[1234] = line("r1234", resource="v" * 501)
    workspace.write("usage/x.csv", HEADER + "".join(rows))
    assert summary(pull(workspace, code=3)) == "files: 2999 imported, 0 updated, 1 quarantined"
    assert len(stored(workspace)) == 2999
    assert [view(e) for e in open_entries(workspace)] == [
        q(1236, rows[1234].rstrip("\n"), ["resource_id: 501 characters, over the limit of 500"], "r1234")]


def test_a_unit_over_its_limit_on_a_meter_without_a_unit_is_quarantined(workspace):
    workspace.config(STANDARD_CONFIG + '\n[[meters]]\nname = "jobs"\naggregation = "sum"\n')
    header = HEADER.rstrip("\n") + ",unit\n"
    ok = "r1,acme,job-1,jobs,2026-10-01T10:00:00Z,,1," + "u" * 100 + "\n"
    bad = "r2,acme,job-2,jobs,2026-10-01T10:00:00Z,,1," + "u" * 101 + "\n"
    workspace.write("usage/x.csv", header + ok + bad)
    assert summary(pull(workspace, code=3)) == "files: 1 imported, 0 updated, 1 quarantined"
    assert stored(workspace)["r1"]["unit"] == "u" * 100
    assert [view(e) for e in open_entries(workspace)] == [
        q(3, bad.rstrip("\n"), ["unit: 101 characters, over the limit of 100"], "r2")]


# --------------------------------------------------------------------------
# the hub's own check, whatever the source did


class _Plugin:
    """A source that yields what the CSV source would refuse, as records and
    as columns, with a rejected row whose text holds a NUL."""

    def __init__(self) -> None:
        from hub.hookspecs import hookimpl

        self.hub_register_source_types = hookimpl(self._types)

    @staticmethod
    def _types() -> list[Any]:
        from hub.plugin_types import SourceType

        schema = {"type": "object", "additionalProperties": False, "properties": {}}
        return [SourceType(name="careless", description="checks nothing", config_schema=schema, factory=_Careless)]


class _Careless:
    def __init__(self, config: Any) -> None:
        pass

    def pull(self, checkpoint: Any, ctx: Any) -> Any:
        from hub.plugin_types import Origin, PullBatch, RejectedRow, UsageColumns, UsageRecord

        start, end = epoch(T0), epoch(T1)

        def rec(rid: str, resource: str = "vm-1", **labels: str) -> Any:
            return UsageRecord(rid, "acme", resource, "compute.vcpu", start, end, Decimal("1"), labels=labels,
                               origin=Origin("api", None))

        records = (rec("c1"), rec("c2", "vm-\x00"), rec("c3", "v" * 501), rec("c4", note="a\x00b"), rec("x" * 501))
        cols = UsageColumns(["k1", "k2", "k3"], ["acme"] * 3, ["vm-1", "w" * 501, "vm-\x003"],
                            ["compute.vcpu"] * 3, [start] * 3, [end] * 3, [1] * 3, [0] * 3, None,
                            {"note": ["", "", ""]}, "feed", [1, 2, 3])
        rejected = (RejectedRow(Origin("feed", 9, "bad\x00row"), ("the source says no",), "y" * 501),)
        yield PullBatch(records, rejected, checkpoint={"done": True}, columns=cols)


CARELESS = STANDARD_CONFIG.replace('type = "csv"\npath = "usage/*.csv"', 'type = "careless"')


def test_the_pull_stage_quarantines_what_no_backend_can_store_whatever_the_source_yields(workspace):
    workspace.config(CARELESS)
    from hub.config import load_config
    from hub.host import build_host
    from hub.store.db import open_store

    host = build_host(extra_plugins=[("careless-plugin", _Plugin())])
    config = load_config(workspace.config_path, host)
    engine = open_store(config.hub.database, config.base_dir)
    try:
        (result,) = ingest(config, host, engine)
    finally:
        engine.dispose()
    assert result.failure is None
    assert (result.counts.imported, result.counts.quarantined) == (2, 7)
    assert sorted(stored(workspace)) == ["c1", "k1"]
    entries = sorted((e["location"], e["line"], e["raw"], tuple(json.loads(e["errors"])), e["record_id"])
                     for e in db_query(workspace, select(quarantine).where(quarantine.c.status == "open")))
    assert entries == sorted([
        ("api", None, None, ("resource_id: holds a NUL character (byte 0), which cannot be stored",), "c2"),
        ("api", None, None, ("resource_id: 501 characters, over the limit of 500",), "c3"),
        ("api", None, None, ("label 'note': holds a NUL character (byte 0), which cannot be stored",), "c4"),
        ("api", None, None, ("record_id: 501 characters, over the limit of 500",), None),
        ("feed", 2, None, ("resource_id: 501 characters, over the limit of 500",), "k2"),
        ("feed", 3, None, ("resource_id: holds a NUL character (byte 0), which cannot be stored",), "k3"),
        ("feed", 9, "bad\\x00row", ("the source says no",), None),
    ])


def test_a_file_name_that_is_not_utf8_is_kept_escaped_and_its_entries_resolve_when_it_is_fixed(workspace):
    import os

    workspace.write("usage/ok.csv", HEADER + line("r0"))
    name = os.path.join(os.fsencode(workspace.root / "usage"), b"\xff.csv")
    with open(name, "wb") as fh:
        fh.write((HEADER + line("r1") + line("r2", quantity="-1")).encode())
    assert summary(pull(workspace, code=3)) == "files: 2 imported, 0 updated, 1 quarantined"
    assert [(e["location"], e["line"]) for e in open_entries(workspace)] == [("usage/\\udcff.csv", 3)]
    with open(name, "wb") as fh:
        fh.write((HEADER + line("r1") + line("r2", quantity="1")).encode())
    assert summary(pull(workspace)) == "files: 1 imported, 0 updated, 0 quarantined"
    assert open_entries(workspace) == []
    assert stored(workspace)["r1"]["origin"] == "usage/\\udcff.csv:2"
