#!/usr/bin/env python3
"""Benchmark: the render stage as ``hub render --all`` and ``hub run`` run it.

    python3 bench/bench_render_stage.py                       # 1,000 invoices of 20 lines, --jobs 1 then 2
    python3 bench/bench_render_stage.py --count 200 --jobs 2
    python3 bench/bench_render_stage.py --count 1000 --jobs 2 --check 100

Builds a workspace in a temporary folder (``--workdir`` to keep it): a
hub.toml with only ``[hub] database`` (SQLite; no ``[[renderers]]``, so
every installed renderer runs with its defaults: html, pdf, ubl and
facturx) and ``--count`` issued invoices of ``--lines`` lines, stored as
the hub stores them (``invoices.content``; the generator of
bench_render_facturx.py: the domestic sample's three kinds of line, other
quantities, buyers and locales, every other invoice a promotional credit,
every third a prepaid one, figures that add up). Then, for each ``--jobs``
value, on a fresh copy of that database: :func:`hub.documents.render_pending`
(the real stage: reads each invoice, renders the four formats with every
validation, stores the documents), timed.

Reported per run: wall time, CPU time (this process and its render
workers: ``RUSAGE_SELF`` + ``RUSAGE_CHILDREN``), documents/s and invoices/s,
CPU ms per invoice (the steadier figure on a shared machine), and the
projection to 10,000 invoices (wall, and CPU divided by the cores: what
an idle machine would do). Then every run's documents are compared: each
invoice's four documents must have the same SHA-256 in every run (a
parallel render stores what a serial one does), and none may be rejected;
otherwise the run exits 1. ``--check N`` renders the first N invoices
again, one at a time through ``render_invoice`` (``hub render NUMBER``'s
path), and compares those too.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_render_facturx import make_invoice  # noqa: E402
from sqlalchemy import insert, select  # noqa: E402

FORMATS = ("facturx", "html", "pdf", "ubl")


def build(workdir: Path, count: int, lines: int) -> Path:
    """The workspace's hub.toml, its database holding ``count`` issued invoices."""
    from hub.app import Hub
    from hub.store.tables import invoices

    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "hub.toml"
    config.write_text('[hub]\ndatabase = "sqlite:///store.db"\n')
    ws = Hub.open(config)
    now = datetime(2025, 11, 3, tzinfo=timezone.utc)
    rows = []
    for i in range(count):
        inv = make_invoice(i, lines)
        rows.append(dict(kind="invoice", number=inv["number"], account=inv["buyer"]["id"], currency=inv["currency"],
                         period=inv["period"], period_start=datetime.fromisoformat(inv["period_start"]),
                         period_end=datetime.fromisoformat(inv["period_end"]), status="issued",
                         issue_date=inv["issue_date"], due_date=inv["due_date"], total=inv["total"],
                         amount_due=inv["amount_due"], content=json.dumps(inv), created_at=now, issued_at=now))
    with ws.engine.begin() as conn:
        conn.execute(insert(invoices), rows)
    ws.engine.dispose()
    return config


def _cpu() -> tuple[float, float]:
    """CPU seconds of this process, and of its children that ended (the render workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, kids.ru_utime + kids.ru_stime


def run(config: Path, jobs: int, label: str) -> dict:
    """Render every pending invoice of a copy of the workspace's database."""
    from hub.app import Hub
    from hub.documents import render_pending

    copy = config.parent / f"run-{label}"
    if copy.exists():
        shutil.rmtree(copy)
    copy.mkdir()
    shutil.copy(config.parent / "store.db", copy / "store.db")
    (copy / "hub.toml").write_text(config.read_text())
    ws = Hub.open(copy / "hub.toml")
    cfg, host, engine = ws.config, ws.host, ws.engine
    load = os.getloadavg()
    cpu, start = _cpu(), time.perf_counter()
    last = [start]

    def progress(done: int, total: int) -> None:
        if time.perf_counter() - last[0] > 30:
            last[0] = time.perf_counter()
            print(f"  ... {done}/{total} invoices, {last[0] - start:.0f} s", flush=True)

    import inspect

    if "jobs" in inspect.signature(render_pending).parameters:
        outcomes = render_pending(engine, cfg, host, jobs=jobs, progress=progress)
    else:  # a tree from before --jobs (to compare): one process
        outcomes = render_pending(engine, cfg, host, progress=progress)
    wall, after = time.perf_counter() - start, _cpu()
    own, kids = after[0] - cpu[0], after[1] - cpu[1]
    return {"label": label, "jobs": jobs, "wall": wall, "cpu": own + kids, "cpu_parent": own, "cpu_workers": kids,
            "load": load, "load_after": os.getloadavg(),
            "invoices": len({o.number for o in outcomes}), "documents": sum(o.ok for o in outcomes),
            "bad": [(o.number, o.format, o.status, [f.rule for f in o.failures]) for o in outcomes if not o.ok],
            "hashes": hashes(engine)}


