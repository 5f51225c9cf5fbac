"""The render stage in several processes (``hub render --jobs N``,
``render_pending(jobs=...)``): the same documents, rejections and
failures as one process would store, ``--jobs`` checked, and a worker
that dies leaves whole invoices stored and the rest for the next run."""

from __future__ import annotations

import importlib.metadata as md
import json
import os
import signal
import subprocess
import sys
import time
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select

from hub.hookspecs import ENTRY_POINT_GROUP, hookimpl
from hub.host import Host, build_host
from hub.plugin_types import Document, RenderContext, RendererType
from tests.test_invoices import ACCOUNTS, BASE, OCTOBER
from tests.test_render_host import SCHEMA, Broken, Signed, Strict, Text

#: where the Pid renderer writes the process that rendered each invoice
PID_LOG = "HUB_TEST_RENDER_PID_LOG"
#: the invoice number the Crash renderer dies on (the whole process, as a
#: segfault in a native library would), while the file it names exists
CRASH_ON = "HUB_TEST_RENDER_CRASH_ON"
#: when set to N, the Pid renderer waits (30 s at most) until N processes
#: have written to its log: with fast renderers one worker could otherwise
#: take every invoice before the other has started
MEET = "HUB_TEST_RENDER_MEET"


class Pid:
    """Notes which process rendered each invoice (in a file, not in the document)."""

    format, requires = "pid", ()

    def __init__(self, config: Any) -> None:
        pass

    def render(self, invoice: Mapping[str, Any], context: RenderContext) -> Document:
        log = Path(os.environ[PID_LOG])
        with log.open("a") as fh:
            fh.write(f"{invoice['number']} {os.getpid()}\n")
        meet, deadline = int(os.environ.get(MEET, "0")), time.monotonic() + 30
        while len({line.split()[1] for line in log.read_text().splitlines()}) < meet \
                and time.monotonic() < deadline:
            time.sleep(0.01)
        return Document(f"{invoice['number']}.pid", "text/plain", invoice["number"].encode())


class Crash:
    format, requires = "crash", ("txt",)

    def __init__(self, config: Any) -> None:
        pass

    def render(self, invoice: Mapping[str, Any], context: RenderContext) -> Document:
        number, marker = os.environ.get(CRASH_ON, " ").split(" ", 1)
        if invoice["number"] == number and Path(marker).exists():
            os._exit(9)
        return Document(f"{invoice['number']}.crash", "text/plain", b"alive")


class Slow:
    """Takes a second per invoice, and notes its process as Pid does."""

    format, requires = "slow", ("txt",)

    def __init__(self, config: Any) -> None:
        pass

    def render(self, invoice: Mapping[str, Any], context: RenderContext) -> Document:
        with open(os.environ[PID_LOG], "a") as fh:
            fh.write(f"{invoice['number']} {os.getpid()}\n")
        time.sleep(1)
        return Document(f"{invoice['number']}.slow", "text/plain", b"slow")


@hookimpl
def _renderer_types() -> list[RendererType]:
    return [RendererType(name=cls.format, description=cls.__doc__ or cls.format, config_schema=SCHEMA, factory=cls)
            for cls in (Text, Signed, Strict, Broken, Pid, Crash, Slow)]


FAKES = types.ModuleType("fake_parallel_renderers")
FAKES.hub_register_renderer_types = _renderer_types  # type: ignore[attr-defined]


def fake_host() -> Host:
    csv = [ep for ep in md.entry_points(group=ENTRY_POINT_GROUP) if ep.name == "csv"]
    return build_host(csv, extra_plugins=[("fake_parallel_renderers", FAKES)])


@pytest.fixture
def fakes(monkeypatch, tmp_path):
    import hub.cli.base

    monkeypatch.setattr(hub.cli.base, "build_host", fake_host)
    monkeypatch.setenv(PID_LOG, str(tmp_path / "pids.log"))


def renderers(*types_: str) -> str:
    return "".join(f'\n[[renderers]]\nname = "{t}"\ntype = "{t}"\n' for t in types_)


