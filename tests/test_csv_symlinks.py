"""The CSV source identifies a file by its real path: a file reached under
several names (a symlink loop under a recursive glob, a symlinked
directory, a symlink to the file) is read once, and its bad row is one
quarantine entry, not one per name.

Every test runs on SQLite and on PostgreSQL (the ``workspace`` fixture).
"""

from __future__ import annotations

import os

from tests.conftest import HEADER, STANDARD_CONFIG
from tests.test_csv_source import line, open_entries, pull, q, stored, summary, view

RECURSIVE = STANDARD_CONFIG.replace('path = "usage/*.csv"', 'path = "usage/**/*.csv"')


def test_a_symlink_loop_under_a_recursive_glob_reads_the_file_once(workspace):
    workspace.config(RECURSIVE)
    bad = line("r2", quantity="-1")
    workspace.write("usage/sub/a.csv", HEADER + line("r1") + bad)
    os.symlink("..", workspace.root / "usage" / "sub" / "loop")  # usage/sub/loop/sub/loop/... is usage/sub/a.csv
    result = pull(workspace, code=3)
    assert summary(result) == "files: 1 imported, 0 updated, 1 quarantined"
    assert sorted(stored(workspace)) == ["r1"]
    assert stored(workspace)["r1"]["origin"] == "usage/sub/a.csv:2"
    assert [view(e) for e in open_entries(workspace)] == [
        q(3, bad.rstrip("\n"), ["quantity: '-1' is negative"], "r2", location="usage/sub/a.csv")]
    # the next pull finds nothing new under any of the names
    assert summary(pull(workspace)) == "files: 0 imported, 0 updated, 0 quarantined"
    assert len(open_entries(workspace)) == 1


def test_a_file_appended_to_is_read_on_from_its_checkpoint_once_whatever_its_names(workspace):
    workspace.config(RECURSIVE)
    path = workspace.write("usage/sub/a.csv", HEADER + line("r1"))
    os.symlink("..", workspace.root / "usage" / "sub" / "loop")
    assert summary(pull(workspace)) == "files: 1 imported, 0 updated, 0 quarantined"
    with open(path, "a") as fh:
        fh.write(line("r2", quantity="x"))
    assert summary(pull(workspace, code=3)) == "files: 0 imported, 0 updated, 1 quarantined"
    assert [(e["location"], e["line"]) for e in open_entries(workspace)] == [("usage/sub/a.csv", 3)]


def test_a_symlink_to_a_file_and_a_symlinked_directory_are_the_file_they_point_to(workspace):
    workspace.config(RECURSIVE)
    workspace.write("usage/2026/10.csv", HEADER + line("r1") + line("r2", account="nobody"))
    os.symlink("2026/10.csv", workspace.root / "usage" / "latest.csv")
    os.symlink("2026", workspace.root / "usage" / "current")
    result = pull(workspace, code=3)
    assert summary(result) == "files: 1 imported, 0 updated, 1 quarantined"
    # its name without links, although the name of the link sorts first
    assert [(e["location"], e["line"]) for e in open_entries(workspace)] == [("usage/2026/10.csv", 3)]
    assert stored(workspace)["r1"]["origin"] == "usage/2026/10.csv:2"


def test_two_distinct_files_with_equal_content_are_both_read(workspace):
    workspace.write("usage/a.csv", HEADER + line("r1", quantity="x"))
    workspace.write("usage/b.csv", HEADER + line("r1", quantity="x"))
    assert summary(pull(workspace, code=3)) == "files: 0 imported, 0 updated, 2 quarantined"
    assert [e["location"] for e in open_entries(workspace)] == ["usage/a.csv", "usage/b.csv"]


def test_entries_quarantined_under_the_other_names_of_a_file_are_resolved_once_it_is_read_under_one(workspace):
    from hub.plugin_types import Origin, RejectedRow
    from hub.store.db import create_hub_engine
    from hub.store.usage import load_checkpoint, quarantine_rows, save_checkpoint, utcnow

    workspace.config(RECURSIVE)
    bad = line("r2", quantity="-1")
    workspace.write("usage/sub/a.csv", HEADER + line("r1") + bad)
    os.symlink("..", workspace.root / "usage" / "sub" / "loop")
    assert summary(pull(workspace, code=3)) == "files: 1 imported, 0 updated, 1 quarantined"
    aliases = ("usage/sub/loop/sub/a.csv", "usage/sub/loop/sub/loop/sub/a.csv")

    def as_an_earlier_version_left_it(checkpoint: bool) -> None:
        """The row quarantined under two more of the file's names, and (a
        pull) the file checkpointed under them too."""
        engine = create_hub_engine(workspace.db_url, workspace.root)
        try:
            with engine.begin() as conn:
                quarantine_rows(conn, "files", [RejectedRow(Origin(name, 3, bad.rstrip("\n")),
                                                            ("quantity: '-1' is negative",), "r2")
                                                for name in aliases], utcnow())
                if checkpoint:
                    state = load_checkpoint(conn, "files")
                    state["files"].update({name: state["files"]["usage/sub/a.csv"] for name in aliases})
                    save_checkpoint(conn, "files", state, utcnow())
        finally:
            engine.dispose()
        assert len(open_entries(workspace)) == 3

    for args in ((), ("--full",)):
        as_an_earlier_version_left_it(checkpoint=not args)
        pull(workspace, *args, code=None)
        assert [(e["location"], e["line"]) for e in open_entries(workspace)] == [("usage/sub/a.csv", 3)]
    # and no more batches for them afterwards
    assert summary(pull(workspace)) == "files: 0 imported, 0 updated, 0 quarantined"
