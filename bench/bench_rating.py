#!/usr/bin/env python3
"""Benchmark: rating a month of usage with the hub, against DuckDB on Parquet.

Generates a deterministic (seeded) month of N usage intervals (default
5,000,000; 10,000 Zipf-sized accounts, 6 products priced per second, 2 of
them with graduated tiers), loads them straight into each store's
``usage_records`` (untimed), then times, each in its own subprocess so that
each peak RSS is its own:

(a) a full re-rate of 2025-03 through the hub's API (``hub rate --period
    2025-03``'s path: ``Hub.open`` -> ``parse_period`` -> ``rating.rate``),
    on SQLite and on PostgreSQL;
(b) the current charges of one account (``rate(..., accounts=[one])``),
    median and p95 over 100 accounts spread across sizes;
(c) the reference: the same computation in DuckDB SQL over a Parquet file
    of the same records, in exact DECIMAL/HUGEINT arithmetic.

Every method's invoice lines are checksummed and must agree to the cent,
otherwise the run is FAILED (exit 1).

    python3 bench/bench_rating.py --records 50000                 # a quick run
    python3 bench/bench_rating.py                                  # 5,000,000 records
    python3 bench/bench_rating.py --workdir /tmp/rb --skip-generate --backends sqlite

See bench/README.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

# the PostgreSQL schema helpers, the RSS probe and the code state of the
# import benchmark (this directory is on sys.path when a script in it runs)
from bench_import import POSTGRES, _maxrss_mb, code_state, pg_create_schema, pg_drop_schema, postgres_unreachable

# --- the targets -------------------------------------------------------------
TARGET_PG_RATIO = 3.0  # full re-rate on PostgreSQL within 3x of DuckDB
TARGET_SQLITE_RATIO = 10.0  # ... on SQLite within 10x
TARGET_ONE_ACCOUNT_MS = 20.0  # one account's current charges
TARGET_RSS_MB = 500.0  # peak memory of any method

# --- the month --------------------------------------------------------------
PERIOD = "2025-03"
P0 = int(datetime(2025, 3, 1, tzinfo=timezone.utc).timestamp())
P1 = int(datetime(2025, 4, 1, tzinfo=timezone.utc).timestamp())
MONTH_S = P1 - P0
DAY = 86400
#: the clock of every rating: the day after the month, so running records
#: are billed to the period's end (as ``hub rate`` would bill them now)
NOW = datetime(2025, 4, 2, tzinfo=timezone.utc)
RECEIVED_S = int(NOW.timestamp())
SOURCE = "bench"

# --- the catalog: meter, unit, product, price (decimals as strings) ----------
#: (product, meter, unit, tiers): tiers are (up_to or None, unit_price) per
#: second; one tier without up_to is a per_unit price
PRODUCTS = (
    ("vcpu", "compute.vcpu", "vCPU", (("50000000", "0.0000115"), ("500000000", "0.0000098"), (None, "0.0000081"))),
    ("memory", "compute.memory", "GiB", (("200000000", "0.0000015"), (None, "0.00000125"))),
    ("gpu", "compute.gpu", "GPU", ((None, "0.00055"),)),
    ("block", "storage.block", "GB", ((None, "0.0000000385"),)),
    ("ip", "network.ip", "IP", ((None, "0.0000014"),)),
    ("lb", "network.lb", "LB", ((None, "0.0000069"),)),
)

# --- the data: kinds of resources -------------------------------------------
# name, share of runs, resources in the pool, meters (a pod or VM run is one
# vCPU and one memory record with the same interval), long-lived?,
# duration: median s, log-normal sigma, min s, max s
KINDS = (
    ("pod", 0.815, 150_000, ("compute.vcpu", "compute.memory"), False, (67, 1.7, 1, 7 * DAY)),
    ("vm", 0.035, 20_000, ("compute.vcpu", "compute.memory"), True, (2 * DAY, 1.2, 3600, 40 * DAY)),
    ("gpu", 0.040, 5_000, ("compute.gpu",), False, (5400, 1.0, 60, 3 * DAY)),
    ("volume", 0.060, 15_000, ("storage.block",), True, (10 * DAY, 1.0, 3600, 60 * DAY)),
    ("ip", 0.030, 6_000, ("network.ip",), True, (7 * DAY, 1.2, 3600, 60 * DAY)),
    ("lb", 0.020, 4_000, ("network.lb",), True, (7 * DAY, 1.2, 3600, 60 * DAY)),
)
# where a run lies, per run: (short-lived kinds, long-lived kinds)
PLACES = ("outside", "cross_start", "cross_end", "whole_month", "running", "inside")
PLACE_P = {False: (0.004, 0.011, 0.002, 0.0, 0.004), True: (0.006, 0.04, 0.01, 0.10, 0.11)}
ZIPF_S = 1.0  # account i gets resources in proportion to 1 / (i + 1)^s
CHUNK = 1 << 18  # records generated (and loaded) per batch: flat memory
NANO = 10**9
#: the hub's methods, run on each backend
HUB_METHODS = {"hub-full": "full re-rate from the records", "hub-rollups": "re-rate, usage unchanged",
               "hub-late": "re-rate after a late pull", "hub-account": "one account"}
#: the full re-rates, each held to the ratio target
FULL_METHODS = ("hub-full", "hub-rollups", "hub-late")
#: the share of the records that arrive late in ``hub-late`` (half of them
#: new, half changed: stored running with another quantity before)
LATE_SHARE = 0.01
LATE_BATCH = 50_000  # records per batch of the late pull

COLUMNS = ("source", "record_id", "account", "resource_id", "meter", "start_s", "end_s", "quantity",
           "qty_units", "qty_nanos", "unit", "labels", "origin", "version", "received_s")
_FINGERPRINT = ("SELECT COUNT(*), SUM(start_s), SUM(COALESCE(end_s, 0)), COUNT(end_s), SUM(qty_units), "
                "SUM(qty_nanos) FROM usage_records")


def account_id(i: int) -> str:
    return f"acct-{i:05d}"


# ---------------------------------------------------------------------------
# the data


def _quantities(rng, kind: str, meter: str, n: int, vm_vcpu=None):  # type: ignore[no-untyped-def]
    """Quantities in 1e-9 units (int64) of ``n`` records of ``kind`` on ``meter``."""
    import numpy as np

    def pick(values: tuple[str, ...], p: tuple[float, ...] | None = None):  # type: ignore[no-untyped-def]
        nanos = np.array([int(Decimal(v) * NANO) for v in values], dtype=np.int64)
        return nanos[rng.choice(len(values), size=n, p=p)]

    if kind == "pod" and meter == "compute.vcpu":
        return pick(("0.1", "0.25", "0.5", "1", "2", "4"), (0.15, 0.25, 0.25, 0.2, 0.1, 0.05))
    if kind == "pod":  # GiB; 0.931322575 GiB is 10^9 bytes (9 decimals)
        return pick(("0.125", "0.25", "0.5", "0.931322575", "1", "2", "4", "8"))
    if kind == "vm" and meter == "compute.vcpu":
        return pick(("1", "2", "4", "8", "16", "32", "64"), (0.2, 0.25, 0.2, 0.15, 0.1, 0.06, 0.04))
    if kind == "vm":  # 2, 4 or 8 GiB per vCPU of the same run
        return vm_vcpu * rng.choice(np.array([2, 4, 8], dtype=np.int64), size=n)
    if kind == "gpu":
        return pick(("1", "2", "4", "8"), (0.5, 0.25, 0.15, 0.1))
    if kind == "volume":  # 10 to 2000 GB, 3 decimals, mostly small
        return (10_000 + (1_990_000 * rng.random(n) ** 3).astype(np.int64)) * 1_000_000
    return np.full(n, NANO, dtype=np.int64)  # one IP, one load balancer


def _intervals(rng, long_lived: bool, duration: tuple, n: int):  # type: ignore[no-untyped-def]
    """``(start, end, end_is_null)`` of ``n`` runs, placed around the month
    by :data:`PLACE_P` (inside, still running, crossing 1 March or 1 April,
    covering the whole month, entirely outside)."""
    import numpy as np

    median, sigma, lo, hi = duration
    dur = np.clip(np.rint(median * np.exp(sigma * rng.standard_normal(n))), lo, hi).astype(np.int64)
    p = PLACE_P[long_lived]
    place = rng.choice(len(PLACES), size=n, p=(*p, 1.0 - sum(p)))
    u = rng.random(n)
    start = np.empty(n, dtype=np.int64)
    end = np.empty(n, dtype=np.int64)
    null = np.zeros(n, dtype=bool)

    m = place == PLACES.index("inside")
    d = np.minimum(dur[m], MONTH_S - 1)
    start[m] = P0 + (u[m] * (MONTH_S - d + 1)).astype(np.int64)
    end[m] = start[m] + d

    m = place == PLACES.index("running")  # short-lived: started in the last two days
    window = MONTH_S if long_lived else 2 * DAY
    start[m] = P1 - 1 - (u[m] * window).astype(np.int64)
    end[m] = 0
    null[m] = True

    for name, edge in (("cross_start", P0), ("cross_end", P1)):
        m = place == PLACES.index(name)
        d = np.maximum(dur[m], 2)
        start[m] = edge - 1 - (u[m] * (d - 1)).astype(np.int64)  # 1 .. d-1 seconds before the edge
        end[m] = start[m] + d

    m = place == PLACES.index("whole_month")
    k = int(m.sum())
    start[m] = P0 - 1 - (u[m] * 20 * DAY).astype(np.int64)
    still = rng.random(k) < 0.6
    end[m] = np.where(still, 0, P1 + (rng.random(k) * 10 * DAY).astype(np.int64))
    null[m] = still

    m = place == PLACES.index("outside")  # in February or in April; some touch the month's edges
    k = int(m.sum())
    before = rng.random(k) < 0.5
    offset = (rng.random(k) * 10 * DAY).astype(np.int64)
    s = np.where(before, P0 - offset - dur[m], P1 + offset)
    start[m] = s
    end[m] = s + dur[m]
    null[m] = ~before & (rng.random(k) < 0.2)
    end[null] = 0
    return start, end, null


def _chunk(rng, first: int, size: int, pools, owner, res_names, acc_names):  # type: ignore[no-untyped-def]
    """``size`` records numbered from ``first``: the index of each record's
    account, and a pyarrow table.

    :param pools: per kind, ``(first resource, number of resources)``.
    :param owner: each resource's account index.
    """
    import numpy as np
    import pyarrow as pa

    from hub.quantities import split_quantity

    shares = np.array([k[1] for k in KINDS])
    runs = int(size / 1.8) + 64  # a run is 1 or 2 records: enough runs to fill the chunk
    kind_of_run = rng.choice(len(KINDS), size=runs, p=shares / shares.sum())
    parts = []
    for ki, (kind, _share, _pool, meters, long_lived, duration) in enumerate(KINDS):
        idx = np.flatnonzero(kind_of_run == ki)
        n = len(idx)
        res = pools[ki][0] + (rng.random(n) * pools[ki][1]).astype(np.int64)
        start, end, null = _intervals(rng, long_lived, duration, n)
        vcpu = None
        for mi, meter in enumerate(meters):
            q = _quantities(rng, kind, meter, n, vcpu)
            vcpu = q
            # order: by run, then meter (a pod's two records are adjacent)
            parts.append((idx * 2 + mi, res, meter, start, end, null, q))
    order_key = np.concatenate([p[0] for p in parts])
    order = np.argsort(order_key, kind="stable")[:size]
    res = np.concatenate([p[1] for p in parts])[order]
    meter_names = np.array([m for p in parts for m in [p[2]] * len(p[0])], dtype=object)[order]
    start = np.concatenate([p[3] for p in parts])[order]
    end = np.concatenate([p[4] for p in parts])[order]
    null = np.concatenate([p[5] for p in parts])[order]
    q = np.concatenate([p[6] for p in parts])[order]
    if len(order) < size:  # pragma: no cover - runs is sized with a wide margin
        raise RuntimeError("not enough runs generated for the chunk")
    values, inverse = np.unique(q, return_inverse=True)
    texts, units, nanos = zip(*(split_quantity(Decimal(int(v)) / NANO) for v in values))
    acc = owner[res]
    return acc, pa.table({
        "record_id": pa.array([f"r{i:010d}" for i in range(first, first + size)], pa.string()),
        "account": pa.array(acc_names[acc], pa.string()),
        "resource_id": pa.array(res_names[res], pa.string()),
        "meter": pa.array(meter_names, pa.string()),
        "start_s": pa.array(start, pa.int64()),
        "end_s": pa.array(end, pa.int64(), mask=null),
        "quantity": pa.array(np.array(texts, dtype=object)[inverse], pa.string()),
        "qty_units": pa.array(np.array(units, dtype=np.int64)[inverse], pa.int64()),
        "qty_nanos": pa.array(np.array(nanos, dtype=np.int64)[inverse], pa.int64()),
    })


def generate(path: Path, records: int, accounts: int, seed: int) -> dict:
    """Write ``records`` usage records to the Parquet file ``path``; returns
    the data's description (counts, fingerprint, records per account).

    Deterministic for ``(records, accounts, seed)`` with a given numpy; the
    first records of a larger set are those of a smaller one."""
    import numpy as np
    import pyarrow.parquet as pq

    rng = np.random.default_rng([seed, 0])
    acc_names = np.array([account_id(i) for i in range(accounts)], dtype=object)
    weights = 1.0 / np.arange(1, accounts + 1) ** ZIPF_S
    # resources of every kind in one pool; account i owns pod workload i (so
    # every account has usage), the others go to accounts by Zipf weight
    total = sum(k[2] for k in KINDS)
    owner = rng.choice(accounts, size=total, p=weights / weights.sum())
    owner[:min(accounts, KINDS[0][2])] = np.arange(min(accounts, KINDS[0][2]))
    res_names, offsets, first = [], [], 0
    for kind, _share, pool, *_rest in KINDS:
        res_names += [f"{acc_names[owner[first + r]]}/{kind}-{first + r:06d}" for r in range(pool)]
        offsets.append((first, pool))
        first += pool
    res_names_a = np.array(res_names, dtype=object)

    stats = dict.fromkeys(("running", "cross_start", "cross_end", "whole_month", "outside"), 0)
    per_account = np.zeros(accounts, dtype=np.int64)
    fp = np.zeros(6, dtype=object)
    writer = None
    try:
        for c, first in enumerate(range(0, records, CHUNK)):
            # a whole chunk is drawn even when fewer records are left, so
            # that a smaller set is the beginning of a larger one
            size = min(CHUNK, records - first)
            acc, table = _chunk(np.random.default_rng([seed, 1, c]), first, CHUNK, offsets, owner, res_names_a,
                                acc_names)
            acc, table = acc[:size], table.slice(0, size)
            if writer is None:
                writer = pq.ParquetWriter(str(path), table.schema, compression="zstd")
            writer.write_table(table)
            s = table["start_s"].to_numpy()
            e_null = table["end_s"].is_null().to_numpy(zero_copy_only=False)
            e = table["end_s"].fill_null(0).to_numpy()
            stats["running"] += int(e_null.sum())
            stats["cross_start"] += int(((s < P0) & ~e_null & (e > P0) & (e <= P1)).sum())
            stats["cross_end"] += int(((s >= P0) & (s < P1) & ~e_null & (e > P1)).sum())
            stats["whole_month"] += int(((s < P0) & (e_null | (e >= P1))).sum())
            stats["outside"] += int(((~e_null & (e <= P0)) | (s >= P1)).sum())
            per_account += np.bincount(acc, minlength=accounts)
            fp += [size, int(s.sum()), int(e.sum()), int((~e_null).sum()),
                   int(table["qty_units"].to_numpy().sum()), int(table["qty_nanos"].to_numpy().sum())]
    finally:
        if writer is not None:
            writer.close()
    return {"records": records, "accounts": accounts, "seed": seed, "numpy": np.__version__,
            "fingerprint": [int(v) for v in fp], "mix": stats,
            "records_per_account": per_account.tolist()}


def write_config(path: Path, database: str, accounts: int) -> Path:
    """A hub.toml: the store, the six meters and products, the accounts."""
    lines = [f"# written by bench/bench_rating.py: {PERIOD}, {accounts} accounts", "[hub]",
             f"database = {json.dumps(database)}", 'currency = "EUR"', 'timezone = "UTC"', 'rounding = "half_up"', ""]
    for _product, meter, unit, _tiers in PRODUCTS:
        lines += ["[[meters]]", f'name = "{meter}"', 'aggregation = "time_weighted"', f'unit = "{unit}"', ""]
    for product, meter, _unit, tiers in PRODUCTS:
        if len(tiers) == 1:
            price = f'{{ model = "per_unit", unit_price = "{tiers[0][1]}" }}'
        else:
            parts = [(f'{{ up_to = "{up}", unit_price = "{p}" }}' if up else f'{{ unit_price = "{p}" }}')
                     for up, p in tiers]
            price = f'{{ model = "graduated", tiers = [ {", ".join(parts)} ] }}'
        lines += ["[[products]]", f'name = "{product}"', f'meter = "{meter}"', 'per = "second"',
                  'granularity = "1s"', f"price = {price}", ""]
    for i in range(accounts):
        lines += ["[[accounts]]", f'id = "{account_id(i)}"', f'name = "Customer {i}"', ""]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------
# loading the store (untimed)


def _batches(parquet: Path):  # type: ignore[no-untyped-def]
    import pyarrow.parquet as pq

    return pq.ParquetFile(str(parquet)).iter_batches(batch_size=CHUNK)


def load_sqlite(engine, parquet: Path) -> None:  # type: ignore[no-untyped-def]
    """``executemany`` of every record into ``usage_records`` through the raw
    sqlite3 connection (the hub's connections run in autocommit mode and
    begin their own transactions)."""
    from itertools import repeat

    sql = f"INSERT INTO usage_records ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        for batch in _batches(parquet):
            cols = [batch.column(name).to_pylist() for name in
                    ("record_id", "account", "resource_id", "meter", "start_s", "end_s", "quantity",
                     "qty_units", "qty_nanos")]
            cur.execute("BEGIN")
            cur.executemany(sql, zip(repeat(SOURCE), *cols, repeat(None), repeat("{}"), repeat(None), repeat(1),
                                     repeat(RECEIVED_S)))
            cur.execute("COMMIT")
        cur.close()
    finally:
        raw.close()


def load_postgresql(engine, parquet: Path) -> None:  # type: ignore[no-untyped-def]
    """``COPY usage_records FROM STDIN`` (CSV written by pyarrow) through the
    raw psycopg connection, then ``VACUUM ANALYZE`` (what autovacuum does
    soon after a bulk load)."""
    import io

    import pyarrow as pa
    import pyarrow.csv as pacsv

    raw = engine.raw_connection()
    try:
        pg = raw.driver_connection
        copy_sql = f"COPY usage_records ({', '.join(COLUMNS)}) FROM STDIN WITH (FORMAT csv)"
        with pg.cursor() as cur, cur.copy(copy_sql) as copy:
            for batch in _batches(parquet):
                n = batch.num_rows
                table = pa.table({
                    "source": pa.array([SOURCE] * n, pa.string()),
                    **{name: batch.column(name) for name in batch.schema.names},
                    "unit": pa.nulls(n, pa.string()), "labels": pa.array(["{}"] * n, pa.string()),
                    "origin": pa.nulls(n, pa.string()), "version": pa.array([1] * n, pa.int32()),
                    "received_s": pa.array([RECEIVED_S] * n, pa.int64()),
                }).select(list(COLUMNS))
                buf = io.BytesIO()
                pacsv.write_csv(table, buf, pacsv.WriteOptions(include_header=False))
                copy.write(buf.getvalue())
        pg.commit()
        pg.autocommit = True
        pg.execute("VACUUM ANALYZE usage_records")
    finally:
        raw.invalidate()  # its session settings changed: never back to the pool


def store_fingerprint(engine) -> list[int]:  # type: ignore[no-untyped-def]
    from sqlalchemy import text

    with engine.connect() as conn:
        return [int(v or 0) for v in conn.execute(text(_FINGERPRINT)).one()]


def prepare_store(config_path: Path, parquet: Path, meta: dict, reuse: bool) -> dict:
    """Create the schema of the store of ``config_path`` (``open_store``),
    load the records unless ``reuse`` and the store already holds exactly
    them, and check it; returns what it did."""
    import tomllib

    from hub.store.db import open_store

    t = time.perf_counter()
    with open(config_path, "rb") as fh:
        database = tomllib.load(fh)["hub"]["database"]
    engine = open_store(database, config_path.parent)
    backend = engine.dialect.name
    try:
        got = store_fingerprint(engine)
        loaded = not (reuse and got == meta["fingerprint"])
        if loaded:
            if got[0]:
                raise RuntimeError(f"the {backend} store {database} holds other records: remove it first")
            (load_sqlite if backend == "sqlite" else load_postgresql)(engine, parquet)
            got = store_fingerprint(engine)
    finally:
        engine.dispose()
    if got != meta["fingerprint"]:
        raise RuntimeError(f"the {backend} store does not hold the generated records: fingerprint {got}, "
                           f"expected {meta['fingerprint']} (count, sums of start, end, units, nanos)")
    return {"loaded": loaded, "load_s": round(time.perf_counter() - t, 1)}


# ---------------------------------------------------------------------------
# the methods (each in a child process)


def _hub_workspace(config_path: Path):  # type: ignore[no-untyped-def]
    """What ``hub --config PATH rate --period 2025-03`` works with."""
    from hub.app import Hub
    from hub.periods import parse_period

    hub = Hub.open(config_path)
    return hub.config, hub.engine, parse_period(PERIOD)


def _lines_of(charges) -> list[tuple[str, str, int]]:  # type: ignore[no-untyped-def]
    """``(account, product, amount in cents)`` of the hub's charges."""
    out = []
    for c in charges:
        cents = c.amount.scaleb(2)
        if c.currency != "EUR" or c.resource_id is not None or cents != cents.to_integral_value():
            raise RuntimeError(f"unexpected charge {c.account} {c.product} {c.resource_id} {c.amount} {c.currency}")
        out.append((c.account, c.product, int(cents)))
    return out