def _issue(workspace, body: str) -> None:
    workspace.config(BASE + ACCOUNTS + body)
    workspace.write("usage/2025-10.csv", OCTOBER, dedent=False)
    assert workspace.hub("pull").exit_code == 0
    issued = workspace.hub("invoice", "--period", "2025-10", "--issue-date", "2025-11-03")
    assert issued.exit_code == 0, issued.output


def _rows(workspace) -> list[tuple[Any, ...]]:
    """Every documents row but its time, by invoice and format."""
    from hub.store.tables import documents, invoices

    engine = create_engine(workspace.db_url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(
                select(invoices.c.number, documents.c.format, documents.c.status, documents.c.renderer,
                       documents.c.file_name, documents.c.media_type, documents.c.sha256, documents.c.size,
                       documents.c.content, documents.c.failures)
                .join(invoices, invoices.c.id == documents.c.invoice_id)
                .order_by(invoices.c.number, documents.c.format))]
    finally:
        engine.dispose()


def test_two_processes_store_what_one_stores_rejections_and_failures_included(workspace, fakes, tmp_path,
                                                                            monkeypatch):
    _issue(workspace, renderers("txt", "sig", "strict", "broken", "pid"))
    one = workspace.hub("render", "--all", "--jobs", "1", "--json")
    assert one.exit_code == 6
    serial = _rows(workspace)
    assert {(r[1], r[2]) for r in serial} == {("txt", "stored"), ("sig", "stored"), ("pid", "stored"),
                                              ("strict", "stored"), ("strict", "rejected"), ("broken", "failed")}
    (tmp_path / "pids.log").unlink()

    monkeypatch.setenv(MEET, "2")
    two = workspace.hub("render", "--all", "--force", "--jobs", "2", "--json")
    assert two.exit_code == 6
    assert _rows(workspace) == serial
    # the same outcomes, in the same order, and the same report
    assert [{k: v for k, v in d.items() if k != "path"} for d in json.loads(two.stdout)] == \
        [{k: v for k, v in d.items() if k != "path"} for d in json.loads(one.stdout)]
    rejected = [d for d in json.loads(two.stdout) if d["status"] != "stored"]
    assert ("INV-2025-000001", "strict", "rejected", [{"rule": "BR-TEST-01", "message": "the total is above 10.00",
                                                       "location": "/Invoice/Total"}]) in \
        [(d["number"], d["format"], d["status"], d["failures"]) for d in rejected]
    assert {(d["format"], d["failures"][0]["message"]) for d in rejected if d["format"] == "broken"} == {
        ("broken", "RuntimeError: the template engine fell over")}
    flagged = workspace.json("documents", "--flagged")
    assert {d["number"] for d in flagged if d["format"] == "strict"} == {"INV-2025-000001"}
    # rendered in two other processes, not this one
    pids = {line.split()[1] for line in (tmp_path / "pids.log").read_text().splitlines()}
    assert len(pids) == 2
    assert str(os.getpid()) not in pids


def test_the_bundled_renderers_make_the_same_bytes_in_two_processes(workspace):
    _issue(workspace, "")
    assert workspace.hub("render", "--all", "--jobs", "2").exit_code == 0
    parallel = _rows(workspace)
    assert {r[1] for r in parallel} >= {"html", "pdf", "ubl", "facturx"}
    assert all(r[2] == "stored" for r in parallel)
    assert workspace.hub("render", "--all", "--force", "--jobs", "1").exit_code == 0
    assert _rows(workspace) == parallel


def test_render_pending_uses_the_workers_and_the_host_gets_their_failures(workspace, fakes, tmp_path, monkeypatch):
    from hub.cli.main import Workspace
    from hub.documents import render_pending

    _issue(workspace, renderers("txt", "broken", "pid"))
    monkeypatch.setenv(MEET, "2")
    ws = Workspace(workspace.config_path)
    outcomes = render_pending(ws.engine, ws.config(), ws.host, jobs=2)
    assert [(o.number, o.format) for o in outcomes] == [
        (f"INV-2025-00000{i}", f) for i in range(1, 6) for f in ("broken", "pid", "txt")]
    assert all(o.document is None for o in outcomes)  # stored, not kept in memory
    assert [(f.plugin, f.hook, f.message) for f in ws.host.failures] == [
        ("broken", "render", "RuntimeError: the template engine fell over")] * 5
    assert len({line.split()[1] for line in (tmp_path / "pids.log").read_text().splitlines()}) == 2
    assert render_pending(ws.engine, ws.config(), ws.host, formats=["txt", "pid"], jobs=2) == []


