"""Usage timestamps outside 1970-01-01T00:00:00Z .. 9999-12-31T23:59:59Z
(in UTC) are refused where they are read (issue 24, item 2): year 1 at
+14:00 is year 0 in UTC, 9999-12-31T23:59:59-12:00 is year 10000. The CSV
source quarantines such a row with the reason and stores the others, on
SQLite and PostgreSQL, whichever path (one by one or a column at once)
read it.
"""

from __future__ import annotations

import pytest

from hub.timestamps import LATEST, TimestampParser, parse_timestamp
from tests.conftest import HEADER
from tests.test_csv_source import open_entries, pull, summary

BEFORE = "is before 1970-01-01T00:00:00Z, the earliest time the hub accepts"
AFTER = "is after 9999-12-31T23:59:59Z, the latest time the hub accepts"


@pytest.mark.parametrize(("text", "error"), [
    ("0001-01-01T00:00:00+14:00", f"'0001-01-01T00:00:00+14:00' {BEFORE}"),
    ("0001-01-01T00:00:00Z", f"'0001-01-01T00:00:00Z' {BEFORE}"),
    ("1969-12-31T23:59:59Z", f"'1969-12-31T23:59:59Z' {BEFORE}"),
    ("1970-01-01T00:59:59+01:00", f"'1970-01-01T00:59:59+01:00' {BEFORE}"),
    ("9999-12-31T23:59:59-12:00", f"'9999-12-31T23:59:59-12:00' {AFTER}"),
    ("9999-12-31T23:59:59-00:01", f"'9999-12-31T23:59:59-00:01' {AFTER}"),
])
def test_a_timestamp_outside_the_range_is_an_error(text, error):
    assert parse_timestamp(text) == (None, error)
    assert TimestampParser().parse(text) == (None, error)


@pytest.mark.parametrize(("text", "seconds"), [
    ("1970-01-01T00:00:00Z", 0),
    ("1970-01-01T01:00:00+01:00", 0),
    ("9999-12-31T23:59:59Z", LATEST),
    ("9999-12-31T23:59:59.999Z", LATEST),
    ("9999-12-31T23:59:59+00:00", LATEST),
])
def test_the_ends_of_the_range_are_accepted(text, seconds):
    assert parse_timestamp(text) == (seconds, None)


def test_a_column_with_an_early_year_is_refused_as_one_by_one():
    texts = ["2025-10-10T00:00:00Z"] * 20 + ["0001-01-01T00:00:00Z"]
    assert TimestampParser().column(texts) is None
    assert TimestampParser().column(texts[:20]) == [1760054400] * 20


@pytest.mark.parametrize("rows", [1, 40], ids=["one row", "a column"])
def test_the_csv_source_quarantines_a_row_outside_the_range_and_stores_the_others(workspace, rows):
    good = "".join(f"g{i},acme,vm-1,network.egress,2025-10-10T00:00:00Z,,1\n" for i in range(rows))
    workspace.write("usage/x.csv", HEADER + good
                    + "y0,acme,vm-1,network.egress,0001-01-01T00:00:00+14:00,,1\n"
                    + "y10k,globex,vm-2,network.egress,9999-12-31T23:59:59-12:00,,1\n", dedent=False)
    assert summary(pull(workspace, code=3)) == f"files: {rows} imported, 0 updated, 2 quarantined"
    entries = {e["record_id"]: (e["line"], e["errors"]) for e in open_entries(workspace)}
    assert entries == {
        "y0": (rows + 2, [f"start: '0001-01-01T00:00:00+14:00' {BEFORE}"]),
        "y10k": (rows + 3, [f"start: '9999-12-31T23:59:59-12:00' {AFTER}"]),
    }
