"""A pull killed at any point loses nothing and doubles nothing."""

import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from contextlib import closing

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from hub.store.db import open_store
from hub.store.tables import checkpoints, usage_records
from tests.conftest import HEADER, STANDARD_CONFIG, Workspace

ROWS = 40_000


def _csv(rows: int) -> str:
    lines = [HEADER]
    for i in range(rows):
        lines.append(f"r{i},acme,vm-{i % 50},compute.vcpu,2026-10-01T10:00:00Z,2026-10-01T10:{i % 60:02d}:00Z,{i % 7}.5\n")
    return "".join(lines)


def _stored(engine) -> int:
    """Rows stored so far, read without waiting for the pull's writes.

    On SQLite the hub's own connections begin with BEGIN IMMEDIATE (they
    queue behind the pull's writer); a plain read of the WAL does not.
    """
    if engine.dialect.name == "sqlite":
        with closing(sqlite3.connect(engine.url.database)) as conn:
            return conn.execute("SELECT count(*) FROM usage_records").fetchone()[0]
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(usage_records))


def _backends(engine, application: str) -> set[int]:
    """The PostgreSQL sessions named ``application`` (none on SQLite): the
    pull's, not the sessions of other test runs sharing the server."""
    if engine.dialect.name != "postgresql":
        return set()
    with engine.connect() as conn:
        return set(conn.scalars(text(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND backend_type = 'client backend' AND application_name = :a"),
            {"a": application}))


def _wait_for_backends_to_end(engine, application: str) -> None:
    """A killed client's server session may still be committing what it had
    sent (PostgreSQL completes a COMMIT it received): wait until it ends."""
    deadline = time.monotonic() + 30
    while _backends(engine, application):
        assert time.monotonic() < deadline, "the killed pull's database sessions did not end"
        time.sleep(0.02)


@pytest.mark.parametrize("kill_when", ["starting", "some rows stored", "half the rows stored"])
def test_a_pull_killed_midway_then_run_again_stores_every_row_exactly_once(workspace, kill_when):
    engine = open_store(workspace.db_url, workspace.root)  # so the test can count while the pull runs
    # the pulls' sessions carry a name of their own: other runs share the server
    application = f"hub-crash-{uuid.uuid4().hex[:12]}"
    if engine.dialect.name == "postgresql":
        workspace.db_url = make_url(workspace.db_url).update_query_dict(
            {"application_name": application}).render_as_string(hide_password=False)
    workspace.config(STANDARD_CONFIG + "batch_size = 500\n")
    workspace.write("usage/big.csv", _csv(ROWS))
    hub = [sys.executable, "-c", "from hub.cli.main import main; main()", "--config", str(workspace.config_path)]
    proc = subprocess.Popen([*hub, "pull"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wanted = {"starting": None, "some rows stored": 1, "half the rows stored": ROWS // 2}[kill_when]
    deadline = time.monotonic() + 120
    while wanted is not None and _stored(engine) < wanted and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    if proc.poll() is not None:
        pytest.fail("the pull finished before it could be killed; raise ROWS")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    _wait_for_backends_to_end(engine, application)
    stored_before = _stored(engine)
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(checkpoints)) in (0, 1)
    assert 0 <= stored_before < ROWS

    again = subprocess.run([*hub, "pull"], capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    imported = int(again.stdout.split(":")[1].split()[0])
    with engine.connect() as conn:
        total = conn.scalar(select(func.count()).select_from(usage_records))
        versions = set(conn.scalars(select(usage_records.c.version).distinct()))
    assert total == ROWS
    assert stored_before + imported == ROWS  # the rerun resumed exactly where the last stored batch ended
    assert versions == {1}  # no row was written twice
    engine.dispose()


def test_the_scratch_directory_of_a_killed_pull_is_removed_by_the_next_pull(tmp_path):
    # Only pulls into a SQLite file stage their batches in a scratch directory.
    workspace = Workspace(tmp_path, f"sqlite:///{tmp_path / 'hub.db'}")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    orphan = scratch / f"hub-stage-{dead.stdout.strip()}-abc123"
    orphan.mkdir()
    (orphan / "stage.db").write_bytes(b"left by a pull that was killed")
    alive = scratch / f"hub-stage-{os.getpid()}-def456"  # a pull still running (this process)
    alive.mkdir()
    workspace.config(STANDARD_CONFIG)
    workspace.write("usage/a.csv", _csv(10))
    result = subprocess.run([sys.executable, "-c", "from hub.cli.main import main; main()",
                             "--config", str(workspace.config_path), "pull"],
                            capture_output=True, text=True, env={**os.environ, "TMPDIR": str(scratch)})
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in scratch.iterdir()) == [alive.name]