def _drop_rollups(engine) -> None:  # type: ignore[no-untyped-def]
    """Forget every rating rollup: the next rating scans, as the first one
    after a change of usage does (hub/store/rollups.py)."""
    from sqlalchemy import text

    with engine.begin() as conn:
        conn.execute(text("DELETE FROM rating_rollup_keys"))
        conn.execute(text("DELETE FROM rating_rollups"))


def method_hub_full(config_path: Path, repeat: int, rollups: bool = False) -> tuple[dict, list]:
    """(a): every account's charges of the month, ``repeat`` times: from
    the usage records (each run starts without rollups and stores them), or
    with ``rollups`` from the rollups a first, untimed, run stored (the
    usage has not changed since)."""
    from hub.rating import rate

    config, engine, period = _hub_workspace(config_path)
    rss_before = _maxrss_mb()
    times, charges = [], []
    _drop_rollups(engine)
    if rollups:
        rate(engine, config, period, None, now=NOW)
    for _ in range(repeat):
        if not rollups:
            _drop_rollups(engine)
        t = time.perf_counter()
        charges = rate(engine, config, period, None, now=NOW)
        times.append(time.perf_counter() - t)
    engine.dispose()
    return {"seconds": statistics.median(times), "times": [round(x, 3) for x in times],
            "rss_before_mb": round(rss_before, 1)}, _lines_of(charges)


