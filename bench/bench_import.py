#!/usr/bin/env python3
"""Benchmark: importing a large usage CSV with the hub's real pull path.

Generates a deterministic (seeded) CSV of N usage rows, writes a hub.toml for
it, and imports it per backend exactly as ``hub pull`` does
(``build_host`` -> ``load_config`` -> ``open_store`` -> ``ingest.pull``,
validation included), each backend in its own subprocess so that the peak RSS
is that run's alone. Reports rows, seconds, rows/s, peak RSS, the time of a
re-pull of the unchanged file, and checks that the store holds exactly N rows.

    python3 bench/bench_import.py --rows 1000000
    python3 bench/bench_import.py --rows 1000000 --scaling
    python3 bench/bench_import.py --rows 200000 --profile     # cProfile, in-process, SQLite

See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from datetime import datetime, timezone
from pathlib import Path

#: the goal of the issue, SQLite with validation included
TARGET_ROWS_PER_S = 150_000

SOURCE = "bench"
HEADER = "record_id,account,resource_id,meter,start,end,quantity,region\n"
MONTH_START = datetime(2025, 3, 1, tzinfo=timezone.utc)
MONTH_DAYS = 31
MONTH_SECONDS = MONTH_DAYS * 86400
N_ACCOUNTS = 1000
N_RESOURCES = 50_000
RUNNING_SHARE = 0.02
REGIONS = ("eu-central", "eu-west", "us-east", "us-west", "ap-south")

# name, aggregation, unit, share of rows
METERS = (
    ("compute.vcpu", "time_weighted", "vCPU", 0.40),
    ("compute.memory", "time_weighted", "GiB", 0.30),
    ("network.egress", "sum", "GB", 0.20),
    ("storage.object.peak", "max", "GB", 0.10),
)
VCPU = ("0.25", "0.5", "1", "1", "2", "2", "4", "8", "16", "32")
MEMORY = ("0.5", "1", "2", "3.75", "4", "8", "15.25", "16", "32", "64", "128")

POSTGRES = os.environ.get("HUB_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


# ---------------------------------------------------------------------------
# the data


def account_id(i: int) -> str:
    return f"acct-{i:04d}"


def generate_csv(path: Path, rows: int, seed: int) -> None:
    """Write ``rows`` usage rows to ``path``, streamed in chunks (flat memory).

    Deterministic for a given ``(rows, seed)``; the first rows of a larger
    file are the rows of a smaller one with the same seed.
    """
    rng = random.Random(seed)
    rnd = rng.random
    # Resources belong to one account and one region; accounts are skewed (a
    # few large customers, a long tail), and so are resources.
    res_account = [account_id(int(N_ACCOUNTS * rnd() ** 2)) for _ in range(N_RESOURCES)]
    res_head = [f"{res_account[r]},{res_account[r]}/res-{r:05d}," for r in range(N_RESOURCES)]
    res_tail = [f",{REGIONS[int(len(REGIONS) * rnd())]}\n" for _ in range(N_RESOURCES)]
    # Timestamps without strftime: "2025-03-DD" "T" + "HH:MM:SSZ".
    days = [f"{MONTH_START:%Y-%m}-{d + 1:02d}T" for d in range(MONTH_DAYS)]
    hms = [f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}Z" for s in range(86400)]
    # Runs of VMs and containers: 1 min .. ~11 days, log-uniform.
    durations = [int(60 * 2 ** (14 * k / 4096)) for k in range(4096)]
    vcpu_n, mem_n = len(VCPU), len(MEMORY)
    c1 = METERS[0][3]
    c2 = c1 + METERS[1][3]
    c3 = c2 + METERS[2][3]
    m_vcpu, m_mem, m_egress, m_peak = (m[0] for m in METERS)
    last = MONTH_SECONDS - 1

    chunk: list[str] = []
    with open(path, "w", encoding="utf-8", newline="\n", buffering=1 << 20) as fh:
        fh.write(HEADER)
        for i in range(rows):
            r = int(N_RESOURCES * rnd() * rnd())
            start = int(MONTH_SECONDS * rnd())
            u = rnd()
            if u < c1:
                meter, qty, dur = m_vcpu, VCPU[int(vcpu_n * rnd())], durations[int(4096 * rnd())]
            elif u < c2:
                meter, qty, dur = m_mem, MEMORY[int(mem_n * rnd())], durations[int(4096 * rnd())]
            elif u < c3:  # hourly egress in GB, up to 3 decimals, mostly small
                q = int(5_000_000 * rnd() ** 3)
                meter, qty, dur = m_egress, f"{q // 1000}.{q % 1000:03d}".rstrip("0").rstrip("."), 3600
            else:  # hourly peak of stored GB
                q = int(2_000_000_000 * rnd())
                meter, qty, dur = m_peak, f"{q // 1000}.{q % 1000:03d}".rstrip("0").rstrip("."), 3600
            if rnd() < RUNNING_SHARE:
                end = ""  # still running
            else:
                e = start + dur
                if e > last:
                    e = last
                end = days[e // 86400] + hms[e % 86400]
            chunk.append(f"rec-{i:09d},{res_head[r]}{meter},{days[start // 86400]}{hms[start % 86400]},"
                         f"{end},{qty}{res_tail[r]}")
            if len(chunk) == 20_000:
                fh.write("".join(chunk))
                chunk.clear()
        fh.write("".join(chunk))


def write_config(run_dir: Path, csv_path: Path, database: str) -> Path:
    """hub.toml: the meters, the accounts and one csv source on ``csv_path``."""
    lines = ["# written by bench/bench_import.py", "[hub]", f"database = {json.dumps(database)}",
             'currency = "EUR"', 'timezone = "UTC"', ""]
    for name, aggregation, unit, _share in METERS:
        lines += ["[[meters]]", f'name = "{name}"', f'aggregation = "{aggregation}"', f'unit = "{unit}"', ""]
    for i in range(N_ACCOUNTS):
        lines += ["[[accounts]]", f'id = "{account_id(i)}"', f'name = "Customer {i}"', ""]
    lines += ["[[sources]]", f'name = "{SOURCE}"', 'type = "csv"', f"path = {json.dumps(str(csv_path))}", ""]
    path = run_dir / "hub.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------
# one run (in the child process)


def _maxrss_mb() -> float:
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return kb / (1 << 20) if sys.platform == "darwin" else kb / 1024


def _cpu_s() -> float:
    """CPU seconds (user + system) of this process so far, all threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_import(config_path: Path, rows: int, progress: bool = False, progress_file: Path | None = None) -> dict:
    """Import with the hub's own pull path, re-pull, count; returns figures.

    Raises ``RuntimeError`` when the store does not end up holding exactly
    ``rows`` records (or a row was quarantined, or the source failed).
    """
    from sqlalchemy import text

    from hub.config.loader import load_config
    from hub.host import build_host
    from hub.ingest import pull
    from hub.store.db import open_store

    rss_start = _maxrss_mb()
    t0 = time.perf_counter()
    host = build_host()
    config = load_config(config_path, host)
    engine = open_store(config.hub.database, config.base_dir)
    setup_s = time.perf_counter() - t0
    rss_before = _maxrss_mb()

    marks = {"next": 0.25, "written": 0.0}

    def report(source: str, done: int, total: int) -> None:
        now = time.perf_counter()
        if progress_file is not None and total and (now - marks["written"] >= 1.0 or done >= total):
            # how far it got, for a run the parent has to stop at --timeout
            progress_file.write_text(json.dumps({"fraction": done / total, "seconds": now - t1}))
            marks["written"] = now
        if progress and total and done / total >= marks["next"]:
            print(f"  [{engine.dialect.name}] {done / total:4.0%} after {time.perf_counter() - t1:.1f}s",
                  file=sys.stderr, flush=True)
            while done / total >= marks["next"]:
                marks["next"] += 0.25

    cpu1, main1 = _cpu_s(), time.thread_time()
    t1 = time.perf_counter()
    results = pull(config, host, engine, progress=report)
    pull_s = time.perf_counter() - t1
    cpu_s, main_cpu_s = _cpu_s() - cpu1, time.thread_time() - main1
    rss_after_pull = _maxrss_mb()
    first = _check(results, rows, "import")

    t2 = time.perf_counter()
    again = pull(config, host, engine)
    repull_s = time.perf_counter() - t2
    second = _check(again, 0, "re-pull")

    with engine.connect() as conn:
        stored = conn.scalar(text("SELECT count(*) FROM usage_records"))
        open_q = conn.scalar(text("SELECT count(*) FROM quarantine WHERE status = 'open'"))
    engine.dispose()
    if stored != rows or open_q:
        raise RuntimeError(f"the store holds {stored} usage records (expected exactly {rows}) "
                           f"and {open_q} open quarantine entries (expected 0)")
    return {
        "backend": engine.dialect.name,
        "rows": rows,
        "stored": stored,
        "setup_s": round(setup_s, 3),
        "seconds": round(pull_s, 3),
        "rows_per_s": round(rows / pull_s) if pull_s else None,
        "cpu_s": round(cpu_s, 3),
        "main_cpu_s": round(main_cpu_s, 3),
        "repull_s": round(repull_s, 3),
        "peak_rss_mb": round(_maxrss_mb(), 1),
        "rss_before_pull_mb": round(rss_before, 1),
        "rss_interpreter_mb": round(rss_start, 1),
        "rss_after_pull_mb": round(rss_after_pull, 1),
        "imported": first["imported"],
        "repull_imported": second["imported"],
        "repull_unchanged_or_skipped": second["unchanged"],
    }


