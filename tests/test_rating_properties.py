"""Property tests of rating (docs/billing-rules.md).

At 1 s granularity, with a per_unit price on a time_weighted meter:

1. splitting a record into adjacent pieces never changes the billed amount;
2. rating across any split of periods (the days of a month) never changes
   the total, also in Europe/Paris across the DST change of 2026-10-25;
3. the charges do not depend on the order records arrive in (shuffled rows,
   split across two files);
4. graduated tiers: the amount is the sum of the breakdown, and grows when a
   record is extended.

And, deterministically: at 600 s granularity splitting is *not* additive
(each piece is rounded up on its own), as the rules say.

Each hypothesis example gets its own directory (``tempfile``) and SQLite
store, copied from a store migrated once per module (a migration costs a
quarter of a second), pulls its CSV with :func:`hub.ingest.pull` and calls
:func:`hub.rating.rate` directly with a fixed clock.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.config import load_config
from hub.host import build_host
from hub.ingest import pull
from hub.periods import parse_period
from hub.pricing import round_money
from hub.rating import Charge, rate
from hub.store.db import open_store
from tests.conftest import HEADER, Workspace

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

UTC = timezone.utc
PARIS = ZoneInfo("Europe/Paris")


def epoch(*args: int, tz: timezone | ZoneInfo = UTC) -> int:
    return int(datetime(*args, tzinfo=tz).timestamp())


#: a clock after every period the tests rate (they are closed)
NOW = datetime(2026, 12, 15, tzinfo=UTC)
#: records live between these instants: October 2026 and a few days around it
WINDOW = (epoch(2026, 9, 28), epoch(2026, 11, 4))

METERS = """
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

[[meters]]
name = "memory.peak"
aggregation = "max"
unit = "GiB"

[[meters]]
name = "ips"
aggregation = "unique"

[[sources]]
name = "files"
type = "csv"
path = "usage/*.csv"
"""

ACCOUNTS = """
[[accounts]]
id = "acme"
name = "ACME GmbH"
country = "DE"

[[accounts]]
id = "globex"
name = "Globex SARL"
country = "FR"
timezone = "Europe/Paris"
"""

VCPU = """
[[products]]
name = "vcpu"
meter = "compute.vcpu"
price = { model = "per_unit", unit_price = "0.0000115" }
"""

VCPU_10M = """
[[products]]
name = "vcpu"
meter = "compute.vcpu"
granularity = "10m"
price = { model = "per_unit", unit_price = "0.0000115" }
"""

GRADUATED = """
[[products]]
name = "memory"
meter = "compute.memory"
price = { model = "graduated", tiers = [
  { up_to = "1000", unit_price = "0.01" },
  { up_to = "20000", unit_price = "0.005" },
  { unit_price = "0.0001" } ] }
"""

#: every meter aggregation the order property can exercise
EVERYTHING = VCPU + GRADUATED + """
[[products]]
name = "memory_h"
meter = "compute.memory"
per = "hour"
price = { model = "per_unit", unit_price = "0.0045" }

[[products]]
name = "egress"
meter = "network.egress"
price = { model = "package", size = "100", package_price = "1.50" }

[[products]]
name = "peak"
meter = "memory.peak"
price = { model = "per_unit", unit_price = "0.5" }

[[products]]
name = "ip"
meter = "ips"
itemize = "resource"
price = { model = "per_unit", unit_price = "2" }
"""


@dataclass(frozen=True)
class Row:
    record_id: str
    account: str
    resource: str
    meter: str
    start: int
    end: int | None  # None: still running
    quantity: Decimal

    def csv(self) -> str:
        end = "" if self.end is None else ts(self.end)
        return (f"{self.record_id},{self.account},{self.resource},{self.meter},"
                f"{ts(self.start)},{end},{format(self.quantity, 'f')}\n")


def ts(s: int) -> str:
    return datetime.fromtimestamp(s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------
# a throwaway hub per example


@pytest.fixture(scope="module")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated, empty SQLite store to copy into each example's directory."""
    path = tmp_path_factory.mktemp("template") / "hub.db"
    engine = open_store(f"sqlite:///{path}", path.parent)
    engine.dispose()
    return path


_HOST = []


