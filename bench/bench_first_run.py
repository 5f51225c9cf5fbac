#!/usr/bin/env python3
"""Benchmark: the first ``hub run`` of a store whose accounts start years
before their usage, against ``hub invoice`` for the month of usage.

Issue 23, defect 8: 100 accounts with ``since = 2020-01-01`` and a month of
usage (October 2026). At 2026-12-05 every month from January 2020 to
November 2026 is due (83 per account); the first run closes January 2020 to
September 2026 with nothing to bill at once (:mod:`hub.closing.empty`),
invoices October and closes November (nothing to bill after October's
usage, but after the first invoiced period: the normal path).

Per backend, each on a fresh store with the same usage (pulled through the
hub's real path, ``Hub.pull``):

1. ``invoice``: closing 2026-10 for every account, as ``hub invoice
   --period 2026-10`` does (``Hub.close``), timed;
2. ``first run``: the close job of ``hub run`` (``Hub.close_due``, what
   ``hub run --once`` closes with; rendering and delivering are other
   jobs) at ``--now``, timed;
3. with ``--cli``: the commands themselves, each in a subprocess on a
   fresh store with the usage pulled: ``hub invoice --period 2026-10`` and
   ``hub run --once`` (which pulls again, closes, renders what the
   configuration renders: nothing here, and rates the open period), wall
   time; on the machine's clock, so only once it is past ``--now``;
4. with ``--before``: the first run again on a third store without the
   set-based step (``hub.due.close_empty`` replaced by one returning
   nothing): every due period closed one by one, as before the fix.

It checks: the first run issues exactly the invoices ``hub invoice`` issued
(same numbers, accounts and totals), every account has 83 closings, of
which one with an invoice; else FAILED, exit 1. The target (the first run
at most twice ``hub invoice``) is reported, not failed.

    python3 bench/bench_first_run.py                          # SQLite and PostgreSQL
    python3 bench/bench_first_run.py --cli                    # and the commands, in subprocesses
    python3 bench/bench_first_run.py --backends sqlite --before
    python3 bench/bench_first_run.py --accounts 1000 --records 40

See bench/README.md and docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "bench"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from bench_import import code_state, pg_create_schema, pg_drop_schema, postgres_unreachable  # noqa: E402

PERIOD = "2026-10"
SINCE = "2020-01-01"
#: the clock of both closes: November 2026 has ended plus the grace everywhere
NOW = "2026-12-05T00:00:00Z"
ISSUE_DATE = "2026-12-05"
#: usage lies inside October in every time zone below
DATA_FROM = int(datetime(2026, 10, 2, tzinfo=timezone.utc).timestamp())
DATA_TO = int(datetime(2026, 10, 30, tzinfo=timezone.utc).timestamp())
ZONES = ("Europe/Berlin", "Europe/Paris", "America/New_York", "Asia/Tokyo", "UTC")

CONFIG = """# written by bench/bench_first_run.py
include = ["accounts.toml"]

[hub]
database = "{database}"

[seller]
name = "Nimbus Cloud GmbH"
country = "DE"
vat_id = "DE136695976"
email = "billing@nimbus.example"

[tax.rates]
DE = "19"
FR = "20"

[invoicing]
schedule = "monthly"
grace = "1d"
payment_terms_days = 30
number_format = "INV-{{year}}-{{seq:06d}}"

[[meters]]
name = "compute.vcpu"
aggregation = "time_weighted"
unit = "vCPU"

[[meters]]
name = "compute.memory"
aggregation = "time_weighted"
unit = "GiB"

[[meters]]
name = "network.egress"
aggregation = "sum"
unit = "GB"

[[products]]
name = "vcpu"
description = "Virtual CPU"
meter = "compute.vcpu"
per = "second"
price = {{ model = "per_unit", unit_price = "0.0000115" }}

[[products]]
name = "memory"
description = "Memory"
meter = "compute.memory"
per = "hour"
price = {{ model = "graduated", tiers = [{{ up_to = "1000", unit_price = "0.005" }}, {{ unit_price = "0.004" }}] }}

[[products]]
name = "egress"
description = "Internet egress"
meter = "network.egress"
price = {{ model = "per_unit", unit_price = "0.08" }}