def _check(results: list, expected_new: int, what: str) -> dict:
    (r,) = results
    if r.failure or r.skipped:
        raise RuntimeError(f"{what}: the source did not complete: {r.failure or r.skipped}")
    c = r.counts
    if c.quarantined or c.imported != expected_new or c.updated:
        raise RuntimeError(f"{what}: {c.imported} imported, {c.updated} updated, {c.quarantined} quarantined "
                           f"(expected {expected_new} imported, 0 updated, 0 quarantined)")
    return {"imported": c.imported, "unchanged": c.unchanged}


def child_main(args: argparse.Namespace) -> int:
    out = Path(args.child_result)
    try:
        figures = run_import(Path(args.child_config), args.child_rows, progress=args.progress,
                             progress_file=Path(args.child_result).with_suffix(".progress.json"))
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        out.write_text(json.dumps({"error": f"{type(exc).__name__}: {exc}",
                                   "peak_rss_mb": round(_maxrss_mb(), 1)}))
        traceback.print_exc()
        return 1
    out.write_text(json.dumps(figures))
    return 0


# ---------------------------------------------------------------------------
# PostgreSQL: a fresh schema of the local ``test`` database


def _pg_params() -> dict:
    from sqlalchemy.engine import make_url

    url = make_url(POSTGRES)
    return dict(host=url.host, port=url.port or 5432, user=url.username, dbname=url.database,
                password=url.password)


