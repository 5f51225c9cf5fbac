"""Rating rollups (issue #3, "Speed"): a closed period's quantities, kept
while no usage changes (hub/store/rollups.py, migration 0006).

- A rating of a closed period by every account (a group of at least
  ``_IN_LIST_MAX`` accounts) stores its quantities; the same rating again
  reads them and does not read ``usage_records`` at all, and gives the same
  charges; so does a rating of one account.
- Any change of usage that can count in the period (a pull that updates
  or adds a record starting before its end, a record deleted by hand)
  makes the next rating scan again and bill the new usage exactly; usage
  that starts after the period's end (the next month's, arriving every
  day) leaves its rollups in use.
- A write that commits between the generation's read and the scan never
  leaves a rollup that a later rating reads.
- An open period (running records billed to now) stores nothing; another
  catalog (``hub rate --catalog``, another granularity) never reads this
  one's rollups.

Every test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from sqlalchemy import event, text

import hub.rating as rating
from hub.periods import parse_period
from hub.rating import rate
from hub.store import rollups
from tests.conftest import Workspace
from tests.test_rating_speed_paths import METERS, NOW, PRODUCTS, accounts_toml, hub_of, setup, usage_rows

UTC = timezone.utc
N_ACCOUNTS = 200  # 134 in UTC, 66 in Paris: both groups above hub.rating._IN_LIST_MAX, scanned
OCTOBER = parse_period("2026-10")


class UsageReads:
    """The statements of ``engine`` that read ``usage_records``."""

    def __init__(self, engine: Any) -> None:
        self.statements: list[str] = []
        event.listen(engine, "after_cursor_execute", self._seen)

    def _seen(self, conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if "usage_records" in statement:
            self.statements.append(statement)


def _workspace(tmp_path: Any, db_url: str) -> tuple[Workspace, Any, Any, list[str]]:
    assert N_ACCOUNTS // 3 >= rating._IN_LIST_MAX
    ws = Workspace(tmp_path, db_url)
    accounts = [f"acc-{i:03d}" for i in range(N_ACCOUNTS)]
    rows = usage_rows(accounts, 1500, seed=31)
    setup(ws, N_ACCOUNTS, rows)
    config, engine = hub_of(ws)
    return ws, config, engine, rows


def _stored(engine: Any) -> list[tuple[int, int]]:
    with engine.connect() as conn:
        return conn.execute(text("SELECT generation, row_count FROM rating_rollup_keys ORDER BY key")).all()


def _total(charges: list[Any]) -> Decimal:
    return sum((c.amount for c in charges), Decimal(0))


def test_a_closed_period_rated_again_reads_its_rollups_and_not_the_usage(tmp_path, db_url):
    _ws, config, engine, _rows = _workspace(tmp_path, db_url)
    first = rate(engine, config, OCTOBER, now=NOW)
    assert first
    with engine.connect() as conn:
        gen = rollups.generation(conn)
    stored = _stored(engine)
    products = [p for p in config.catalog if not p.is_flat and p.meter is not None]
    assert len(stored) == 2 * len(products) and {g for g, _ in stored} == {gen}  # per time zone
    reads = UsageReads(engine)
    again = rate(engine, config, OCTOBER, now=NOW)
    one = rate(engine, config, OCTOBER, ["acc-007"], now=NOW)
    assert reads.statements == []
    assert again == first
    assert one == [c for c in first if c.account == "acc-007"] and one


def test_a_pull_that_changes_a_record_moves_the_generation_and_the_next_rating_bills_it(tmp_path, db_url):
    ws, config, engine, rows = _workspace(tmp_path, db_url)
    before = rate(engine, config, OCTOBER, now=NOW)
    with engine.connect() as conn:
        gen = rollups.generation(conn)
    # acc-000 gets 4 vCPU for the whole of October on top: 4 x 31 x 86,400 vCPU-s
    extra = "big-1,acc-000,vm-big,compute.vcpu,2026-10-01T00:00:00Z,2026-11-01T00:00:00Z,4\n"
    ws.write("usage/y.csv", "record_id,account,resource_id,meter,start,end,quantity\n" + extra)
    assert ws.hub("pull").exit_code == 0
    with engine.connect() as conn:
        assert rollups.generation(conn) > gen
    reads = UsageReads(engine)
    after = rate(engine, config, OCTOBER, now=NOW)
    assert reads.statements  # scanned again
    fresh = [c for c in after if c.account == "acc-000" and c.product == "vcpu"]
    old = [c for c in before if c.account == "acc-000" and c.product == "vcpu"]
    assert fresh[0].exact_quantity - (old[0].exact_quantity if old else 0) == 4 * 31 * 86400
    assert [c for c in after if c.account != "acc-000"] == [c for c in before if c.account != "acc-000"]
    # the record changes in place: 1 vCPU instead of 4
    ws.write("usage/y.csv", "record_id,account,resource_id,meter,start,end,quantity\n" + extra.replace(",4\n", ",1\n"))
    assert ws.hub("pull").exit_code == 0
    changed = [c for c in rate(engine, config, OCTOBER, now=NOW) if c.account == "acc-000" and c.product == "vcpu"]
    assert changed[0].exact_quantity - (old[0].exact_quantity if old else 0) == 31 * 86400


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
    # stamped with what was read before the scan: the first group's (UTC)
    # stamp is older than the usage it saw (on PostgreSQL the second group,
    # rated after the write, stored under the current one and dropped it)
    assert stamps == ({current - 1} if engine.dialect.name == "sqlite" else {current})
    reads = UsageReads(engine)
    after = rate(engine, config, OCTOBER, now=NOW)
    assert reads.statements  # the stale stamp is not read: scanned again
    assert after == during  # the scan saw the write already, and so does this one
    assert {g for g, _ in _stored(engine)} == {current}


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
    assert reads.statements == []
    # a record of September, running: it counts in October (and a latest
    # meter looks at every start before the period's end)
    ws.write("usage/earlier.csv", head + "early-1,acc-000,vm-8,compute.vcpu,2026-09-15T00:00:00Z,,2\n")
    assert ws.hub("pull").exit_code == 0
    after = rate(engine, config, OCTOBER, now=NOW)
    assert reads.statements
    vcpu = {c.account: c for c in after if c.product == "vcpu"}
    old = {c.account: c for c in before if c.product == "vcpu"}
    assert vcpu["acc-000"].exact_quantity - (old["acc-000"].exact_quantity if "acc-000" in old else 0) == 2 * 31 * 86400
    assert [c for c in after if c.account != "acc-000"] == [c for c in before if c.account != "acc-000"]


def test_an_open_period_stores_no_rollups(tmp_path, db_url):
    _ws, config, engine, _rows = _workspace(tmp_path, db_url)
    rate(engine, config, OCTOBER, now=datetime(2026, 10, 20, tzinfo=UTC))
    assert _stored(engine) == []


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
                                 "rating_rollup_keys k WHERE k.key = r.key AND k.generation = r.generation)")
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
