"""Rating rollups: a period's quantities, kept up to date as usage is
upserted (hub/store/rollups.py, migrations 0006 and 0007).

- A rating of a period by every account (a group of at least
  ``IN_LIST_MAX`` accounts) stores its quantities; the same rating again
  reads them and reads ``usage_records`` only for running records, and
  gives the same charges; so does a rating of one account.
- A pull of usage of the period (new records, records changed in place,
  running records finishing, records moving to another account, meter or
  resource) adds its changes to the rollups of time-weighted and sum
  meters in its own transactions: the next rating reads them, and bills
  exactly what a rating from the records bills. Through every writer: the
  pipelined SQLite writer, the plain one (PostgreSQL), records given one by
  one.
- Rollups of meters no writer can keep (unique, max, latest) and any change
  made another way (by hand) make the next rating scan again; usage that
  starts after the period's end (the next month's, arriving every day)
  leaves every rollup in use.
- A write that commits between the generation's read and the scan never
  leaves a rollup that a later rating reads.
- An open period stores the rollups of time-weighted and sum meters (their
  running records are billed to now on top), and the closed period reads
  them; its first rating stores the closed period's own, which hold the
  running records (billed to its end) and which the writers keep too.
- ``hub run`` rates each open period once, so that the pulls keep its
  rollups from the start. Another catalog (``hub rate --catalog``, another granularity)
  never reads this one's rollups.

Every test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from sqlalchemy import event, text

from hub.periods import parse_period
from hub.plugin_types import UsageRecord
from hub.rating import connection, product_quantities, rate
from hub.store import rollups
from hub.store.usage import upsert_records
from tests.conftest import Workspace
from tests.test_rating_speed_paths import METERS, NOW, PRODUCTS, accounts_toml, hub_of, setup, usage_rows

UTC = timezone.utc
N_ACCOUNTS = 200  # 134 in UTC, 66 in Paris: both groups above hub.rating.connection.IN_LIST_MAX, scanned
OCTOBER = parse_period("2026-10")
HEAD = "record_id,account,resource_id,meter,start,end,quantity\n"
#: the meters whose rollups the writers keep (time-weighted and sum) and the others
KEPT_METERS = ("compute.vcpu", "compute.memory", "network.egress")
OTHER_PRODUCTS = 3  # peak (max), ips (unique), storage (latest)


class UsageReads:
    """The statements of ``engine`` that read ``usage_records``."""

    def __init__(self, engine: Any) -> None:
        self.statements: list[tuple[str, str]] = []
        event.listen(engine, "after_cursor_execute", self._seen)

    def _seen(self, conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if "usage_records" in statement:
            self.statements.append((statement, str(parameters)))

    @property
    def scans(self) -> list[tuple[str, str]]:
        """Those that read more than the running records."""
        return [(s, p) for s, p in self.statements if "end_s IS NULL AND" not in s]

    def scanned_meters(self) -> set[str]:
        return {m for s, p in self.scans for m in (*KEPT_METERS, "memory.peak", "ips", "storage.size") if f"'{m}'" in p}


def _workspace(tmp_path: Any, db_url: str) -> tuple[Workspace, Any, Any, list[str]]:
    assert N_ACCOUNTS // 3 >= connection.IN_LIST_MAX
    ws = Workspace(tmp_path, db_url)
    accounts = [f"acc-{i:03d}" for i in range(N_ACCOUNTS)]
    rows = usage_rows(accounts, 1500, seed=31)
    setup(ws, N_ACCOUNTS, rows)
    config, engine = hub_of(ws)
    return ws, config, engine, rows


def _stored(engine: Any) -> list[tuple[int, bool]]:
    """(generation, kept by the writers) per key."""
    with engine.connect() as conn:
        return [(g, spec is not None) for g, spec in
                conn.execute(text("SELECT generation, spec FROM rating_rollup_keys ORDER BY key")).all()]


def _from_the_records(engine: Any, config: Any, period: Any = OCTOBER, now: datetime = NOW) -> list[Any]:
    """The charges rated from the records: every rollup dropped first."""
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM rating_rollups"))
        conn.execute(text("DELETE FROM rating_rollup_keys"))
    return rate(engine, config, period, now=now)


def _total(charges: list[Any]) -> Decimal:
    return sum((c.amount for c in charges), Decimal(0))


def test_a_closed_period_rated_again_reads_its_rollups_and_no_usage_at_all(tmp_path, db_url):
    _ws, config, engine, _rows = _workspace(tmp_path, db_url)
    first = rate(engine, config, OCTOBER, now=NOW)
    assert first
    with engine.connect() as conn:
        gen = rollups.generation(conn)
    stored = _stored(engine)
    products = [p for p in config.catalog if not p.is_flat and p.meter is not None]
    assert len(stored) == 2 * len(products) and {g for g, _ in stored} == {gen}  # per time zone
    assert sum(kept for _, kept in stored) == 2 * (len(products) - OTHER_PRODUCTS)
    reads = UsageReads(engine)
    again = rate(engine, config, OCTOBER, now=NOW)
    one = rate(engine, config, OCTOBER, ["acc-007"], now=NOW)
    assert reads.statements == []  # its running records are in the rollups, billed to its end
    assert again == first
    assert one == [c for c in first if c.account == "acc-007"] and one


def test_a_pull_adds_its_changes_to_the_rollups_and_the_next_rating_bills_them_without_a_scan(tmp_path, db_url):
    ws, config, engine, rows = _workspace(tmp_path, db_url)
    before = rate(engine, config, OCTOBER, now=NOW)
    with engine.connect() as conn:
        gen = rollups.generation(conn)
    # acc-000 gets 4 vCPU for the whole of October on top: 4 x 31 x 86,400 vCPU-s
    extra = "big-1,acc-000,vm-big,compute.vcpu,2026-10-01T00:00:00Z,2026-11-01T00:00:00Z,4\n"
    ws.write("usage/y.csv", HEAD + extra)
    assert ws.hub("pull").exit_code == 0
    with engine.connect() as conn:
        assert rollups.generation(conn) > gen
    kept = {g for g, kept in _stored(engine) if kept}
    with engine.connect() as conn:
        assert kept == {rollups.generation(conn)}  # carried to the pull's generation
    reads = UsageReads(engine)
    after = rate(engine, config, OCTOBER, now=NOW)
    assert reads.scanned_meters() == {"memory.peak", "ips", "storage.size"}  # no writer keeps those
    fresh = [c for c in after if c.account == "acc-000" and c.product == "vcpu"]
    old = [c for c in before if c.account == "acc-000" and c.product == "vcpu"]
    assert fresh[0].exact_quantity - (old[0].exact_quantity if old else 0) == 4 * 31 * 86400
    assert [c for c in after if c.account != "acc-000"] == [c for c in before if c.account != "acc-000"]
    # the record changes in place: 1 vCPU instead of 4
    ws.write("usage/y.csv", HEAD + extra.replace(",4\n", ",1\n"))
    assert ws.hub("pull").exit_code == 0
    changed = rate(engine, config, OCTOBER, now=NOW)
    vcpu = [c for c in changed if c.account == "acc-000" and c.product == "vcpu"]
    assert vcpu[0].exact_quantity - (old[0].exact_quantity if old else 0) == 31 * 86400
    assert changed == _from_the_records(engine, config)


def _changed_rows(rows: list[str], seed: int) -> list[str]:
    """Every kind of change a later pull makes to the records ``rows``
    (``usage_rows``' CSV rows), and new ones."""
    rng = random.Random(seed)
    out = []
    for row in rng.sample(rows, 150):
        rid, acc, res, meter, start, end, qty = row.split(",")
        kind = rng.choice(("end", "finish", "run", "quantity", "account", "meter", "resource", "start"))
        if kind == "end" and end:
            end = (datetime.fromisoformat(end.replace("Z", "+00:00")) + timedelta(seconds=rng.randint(-200, 90000))
                   ).strftime("%Y-%m-%dT%H:%M:%SZ")
            end = max(end, start)
        elif kind == "finish" and not end:
            end = "2026-10-20T10:00:07Z" if start < "2026-10-20T10:00:07Z" else start
        elif kind == "run":
            end = ""
        elif kind == "quantity":
            qty = rng.choice(("7", "0.000000001", "12.5"))
        elif kind == "account":
            acc = f"acc-{rng.randint(0, N_ACCOUNTS - 1):03d}"
        elif kind == "meter":
            meter = rng.choice(("compute.vcpu", "compute.memory", "network.egress", "ips"))
        elif kind == "resource":
            res = "res-moved"
        elif kind == "start" and end:
            start = "2026-09-30T23:59:00Z" if end > "2026-09-30T23:59:00Z" else start
        out.append(",".join((rid, acc, res, meter, start, end, qty)))
    accounts = [f"acc-{i:03d}" for i in range(N_ACCOUNTS)]
    out += [f"new-{r}" for r in usage_rows(accounts, 100, seed=seed + 1)]
    return out


def test_every_kind_of_change_is_added_exactly(tmp_path, db_url):
    ws, config, engine, rows = _workspace(tmp_path, db_url)
    rate(engine, config, OCTOBER, now=NOW)
    changed = _changed_rows(rows, seed=5)
    # the changes come in two pulls: a new file, then the same records again
    # (nothing changes) with some changed once more
    ws.write("usage/z.csv", HEAD + "".join(r + "\n" for r in changed))
    assert ws.hub("pull").exit_code == 0
    ws.write("usage/z2.csv", HEAD + "".join(r + "\n" for r in _changed_rows(changed, seed=6)))
    assert ws.hub("pull").exit_code == 0
    reads = UsageReads(engine)
    kept = rate(engine, config, OCTOBER, now=NOW)
    assert reads.scanned_meters() == {"memory.peak", "ips", "storage.size"}
    assert kept == _from_the_records(engine, config)
    assert _total(kept) > 0


def test_records_written_one_by_one_are_added_too(tmp_path, db_url):
    _ws, config, engine, _rows = _workspace(tmp_path, db_url)
    rate(engine, config, OCTOBER, now=NOW)
    t0 = int(datetime(2026, 10, 3, 12, tzinfo=UTC).timestamp())
    records = [UsageRecord(record_id=f"one-{i}", account=f"acc-{i:03d}", resource_id="vm-1", meter=meter,
                           start=t0, end=t0 + 3600 * (i + 1), quantity=Decimal("1.5"))
               for i, meter in enumerate(("compute.vcpu", "compute.memory", "network.egress"))]
    with engine.begin() as conn:
        counts = upsert_records(conn, "files", records, 0)
        assert counts.imported == 3
    reads = UsageReads(engine)
    kept = rate(engine, config, OCTOBER, now=NOW)
    assert not reads.scanned_meters() & set(KEPT_METERS)
    assert kept == _from_the_records(engine, config)


def test_an_open_period_stores_the_kept_rollups_and_the_closed_period_reads_them(tmp_path, db_url):
    ws, config, engine, rows = _workspace(tmp_path, db_url)
    open_now = datetime(2026, 10, 20, tzinfo=UTC)
    during = rate(engine, config, OCTOBER, now=open_now)
    stored = _stored(engine)
    assert stored and all(kept for _, kept in stored)  # only those the writers keep
    assert len(stored) == 2 * (len([p for p in config.catalog if p.meter is not None]) - OTHER_PRODUCTS)
    assert rate(engine, config, OCTOBER, now=open_now) == during
    ws.write("usage/z.csv", HEAD + "".join(r + "\n" for r in _changed_rows(rows, seed=8)))
    assert ws.hub("pull").exit_code == 0
    reads = UsageReads(engine)
    rate(engine, config, OCTOBER, now=open_now)
    running_reads = [s for s, _ in reads.statements if "end_s IS NULL AND" in s]
    assert not reads.scanned_meters() & set(KEPT_METERS) and running_reads  # through their index
    reads.statements.clear()
    closed = rate(engine, config, OCTOBER, now=NOW)
    # the kept keys (finished records) and the running ones, through their index
    assert not reads.scanned_meters() & set(KEPT_METERS)
    assert [s for s, _ in reads.statements if "end_s IS NULL AND" in s] == running_reads
    reads.statements.clear()
    # which made the closed period's keys, running records billed to its end: no usage read
    assert rate(engine, config, OCTOBER, now=NOW) == closed
    assert reads.statements == []
    # and the writers keep those too: running records that end, new ones, a finished one running again
    ws.write("usage/z.csv", HEAD + "".join(r + "\n" for r in _changed_rows(rows, seed=9)))
    assert ws.hub("pull").exit_code == 0
    closed_after = rate(engine, config, OCTOBER, now=NOW)
    assert not reads.scanned_meters() & set(KEPT_METERS)
    assert [s for s, _ in reads.statements if "end_s IS NULL AND" in s] == []  # no running record read
    open_after = rate(engine, config, OCTOBER, now=open_now)  # the keys kept while it was open
    assert closed_after != closed
    assert closed_after == _from_the_records(engine, config)
    assert open_after == _from_the_records(engine, config, now=open_now)


def test_a_record_deleted_by_hand_moves_the_generation(tmp_path, db_url):
    _ws, config, engine, _rows = _workspace(tmp_path, db_url)
    before = rate(engine, config, OCTOBER, now=NOW)
    with engine.begin() as conn:
        gen = rollups.generation(conn)
        conn.execute(text("UPDATE usage_records SET record_id = record_id WHERE 1 = 0"))  # no row: no change
        assert rollups.generation(conn) == gen
        victim = conn.execute(text("SELECT account FROM usage_records WHERE meter = 'compute.vcpu' "
                                   "ORDER BY id LIMIT 1")).scalar_one()
        conn.execute(text("DELETE FROM usage_records WHERE meter = 'compute.vcpu' AND account = :a"), {"a": victim})
        assert rollups.generation(conn) > gen
    after = rate(engine, config, OCTOBER, now=NOW)
    assert [c for c in after if c.account == victim and c.product == "vcpu"] == []
    assert [c for c in after if c.account != victim] == [c for c in before if c.account != victim]


def test_a_write_between_the_generation_and_the_scan_never_leaves_a_rollup_that_is_read(tmp_path, db_url, monkeypatch):
    _ws, config, engine, _rows = _workspace(tmp_path, db_url)
    read_generation = rollups.generation
    writer = engine.connect()

    written: list[int] = []

    def generation_then_a_write(conn: Any) -> int:
        gen = read_generation(conn)
        if not written:  # once, after the first group's read; commits while the rating's transaction is open
            written.append(gen)
            with writer.begin():
                writer.execute(text("UPDATE usage_records SET qty_units = qty_units + 1, quantity = CAST(qty_units + 1 AS TEXT) "
                                    "WHERE account = 'acc-001' AND qty_nanos = 0"))
        return gen

    if engine.dialect.name == "sqlite":
        # SQLite's rating holds the write lock (BEGIN IMMEDIATE): the write
        # lands before its transaction begins, after the generation was read
        # by a caller, as a stale generation handed in would be
        with writer.begin():
            writer.execute(text("UPDATE usage_records SET qty_units = qty_units + 1, quantity = CAST(qty_units + 1 AS TEXT) "
                                "WHERE account = 'acc-001' AND qty_nanos = 0"))
        with engine.connect() as conn:
            stale = read_generation(conn) - 1
        monkeypatch.setattr(rollups, "generation", lambda conn: stale)
    else:
        monkeypatch.setattr(rollups, "generation", generation_then_a_write)
    during = rate(engine, config, OCTOBER, now=NOW)
    writer.close()
    monkeypatch.setattr(rollups, "generation", read_generation)
    with engine.connect() as conn:
        current = rollups.generation(conn)
    stamps = {g for g, _ in _stored(engine)}
    if engine.dialect.name == "sqlite":
        # stamped with what was read before the scan: older than the usage it saw
        assert stamps == {current - 1}
    else:
        # the rating reads one snapshot, taken before the write: it stores
        # nothing (the generation's row changed after its snapshot)
        assert stamps == set()
    reads = UsageReads(engine)
    after = rate(engine, config, OCTOBER, now=NOW)
    assert reads.scans  # no stale stamp is read: scanned again
    if engine.dialect.name == "sqlite":
        assert after == during  # the scan saw the write already, and so does this one
    assert {g for g, _ in _stored(engine)} == {current}
    assert after == _from_the_records(engine, config)


def test_usage_starting_after_the_period_leaves_its_rollups_in_use_and_earlier_usage_does_not(tmp_path, db_url):
    ws, config, engine, _rows = _workspace(tmp_path, db_url)
    before = rate(engine, config, OCTOBER, now=NOW)
    head = "record_id,account,resource_id,meter,start,end,quantity\n"
    # December's usage, and a record that starts at November's first second
    ws.write("usage/later.csv", head + "later-1,acc-000,vm-9,compute.vcpu,2026-12-02T00:00:00Z,,8\n"
                                       "later-2,acc-003,vm-9,storage.size,2026-11-01T00:00:00Z,,500\n")
    assert ws.hub("pull").exit_code == 0
    reads = UsageReads(engine)
    assert rate(engine, config, OCTOBER, now=NOW) == before
    assert reads.scans == []
    # a record of September, running: it counts in October (and a latest
    # meter looks at every start before the period's end)
    ws.write("usage/earlier.csv", head + "early-1,acc-000,vm-8,compute.vcpu,2026-09-15T00:00:00Z,,2\n")
    assert ws.hub("pull").exit_code == 0
    after = rate(engine, config, OCTOBER, now=NOW)
    assert reads.scanned_meters() == {"memory.peak", "ips", "storage.size"}
    vcpu = {c.account: c for c in after if c.product == "vcpu"}
    old = {c.account: c for c in before if c.product == "vcpu"}
    assert vcpu["acc-000"].exact_quantity - (old["acc-000"].exact_quantity if "acc-000" in old else 0) == 2 * 31 * 86400
    assert [c for c in after if c.account != "acc-000"] == [c for c in before if c.account != "acc-000"]


def test_another_catalog_never_reads_this_ones_rollups(tmp_path, db_url):
    ws, config, engine, _rows = _workspace(tmp_path, db_url)
    rate(engine, config, OCTOBER, now=NOW)
    ws.config(METERS + PRODUCTS.replace('name = "vcpu"\nmeter = "compute.vcpu"\n',
                                                  'name = "vcpu"\nmeter = "compute.vcpu"\ngranularity = "10m"\n') + accounts_toml(N_ACCOUNTS))
    other, _ = hub_of(ws)
    assert other.catalog.product("vcpu").granularity == 600
    sliced = rate(engine, other, OCTOBER, now=NOW)
    plain = {(c.account, c.product): c for c in rate(engine, config, OCTOBER, now=NOW)}
    assert any(c.exact_quantity > plain[(c.account, c.product)].exact_quantity
               for c in sliced if c.product == "vcpu")
    with engine.connect() as conn:
        conn.execute(text("DELETE FROM rating_rollup_keys"))
        conn.commit()
    assert rate(engine, other, OCTOBER, now=NOW) == sliced  # scanned from scratch: the same


def test_every_writer_stamps_the_days_it_changes(tmp_path, db_url):
    _ws, _config, engine, _rows = _workspace(tmp_path, db_url)
    with engine.begin() as conn:
        days = set(conn.execute(text("SELECT DISTINCT start_s / 86400 FROM usage_records")).scalars())
        stamped = dict(conn.execute(text("SELECT day, generation FROM usage_change_days")).all())
        gen, batch = conn.execute(text("SELECT n, batch FROM usage_generation")).one()
        assert set(stamped) == days and gen >= max(stamped.values()) > 0
        assert batch == 0  # the pull's writer set it inside its transactions only
        # a record written by hand, outside the hub's writer: the trigger stamps it
        conn.execute(text(
            "INSERT INTO usage_records (source, record_id, account, resource_id, meter, start_s, end_s, quantity, "
            "qty_units, qty_nanos, labels, version, received_s) VALUES ('files', 'by-hand', 'acc-000', 'vm', "
            "'compute.vcpu', 86400 * 20000 + 5, NULL, '1', 1, 0, '{}', 1, 0)"))
        assert conn.execute(text("SELECT generation FROM usage_change_days WHERE day = 20000")).scalar_one() == \
            rollups.generation(conn) > gen


def test_rollups_stored_more_than_a_month_ago_are_dropped_when_others_are_stored(tmp_path, db_url):
    _ws, config, engine, _rows = _workspace(tmp_path, db_url)
    rate(engine, config, OCTOBER, now=NOW)
    with engine.begin() as conn:
        conn.execute(text("UPDATE rating_rollup_keys SET stored_at = :at"),
                     {"at": datetime.now(UTC) - rollups.RETENTION - timedelta(hours=1)})
        old = conn.execute(text("SELECT COUNT(*) FROM rating_rollup_keys")).scalar_one()
    assert old == 2 * len([p for p in config.catalog if not p.is_flat and p.meter is not None])
    rate(engine, config, parse_period("2026-09"), now=NOW)  # stores September's, drops October's
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM rating_rollup_keys")).scalar_one() == old
        assert conn.execute(text("SELECT COUNT(*) FROM rating_rollups r WHERE NOT EXISTS (SELECT 1 FROM "
                                 "rating_rollup_keys k WHERE k.key = r.key)")
                            ).scalar_one() == 0
    reads = UsageReads(engine)
    rate(engine, config, OCTOBER, now=NOW)
    assert reads.statements  # October is computed again


def test_emptying_the_usage_drops_the_rollups(tmp_path, db_url):
    _ws, config, engine, _rows = _workspace(tmp_path, db_url)
    assert rate(engine, config, OCTOBER, now=NOW)
    with engine.begin() as conn:
        # PostgreSQL's TRUNCATE fires no delete trigger (its own one drops the
        # rollups); on SQLite a DELETE of every row fires the row triggers
        conn.execute(text("TRUNCATE usage_records" if engine.dialect.name == "postgresql" else "DELETE FROM usage_records"))
    assert rate(engine, config, OCTOBER, now=NOW) == []


def _hub(engine: Any, config: Any) -> Any:
    from hub.app import Hub
    from hub.host import build_host

    return Hub(config, build_host(), engine)


def keep_open_rollups(engine: Any, config: Any, now: datetime) -> list[Any]:
    """``hub run``'s upkeep of the open periods' rollups (:func:`hub.scheduler.keep_open_rollups`)."""
    from hub.scheduler import keep_open_rollups as keep

    return keep(_hub(engine, config), now)


def open_periods(config: Any, now: datetime) -> list[Any]:
    return _hub(None, config).open_periods(now)


def test_hub_run_rates_the_open_month_once_and_the_pulls_keep_its_rollups_from_then_on(tmp_path, db_url):
    ws, config, engine, rows = _workspace(tmp_path, db_url)
    open_now = datetime(2026, 10, 20, tzinfo=UTC)
    assert open_periods(config, open_now) == [OCTOBER]
    assert _stored(engine) == []
    assert keep_open_rollups(engine, config, open_now) == [OCTOBER]
    stored = _stored(engine)
    metered = len([p for p in config.catalog if p.meter is not None])
    assert len(stored) == 2 * (metered - OTHER_PRODUCTS) and all(kept for _, kept in stored)  # per time zone
    assert keep_open_rollups(engine, config, open_now) == []  # still valid: nothing to rate
    ws.write("usage/z.csv", HEAD + "".join(r + "\n" for r in _changed_rows(rows, seed=8)))
    assert ws.hub("pull").exit_code == 0
    assert keep_open_rollups(engine, config, open_now) == []  # the pull kept them
    reads = UsageReads(engine)
    one = rate(engine, config, OCTOBER, ["acc-007"], now=open_now)
    assert not reads.scanned_meters() & set(KEPT_METERS)
    assert one == [c for c in _from_the_records(engine, config, now=open_now) if c.account == "acc-007"] and one
    with engine.begin() as conn:  # by hand: no writer adds it to the rollups
        conn.execute(text("DELETE FROM usage_records WHERE account = 'acc-007'"))
    keep_open_rollups(engine, config, open_now)  # _from_the_records dropped them: stored again
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM usage_records WHERE account = 'acc-008'"))
    assert keep_open_rollups(engine, config, open_now) == [OCTOBER]


def test_an_open_period_whose_rating_could_not_store_its_rollups_is_rated_again_at_the_next_run(
        tmp_path, db_url, monkeypatch, caplog):
    _ws, config, engine, _rows = _workspace(tmp_path, db_url)
    open_now = datetime(2026, 10, 20, tzinfo=UTC)
    monkeypatch.setattr(product_quantities, "_store_rollups", lambda *args: None)  # as when usage changed during it
    with caplog.at_level("INFO", logger="hub.rating"):
        assert keep_open_rollups(engine, config, open_now) == [OCTOBER]
    assert "rollups of 2026-10 not stored: usage changed during the rating; the next run tries again" in caplog.text
    assert _stored(engine) == []
    monkeypatch.undo()
    assert keep_open_rollups(engine, config, open_now) == [OCTOBER]
    assert _stored(engine) and keep_open_rollups(engine, config, open_now) == []


def test_two_products_of_one_meter_and_shape_share_one_rollup_key_stored_once(tmp_path, db_url, caplog):
    ws, _config, engine, _rows = _workspace(tmp_path, db_url)
    # vcpu at 10-minute slices is vcpu-slices' twin: the same quantities, priced alike
    ws.config(METERS + PRODUCTS.replace('name = "vcpu"\nmeter = "compute.vcpu"\n',
                                        'name = "vcpu"\nmeter = "compute.vcpu"\ngranularity = "10m"\n')
              + accounts_toml(N_ACCOUNTS))
    twins, _ = hub_of(ws)
    with caplog.at_level("INFO", logger="hub.rating"):
        first = rate(engine, twins, OCTOBER, now=NOW)
    assert "not stored" not in caplog.text
    metered = len([p for p in twins.catalog if p.meter is not None])
    assert len(_stored(engine)) == 2 * (metered - 1)  # per time zone, the twins once
    reads = UsageReads(engine)
    assert rate(engine, twins, OCTOBER, now=NOW) == first
    assert reads.statements == []
    by_product = {(c.account, c.product): c.exact_quantity for c in first}
    assert all(q == by_product[(acc, "vcpu-slices")] for (acc, product), q in by_product.items() if product == "vcpu")