[[sources]]
name = "usage"
type = "csv"
path = "usage/*.csv"
"""


def generate(run_dir: Path, accounts: int, records: int, seed: int) -> int:
    """Write the usage CSV and ``accounts.toml`` (included by each store's
    hub.toml); the number of usage records."""
    rng = random.Random(seed)
    (run_dir / "usage").mkdir(parents=True, exist_ok=True)
    lines = []
    acc = []
    n = 0
    for i in range(accounts):
        aid = f"acct-{i:04d}"
        country = "FR" if i % 4 == 1 else "DE"
        acc += ["[[accounts]]", f'id = "{aid}"', f'name = "Customer {i}"', f'country = "{country}"',
                f'timezone = "{ZONES[i % len(ZONES)]}"', f'since = "{SINCE}"', ""]
        for k in range(records):
            meter, qty = rng.choice((("compute.vcpu", rng.choice(("1", "2", "4"))),
                                     ("compute.memory", rng.choice(("2", "4", "8"))),
                                     ("network.egress", f"{rng.randint(1, 5000) / 100}")))
            start = DATA_FROM + rng.randrange(DATA_TO - DATA_FROM - 86400)
            end = start if meter == "network.egress" else start + rng.randint(60, 86400)
            n += 1
            lines.append(f"r{n:08d},{aid},{aid}/res-{k % 5},{meter},{_iso(start)},{_iso(end)},{qty}")
    (run_dir / "usage" / "october.csv").write_text(
        "record_id,account,resource_id,meter,start,end,quantity\n" + "\n".join(lines) + "\n", encoding="utf-8")
    (run_dir / "accounts.toml").write_text("\n".join(acc), encoding="utf-8")
    return n


def _iso(s: int) -> str:
    return datetime.fromtimestamp(s, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _store(run_dir: Path, backend: str, name: str, schemas: list[str]) -> Path:
    """A workspace of its own (hub.toml, the shared usage and accounts) on a fresh store."""
    ws = run_dir / name
    ws.mkdir()
    (ws / "usage").symlink_to(run_dir / "usage")
    if backend == "sqlite":
        database = f"sqlite:///{ws / 'hub.db'}"
    else:
        schema, database = pg_create_schema()
        schemas.append(schema)
    text = CONFIG.format(database=database)
    (ws / "hub.toml").write_text(text, encoding="utf-8")
    shutil.copy(run_dir / "accounts.toml", ws / "accounts.toml")
    return ws / "hub.toml"


def _open_and_pull(config_path: Path) -> Any:
    from hub.app import Hub

    hub = Hub.open(config_path)
    results = hub.pull()
    if any(r.failure for r in results):
        raise SystemExit(f"FAILED: the pull of {config_path}: {[r.failure for r in results]}")
    return hub


def _issued(engine: Any) -> list[tuple[str, str, str, str]]:
    from sqlalchemy import text

    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(
            "SELECT number, account, period, total FROM invoices WHERE number IS NOT NULL ORDER BY number"))]


def _closings(engine: Any) -> dict[str, tuple[int, int]]:
    from sqlalchemy import text

    with engine.connect() as conn:
        return {a: (int(n), int(i)) for a, n, i in conn.execute(text(
            "SELECT account, COUNT(*), COUNT(invoice_id) FROM period_closings GROUP BY account"))}


def run_backend(backend: str, run_dir: Path, args: argparse.Namespace, schemas: list[str]) -> dict:
    from datetime import date

    from hub import due
    from hub.periods import parse_period

    now = datetime.fromisoformat(NOW.replace("Z", "+00:00"))
    out: dict[str, Any] = {"backend": backend}
    problems: list[str] = []

    hub = _open_and_pull(_store(run_dir, backend, f"{backend}-invoice", schemas))
    t = time.perf_counter()
    closings = hub.close(parse_period(PERIOD), issue_date=date.fromisoformat(ISSUE_DATE), now=now)
    out["invoice_s"] = time.perf_counter() - t
    invoiced = _issued(hub.engine)
    if len(invoiced) != args.accounts or any(c.outcome != "issued" for c in closings):
        problems.append(f"hub invoice issued {len(invoiced)} invoices for {args.accounts} accounts")
    hub.engine.dispose()

    runs = [("first_run", False)] + ([("before", True)] if args.before else [])
    for label, without_step in runs:
        hub = _open_and_pull(_store(run_dir, backend, f"{backend}-{label}", schemas))
        real = due.close_empty
        if without_step:
            due.close_empty = lambda *a, **kw: []  # type: ignore[assignment]
        try:
            t = time.perf_counter()
            done = hub.close_due(now)
            out[f"{label}_s"] = time.perf_counter() - t
        finally:
            due.close_empty = real  # type: ignore[assignment]
        issued = _issued(hub.engine)
        if [(a, p, total) for _n, a, p, total in issued] != [(a, p, total) for _n, a, p, total in invoiced]:
            problems.append(f"{label}: its invoices differ from hub invoice's")
        closed = _closings(hub.engine)
        if closed != {f"acct-{i:04d}": (83, 1) for i in range(args.accounts)}:
            problems.append(f"{label}: closings per account {sorted(set(closed.values()))}, not 83 with one invoice")
        out[f"{label}_outcomes"] = {o: sum(1 for c in done if c.outcome == o) for o in sorted({c.outcome for c in done})}
        hub.engine.dispose()
    if args.cli:
        if datetime.now(timezone.utc) < now:
            problems.append(f"--cli: the clock is before {NOW}: November is not due yet")
        else:
            for label, command in (("cli_invoice", ["invoice", "--period", PERIOD]), ("cli_run", ["run", "--once"])):
                config_path = _store(run_dir, backend, f"{backend}-{label}", schemas)
                _open_and_pull(config_path).engine.dispose()
                t = time.perf_counter()
                done_cli = subprocess.run([sys.executable, "-c", "from hub.cli.main import main; main()", "--config", str(config_path),
                                           *command], cwd=ROOT, capture_output=True, text=True)
                out[f"{label}_s"] = time.perf_counter() - t
                if done_cli.returncode != 0:
                    problems.append(f"hub {' '.join(command)} exited {done_cli.returncode}: "
                                    f"{(done_cli.stderr or done_cli.stdout).strip()[-300:]}")
            if "cli_run_s" in out:
                out["cli_ratio"] = out["cli_run_s"] / out["cli_invoice_s"]
    out["ratio"] = out["first_run_s"] / out["invoice_s"]
    out["problems"] = problems
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=100)
    parser.add_argument("--records", type=int, default=60, help="usage records per account in October")
    parser.add_argument("--seed", type=int, default=23)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--before", action="store_true",
                        help="also time the first run without the set-based step (minutes on SQLite)")
    parser.add_argument("--cli", action="store_true",
                        help="also time `hub invoice --period` and `hub run --once` themselves (the machine's clock)")
    parser.add_argument("--workdir", type=Path, help="keep the workspaces here (default: a temporary directory)")
    args = parser.parse_args(argv)

    run_dir = args.workdir or Path(tempfile.mkdtemp(prefix="hub-first-run-"))
    run_dir.mkdir(parents=True, exist_ok=True)
    records = generate(run_dir, args.accounts, args.records, args.seed)
    print(f"{args.accounts} accounts since {SINCE}, {records:,} usage records in {PERIOD}; now {NOW}")
    results, schemas = [], []
    try:
        for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
            if backend == "postgresql" and (why := postgres_unreachable()):
                print(f"postgresql: skipped ({why})")
                continue
            results.append(run_backend(backend, run_dir, args, schemas))
    finally:
        for schema in schemas:
            pg_drop_schema(schema)
        if args.workdir is None:
            shutil.rmtree(run_dir, ignore_errors=True)
    ok = True
    print(f"{'backend':<11} {'invoice s':>10} {'first run s':>12} {'ratio':>6} {'before s':>9}  first run's closings")
    for r in results:
        before = f"{r['before_s']:9.2f}" if "before_s" in r else f"{'-':>9}"
        print(f"{r['backend']:<11} {r['invoice_s']:10.2f} {r['first_run_s']:12.2f} {r['ratio']:6.2f} {before}  "
              f"{r['first_run_outcomes']}")
        if "cli_run_s" in r:
            print(f"{'':<11} hub invoice --period {PERIOD}: {r['cli_invoice_s']:.2f} s, hub run --once: "
                  f"{r['cli_run_s']:.2f} s (ratio {r['cli_ratio']:.2f})")
        if r["ratio"] > 2:
            print(f"  {r['backend']}: target missed: the first run takes {r['ratio']:.2f} x hub invoice (at most 2)")
        for p in r["problems"]:
            print(f"  {r['backend']}: {p}")
            ok = False
    print("SUMMARY " + json.dumps({"accounts": args.accounts, "records": records, "now": NOW,
                                   "results": results, **code_state()}, default=str))
    if not ok:
        print("FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