def postgres_unreachable() -> str | None:
    """``None`` when the PostgreSQL server answers, else why not."""
    try:
        import psycopg

        with psycopg.connect(**_pg_params(), connect_timeout=3):
            return None
    except Exception as exc:  # noqa: BLE001 - any failure means "not here"
        return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"


def pg_create_schema() -> tuple[str, str]:
    import psycopg
    from sqlalchemy.engine import make_url

    schema = f"hub_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(**_pg_params(), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    # application_name tags the import's sessions, so that the ones of a
    # stopped import can be ended before the schema is dropped
    url = make_url(POSTGRES).update_query_dict({"options": f"-csearch_path={schema}", "application_name": schema})
    return schema, url.render_as_string(hide_password=False)


def pg_drop_schema(schema: str) -> None:
    import psycopg

    with psycopg.connect(**_pg_params(), autocommit=True) as conn:
        # a killed child's backend may still be running its last query
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                     "WHERE application_name = %s AND pid <> pg_backend_pid()", (schema,))
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


# ---------------------------------------------------------------------------
# the parent


def csv_for(workdir: Path, rows: int, seed: int, cache: dict) -> tuple[Path, float]:
    if rows in cache:
        return cache[rows]
    path = workdir / "data" / f"usage-{rows}-seed{seed}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    generate_csv(path, rows, seed)
    gen_s = time.perf_counter() - t
    print(f"generated {rows:,} rows in {gen_s:.2f}s: {path} ({path.stat().st_size / 1e6:.1f} MB)", flush=True)
    cache[rows] = (path, gen_s)
    return cache[rows]


