"""A pull killed at any point loses nothing and doubles nothing."""

import os
import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import func, select

from hub.store.db import open_store
from hub.store.tables import checkpoints, usage_records
from tests.conftest import HEADER, STANDARD_CONFIG

ROWS = 40_000


def _csv(rows: int) -> str:
    lines = [HEADER]
    for i in range(rows):
        lines.append(f"r{i},acme,vm-{i % 50},compute.vcpu,2026-10-01T10:00:00Z,2026-10-01T10:{i % 60:02d}:00Z,{i % 7}.5\n")
    return "".join(lines)


def _stored(engine) -> int:
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(usage_records))


@pytest.mark.parametrize("kill_when", ["starting", "some rows stored", "half the rows stored"])
def test_a_pull_killed_midway_then_run_again_stores_every_row_exactly_once(workspace, kill_when):
    workspace.config(STANDARD_CONFIG + "batch_size = 500\n")
    workspace.write("usage/big.csv", _csv(ROWS))
    engine = open_store(workspace.db_url, workspace.root)  # so the test can count while the pull runs
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
    with engine.connect() as conn:
        stored_before = conn.scalar(select(func.count()).select_from(usage_records))
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