def host():
    if not _HOST:
        _HOST.append(build_host())
    return _HOST[0]


class Hub:
    """A workspace whose usage has been pulled; ``rate(period)`` rates it."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.config = load_config(ws.config_path, host())
        self.engine = open_store(self.config.hub.database, self.config.base_dir)

    def pull(self, imported: int, updated: int = 0) -> None:
        (result,) = pull(self.config, host(), self.engine)
        assert result.ok, result
        counts = result.counts
        assert (counts.imported, counts.updated, counts.quarantined) == (imported, updated, 0), counts

    def rate(self, period: str, now: datetime = NOW) -> list[Charge]:
        return rate(self.engine, self.config, parse_period(period), now=now)


@contextlib.contextmanager
def hub_with(template: Path, products: str, files: dict[str, Sequence[Row]],
             accounts: str = ACCOUNTS) -> Iterator[Hub]:
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        shutil.copyfile(template, root / "hub.db")
        ws = Workspace(root, f"sqlite:///{root / 'hub.db'}")
        ws.config(METERS + products + accounts)
        for name, rows in files.items():
            ws.write(f"usage/{name}", HEADER + "".join(r.csv() for r in rows), dedent=False)
        hub = Hub(ws)
        try:
            hub.pull(imported=sum(len(rows) for rows in files.values()))
            yield hub
        finally:
            hub.engine.dispose()


def one(charges: list[Charge], account: str = "acme", product: str = "vcpu") -> Charge | None:
    found = [c for c in charges if (c.account, c.product) == (account, product)]
    assert len(found) <= 1
    return found[0] if found else None


def exact_of(charges: list[Charge], account: str, product: str = "vcpu") -> tuple[Fraction, Fraction]:
    """(exact quantity, exact amount) of a line, (0, 0) when there is none."""
    c = one(charges, account, product)
    return (Fraction(0), Fraction(0)) if c is None else (c.exact_quantity, c.exact_amount)


# --------------------------------------------------------------------------
# strategies

quantities = st.decimals(min_value=Decimal("0.000000001"), max_value=Decimal("5000"), places=9,
                         allow_nan=False, allow_infinity=False)
accounts = st.sampled_from(["acme", "globex"])
instants = st.integers(min_value=WINDOW[0], max_value=WINDOW[1])


@st.composite
def split_record(draw: st.DrawFn) -> tuple[Row, list[Row], datetime]:
    """A record, the same record cut into adjacent pieces, and a clock.

    The record may be running: then the clock may fall in October (an open
    period) or after it, and only the last piece runs; the other pieces,
    being finished, end before the clock, as real usage would.
    """
    start = draw(st.integers(min_value=WINDOW[0], max_value=WINDOW[1] - 2))
    running = draw(st.booleans())
    if running:
        end = None
        now_s = draw(st.one_of(st.just(int(NOW.timestamp())), st.integers(min_value=start + 2, max_value=WINDOW[1])))
        last = min(now_s, WINDOW[1])
    else:
        end = draw(st.integers(min_value=start + 2, max_value=WINDOW[1]))
        now_s = draw(st.one_of(st.just(int(NOW.timestamp())), instants))
        last = end
    cuts = sorted(draw(st.sets(st.integers(min_value=start + 1, max_value=last - 1), min_size=1, max_size=6)))
    record = Row("whole", draw(accounts), "vm-1", "compute.vcpu", start, end, draw(quantities))
    bounds = [start, *cuts, end]
    pieces = [replace(record, record_id=f"piece-{i}", start=a, end=b) for i, (a, b) in enumerate(zip(bounds, bounds[1:]))]
    return record, pieces, datetime.fromtimestamp(now_s, UTC)


# --------------------------------------------------------------------------
# 1. splitting a record


@SETTINGS
@given(case=split_record(), day=st.integers(min_value=1, max_value=31))
def test_splitting_a_record_into_adjacent_pieces_never_changes_the_amount(template_db, case, day):
    record, pieces, now = case
    periods = ["2026-09", "2026-10", "2026-11", f"2026-10-{day:02d}"]
    with hub_with(template_db, VCPU, {"whole.csv": [record]}) as whole:
        expected = {p: whole.rate(p, now) for p in periods}
    with hub_with(template_db, VCPU, {"pieces.csv": pieces}) as split:
        got = {p: split.rate(p, now) for p in periods}
    for p in periods:
        assert [(c.account, c.exact_quantity, c.exact_amount) for c in got[p]] == \
               [(c.account, c.exact_quantity, c.exact_amount) for c in expected[p]], p
        assert got[p] == expected[p], p


# --------------------------------------------------------------------------
# 2. splitting the period


def month_days(tz: ZoneInfo | timezone) -> tuple[int, int]:
    return parse_period("2026-10").epoch_bounds(tz)


@st.composite
def records_inside(draw: st.DrawFn, account: str, lo: int, hi: int) -> list[Row]:
    rows = []
    for i in range(draw(st.integers(min_value=1, max_value=3))):
        start = draw(st.integers(min_value=lo, max_value=hi - 1))
        end = draw(st.integers(min_value=start + 1, max_value=hi))
        rows.append(Row(f"r{i}", account, f"vm-{i}", "compute.vcpu", start, end, draw(quantities)))
    return rows


def assert_days_add_up_to_the_month(hub: Hub, account: str) -> None:
    month_q, month_amount = exact_of(hub.rate("2026-10"), account)
    assert month_q > 0
    days = [exact_of(hub.rate(f"2026-10-{d:02d}"), account) for d in range(1, 32)]
    assert sum(q for q, _ in days) == month_q
    assert sum(a for _, a in days) == month_amount


_UTC_MONTH = month_days(UTC)
_PARIS_MONTH = month_days(PARIS)


@SETTINGS
@given(rows=records_inside("acme", *_UTC_MONTH))
def test_the_days_of_a_month_add_up_to_the_month(template_db, rows):
    with hub_with(template_db, VCPU, {"x.csv": rows}) as hub:
        assert_days_add_up_to_the_month(hub, "acme")


@SETTINGS
@given(rows=records_inside("globex", *_PARIS_MONTH))
def test_the_days_of_a_paris_month_add_up_to_the_month(template_db, rows):
    with hub_with(template_db, VCPU, {"x.csv": rows}) as hub:
        assert_days_add_up_to_the_month(hub, "globex")


@SETTINGS
@given(rows=records_inside("globex", epoch(2026, 10, 24, tz=PARIS), epoch(2026, 10, 27, tz=PARIS)))
def test_the_days_of_a_paris_month_add_up_across_the_dst_change(template_db, rows):
    with hub_with(template_db, VCPU, {"x.csv": rows}) as hub:
        assert_days_add_up_to_the_month(hub, "globex")


def test_the_paris_dst_day_holds_25_hours(template_db):
    # a record over all of October 24 to 26 in Paris: 24 h + 25 h + 24 h
    row = Row("r1", "globex", "vm-1", "compute.vcpu", epoch(2026, 10, 24, tz=PARIS), epoch(2026, 10, 27, tz=PARIS),
              Decimal(1))
    with hub_with(template_db, VCPU, {"x.csv": [row]}) as hub:
        assert [exact_of(hub.rate(f"2026-10-{d}"), "globex")[0] for d in (24, 25, 26)] == [86400, 90000, 86400]
        assert exact_of(hub.rate("2026-10"), "globex") == (73 * 3600, 73 * 3600 * Fraction("0.0000115"))


# --------------------------------------------------------------------------
# 3. the order records arrive in


@st.composite
def many_records(draw: st.DrawFn) -> list[Row]:
    rows = []
    for i in range(draw(st.integers(min_value=1, max_value=10))):
        meter = draw(st.sampled_from(["compute.vcpu", "compute.memory", "network.egress", "memory.peak", "ips"]))
        start = draw(instants)
        end = draw(st.one_of(st.none(), st.integers(min_value=start, max_value=WINDOW[1])))
        resource = draw(st.sampled_from(["vm-1", "vm-2", "10.0.0.1"]))
        rows.append(Row(f"r{i}", draw(accounts), resource, meter, start, end, draw(quantities)))
    return rows


@SETTINGS
@given(data=st.data(), rows=many_records())
def test_the_charges_do_not_depend_on_the_order_records_arrive_in(template_db, data, rows):
    shuffled = data.draw(st.permutations(rows))
    cut = data.draw(st.integers(min_value=0, max_value=len(rows)))
    periods = ["2026-10", "2026-11", "2026-10-" + f"{data.draw(st.integers(1, 31)):02d}"]
    with hub_with(template_db, EVERYTHING, {"x.csv": rows}) as in_order:
        expected = {p: in_order.rate(p) for p in periods}
    with hub_with(template_db, EVERYTHING, {"b.csv": shuffled[:cut], "a.csv": shuffled[cut:]}) as out_of_order:
        got = {p: out_of_order.rate(p) for p in periods}
    for p in periods:
        assert got[p] == expected[p], p


# --------------------------------------------------------------------------
# 4. graduated tiers


def assert_breakdown_adds_up(c: Charge) -> None:
    parts = [Fraction(Decimal(t["amount"])) for t in c.tiers]
    assert sum(parts) == c.exact_amount
    assert sum(Fraction(Decimal(t["quantity"])) for t in c.tiers) == c.exact_quantity
    assert c.amount == round_money(sum(parts), c.currency)


@st.composite
def memory_records(draw: st.DrawFn) -> list[Row]:
    lo, hi = _UTC_MONTH
    rows = []
    for i in range(draw(st.integers(min_value=1, max_value=4))):
        start = draw(st.integers(min_value=lo - 3600, max_value=hi - 1))
        end = draw(st.integers(min_value=start + 1, max_value=min(start + 4 * 3600, hi + 3600)))
        q = draw(st.decimals(min_value=Decimal("0.001"), max_value=Decimal("8"), places=3))
        rows.append(Row(f"m{i}", "acme", f"vm-{i}", "compute.memory", start, end, q))
    return rows


@SETTINGS
@given(data=st.data(), rows=memory_records())
def test_graduated_amount_is_the_sum_of_its_tiers_and_grows_with_usage(template_db, data, rows):
    lo, hi = _UTC_MONTH
    which = data.draw(st.integers(min_value=0, max_value=len(rows) - 1))
    longer = data.draw(st.integers(min_value=1, max_value=6 * 3600))
    extended = replace(rows[which], end=rows[which].end + longer)
    with hub_with(template_db, GRADUATED, {"x.csv": rows}) as hub:
        before = one(hub.rate("2026-10"), "acme", "memory")
        if before is not None:
            assert_breakdown_adds_up(before)
        # the extended record arrives as a new version of the same record
        hub.ws.write("usage/x.csv", HEADER + "".join((extended if r is rows[which] else r).csv() for r in rows),
                     dedent=False)
        hub.pull(imported=0, updated=1)
        after = one(hub.rate("2026-10"), "acme", "memory")
    before_q, before_amount = (Fraction(0), Fraction(0)) if before is None else (before.exact_quantity,
                                                                                  before.exact_amount)
    after_q, after_amount = (Fraction(0), Fraction(0)) if after is None else (after.exact_quantity,
                                                                              after.exact_amount)
    if after is not None:
        assert_breakdown_adds_up(after)
    grew_inside = max(0, min(extended.end, hi) - max(rows[which].end, lo, extended.start))
    assert after_q == before_q + grew_inside * Fraction(extended.quantity)
    assert after_amount >= before_amount
    if grew_inside:
        assert after_amount > before_amount


# --------------------------------------------------------------------------
# granularity: splitting is not additive above 1 s


def test_at_600_second_granularity_splitting_a_record_bills_more(template_db):
    t0 = epoch(2026, 10, 1, 10)
    whole = Row("whole", "acme", "vm-1", "compute.vcpu", t0, t0 + 600, Decimal(1))
    pieces = [replace(whole, record_id="a", end=t0 + 300), replace(whole, record_id="b", start=t0 + 300)]
    with hub_with(template_db, VCPU_10M, {"x.csv": [whole]}) as hub:
        (c,) = hub.rate("2026-10")
        assert (c.quantity, c.exact_amount, c.amount) == (600, Fraction("0.0069"), Decimal("0.01"))
    with hub_with(template_db, VCPU_10M, {"x.csv": pieces}) as hub:
        (c,) = hub.rate("2026-10")
        # each 300 s piece is rounded up to 600 s on its own
        assert (c.quantity, c.exact_amount, c.amount) == (1200, Fraction("0.0138"), Decimal("0.01"))