def run_child(backend: str, rows: int, csv_path: Path, workdir: Path, timeout: float, progress: bool) -> dict:
    run_dir = workdir / f"run-{backend}-{rows}"
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    schema = None
    if backend == "sqlite":
        database = f"sqlite:///{run_dir / 'hub.db'}"
    else:
        why = postgres_unreachable()
        if why:
            print(f"skipping postgresql: not reachable at {POSTGRES} ({why})", flush=True)
            return {"backend": backend, "rows": rows, "skipped": f"not reachable: {why}"}
        schema, database = pg_create_schema()
    config_path = write_config(run_dir, csv_path, database)
    result_path = run_dir / "result.json"
    cmd = [sys.executable, os.path.abspath(__file__), "--child-config", str(config_path),
           "--child-rows", str(rows), "--child-result", str(result_path)]
    if progress:
        cmd.append("--progress")
    where = f" (schema {schema})" if schema else ""
    print(f"importing {rows:,} rows into {backend}{where} in a subprocess ...", flush=True)
    try:
        proc = subprocess.run(cmd, timeout=timeout)
        code = proc.returncode
    except subprocess.TimeoutExpired:
        code = None
    finally:
        if schema:
            pg_drop_schema(schema)
    if code is None:
        error = f"timed out after {timeout:.0f}s"
        try:
            got = json.loads(result_path.with_suffix(".progress.json").read_text())
            done = round(got["fraction"] * rows)
            error += (f" with {got['fraction']:.0%} of the file stored after {got['seconds']:.0f}s"
                      f" (~{done:,} rows, ~{done / got['seconds']:,.0f} rows/s)")
        except (OSError, ValueError, KeyError, ZeroDivisionError):
            error += " before its first batch was stored"
        return {"backend": backend, "rows": rows, "error": error}
    try:
        figures = json.loads(result_path.read_text())
    except (OSError, ValueError):
        figures = {"error": f"the child exited with {code} and wrote no result"}
    figures.setdefault("backend", backend)
    figures.setdefault("rows", rows)
    if code and "error" not in figures:
        figures["error"] = f"the child exited with {code}"
    return figures


def code_state() -> dict:
    """The commit of the hub's code measured, and its files changed since."""
    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "hub", "plugins", "schemas"],
                               capture_output=True, text=True, timeout=10).stdout.split("\n")
    except (OSError, subprocess.SubprocessError):
        return {}
    return {"commit": head, "changed": [line[3:] for line in dirty if line.strip()]}


def print_table(runs: list[dict]) -> None:
    head = ("backend", "rows", "import s", "rows/s", "CPU s", "main CPU s", "peak RSS MB", "RSS before MB", "re-pull s", "stored")
    body, notes = [], []
    for r in runs:
        if "skipped" in r or "error" in r:
            word = "SKIPPED" if "skipped" in r else "FAILED"
            body.append((r["backend"], f"{r['rows']:,}", word, "-", "-", "-", "-", "-", "-", "-"))
            notes.append(f"{word.lower()}: {r['backend']} at {r['rows']:,} rows: {r.get('skipped') or r.get('error')}")
            continue
        body.append((r["backend"], f"{r['rows']:,}", f"{r['seconds']:.2f}", f"{r['rows_per_s']:,}",
                     f"{r['cpu_s']:.2f}", f"{r['main_cpu_s']:.2f}",
                     f"{r['peak_rss_mb']:.1f}", f"{r['rss_before_pull_mb']:.1f}", f"{r['repull_s']:.3f}",
                     f"{r['stored']:,}"))
    widths = [max(len(str(row[i])) for row in (head, *body)) for i in range(len(head))]
    for n, row in enumerate((head, *body)):
        print("  ".join(str(v).rjust(w) if i else str(v).ljust(w) for i, (v, w) in enumerate(zip(row, widths))))
        if n == 0:
            print("  ".join("-" * w for w in widths))
    for note in notes:
        print(note)


