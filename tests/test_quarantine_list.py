"""``hub quarantine list``: a page of the entries in file order (50 unless
``--limit N``; ``--all``: every entry, resolved ones too), the total by one
COUNT, and its wording, exactly (issue 24, item 10: it used to read and
print every open entry, 50 s at 100,000 of them, and its last line ran into
the next message). ``--json`` lists every entry unless ``--limit N``.

Every test runs on SQLite and on PostgreSQL (the ``workspace`` fixture).
"""

from __future__ import annotations

from sqlalchemy import text

from hub.store.db import create_hub_engine
from tests.conftest import HEADER
from tests.test_csv_source import line, pull

RAW = "r{i},acme,vm-1,compute.vcpu,2026-10-01T10:00:00Z,2026-10-01T10:12:42Z,-{i}"
MORE = "more with: hub quarantine list --limit N (or --all: every entry, resolved ones too)"


def _lines(result) -> list[str]:
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    return [ln.rstrip() for ln in result.stdout.split("\n")]


def _bad_rows(ws, n: int, name: str = "x") -> None:
    """A file of one good row and ``n`` negative quantities (lines 3 to n + 2)."""
    ws.write(f"usage/{name}.csv", HEADER + line("ok") + "".join(RAW.format(i=i) + "\n" for i in range(1, n + 1)))


def _row(i: int, width: int) -> str:
    """The table row of the entry of ``RAW`` number ``i`` (its id, line ``i + 2``)
    in a table whose ids have ``width`` digits at most."""
    where = f"usage/x.csv:{i + 2}"
    errors = f"quantity: '-{i}' is negative"
    return (f"{i:>{max(2, width)}}  files   {where:<{12 + width}}  {errors:<{25 + width}}  {RAW.format(i=i)}").rstrip()


def _head(width: int) -> str:
    return f"{'id':<{max(2, width)}}  source  {'where':<{12 + width}}  {'errors':<{25 + width}}  raw"


def test_a_few_entries_are_listed_whole_with_their_count(workspace):
    _bad_rows(workspace, 2)
    pull(workspace, code=3)
    assert _lines(workspace.hub("quarantine", "list")) == [
        "id  source  where          errors                      raw",
        " 1  files   usage/x.csv:3  quantity: '-1' is negative  " + RAW.format(i=1),
        " 2  files   usage/x.csv:4  quantity: '-2' is negative  " + RAW.format(i=2),
        "2 open entries",
        "",
    ]


def test_one_entry_is_one_open_entry_and_none_is_said_so(workspace):
    assert _lines(workspace.hub("quarantine", "list")) == ["no open entries", ""]
    _bad_rows(workspace, 1)
    pull(workspace, code=3)
    assert _lines(workspace.hub("quarantine", "list"))[-2:] == ["1 open entry", ""]
    assert _lines(workspace.hub("quarantine", "list", "--source", "other")) == ["no open entries", ""]


def test_many_entries_show_the_first_page_in_file_order_and_the_total(workspace):
    _bad_rows(workspace, 120)
    pull(workspace, code=3)
    lines = _lines(workspace.hub("quarantine", "list"))
    assert lines[0] == _head(2)
    assert lines[1:51] == [_row(i, 2) for i in range(1, 51)]
    assert lines[51:] == ["50 of 120 open entries shown, in file order", MORE, ""]


def test_limit_shows_that_many_and_all_shows_every_entry_resolved_ones_too(workspace):
    _bad_rows(workspace, 120)
    pull(workspace, code=3)
    assert _lines(workspace.hub("quarantine", "list", "--limit", "3")) == [
        _head(1),
        *[_row(i, 1) for i in (1, 2, 3)],
        "3 of 120 open entries shown, in file order", MORE, ""]
    # fix the first five rows in place
    _bad_rows(workspace, 0)
    workspace.append("usage/x.csv", "".join(line(f"r{i}") for i in range(1, 6))
                     + "".join(RAW.format(i=i) + "\n" for i in range(6, 121)))
    # read again from the start: the 120 entries are resolved, 115 open again
    assert pull(workspace, code=3).stdout == "files: 5 imported, 0 updated, 115 quarantined\n"
    open_lines = _lines(workspace.hub("quarantine", "list", "--limit", "200"))
    assert open_lines[-2:] == ["115 open entries", ""] and len(open_lines) == 118
    every = _lines(workspace.hub("quarantine", "list", "--all"))
    assert every[-2:] == ["235 entries", ""] and len(every) == 238
    assert _lines(workspace.hub("quarantine", "list", "--resolved", "--limit", "2"))[-3:] == [
        "2 of 235 entries shown, in file order", MORE, ""]


def test_json_lists_every_entry_unless_limited(workspace):
    _bad_rows(workspace, 60)
    pull(workspace, code=3)
    assert [e["line"] for e in workspace.json("quarantine", "list")] == list(range(3, 63))
    assert [e["line"] for e in workspace.json("quarantine", "list", "--limit", "2")] == [3, 4]


def test_all_and_limit_together_are_a_usage_error(workspace):
    result = workspace.hub("quarantine", "list", "--all", "--limit", "5")
    assert result.exit_code == 2
    assert "--all and --limit exclude each other" in result.stderr
    result = workspace.hub("quarantine", "list", "--limit", "0")
    assert result.exit_code == 2


def test_on_sqlite_the_open_page_is_read_in_index_order_without_a_sort(workspace):
    if not workspace.db_url.startswith("sqlite"):
        return
    pull(workspace)
    engine = create_hub_engine(workspace.db_url, workspace.root)
    try:
        with engine.connect() as conn:
            plan = [r[-1] for r in conn.execute(text(
                "EXPLAIN QUERY PLAN SELECT * FROM quarantine WHERE status = 'open' "
                "ORDER BY source, location, line, id LIMIT 50"))]
    finally:
        engine.dispose()
    assert plan == ["SEARCH quarantine USING INDEX ix_quarantine_open (status=?)"]
