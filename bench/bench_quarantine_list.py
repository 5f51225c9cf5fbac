"""Benchmark: ``hub quarantine list`` on a store of many open quarantine
entries (issue 24, item 10: 50 s at 100,000 of them, when it read and
printed them all).

It writes a hub.toml in ``--workdir`` on ``--database`` (default: SQLite
there; a PostgreSQL URL works too, its tables must be empty), stores
``--entries`` open entries (one source, ``--files`` files, their lines in
order) straight into the quarantine table, then times, ``--repeat`` times
each (the median counts), ``hub quarantine list`` run in-process through
click's runner (its output captured, not printed): the default page, a
``--limit 1000`` page and ``--json --limit 50``; with ``--every``, also
``--all`` (every entry as a table: what the command used to do)::

    python3 bench/bench_quarantine_list.py --workdir /tmp/bq
    python3 bench/bench_quarantine_list.py --workdir /tmp/bq-pg \\
        --database 'postgresql+psycopg://postgres@127.0.0.1:5432/test?options=-csearch_path%3Dbench_q'
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CONFIG = """[hub]
database = "{database}"

[[meters]]
name = "compute.vcpu"
aggregation = "time_weighted"

[[accounts]]
id = "acme"
name = "ACME GmbH"
country = "DE"

[[sources]]
name = "files"
type = "csv"
path = "usage/*.csv"
"""


def _fill(config_path: Path, entries: int, files: int) -> float:
    from sqlalchemy import func, insert, select

    from hub.app import Hub
    from hub.store.tables import quarantine

    hub = Hub.open(config_path)
    engine = hub.engine
    with engine.begin() as conn:
        if conn.scalar(select(func.count()).select_from(quarantine)):
            return 0.0
    started = time.perf_counter()
    now = datetime.now(timezone.utc)
    per_file = -(-entries // files)
    rows = []
    for i in range(entries):
        f, line = divmod(i, per_file)
        rows.append({"source": "files", "location": f"usage/part-{f:04d}.csv", "line": line + 2,
                     "raw": f"r{i},acme,vm-{i},compute.vcpu,2026-10-01T10:00:00Z,,-{i}",
                     "errors": json.dumps([f"quantity: '-{i}' is negative"]), "record_id": f"r{i}",
                     "status": "open", "resolution": None, "created_at": now, "resolved_at": None})
    with engine.begin() as conn:
        for at in range(0, len(rows), 10_000):
            conn.execute(insert(quarantine), rows[at:at + 10_000])
    engine.dispose()
    return time.perf_counter() - started


def _timed(config_path: Path, args: list[str], repeat: int) -> tuple[float, str]:
    from click.testing import CliRunner

    from hub.cli.main import register_commands

    times, out = [], ""
    for _ in range(repeat):
        started = time.perf_counter()
        result = CliRunner().invoke(register_commands(), ["--config", str(config_path), "quarantine", "list", *args],
                                    catch_exceptions=False)
        times.append(time.perf_counter() - started)
        assert result.exit_code == 0, result.output
        out = result.stdout
    return statistics.median(times), out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--database", help="a SQLAlchemy URL (default: SQLite in --workdir)")
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--every", action="store_true", help="also time --all (every entry as a table)")
    args = parser.parse_args(argv)

    args.workdir.mkdir(parents=True, exist_ok=True)
    config_path = args.workdir / "hub.toml"
    database = args.database or f"sqlite:///{args.workdir / 'hub.db'}"
    config_path.write_text(CONFIG.format(database=database))
    filled = _fill(config_path, args.entries, args.files)
    print(f"{args.entries:,} open entries ({database.split(':')[0]}), stored in {filled:.1f}s")
    cases = [("hub quarantine list", []), ("hub quarantine list --limit 1000", ["--limit", "1000"]),
             ("hub quarantine list --json --limit 50", ["--json", "--limit", "50"])]
    if args.every:
        cases.append(("hub quarantine list --all", ["--all"]))
    for name, extra in cases:
        seconds, out = _timed(config_path, extra, 1 if extra == ["--all"] else args.repeat)
        last = out.rstrip("\n").rsplit("\n", 2)[-2:] if not extra[:1] == ["--json"] else ["(JSON)"]
        print(f"{name}: {seconds:.3f}s  [{' / '.join(last)}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
