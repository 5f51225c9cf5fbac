"""Benchmark: what ``hub run``'s close job reads every minute to find the
due periods (:func:`hub.scheduler.close_due` before it closes anything).

Run it on a store with usage, such as the one ``bench_rating.py
--workdir DIR`` leaves (5,000,000 records, 10,000 accounts)::

    python3 bench/bench_close_due.py --config DIR/rating-5000000-a10000-s20250301/hub-sqlite.toml

It times, ``--repeat`` times each (the median counts): the earliest usage
of every root account (:func:`~hub.scheduler.earliest_usage`), the closed
periods (:func:`~hub.scheduler.closed_periods`) and the due periods of
every root account from those (:func:`~hub.scheduler.due_periods`), at
``--now``. Nothing is closed or written (opening the store migrates it).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _timed(fn: Callable[[], Any], repeat: int) -> tuple[Any, float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - started)
    return out, statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, required=True, help="the hub.toml of a store with usage")
    parser.add_argument("--now", default="2025-04-02T00:00:00Z", help="the clock (RFC 3339; default %(default)s)")
    parser.add_argument("--repeat", type=int, default=3, help="timings of each step; the median counts")
    args = parser.parse_args(argv)

    from hub.app import Hub
    from hub.due import due_periods
    from hub.store.queries import closed_periods, earliest_usage

    now = datetime.fromisoformat(args.now.replace("Z", "+00:00")).astimezone(timezone.utc)
    started = time.perf_counter()
    hub = Hub.open(args.config)
    config, engine = hub.config, hub.engine
    print(f"opened {args.config} in {time.perf_counter() - started:.1f}s ({engine.dialect.name}, migrations included)")
    roots = config.tree.roots()
    earliest, t_earliest = _timed(lambda: earliest_usage(engine, roots), args.repeat)
    closed, t_closed = _timed(lambda: closed_periods(engine), args.repeat)
    due, t_due = _timed(lambda: sum(len(due_periods(engine, config, r, now, earliest_start=earliest.get(r),
                                                    closed=closed.get(r, ()))) for r in roots), args.repeat)
    print(f"earliest usage of {len(roots):,} accounts: {t_earliest:.3f}s ({len(earliest):,} with usage)")
    print(f"closed periods: {t_closed:.3f}s ({sum(map(len, closed.values())):,})")
    print(f"due periods at {args.now}: {t_due:.3f}s ({due:,} due)")
    engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
