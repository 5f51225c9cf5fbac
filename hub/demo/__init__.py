"""The bundled demo: a small cloud's configuration and a month of its usage.

:func:`build_workspace` copies the demo configuration into a directory and
writes the usage of one month as CSV, generated deterministically (the same
month always gives the same file), so ``hub demo`` has something real to
pull, rate and invoice.
"""

from __future__ import annotations

import csv
import random
import shutil
from datetime import date, datetime, timedelta, timezone
from importlib import resources
from pathlib import Path

from hub.periods import Period, parse_period

#: (account, VMs, containers per day, batch jobs per day)
_FLEET = (
    ("acme", 3, 20, 0),
    ("bonjour", 1, 6, 40),
    ("kiwi", 2, 0, 0),
    ("initech-web", 2, 30, 0),
    ("initech-data", 1, 10, 150),
)


def last_month(today: date) -> Period:
    """The calendar month before ``today``'s."""
    first = today.replace(day=1) - timedelta(days=1)
    return parse_period(f"{first:%Y-%m}")


def build_workspace(directory: Path, period: Period) -> Path:
    """Write the demo hub.toml, config/ and ``usage/<month>.csv`` into
    ``directory``; returns the hub.toml path. Existing files are replaced."""
    directory.mkdir(parents=True, exist_ok=True)
    root = resources.files("hub.demo")
    for rel in ("hub.toml", "config/catalog.toml", "config/accounts.toml"):
        target = directory / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        with resources.as_file(root.joinpath(*rel.split("/"))) as src:
            shutil.copyfile(src, target)
    usage = directory / "usage" / f"{period}.csv"
    usage.parent.mkdir(parents=True, exist_ok=True)
    write_usage(usage, period)
    return directory / "hub.toml"


def _ts(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def write_usage(path: Path, period: Period) -> int:
    """Write the demo usage of ``period`` to ``path``; returns the row count."""
    rng = random.Random(f"hub-demo-{period}")
    p0 = datetime(period.start.year, period.start.month, period.start.day, tzinfo=timezone.utc)
    p1 = datetime(period.end.year, period.end.month, period.end.day, tzinfo=timezone.utc)
    days = (period.end - period.start).days
    rows: list[list[str]] = []

    def add(rid: str, account: str, resource: str, meter: str, start: datetime, end: datetime | None,
            qty: str, kind: str) -> None:
        rows.append([rid, account, resource, meter, _ts(start), _ts(end) if end else "", qty, kind])

    for account, vms, containers, jobs in _FLEET:
        for v in range(vms):
            vm = f"{account}-vm-{v + 1}"
            # VMs start a little before or during the month; some stop in it.
            start = p0 - timedelta(days=2) if v == 0 else p0 + timedelta(seconds=rng.randrange(0, days * 86400 // 2))
            end = None if v == 0 else start + timedelta(seconds=rng.randrange(3600, 10 * 86400))
            end = end if end is None or end < p1 else p1 - timedelta(seconds=rng.randrange(1, 3600))
            vcpu, mem = rng.choice([(2, "4"), (4, "8"), (8, "32")])
            add(f"{vm}-cpu", account, vm, "compute.vcpu", start, end, str(vcpu), "vm")
            add(f"{vm}-mem", account, vm, "compute.memory", start, end, mem, "vm")
            add(f"{vm}-disk", account, f"{vm}-disk", "storage.block", start, end, str(rng.choice([20, 50, 100])), "volume")
            add(f"{vm}-egress", account, vm, "network.egress", start + timedelta(hours=1),
                start + timedelta(hours=1), f"{rng.randrange(1, 400)}.{rng.randrange(0, 1000):03d}", "vm")
        for d in range(days):
            day = p0 + timedelta(days=d)
            for c in range(containers):
                pod = f"{account}-pod-{d:02d}-{c:03d}"
                start = day + timedelta(seconds=rng.randrange(0, 86400))
                end = start + timedelta(seconds=rng.randrange(30, 4 * 3600))
                add(f"{pod}-cpu", account, pod, "compute.vcpu", start, end, rng.choice(["0.25", "0.5", "1", "2"]), "pod")
                add(f"{pod}-mem", account, pod, "compute.memory", start, end, rng.choice(["0.25", "0.5", "1"]), "pod")
            if jobs:
                start = day + timedelta(hours=2)
                add(f"{account}-jobs-{d:02d}", account, f"{account}-batch", "batch.jobs", start, start,
                    str(jobs + rng.randrange(0, jobs // 2 + 1)), "batch")
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["record_id", "account", "resource_id", "meter", "start", "end", "quantity", "kind"])
        writer.writerows(rows)
    return len(rows)