def method_hub_late(config_path: Path, repeat: int, share: float = LATE_SHARE) -> tuple[dict, list]:
    """(a) as a month is really closed: the rollups kept since the month
    began, then late usage through the hub's writer (the path of ``hub
    pull``: ``open_writer``, batches of columns), then the full re-rate.

    Set-up, untimed, each time: ``share`` of the records (every k-th by id)
    are taken out by hand (half deleted, half changed into running records
    of another quantity) and the month is rated (storing its rollups, as
    the ratings during the month did). Timed: the late pull that brings
    them back as generated (the writers add their changes to the rollups),
    and the rating after it. The store ends as generated: its lines must
    agree with DuckDB's."""
    from sqlalchemy import bindparam, text

    from hub.plugin_types import UsageColumns
    from hub.rating import rate
    from hub.store.writer import BatchWrite, open_writer

    config, engine, period = _hub_workspace(config_path)
    rss_before = _maxrss_mb()
    with engine.connect() as conn:
        total = conn.execute(text("SELECT COUNT(*) FROM usage_records")).scalar_one()
        step = max(2, round(1 / share))
        late = conn.execute(text("SELECT id, record_id, account, resource_id, meter, start_s, end_s, qty_units, "
                                 "qty_nanos FROM usage_records WHERE id % :step = 0 ORDER BY id"),
                            {"step": step}).all()
    # by record id: a record deleted and pulled again comes back under a new id
    gone = [r.record_id for r in late if r.id % (2 * step) == 0]
    changed = [r.record_id for r in late if r.id % (2 * step) != 0]
    times, pulls, charges = [], [], []
    for _ in range(repeat):
        with engine.begin() as conn:
            for ids, sql in ((gone, "DELETE FROM usage_records"),
                             (changed, "UPDATE usage_records SET end_s = NULL, qty_units = qty_units + 1, "
                                       "quantity = 'late'")):
                for k in range(0, len(ids), 5000):
                    conn.execute(text(f"{sql} WHERE source = :source AND record_id IN :ids").bindparams(
                        bindparam("ids", expanding=True)), {"source": SOURCE, "ids": ids[k:k + 5000]})
        _drop_rollups(engine)
        rate(engine, config, period, None, now=NOW)  # the rollups the month's ratings kept
        t = time.perf_counter()
        writer = open_writer(engine, SOURCE, RECEIVED_S, open_entries=False)
        try:
            for k in range(0, len(late), LATE_BATCH):
                rows = late[k:k + LATE_BATCH]
                writer.write(BatchWrite(columns=UsageColumns(
                    record_id=[r.record_id for r in rows], account=[r.account for r in rows],
                    resource_id=[r.resource_id for r in rows], meter=[r.meter for r in rows],
                    start=[r.start_s for r in rows], end=[r.end_s for r in rows],
                    quantity_units=[r.qty_units for r in rows], quantity_nanos=[r.qty_nanos for r in rows])))
            writer.finish()
            stored = sum(c.imported + c.updated for _, c in writer.take_stored())
        finally:
            writer.close()
        pulls.append(time.perf_counter() - t)
        if stored != len(late):
            raise RuntimeError(f"the late pull stored {stored} of {len(late)} records")
        t = time.perf_counter()
        charges = rate(engine, config, period, None, now=NOW)
        times.append(time.perf_counter() - t)
    if store_fingerprint(engine)[0] != total:
        raise RuntimeError("the store does not hold the generated records after the late pull")
    engine.dispose()
    return {"seconds": statistics.median(times), "times": [round(x, 3) for x in times],
            "late_records": len(late), "late_new": len(gone), "late_changed": len(changed),
            "pull_s": statistics.median(pulls), "pull_times": [round(x, 3) for x in pulls],
            "rss_before_mb": round(rss_before, 1)}, _lines_of(charges)