def profile_main(args: argparse.Namespace, workdir: Path) -> int:
    """Import ``--rows`` rows into SQLite in this process under cProfile."""
    import cProfile
    import pstats

    csv_path, _ = csv_for(workdir, args.rows, args.seed, {})
    run_dir = workdir / f"profile-sqlite-{args.rows}"
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    config_path = write_config(run_dir, csv_path, f"sqlite:///{run_dir / 'hub.db'}")
    prof = cProfile.Profile()
    t = time.perf_counter()
    prof.enable()
    figures = run_import(config_path, args.rows)
    prof.disable()
    print(f"profiled run: {json.dumps(figures)}  (wall {time.perf_counter() - t:.1f}s under cProfile)")
    stats_path = run_dir / "import.prof"
    prof.dump_stats(str(stats_path))
    stats = pstats.Stats(prof).strip_dirs()
    stats.sort_stats("cumulative").print_stats(35)
    stats.sort_stats("tottime").print_stats(25)
    print(f"stats saved to {stats_path} (python3 -m pstats {stats_path})")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=1_000_000, help="rows in the CSV (default 1,000,000)")
    p.add_argument("--seed", type=int, default=20250301, help="seed of the generator")
    p.add_argument("--backends", default="sqlite,postgresql", help="comma-separated: sqlite, postgresql")
    p.add_argument("--scaling", action="store_true", help="also run SQLite at rows/5 and compare peak RSS")
    p.add_argument("--workdir", type=Path, help="keep the CSV, hub.toml and SQLite db here (default: a temp dir)")
    p.add_argument("--timeout", type=float, default=300,
                   help="seconds allowed per import subprocess (default 300); a run stopped there is FAILED")
    p.add_argument("--progress", action="store_true", help="print the import's progress on stderr")
    p.add_argument("--profile", action="store_true",
                   help="import --rows rows into SQLite in-process under cProfile and print the hotspots")
    p.add_argument("--child-config", help=argparse.SUPPRESS)
    p.add_argument("--child-rows", type=int, help=argparse.SUPPRESS)
    p.add_argument("--child-result", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.child_config:
        return child_main(args)

    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = [b for b in backends if b not in ("sqlite", "postgresql")]
    if unknown or args.rows < 5:
        p.error(f"unknown backend {unknown}" if unknown else "--rows must be at least 5")

    tmp = None
    if args.workdir:
        workdir = args.workdir.resolve()
        workdir.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="hub-bench-")
        workdir = Path(tmp.name)
    try:
        if args.profile:
            return profile_main(args, workdir)

        plan = [(b, args.rows) for b in backends]
        if args.scaling:
            small = args.rows // 5
            plan = [("sqlite", small)] + ([] if ("sqlite", args.rows) in plan else [("sqlite", args.rows)]) + plan
        state = code_state()  # before the runs: the code they measure
        cache: dict = {}
        runs = []
        for backend, rows in plan:
            csv_path, gen_s = csv_for(workdir, rows, args.seed, cache)
            figures = run_child(backend, rows, csv_path, workdir, args.timeout, args.progress)
            figures["generate_s"] = round(gen_s, 2)
            figures["csv_mb"] = round(csv_path.stat().st_size / 1e6, 1)
            runs.append(figures)
    finally:
        if tmp is not None:
            tmp.cleanup()

    print()
    print_table(runs)
    summary: dict = {"rows": args.rows, "seed": args.seed, "python": sys.version.split()[0], "code": state,
                     "target_sqlite_rows_per_s": TARGET_ROWS_PER_S, "runs": runs}
    sqlite_n = next((r for r in runs if r["backend"] == "sqlite" and r["rows"] == args.rows and "seconds" in r), None)
    if sqlite_n:
        rate = sqlite_n["rows_per_s"]
        meets = rate >= TARGET_ROWS_PER_S
        summary["sqlite_meets_target"] = meets
        verdict = "met" if meets else f"NOT met ({rate / TARGET_ROWS_PER_S:.0%} of it)"
        print(f"\nSQLite: {rate:,} rows/s against the target of {TARGET_ROWS_PER_S:,} rows/s: {verdict}")
    if args.scaling:
        small_run = next((r for r in runs if r["backend"] == "sqlite" and r["rows"] == args.rows // 5), None)
        if small_run and sqlite_n and "peak_rss_mb" in small_run and "seconds" in small_run:
            ratio = sqlite_n["peak_rss_mb"] / small_run["peak_rss_mb"]
            summary["scaling"] = {"rows": [small_run["rows"], sqlite_n["rows"]],
                                  "peak_rss_mb": [small_run["peak_rss_mb"], sqlite_n["peak_rss_mb"]],
                                  "rss_growth_during_pull_mb": [
                                      round(small_run["peak_rss_mb"] - small_run["rss_before_pull_mb"], 1),
                                      round(sqlite_n["peak_rss_mb"] - sqlite_n["rss_before_pull_mb"], 1)],
                                  "peak_rss_ratio": round(ratio, 2)}
            print(f"scaling (SQLite): peak RSS {small_run['peak_rss_mb']:.1f} MB at {small_run['rows']:,} rows, "
                  f"{sqlite_n['peak_rss_mb']:.1f} MB at {sqlite_n['rows']:,} rows "
                  f"(x{ratio:.2f} for x5 the rows: {'flat' if ratio < 1.25 else 'NOT flat'})")
    failed = [r for r in runs if "error" in r]
    summary["ok"] = not failed
    print("\nSUMMARY " + json.dumps(summary, separators=(",", ":")))
    for r in failed:
        print(f"FAILED: {r['backend']} at {r['rows']:,} rows: {r['error']}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