@pytest.mark.parametrize("jobs", ["0", "-3"])
def test_jobs_must_be_one_or_more(workspace, fakes, jobs):
    _issue(workspace, renderers("txt"))
    result = workspace.hub("render", "--all", "--jobs", jobs)
    assert result.exit_code == 2
    assert f"--jobs must be 1 or more (1 renders in this process), not {jobs}" in result.output
    assert _rows(workspace) == []
    bad = workspace.hub("render", "--all", "--jobs", "two")
    assert bad.exit_code == 2
    assert "'two' is not a valid integer" in bad.output


def test_a_dead_worker_leaves_whole_invoices_and_the_next_run_completes(workspace, fakes, tmp_path, monkeypatch):
    _issue(workspace, renderers("txt", "crash"))
    marker = tmp_path / "crash-now"
    marker.write_text("")
    monkeypatch.setenv(CRASH_ON, f"INV-2025-000004 {marker}")
    died = workspace.hub("render", "--all", "--jobs", "2")
    assert died.exit_code == 2
    assert "a render worker died" in died.output
    assert "render again to finish" in died.output
    rows = _rows(workspace)
    by_invoice: dict[str, set[str]] = {}
    for r in rows:
        by_invoice.setdefault(r[0], set()).add(r[1])
    # every invoice stored has both its documents: none half-stored
    assert all(formats == {"txt", "crash"} for formats in by_invoice.values())
    assert "INV-2025-000004" not in by_invoice

    marker.unlink()
    again = workspace.json("render", "--all", "--jobs", "2")
    assert sorted({d["number"] for d in again}) == sorted({f"INV-2025-00000{i}" for i in range(1, 6)} - set(by_invoice))
    assert {(r[0], r[1], r[2]) for r in _rows(workspace)} == {
        (f"INV-2025-00000{i}", f, "stored") for i in range(1, 6) for f in ("txt", "crash")}


def test_an_in_memory_database_renders_in_this_process():
    from hub.documents.parallel import _forkable

    assert not _forkable(create_engine("sqlite://"))
    assert not _forkable(create_engine("sqlite:///:memory:"))
    assert _forkable(create_engine("sqlite:////tmp/x.db"))


#: ``render_pending`` with the fake renderers, in a process of its own (to be killed)
RENDER_SCRIPT = """
import sys
from pathlib import Path
import hub.cli.base
from hub.cli.main import Workspace
from hub.documents import render_pending
from tests.test_render_parallel import fake_host
hub.cli.base.build_host = fake_host
ws = Workspace(Path(sys.argv[1]))
render_pending(ws.engine, ws.config(), ws.host, jobs=2)
"""


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status  # a zombie nobody reaps is gone too


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="looks at /proc")
def test_a_killed_render_leaves_whole_invoices_no_orphans_and_the_next_run_completes(workspace, fakes, tmp_path):
    _issue(workspace, renderers("txt", "slow"))
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.Popen([sys.executable, "-c", RENDER_SCRIPT, str(workspace.config_path)], cwd=root,
                            env={**os.environ, "PYTHONPATH": str(root)})
    try:
        deadline = time.monotonic() + 60
        while not _rows(workspace) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, "the render finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    workers = {int(line.split()[1]) for line in (tmp_path / "pids.log").read_text().splitlines()}
    assert len(workers) == 2 and proc.pid not in workers
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in workers), "the workers outlived their killed parent"

    by_invoice: dict[str, set[str]] = {}
    for r in _rows(workspace):
        by_invoice.setdefault(r[0], set()).add(r[1])
    assert by_invoice and len(by_invoice) < 5
    assert all(formats == {"txt", "slow"} for formats in by_invoice.values())
    again = workspace.json("render", "--all", "--jobs", "2")
    assert {d["number"] for d in again} == {f"INV-2025-00000{i}" for i in range(1, 6)} - set(by_invoice)
    assert {(r[0], r[1], r[2]) for r in _rows(workspace)} == {
        (f"INV-2025-00000{i}", f, "stored") for i in range(1, 6) for f in ("txt", "slow")}