def method_hub_account(config_path: Path, accounts: list[str], budget: float) -> tuple[dict, list]:
    """(b): one account's charges at a time, for each of ``accounts`` (after
    one untimed call), until ``budget`` seconds are spent, from the usage
    records (without rollups: an account's current charges are those of an
    open period, which has none)."""
    from hub.rating import rate

    config, engine, period = _hub_workspace(config_path)
    _drop_rollups(engine)
    rss_before = _maxrss_mb()
    rate(engine, config, period, [accounts[0]], now=NOW)  # warm: connection, statement caches
    times, lines, done = [], [], []
    spent = time.perf_counter()
    for acc in accounts:
        t = time.perf_counter()
        charges = rate(engine, config, period, [acc], now=NOW)
        times.append(time.perf_counter() - t)
        lines += _lines_of(charges)
        done.append(acc)
        if time.perf_counter() - spent > budget:
            break
    engine.dispose()
    ordered = sorted(times)
    return {"seconds": statistics.median(times), "p95_s": ordered[max(0, -(-95 * len(ordered) // 100) - 1)],
            "min_s": ordered[0], "max_s": ordered[-1], "accounts_done": done, "accounts_asked": len(accounts),
            "rss_before_mb": round(rss_before, 1)}, lines


def duckdb_sql(parquet: Path) -> str:
    """The reference rating in DuckDB SQL, exact throughout: quantities in
    1e-9 units times clipped seconds summed as HUGEINT, tiers and prices in
    DECIMAL (an overflow is an error, never a rounding), each line rounded
    half-up to the cent once. Products bill per second at 1 s granularity
    without minimum or free allowance; running records run to the period's
    end (``now`` is after it)."""
    tiers = []
    for product, meter, _unit, levels in PRODUCTS:
        lower = "0"
        for up_to, price in levels:
            if len(price.split(".")[1]) > 10:
                raise ValueError(f"{product}: {price} has more than 10 decimals (DECIMAL(18,10) below)")
            upper = f"CAST('{up_to}' AS DECIMAL(38,9))" if up_to else "NULL"
            tiers.append(f"('{product}', '{meter}', CAST('{lower}' AS DECIMAL(38,9)), {upper}, "
                         f"CAST('{price}' AS DECIMAL(18,10)))")
            lower = up_to or lower
    path = str(parquet).replace("'", "''")
    run_end = min(int(NOW.timestamp()), P1)
    return f"""
WITH clipped AS (
  SELECT account, meter,
         (CAST(qty_units AS HUGEINT) * 1000000000 + qty_nanos)
           * (LEAST(COALESCE(end_s, {run_end}), {P1}) - GREATEST(start_s, {P0})) AS qs
  FROM read_parquet('{path}')
  WHERE start_s < {P1} AND COALESCE(end_s, {run_end}) > {P0}
),
totals AS (  -- unit-seconds per account and meter, DECIMAL(38,9), exact
  SELECT account, meter, CAST(SUM(qs) AS DECIMAL(38,0)) * CAST('0.000000001' AS DECIMAL(10,9)) AS q
  FROM clipped GROUP BY account, meter
),
tiers(product, meter, lower, upper, price) AS (VALUES
  {(","+chr(10)+"  ").join(tiers)}
),
parts AS (  -- graduated: the part of q in each tier at its price (per_unit: one tier from 0)
  SELECT t.account, p.product, (LEAST(t.q, COALESCE(p.upper, t.q)) - p.lower) * p.price AS amount
  FROM totals t JOIN tiers p ON p.meter = t.meter AND t.q > p.lower
)
SELECT account, product, CAST(FLOOR(SUM(amount) * 100 + CAST('0.5' AS DECIMAL(2,1))) AS BIGINT) AS cents,
       typeof(SUM(amount)) AS amount_type,
       SUM(amount) * 100 - FLOOR(SUM(amount) * 100) = CAST('0.5' AS DECIMAL(2,1)) AS half_cent_tie
FROM parts GROUP BY account, product
"""


def method_duckdb(parquet: Path, repeat: int) -> tuple[dict, list]:
    """(c): the reference, over the Parquet file (DuckDB's default threads),
    at least 3 times: it is cheap, and the ratios divide by its median."""
    import duckdb

    sql = duckdb_sql(parquet)
    rss_before = _maxrss_mb()
    times, rows, threads = [], [], None
    for _ in range(max(3, repeat)):
        t = time.perf_counter()
        con = duckdb.connect()
        rows = con.execute(sql).fetchall()
        times.append(time.perf_counter() - t)
        threads = con.execute("SELECT current_setting('threads')").fetchone()[0]
        con.close()
    types = {r[3] for r in rows}
    if types - {"DECIMAL(38,19)"}:
        raise RuntimeError(f"the reference computed amounts as {types}, not an exact DECIMAL")
    return {"seconds": statistics.median(times), "times": [round(x, 3) for x in times],
            "rss_before_mb": round(rss_before, 1), "duckdb": duckdb.__version__, "threads": threads,
            "half_cent_ties": sum(1 for r in rows if r[4])}, [(a, p, int(c)) for a, p, c, _t, _tie in rows]


def checksum(lines: list[tuple[str, str, int]]) -> dict:
    """The lines' count, the sum of their amounts (EUR) and the SHA-256 of
    the sorted ``account<TAB>product<TAB>amount`` lines."""
    h = hashlib.sha256()
    for acc, product, cents in sorted(lines):
        h.update(f"{acc}\t{product}\t{_eur(cents)}\n".encode())
    return {"lines": len(lines), "sum": _eur(sum(c for _a, _p, c in lines)), "sha256": h.hexdigest()}


def _eur(cents: int) -> str:
    return str(Decimal(cents).scaleb(-2))


def _hwm_mb() -> float | None:
    """This process image's own peak RSS (Linux ``VmHWM``). ``ru_maxrss``
    also counts the parent's RSS at the ``exec`` that started it, which is
    why the parent of the runs stays small."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            kb = next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:"))
    except (OSError, StopIteration, ValueError):
        return None
    return round(kb / 1024, 1)


def child_main(args: argparse.Namespace) -> int:
    """Run one step in this (child) process; write its figures as JSON to
    ``--child-result`` (and a method's lines beside it, as TSV)."""
    out = Path(args.child_result)
    data = Path(args.child_data)
    lines = None
    try:
        if args.child == "generate":
            t = time.perf_counter()
            figures = generate(data, args.records, args.accounts, args.seed)
            figures["generate_s"] = round(time.perf_counter() - t, 1)
        elif args.child == "load":
            meta = json.loads((data.parent / "meta.json").read_text())
            figures = prepare_store(data, data.parent / "usage.parquet", meta, args.skip_generate)
        elif args.child == "duckdb":
            figures, lines = method_duckdb(data, args.repeat)
        elif args.child in ("hub-full", "hub-rollups"):
            figures, lines = method_hub_full(data, args.repeat, rollups=args.child == "hub-rollups")
        elif args.child == "hub-late":
            figures, lines = method_hub_late(data, args.repeat)
        else:
            figures, lines = method_hub_account(data, args.child_accounts.split(","), args.account_budget)
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        out.write_text(json.dumps({"error": f"{type(exc).__name__}: {exc}", "peak_rss_mb": round(_maxrss_mb(), 1)}))
        traceback.print_exc()
        return 1
    if lines is not None:
        out.with_suffix(".tsv").write_text("".join(f"{a}\t{p}\t{c}\n" for a, p, c in sorted(lines)),
                                           encoding="utf-8")
        figures.update(checksum(lines))
    figures.update(peak_rss_mb=round(_maxrss_mb(), 1), hwm_mb=_hwm_mb())
    out.write_text(json.dumps(figures))
    return 0


# ---------------------------------------------------------------------------
# the parent


def run_child(name: str, method: str, data: Path, run_dir: Path, args: argparse.Namespace,
              accounts: list[str] | None = None, key: str | None = None) -> dict:
    """Run one step in a subprocess; its figures, or ``{"error": ...}``.
    Its files in ``run_dir`` are named after ``key`` (default: ``name``)."""
    key = "-".join("".join(ch if ch.isalnum() else " " for ch in (key or name)).split())
    result = run_dir / f"result-{key}.json"
    result.unlink(missing_ok=True)
    cmd = [sys.executable, os.path.abspath(__file__), "--child", method, "--child-data", str(data),
           "--child-result", str(result), "--records", str(args.records), "--accounts", str(args.accounts),
           "--seed", str(args.seed), "--repeat", str(args.repeat), "--account-budget", str(args.account_budget)]
    if accounts:
        cmd += ["--child-accounts", ",".join(accounts)]
    if args.skip_generate:
        cmd.append("--skip-generate")
    print(f"{name} ...", flush=True)
    try:
        code = subprocess.run(cmd, check=False, timeout=args.timeout).returncode
    except subprocess.TimeoutExpired:
        return {"name": name, "error": f"timed out after {args.timeout:.0f}s"}
    try:
        figures = json.loads(result.read_text())
    except (OSError, ValueError):
        figures = {"error": f"the child exited with {code} and wrote no result"}
    if code and "error" not in figures:
        figures["error"] = f"the child exited with {code}"
    if "error" not in figures and result.with_suffix(".tsv").exists():
        figures["lines_file"] = str(result.with_suffix(".tsv"))
    figures["name"] = name
    return figures


def run_backend(backend: str, run_dir: Path, args: argparse.Namespace, sample: list[str],
                unreachable: str | None) -> tuple[dict, list]:
    """Load the store of ``backend`` (a fresh schema on PostgreSQL, dropped
    at the end) and run the hub's methods on it; ``(setup, runs)``.

    :param unreachable: why the PostgreSQL server does not answer (checked
        before the data were generated), or ``None``.
    """
    def not_run(key: str, why: str) -> list[dict]:
        return [{"name": f"hub {backend}: {label}", "method": m, "backend": backend, key: why}
                for m, label in HUB_METHODS.items()]

    if backend == "postgresql" and unreachable:
        return {"skipped": unreachable}, not_run("skipped", f"not reachable: {unreachable}")
    schema, database = pg_create_schema() if backend == "postgresql" else (None, f"sqlite:///{run_dir / 'hub.db'}")
    try:
        config_path = write_config(run_dir / f"hub-{backend}.toml", database, args.accounts)
        where = f" (schema {schema})" if schema else ""
        setup = run_child(f"loading {backend}{where}", "load", config_path, run_dir, args, key=f"load-{backend}")
        if "error" in setup:
            return setup, not_run("error", f"loading the store failed: {setup['error']}")
        print(f"  {'loaded' if setup['loaded'] else 'reused'} in {setup['load_s']}s", flush=True)
        runs = []
        for method, label in HUB_METHODS.items():
            accounts = sample if method == "hub-account" else None
            runs.append(dict(run_child(f"hub {backend}: {label}", method, config_path, run_dir, args, accounts),
                             method=method, backend=backend))
            if "seconds" in runs[-1]:
                print(f"  {runs[-1]['seconds']:.3f}s" + (" (median)" if accounts else ""), flush=True)
        return setup, runs
    finally:
        if schema:
            pg_drop_schema(schema)


def sample_accounts(per_account: list[int], n: int, seed: int) -> list[str]:
    """``n`` accounts with usage, evenly spread over the ranks by size
    (smallest and largest included), in a seeded random order so that any
    prefix is spread too (the run may stop early at its time budget)."""
    import random

    ranked = sorted((c, i) for i, c in enumerate(per_account) if c)
    n = min(n, len(ranked))
    picks = sorted({ranked[round(k * (len(ranked) - 1) / max(1, n - 1))][1] for k in range(n)})
    random.Random(seed).shuffle(picks)
    return [account_id(i) for i in picks]


def read_lines(path: str) -> dict[tuple[str, str], int]:
    with open(path, encoding="utf-8") as fh:
        return {(a, p): int(c) for a, p, c in (line.rstrip("\n").split("\t") for line in fh)}


def compare(reference: dict[tuple[str, str], int], got: dict[tuple[str, str], int]) -> list[str]:
    """The lines on which ``got`` and ``reference`` differ ("-" for a line
    one of them lacks)."""
    diffs = []
    for key in sorted(set(reference) | set(got)):
        want, have = reference.get(key), got.get(key)
        if want != have:
            diffs.append(f"{key[0]} {key[1]}: duckdb {'-' if want is None else _eur(want)}, "
                         f"hub {'-' if have is None else _eur(have)}")
    return diffs


def print_table(rows: list[tuple], right_from: int = 1) -> None:
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    for n, row in enumerate(rows):
        print("  ".join(str(v).rjust(w) if i >= right_from else str(v).ljust(w)
                        for i, (v, w) in enumerate(zip(row, widths))))
        if n == 0:
            print("  ".join("-" * w for w in widths))


def report(runs: list[dict], meta: dict, args: argparse.Namespace) -> bool:
    """Print the table, the checksums and the targets; whether all agree."""
    records = meta["records"]
    ref = next((r for r in runs if r["method"] == "duckdb"), None)
    ref_s = ref.get("seconds") if ref and "error" not in ref else None
    ref_lines = read_lines(ref["lines_file"]) if ref_s else None
    ok = ref_s is not None
    head = ("method", "records", "seconds", "records/s", "peak RSS MB", "x DuckDB", "lines", "target")
    rows: list[tuple] = [head]
    sums: list[tuple] = [("method", "lines", "sum EUR", "sha256", "vs DuckDB")]
    verdicts, failures = [], []
    for r in runs:
        name = r["name"]
        if "skipped" in r or "error" in r:
            word = "SKIPPED" if "skipped" in r else "FAILED"
            rows.append((name, f"{records:,}", word, "-", "-", "-", "-", "-"))
            (verdicts if "skipped" in r else failures).append(f"{word}: {name}: {r.get('skipped') or r['error']}")
            ok = ok and "skipped" in r
            continue
        one = r["method"] == "hub-account"
        rss = r["peak_rss_mb"]
        if one:
            n = len(r["accounts_done"])
            med_ms = r["seconds"] * 1000
            target = f"median < {TARGET_ONE_ACCOUNT_MS:g} ms: {'met' if med_ms < TARGET_ONE_ACCOUNT_MS else 'NOT met'}"
            rows.append((name, f"{n} accounts", f"{r['seconds']:.4f} (p95 {r['p95_s']:.4f})", "-", f"{rss:.0f}", "-",
                         f"{r['lines']:,}", target))
            stopped = (f" (stopped at the --account-budget of {args.account_budget:g}s)"
                       if n < r["accounts_asked"] else "")
            verdicts.append(f"{name}: median {med_ms:,.1f} ms, p95 {r['p95_s'] * 1000:,.1f} ms over {n} accounts"
                            f"{stopped} (min {r['min_s'] * 1000:,.1f}, max {r['max_s'] * 1000:,.1f} ms) against "
                            f"< {TARGET_ONE_ACCOUNT_MS:g} ms: {'met' if med_ms < TARGET_ONE_ACCOUNT_MS else 'NOT met'}")
        else:
            ratio = r["seconds"] / ref_s if ref_s else None
            limit = {"postgresql": TARGET_PG_RATIO, "sqlite": TARGET_SQLITE_RATIO}.get(
                r.get("backend", "")) if r["method"] in FULL_METHODS else None
            target = "reference" if r["method"] == "duckdb" else (
                f"<= {limit:g}x: {'met' if ratio <= limit else 'NOT met'}" if ratio else "-")
            rows.append((name, f"{records:,}", f"{r['seconds']:.3f}", f"{records / r['seconds']:,.0f}", f"{rss:.0f}",
                         f"{ratio:.2f}" if ratio else "-", f"{r['lines']:,}", target))
            if limit and ratio:
                verdicts.append(f"{name}: {ratio:.2f}x DuckDB against <= {limit:g}x: "
                                f"{'met' if ratio <= limit else 'NOT met'}")
            if "pull_s" in r:
                verdicts.append(f"{name}: its late pull of {r['late_records']:,} records ({r['late_new']:,} new, "
                                f"{r['late_changed']:,} changed) through the hub's writer, rollups kept up to "
                                f"date: {r['pull_s']:.3f}s ({r['late_records'] / r['pull_s']:,.0f} records/s)")
        if rss >= TARGET_RSS_MB:
            verdicts.append(f"{name}: peak RSS {rss:.0f} MB against < {TARGET_RSS_MB:g} MB: NOT met")
        # every method against the reference, to the cent
        got = read_lines(r["lines_file"])
        if ref_lines is None:
            agree = "no reference"
        else:
            done = set(r.get("accounts_done", ()))
            want = {k: v for k, v in ref_lines.items() if k[0] in done} if one else ref_lines
            diffs = compare(want, got)
            agree = "agrees" if not diffs else "DIFFERS"
            if diffs:
                ok = False
                failures.append(f"FAILED: {name} disagrees with DuckDB on {len(diffs)} line(s) "
                                f"(account product: duckdb amount, hub amount):")
                failures += [f"  {d}" for d in diffs[:20]] + ([f"  ... and {len(diffs) - 20} more"]
                                                              if len(diffs) > 20 else [])
        if one:
            agree += " (its accounts' lines)"
        sums.append((name, f"{r['lines']:,}", r["sum"], r["sha256"][:16], agree))
    print()
    print_table(rows)
    print()
    print("checksums (sum of the line amounts; sha256 of the sorted account/product/amount lines):")
    print_table(sums, right_from=5)
    if ref_s:
        print(f"{ref['half_cent_ties']:,} of the reference's lines are exact half-cent ties before rounding")
    rss_ok = all(r["peak_rss_mb"] < TARGET_RSS_MB for r in runs if "peak_rss_mb" in r and "error" not in r)
    print()
    print(f"targets: full re-rate <= {TARGET_PG_RATIO:g}x DuckDB on PostgreSQL and <= "
          f"{TARGET_SQLITE_RATIO:g}x on SQLite; one account < {TARGET_ONE_ACCOUNT_MS:g} ms; peak RSS < "
          f"{TARGET_RSS_MB:g} MB ({'met by every method' if rss_ok else 'NOT met by every method'})")
    for v in verdicts:
        print(f"  {v}")
    sys.stdout.flush()  # the failures (stderr) come after the table
    for f in failures:
        print(f, file=sys.stderr)
    return ok and not failures


def _backends(text: str) -> list[str]:
    names = [b.strip() for b in text.split(",") if b.strip()]
    if not names or set(names) - {"sqlite", "postgresql"}:
        raise argparse.ArgumentTypeError(f"{text!r}: name sqlite, postgresql or both, comma-separated")
    return names


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--records", type=int, default=5_000_000, help="usage records (default 5,000,000)")
    p.add_argument("--accounts", type=int, default=10_000, help="accounts (default 10,000)")
    p.add_argument("--seed", type=int, default=20250301, help="seed of the generator")
    p.add_argument("--backends", type=_backends, default="sqlite,postgresql",
                   help="comma-separated: sqlite, postgresql")
    p.add_argument("--workdir", type=Path, help="keep the Parquet file, hub.toml and SQLite store here "
                                                "(default: a temporary directory, removed at the end)")
    p.add_argument("--skip-generate", action="store_true",
                   help="reuse the data (and the SQLite store if it holds them) of an earlier run in --workdir")
    p.add_argument("--samples", type=int, default=100, help="accounts timed one at a time (default 100)")
    p.add_argument("--account-budget", type=float, default=300,
                   help="seconds after which the one-account timing stops early (default 300)")
    p.add_argument("--repeat", type=int, default=1, help="full re-rates per method; the median counts (default 1)")
    p.add_argument("--timeout", type=float, default=1800, help="seconds allowed per method subprocess (default 1800)")
    p.add_argument("--child", choices=("generate", "load", "duckdb", "hub-full", "hub-rollups", "hub-late",
                                       "hub-account"),
                   help=argparse.SUPPRESS)
    p.add_argument("--child-data", help=argparse.SUPPRESS)
    p.add_argument("--child-result", help=argparse.SUPPRESS)
    p.add_argument("--child-accounts", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        return child_main(args)

    backends = args.backends
    if args.records < 1 or args.accounts < 1 or args.repeat < 1:
        p.error("--records, --accounts and --repeat must be positive")
    if args.skip_generate and not args.workdir:
        p.error("--skip-generate reuses the data of --workdir: give it")
    unreachable = postgres_unreachable() if "postgresql" in backends else None
    if unreachable:
        print(f"skipping postgresql: not reachable at {POSTGRES} ({unreachable})", flush=True)

    tmp = None
    if args.workdir:
        workdir = args.workdir.resolve()
    else:
        tmp = tempfile.TemporaryDirectory(prefix="hub-bench-rating-")
        workdir = Path(tmp.name)
    run_dir = workdir / f"rating-{args.records}-a{args.accounts}-s{args.seed}"
    parquet, meta_path = run_dir / "usage.parquet", run_dir / "meta.json"
    try:
        state = code_state()  # before the runs: the code they measure
        load_before = os.getloadavg()
        if args.skip_generate:
            if not (parquet.exists() and meta_path.exists()):
                p.error(f"--skip-generate: no generated data in {run_dir}")
            meta = json.loads(meta_path.read_text())
            print(f"reusing {parquet} ({parquet.stat().st_size / 1e6:.1f} MB)", flush=True)
        else:
            if run_dir.exists():
                shutil.rmtree(run_dir)
            run_dir.mkdir(parents=True)
            meta = run_child(f"generating {args.records:,} records", "generate", parquet, run_dir, args,
                             key="generate")
            if "error" in meta:
                print(f"FAILED: generating the data: {meta['error']}", file=sys.stderr)
                return 1
            meta_path.write_text(json.dumps(meta))
            print(f"  {args.records:,} records for {args.accounts:,} accounts in {meta['generate_s']}s: "
                  f"{parquet} ({parquet.stat().st_size / 1e6:.1f} MB)", flush=True)
        mix = meta["mix"]
        print("mix: " + ", ".join(f"{v:,} {k.replace('_', ' ')}" for k, v in mix.items()) + " (records)")
        sample = sample_accounts(meta["records_per_account"], args.samples, args.seed)

        runs = [dict(run_child("duckdb (Parquet)", "duckdb", parquet, run_dir, args), method="duckdb")]
        print(f"  {runs[0].get('seconds', 0):.3f}s", flush=True)
        setup: dict = {}
        for backend in backends:
            setup[backend], hub_runs = run_backend(backend, run_dir, args, sample, unreachable)
            runs += hub_runs
        ok = report(runs, meta, args)
        load = [round(x, 2) for x in (*load_before, *os.getloadavg())]
        print(f"load average (1, 5, 15 min) before the runs {load[0]}, {load[1]}, {load[2]}; after {load[3]}, "
              f"{load[4]}, {load[5]} on {os.cpu_count()} CPUs (other processes running meanwhile skew the figures)")
        summary = {"records": args.records, "accounts": args.accounts, "seed": args.seed, "period": PERIOD,
                   "python": sys.version.split()[0], "code": state, "mix": mix, "setup": setup,
                   "parent_peak_rss_mb": round(_maxrss_mb(), 1), "loadavg_before_after": load,
                   "runs": [{k: v for k, v in r.items() if k not in ("lines_file", "accounts_done")} for r in runs],
                   "ok": ok}
        print("\nSUMMARY " + json.dumps(summary, separators=(",", ":")))
        if not ok:
            print("FAILED", file=sys.stderr)
        return 0 if ok else 1
    finally:
        if tmp is not None:
            tmp.cleanup()


if __name__ == "__main__":
    sys.exit(main())
