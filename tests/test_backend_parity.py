"""Backend parity: a value either backend would refuse is refused at the
input, the same way on both. Every quarantine case of the CSV source (the
bad rows of tests/test_csv_source.py, and what only one backend used to
refuse: a NUL, texts over their column's size) is pulled into a SQLite
store and a PostgreSQL store; what each stored and quarantined, the pull's
summary and its exit code are the same, and a valid row appended afterwards
is imported by both (no source is blocked).

Needs the PostgreSQL server (skipped when it is not reachable).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from hub.store.tables import quarantine
from tests.conftest import HEADER, STANDARD_CONFIG, Workspace
from tests.test_csv_source import BAD_ROWS, T0, T1, db_query, line, pull, stored

NOTE = HEADER.rstrip("\n") + ",note\n"
UNIT = HEADER.rstrip("\n") + ",unit\n"
UNITLESS = '\n[[meters]]\nname = "jobs"\naggregation = "sum"\n'
PARIS = 'timezone = "Europe/Paris"\n'

#: name -> (the file's bytes, what hub.toml adds to the standard one)
CASES: dict[str, tuple[bytes, str]] = {
    **{f"bad row: {name}": ((HEADER + line("r1") + "\n" + text + line("r2")).encode(), "")
       for name, (text, _errors, _rid) in BAD_ROWS.items()},
    "NUL in a resource id": ((HEADER + line("r1") + line("r2", resource="vm-\x00") + line("r3")).encode(), ""),
    "NUL in a record id": ((HEADER + line("r\x001") + line("r2")).encode(), ""),
    "NUL in an account": ((HEADER + line("r1", account="ac\x00me") + line("r2")).encode(), ""),
    "NUL in a quantity": ((HEADER + line("r1", quantity="2\x00") + line("r2")).encode(), ""),
    "NUL in a label": ((NOTE + line("r1", "acme", "vm-1", "compute.vcpu", T0, T1, "2", "a\x00b")
                        + line("r2", "acme", "vm-1", "compute.vcpu", T0, T1, "2", "ok")).encode(), ""),
    "NUL in a quoted multi-line label": (
        (NOTE + line("r1", "acme", "vm-1", "compute.vcpu", T0, T1, "2", '"a\n\x00"') + line(
            "r2", "acme", "vm-1", "compute.vcpu", T0, T1, "2", "")).encode(), ""),
    "record id of 500 and of 501 characters": ((HEADER + line("r" * 500) + line("s" * 501)).encode(), ""),
    "resource id of 501 characters": ((HEADER + line("r1", resource="v" * 501) + line("r2")).encode(), ""),
    "account of 201 characters": ((HEADER + line("r1", account="a" * 201) + line("r2")).encode(), ""),
    "meter of 201 characters": ((HEADER + line("r1", meter="m" * 201) + line("r2")).encode(), ""),
    "unit of 101 characters": (
        (UNIT + "r1,acme,j,jobs,2026-10-01T10:00:00Z,,1," + "u" * 100 + "\n"
         + "r2,acme,j,jobs,2026-10-01T10:00:00Z,,1," + "u" * 101 + "\n").encode(), UNITLESS),
    "a label of 100,000 characters": (
        (NOTE + line("r1", "acme", "vm-1", "compute.vcpu", T0, T1, "2", "x" * 100_000)).encode(), ""),
    "control characters in ids": ((HEADER + line("r\x01", resource="vm\x1b[31m") + line("r2")).encode(), ""),
    "invalid UTF-8": (HEADER.encode() + b"r1,acme,vm-\xff1,compute.vcpu,2026-10-01T10:00:00Z,,2\n"
                      + line("r2").encode(), ""),
    "byte order mark": (("\ufeff" + HEADER + line("r1") + line("r2", "nobody")).encode(), ""),
    "CRLF": ((HEADER + line("r1") + line("r2", "nobody")).replace("\n", "\r\n").encode(), ""),
    "several errors in one row": ((HEADER + "r9,initech,,gpu.hours,yesterday,2026-10-01T09:00:00Z,-3\n").encode(), ""),
    "a header missing a column": (b"record_id,account,resource_id,meter,start,end\nr1,acme,vm-1,compute.vcpu,"
                                  b"2026-10-01T10:00:00Z,\n", ""),
    "a header repeating a column": ((HEADER.rstrip("\n") + ",account\n" + line("r1", "acme", "vm-1", "compute.vcpu",
                                                                           T0, T1, "2", "acme")).encode(), ""),
    "an unterminated quote": ((HEADER + line("r1") + 'r2,acme,vm-1,compute.vcpu,"2026-10-01T10:00:00Z,,2\n'
                               + line("r3")).encode(), ""),
    "naive timestamps without a time zone": ((HEADER + line("r1", start="2026-07-01T12:00:00", end="")).encode(), ""),
    "ambiguous local times": ((HEADER + line("fold", start="2026-10-25T02:30:00", end="2026-10-25T04:00:00")
                               + line("ok", start="2026-10-25T01:30:00", end="")).encode(), PARIS),
    "timestamps at the edges of the years": (
        (HEADER + line("y1", start="0001-01-01T00:00:00+14:00", end="") + line("y9999", start="9999-12-31T23:59:59-12:00", end="")
         + line("ok")).encode(), ""),
    "huge quantities": ((HEADER + line("r1", quantity="999999999999999.999999999")
                         + line("r2", quantity="1000000000000000") + line("r3", quantity="1e400")
                         + line("r4", quantity="NaN")).encode(), ""),
    "a unit not the meter's": ((UNIT + line("r1", "acme", "vm-1", "compute.vcpu", T0, T1, "2", "GB")).encode(), ""),
}


#: the cases whose file quarantines every later row (a header without its
#: columns, a quote that runs to the end of the file)
SWALLOWED = {"a header missing a column", "a header repeating a column", "an unterminated quote"}


def _workspace(root: Path, url: str, extra: str, data: bytes) -> Workspace:
    ws = Workspace(root, url)
    root.mkdir(parents=True, exist_ok=True)
    ws.config(STANDARD_CONFIG + extra)
    (root / "usage").mkdir(exist_ok=True)
    (root / "usage" / "x.csv").write_bytes(data)
    return ws


def _outcome(ws: Workspace) -> dict[str, Any]:
    """What a store holds, without what differs by nature (surrogate keys, clocks)."""
    records = {rid: {k: v for k, v in r.items() if k != "received_s"} for rid, r in stored(ws).items()}
    entries = [{k: v for k, v in e.items() if k not in ("id", "created_at", "resolved_at")}
               for e in db_query(ws, select(quarantine).order_by(quarantine.c.location, quarantine.c.line,
                                                                  quarantine.c.id))]
    return {"records": records, "quarantine": entries}


def _pulled(ws: Workspace) -> tuple[int, str, str]:
    result = pull(ws, code=None)
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.postgresql
@pytest.mark.parametrize("case", list(CASES))
def test_each_quarantine_case_stores_and_quarantines_the_same_on_sqlite_and_postgresql(case, tmp_path, pg_schema_url):
    data, extra = CASES[case]
    lite = _workspace(tmp_path / "sqlite", f"sqlite:///{tmp_path / 'sqlite' / 'hub.db'}", extra, data)
    pg = _workspace(tmp_path / "postgresql", pg_schema_url, extra, data)

    first = _pulled(lite)
    assert first[0] in (0, 3), first  # stored or quarantined: never a failed source
    assert _pulled(pg) == first
    assert _outcome(pg) == _outcome(lite)

    # neither is blocked: a valid row appended later is imported by both
    for ws in (lite, pg):
        with open(ws.root / "usage" / "x.csv", "ab") as fh:
            fh.write(("\n" if not data.endswith(b"\n") else "").encode() + line("later").encode())
    second = _pulled(lite)
    assert second[0] in (0, 3), second
    assert _pulled(pg) == second
    assert ("later" in stored(lite)) == (case not in SWALLOWED)
    assert _outcome(pg) == _outcome(lite)
