"""The billable-seconds rule (docs/billing-rules.md, "Granularity and
minimum"): :mod:`hub.billable`'s Python reference, worked examples of it,
and a property test that the SQL the rating runs computes the same.

The property test draws records (starts and ends around a period,
running records among them, zero-length ones, ones that run on for weeks),
a granularity, a minimum, a period (a month, a week, a day, across the
daylight-saving changes of Europe/Paris) and a clock, writes the records
into the store and compares, record by record, what the reference bills
with what each SQL rendering of the rule bills:

- the per-record query of :func:`hub.rating.product_sql` (``hub trace``,
  ``hub reconcile``) and its grouped form (a rating of a few products);
- the one scan of :func:`hub.rating.one_scan_sql` (every time-weighted
  product at once; every record, the finished ones, the running ones);
- the rollup delta of :func:`hub.store.rollups.rollup_delta_sql` (what the
  writers add to a key's rollups), for an open and a closed period's key.

The reference is given every period the record touches (each piece rounded
up on its own), the SQL only the bounds :func:`hub.rating.after_bounds`
gives it: so the test also checks that those reach far enough.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text

from hub.billable import PeriodSeconds, billable_in_period, billable_seconds, minimum_top_up, with_minimum
from hub.config.catalog import Product
from hub.periods import Period, parse_period
from hub.pricing import PerUnit
from hub.quantities import NANOS, combine_split_sums, format_parts
from hub.rating import after_bound_list, after_bounds, product_sql
from hub.rating.scan import one_scan_quantities
from hub.rating.sql import quantities
from hub.store.db import open_store
from hub.store.rollups import rollup_delta_sql
from hub.store.tables import usage_records

# --------------------------------------------------------------------------
# Granularity and minimum, worked examples


def test_twelve_minutes_forty_two_seconds_bill_762_seconds_at_one_second():
    assert billable_seconds(12 * 60 + 42, 1) == 762


def test_twelve_minutes_forty_two_seconds_bill_1200_seconds_at_ten_minutes():
    assert billable_seconds(762, 600) == 1200


@pytest.mark.parametrize(("seconds", "granularity", "billed"), [
    (0, 600, 0), (-5, 600, 0), (1, 600, 600), (600, 600, 600), (601, 600, 1200), (3600, 3600, 3600),
])
def test_granularity_bills_started_slices(seconds, granularity, billed):
    assert billable_seconds(seconds, granularity) == billed


def test_a_granularity_below_one_second_is_refused():
    with pytest.raises(ValueError, match="granularity must be at least 1 second, not 0"):
        billable_seconds(10, 0)


def test_a_finished_record_below_the_minimum_is_topped_up_to_it():
    assert with_minimum(30, 60, finished=True) == 60
    assert minimum_top_up(30, 60, finished=True) == 30


def test_a_finished_record_at_or_above_the_minimum_is_billed_as_is():
    assert with_minimum(60, 60, finished=True) == 60
    assert with_minimum(90, 60, finished=True) == 90
    assert minimum_top_up(90, 60, finished=True) == 0


def test_a_running_record_gets_no_top_up():
    assert with_minimum(30, 60, finished=False) == 30
    assert minimum_top_up(30, 60, finished=False) == 0


def test_the_minimum_applies_after_granularity():
    # 42 s at 30 s granularity bills 60 s: a 50 s minimum adds nothing
    assert with_minimum(billable_seconds(42, 30), 50, finished=True) == 60
    assert with_minimum(billable_seconds(12, 30), 50, finished=True) == 50


@given(st.integers(min_value=0, max_value=10**7), st.integers(min_value=0, max_value=10**7))
def test_at_one_second_granularity_splitting_a_run_never_changes_the_billed_seconds(a, b):
    assert billable_seconds(a, 1) + billable_seconds(b, 1) == billable_seconds(a + b, 1)


@given(st.integers(min_value=0, max_value=10**7), st.integers(min_value=0, max_value=10**7),
       st.integers(min_value=1, max_value=86_400))
def test_a_coarser_granularity_never_bills_less_than_the_seconds_used(a, b, g):
    assert a <= billable_seconds(a, g) < a + g or a == 0
    assert billable_seconds(a + b, g) <= billable_seconds(a, g) + billable_seconds(b, g)


# --------------------------------------------------------------------------
# per record and period

HOUR, DAY = 3600, 86400
#: October 2026 (UTC): [p0, p1), then November's end
OCT = (1790812800, 1793491200)
NOV_END = 1796083200


def test_a_record_is_clipped_to_the_period_and_rounded_up_per_period():
    # 23:50 on 31 October to 00:12 on 1 November at 10-minute slices: 10 min
    # here (one slice), 12 min in November (two slices, its own)
    start = OCT[1] - 600
    assert billable_in_period(start, OCT[1] + 720, OCT, now=NOV_END, granularity=600) == PeriodSeconds(600, 600, 0)
    assert billable_in_period(start, OCT[1] + 720, (OCT[1], NOV_END), now=NOV_END, granularity=600) == \
        PeriodSeconds(720, 1200, 0)


def test_the_minimum_tops_up_in_the_period_of_the_start_counting_the_later_pieces():
    # a 1-hour minimum: 10 min here and 12 min (two slices) in November bill
    # 30 min in total: October, where it starts, gets the other 30
    start, end = OCT[1] - 600, OCT[1] + 720
    assert billable_in_period(start, end, (*OCT, NOV_END), now=NOV_END, granularity=600, minimum=HOUR) == \
        PeriodSeconds(600, 600, 1800)
    # November holds no start: no top-up there
    assert billable_in_period(start, end, (OCT[1], NOV_END), now=NOV_END, granularity=600, minimum=HOUR).topup == 0


def test_a_record_that_starts_in_the_period_with_no_seconds_still_gets_the_minimum():
    assert billable_in_period(OCT[0] + 5, OCT[0] + 5, (*OCT, NOV_END), now=NOV_END, minimum=60) == \
        PeriodSeconds(0, 0, 60)


def test_a_running_record_runs_to_now_or_the_period_end_and_gets_no_top_up():
    start = OCT[1] - DAY
    assert billable_in_period(start, None, (*OCT, NOV_END), now=start + 90, granularity=60, minimum=HOUR) == \
        PeriodSeconds(90, 120, 0)
    assert billable_in_period(start, None, (*OCT, NOV_END), now=NOV_END, minimum=HOUR) == PeriodSeconds(DAY, DAY, 0)


# --------------------------------------------------------------------------
# the SQL against the reference, on random records

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

PERIODS = [("2026-10", "Europe/Paris"), ("2026-10", "UTC"), ("2026-10-25", "Europe/Paris"),
           ("2026-03-29", "Europe/Paris"), ("2026-W43", "UTC"), ("2026-02", "UTC")]
METER = "compute.vcpu"
ACCOUNT = "acme"


@pytest.fixture
def store(db_url: str, tmp_path: Any) -> Iterator[Engine]:
    engine = open_store(db_url, tmp_path)
    yield engine
    engine.dispose()


@st.composite
def cases(draw: st.DrawFn) -> dict[str, Any]:
    period_text, tz_name = draw(st.sampled_from(PERIODS))
    period, tz = parse_period(period_text), ZoneInfo(tz_name)
    p0, p1 = period.epoch_bounds(tz)
    g = draw(st.sampled_from([1, 7, 60, 600, HOUR]))
    m = draw(st.sampled_from([0, 1, 59, 600, HOUR, DAY, 3 * DAY, 40 * DAY]))
    edges = [p0 - 1, p0, p0 + 1, p1 - 1, p1, p1 + 1]
    # near the bounds, on the scale of the minimum, where the pieces after
    # the period make or miss it
    near = max(2 * m, 2 * HOUR)
    records = []
    for i in range(draw(st.integers(min_value=1, max_value=6))):
        start = draw(st.one_of(st.sampled_from(edges),
                               st.integers(min_value=p1 - near, max_value=p1 + HOUR),
                               st.integers(min_value=p0 - near, max_value=p0 + near),
                               st.integers(min_value=p0 - 3 * DAY, max_value=p1 + DAY)))
        end = draw(st.one_of(
            st.none(),
            st.integers(min_value=0, max_value=2 * HOUR).map(lambda d, s=start: s + d),
            st.integers(min_value=0, max_value=2 * m + g).map(lambda d, s=start: s + d),
            st.integers(min_value=0, max_value=50 * DAY).map(lambda d, s=start: s + d),
            st.sampled_from(edges).filter(lambda e, s=start: e >= s)))
        units = draw(st.integers(min_value=0, max_value=10**6))
        nanos = draw(st.integers(min_value=0, max_value=NANOS - 1))
        records.append({"record_id": f"r{i}", "resource_id": f"vm-{i}", "start_s": start, "end_s": end,
                        "qty_units": units, "qty_nanos": nanos})
    now = draw(st.one_of(st.sampled_from([p1, p1 + 40 * DAY]),
                         st.integers(min_value=p0 - DAY, max_value=p1 + DAY)))
    return {"period": period, "tz": tz, "g": g, "m": m, "records": records, "now": now}


def every_period_end(period: Period, tz: ZoneInfo, until: int) -> list[int]:
    """The ends of the periods after ``period`` up to the first ending at or after ``until``."""
    ends: list[int] = []
    while not ends or ends[-1] < until:
        period = period.following()
        ends.append(period.epoch_bounds(tz)[1])
    return ends


def reference(case: dict[str, Any], now: int | None = None) -> dict[str, PeriodSeconds]:
    """What the reference bills, per record id."""
    p0, p1 = case["period"].epoch_bounds(case["tz"])
    latest = max([r["end_s"] for r in case["records"] if r["end_s"] is not None], default=p1)
    bounds = (p0, p1, *every_period_end(case["period"], case["tz"], latest))
    return {r["record_id"]: billable_in_period(r["start_s"], r["end_s"], bounds, case["now"] if now is None else now,
                                               case["g"], case["m"])
            for r in case["records"]}


def quantity(record: dict[str, Any]) -> Fraction:
    return Fraction(record["qty_units"] * NANOS + record["qty_nanos"], NANOS)


def expected_lines(case: dict[str, Any], billed: dict[str, PeriodSeconds], which: str | None = None
                   ) -> dict[tuple[str, str], tuple[Fraction, int]]:
    """(Q, records) per (account, resource) of the records billing something
    (each record its own resource), of the ``which`` records only."""
    out = {}
    for r in case["records"]:
        if which == "finished" and r["end_s"] is None or which == "running" and r["end_s"] is not None:
            continue
        seconds = billed[r["record_id"]].billed
        if seconds > 0:
            out[(ACCOUNT, r["resource_id"])] = (quantity(r) * seconds, 1)
    return out


def billing(lines: dict[tuple[str, str], tuple[Fraction, int]]) -> dict[tuple[str, str], tuple[Fraction, int]]:
    """The lines of ``lines`` with records that bill something."""
    return {k: (q, n) for k, (q, n) in lines.items() if n}


def write(engine: Engine, case: dict[str, Any]) -> None:
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM usage_records"))
        conn.execute(usage_records.insert(), [
            {**r, "source": "files", "account": ACCOUNT, "meter": METER, "unit": None, "labels": "{}",
             "origin": None, "version": 1, "received_s": 0,
             "quantity": format_parts(r["qty_units"], r["qty_nanos"])} for r in case["records"]])


def params_of(case: dict[str, Any]) -> dict[str, Any]:
    p0, p1 = case["period"].epoch_bounds(case["tz"])
    return {"p0": p0, "p1": p1, "run_end": min(case["now"], p1), "accounts": [ACCOUNT], "meter": METER,
            "g": case["g"], "m": case["m"], **after_bounds(case["period"], case["tz"], case["m"])}


@SETTINGS
@given(case=cases())
def test_the_rating_s_sql_bills_what_the_reference_bills(store: Engine, case: dict[str, Any]) -> None:
    write(store, case)
    billed = reference(case)
    params = params_of(case)
    pieces = len(after_bounds(case["period"], case["tz"], case["m"]))
    product = Product("vcpu", PerUnit(Decimal(1)), meter=METER, per="second", granularity=case["g"],
                      minimum=case["m"], itemize="resource")
    nothing = PeriodSeconds(0, 0, 0)
    with store.connect() as conn:
        # record by record: hub trace's and hub reconcile's query
        rows = conn.execute(product_sql("time_weighted", True, per_record=True, after_pieces=pieces), params)
        seen = {row.record_id: PeriodSeconds(int(row.secs), int(row.inside), int(row.topup)) for row in rows}
        assert seen == {k: v for k, v in billed.items() if k in seen}
        assert all(v == nothing for k, v in billed.items() if k not in seen)
        # grouped per resource: a rating product by product (a line of
        # records that bill nothing is no line)
        assert billing(quantities(conn, "time_weighted", True, params)) == expected_lines(case, billed)
        # the one scan, of every record, the finished ones and the running ones
        base = {k: params[k] for k in ("p0", "p1", "run_end", "accounts")}
        for which in (None, "finished", "running"):
            for filtered in (True, False):
                (got,) = one_scan_quantities(conn, [product], case["period"], case["tz"], base, filtered,
                                             records=which)
                assert got == expected_lines(case, billed, which), (which, filtered)


@SETTINGS
@given(case=cases())
def test_the_writers_rollup_deltas_bill_what_the_reference_bills(store: Engine, case: dict[str, Any]) -> None:
    p0, p1 = case["period"].epoch_bounds(case["tz"])
    dialect = store.dialect.name
    with store.connect() as conn, conn.begin() as transaction:
        conn.execute(text("CREATE TEMP TABLE test_delta (account text, resource_id text, meter text, "
                          "start_s bigint, end_s bigint, qty_units bigint, qty_nanos bigint, sign integer)"))
        conn.execute(text("INSERT INTO test_delta VALUES (:account, :resource_id, :meter, :start_s, :end_s, "
                          ":qty_units, :qty_nanos, 1)"),
                     [{**r, "account": ACCOUNT, "meter": METER} for r in case["records"]])
        # an open period's key holds the finished records; a closed one's
        # the running ones too, billed to the period's end
        for key, running in (("open", False), ("closed", True)):
            spec = {"aggregation": "time_weighted", "meter": METER, "itemized": True, "g": case["g"],
                    "m": case["m"], "bounds": after_bound_list(case["period"], case["tz"], case["m"]),
                    "p0": p0, "p1": p1, "running": running}
            sql, params = rollup_delta_sql(dialect, spec, "test_delta")
            conn.execute(text(sql), {**params, "key": key})
            got = {(account, rkey): (combine_split_sums(*(int(v) for v in sums)), int(n))
                   for account, rkey, n, *sums in conn.execute(
                       text("SELECT account, rkey, n, s1, s2, s3, s4 FROM rating_rollups WHERE key = :key"),
                       {"key": key})}
            expected = expected_lines(case, reference(case, now=p1), None if running else "finished")
            assert billing(got) == expected, key
        transaction.rollback()
