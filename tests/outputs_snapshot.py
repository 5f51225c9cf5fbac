"""Write what the hub prints and stores for the demo month into a folder, to compare two versions of the hub.

A restructuring must leave the outputs byte-identical. Run this script with each version's ``hub`` on PATH
(or ``--hub PATH``) into two folders, then compare them::

    python3 tests/outputs_snapshot.py --out /tmp/before --hub /path/to/old/venv/bin/hub
    python3 tests/outputs_snapshot.py --out /tmp/after
    diff -r /tmp/before /tmp/after

It builds the demo workspace for a fixed month (``hub demo --period 2025-10``), then saves
``hub invoices list --json``, ``hub invoices show NUMBER --json`` for every invoice, ``hub rate --json`` and
``hub usage --json`` for every account, ``hub reconcile``, ``hub trace`` of one line, and every document the
demo rendered, with the instants deliveries were made masked. Issue dates are today's, so both runs must be made on the same day.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PERIOD = "2025-10"


def run(hub: str, *args: str, cwd: Path) -> str:
    done = subprocess.run([hub, *args], cwd=cwd, capture_output=True, text=True)
    return f"exit {done.returncode}\n--- stdout\n{done.stdout}--- stderr\n{done.stderr}"


def snapshot(hub: str, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (out / "demo.txt").write_text(run(hub, "demo", "--dir", "d", "--period", PERIOD, cwd=work))
        config = ["--config", "d/hub.toml"]
        listing = run(hub, *config, "invoices", "list", "--json", cwd=work)
        (out / "invoices-list.txt").write_text(listing)
        numbers = [i["number"] for i in json.loads(listing.split("--- stdout\n", 1)[1].split("--- stderr", 1)[0])]
        for number in numbers:
            (out / f"invoice-{number}.txt").write_text(run(hub, *config, "invoices", "show", number, "--json", cwd=work))
        (out / "rate.txt").write_text(run(hub, *config, "rate", "--period", PERIOD, "--json", cwd=work))
        (out / "rate-table.txt").write_text(run(hub, *config, "rate", "--period", PERIOD, cwd=work))
        (out / "usage.txt").write_text(run(hub, *config, "usage", "--period", PERIOD, "--json", cwd=work))
        (out / "reconcile.txt").write_text(run(hub, *config, "reconcile", "--period", PERIOD, cwd=work))
        (out / "trace.txt").write_text(run(hub, *config, "trace", "--period", PERIOD, "--account", "kiwi",
                                           "--product", "vcpu", cwd=work))
        (out / "credits.txt").write_text(run(hub, *config, "credits", "acme", "--json", cwd=work))
        deliveries = run(hub, *config, "deliveries", "--json", cwd=work)
        # the one instant that differs between two runs: when each e-mail went out
        (out / "deliveries.txt").write_text(re.sub(r'"delivered_at": "[^"]+"', '"delivered_at": "..."', deliveries))
        docs = work / "d" / "documents"
        if docs.is_dir():
            shutil.copytree(docs, out / "documents", dirs_exist_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--hub", default=shutil.which("hub") or "hub")
    args = parser.parse_args()
    snapshot(args.hub, args.out)
    print(f"wrote {sum(1 for _ in args.out.rglob('*'))} files into {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