def hashes(engine) -> dict[tuple[str, str], str | None]:  # noqa: ANN001
    from hub.store.tables import documents, invoices

    with engine.connect() as conn:
        return {(r.number, r.format): r.sha256 for r in conn.execute(
            select(invoices.c.number, documents.c.format, documents.c.sha256)
            .join(invoices, invoices.c.id == documents.c.invoice_id))}


def check_serial(config: Path, count: int, reference: dict) -> list[str]:
    """The first ``count`` invoices rendered one by one (``render_invoice``,
    --force) in this process: the numbers whose documents differ from ``reference``."""
    from hub.app import Hub
    from hub.documents import render_invoice

    ws = Hub.open(config.parent / "run-check" / "hub.toml")
    numbers = sorted({n for n, _ in reference})[:count]
    differ = []
    for number in numbers:
        for o in render_invoice(ws.engine, ws.config, ws.host, number, force=True):
            if o.sha256 != reference.get((number, o.format)):
                differ.append(f"{number} {o.format}")
    return differ


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=1000, help="invoices (default 1,000)")
    ap.add_argument("--lines", type=int, default=20, help="lines per invoice (default 20)")
    ap.add_argument("--jobs", type=int, nargs="+", default=[1, 2], help="render processes, one run each (default: 1 2)")
    ap.add_argument("--check", type=int, default=0, metavar="N",
                    help="also render the first N invoices one by one (render_invoice) and compare")
    ap.add_argument("--workdir", type=Path, help="keep the workspace here (default: a temporary folder)")
    args = ap.parse_args()

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="hub-bench-render-"))
    try:
        t = time.perf_counter()
        config = build(workdir, args.count, args.lines)
        print(f"{args.count} issued invoices of {args.lines} lines in {workdir} ({time.perf_counter() - t:.1f} s); "
              f"formats {', '.join(FORMATS)}; {os.cpu_count()} CPUs")
        results = []
        for jobs in args.jobs:
            r = run(config, jobs, f"jobs{jobs}")
            results.append(r)
            n, docs = r["invoices"], r["documents"]
            print(f"--jobs {jobs}: {n} invoices, {docs} documents in {r['wall']:.1f} s wall, {r['cpu']:.1f} s CPU "
                  f"({r['cpu_parent']:.1f} this process, {r['cpu_workers']:.1f} workers; load average before "
                  f"{r['load'][0]:.1f}, after {r['load_after'][0]:.1f})")
            print(f"    {docs / r['wall']:6.1f} documents/s, {n / r['wall']:5.1f} invoices/s; "
                  f"CPU {r['cpu'] / max(n, 1) * 1000:5.1f} ms per invoice ({r['cpu'] / max(docs, 1) * 1000:4.1f} "
                  f"per document)")
            per = 10_000 / max(n, 1)
            cores = os.cpu_count() or 1
            print(f"    10,000 invoices x {len(FORMATS)} formats: {r['wall'] * per / 60:4.1f} min at this rate; "
                  f"{r['cpu'] * per / 60:4.1f} CPU-min, {r['cpu'] * per / 60 / min(jobs, cores):4.1f} min on "
                  f"{min(jobs, cores)} idle core{'s' if min(jobs, cores) > 1 else ''}")
            for bad in r["bad"][:5]:
                print(f"    REJECTED or FAILED: {bad}")
        failed = any(r["bad"] for r in results) or any(r["documents"] != args.count * len(FORMATS) for r in results)
        ref = results[0]["hashes"]
        for r in results[1:]:
            differ = [k for k in ref if r["hashes"].get(k) != ref[k]]
            print(f"--jobs {r['jobs']} vs --jobs {results[0]['jobs']}: {len(ref) - len(differ)} of {len(ref)} "
                  f"documents identical")
            failed |= bool(differ) or len(r["hashes"]) != len(ref)
        if args.check:
            shutil.copytree(workdir / f"run-{results[-1]['label']}", workdir / "run-check", dirs_exist_ok=True)
            differ = check_serial(config, args.check, results[-1]["hashes"])
            print(f"render_invoice one by one, first {args.check}: {len(differ)} documents differ {differ[:5]}")
            failed |= bool(differ)
        print(f"load average now {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
        print("FAILED" if failed else "OK")
        return 1 if failed else 0
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
