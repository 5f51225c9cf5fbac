"""hub.pricing: from a quantity to an exact amount, rounded once per line.

Every expected value is worked out by hand from docs/billing-rules.md
(Prices, Lines). Amounts are compared as exact Fractions before rounding
and as Decimal strings after, so "0.35" and "0.350" are told apart. (The
billable seconds, granularity and minimum: tests/test_rating_billable.py.)
"""

from __future__ import annotations

from decimal import Decimal as D
from fractions import Fraction as F

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.pricing import (
    Flat,
    Package,
    PerUnit,
    Tier,
    Tiered,
    after_free,
    charge,
    charge_decimal,
    finite_decimal,
    flat_amount,
    minor_digits,
    price_of,
    priced_quantity,
    round_money,
    to_decimal,
)

VCPU = PerUnit(D("0.0000115"))  # per vCPU-second
MEMORY = Tiered("graduated", (Tier(D("1000"), D("0.0055")), Tier(None, D("0.0045"))))  # per GiB-hour
STORAGE = Tiered("volume", (Tier(D("100"), D("0.10")), Tier(D("1000"), D("0.08")), Tier(None, D("0.05"))))
JOBS = Package(D("100"), D("1.50"))


# --------------------------------------------------------------------------
# Currencies and rounding


def test_minor_units_come_from_iso_4217():
    assert (minor_digits("EUR"), minor_digits("JPY"), minor_digits("BHD")) == (2, 0, 3)


def test_an_unknown_currency_has_no_minor_unit():
    with pytest.raises(ValueError, match="'XXY' is not an ISO 4217 currency"):
        minor_digits("XXY")


@pytest.mark.parametrize(("seconds", "exact", "half_up", "half_even"), [
    (30_000, "0.345", "0.35", "0.34"),   # a tie after an even digit: half-even stays
    (50_000, "0.575", "0.58", "0.58"),   # a tie after an odd digit: both go up
    (70_000, "0.805", "0.81", "0.80"),
    (10_000, "0.115", "0.12", "0.12"),
    (29_999, "0.3449885", "0.34", "0.34"),  # not a tie: both modes agree
])
def test_half_cent_ties_of_vcpu_seconds_round_by_the_hub_mode(seconds, exact, half_up, half_even):
    priced = price_of(VCPU, seconds)
    assert priced.exact == F(D(exact))
    assert str(round_money(priced.exact, "EUR", "half_up")) == half_up
    assert str(round_money(priced.exact, "EUR", "half_even")) == half_even


def test_half_up_rounds_a_negative_tie_away_from_zero():
    assert str(round_money(D("-0.345"), "EUR", "half_up")) == "-0.35"
    assert str(round_money(D("-0.345"), "EUR", "half_even")) == "-0.34"


@pytest.mark.parametrize(("amount", "half_up", "half_even"), [
    ("1.5", "2", "2"),
    ("2.5", "3", "2"),
    ("1234.4999", "1234", "1234"),
])
def test_a_zero_decimal_currency_rounds_to_whole_yen(amount, half_up, half_even):
    assert str(round_money(D(amount), "JPY", "half_up")) == half_up
    assert str(round_money(D(amount), "JPY", "half_even")) == half_even


@pytest.mark.parametrize(("amount", "half_up", "half_even"), [
    ("0.1235", "0.124", "0.124"),
    ("0.1225", "0.123", "0.122"),
    ("7", "7.000", "7.000"),
])
def test_a_three_decimal_currency_rounds_to_the_fils(amount, half_up, half_even):
    assert str(round_money(D(amount), "BHD", "half_up")) == half_up
    assert str(round_money(D(amount), "BHD", "half_even")) == half_even


def test_a_jpy_line_from_per_second_prices_is_whole_yen():
    # 90,000 vCPU-s at 0.0017 JPY = 153 JPY; 12,345 vCPU-s = 20.9865 JPY -> 21
    assert str(round_money(price_of(PerUnit(D("0.0017")), 90_000).exact, "JPY")) == "153"
    assert str(round_money(price_of(PerUnit(D("0.0017")), 12_345).exact, "JPY")) == "21"


def test_rounded_amounts_always_show_the_currency_places():
    assert str(round_money(0, "EUR")) == "0.00"
    assert str(round_money(F(5), "EUR")) == "5.00"
    assert str(round_money(F(5), "JPY")) == "5"


def test_an_amount_with_thirty_significant_digits_rounds_exactly():
    # 10^12 vCPU-s + 1/2000 of a vCPU-s at 0.0000115: 11,500,000.0000000000575
    q = D("1000000000000.0005")
    assert price_of(VCPU, q).exact == F(q) * F(D("0.0000115"))
    assert str(round_money(price_of(VCPU, q).exact, "EUR")) == "11500000.00"
    # just above a tie, 30 significant digits out
    assert str(round_money(D("11500000.00500000000000000000001"), "EUR", "half_even")) == "11500000.01"
    assert str(round_money(D("11500000.00499999999999999999999"), "EUR", "half_up")) == "11500000.00"


def test_an_unknown_rounding_mode_is_refused():
    with pytest.raises(ValueError, match="'up' is not a rounding mode; use one of: half_up, half_even"):
        round_money(D("1"), "EUR", "up")


def test_floats_never_reach_money():
    with pytest.raises(TypeError, match="is a float"):
        price_of(VCPU, 1.5)
    with pytest.raises(TypeError, match="is a float"):
        round_money(0.345, "EUR")


# --------------------------------------------------------------------------
# The priced unit and the free allowance


def test_per_hour_divides_unit_seconds_exactly_by_3600():
    # 1000 GiB-s = 5/18 GiB-h, at 0.0055 = 11/7200 = 0.0015277...: no finite decimal
    priced = charge(MEMORY, 1000, per="hour")
    assert priced.quantity == F(5, 18)
    assert priced.exact == F(11, 7200)
    assert priced.exact_amount == D("0.001527777778")
    assert str(round_money(priced.exact, "EUR")) == "0.00"
    assert str(round_money(priced.exact, "BHD")) == "0.002"


def test_a_per_hour_tie_is_a_tie_even_when_the_hours_do_not_divide():
    # 692,000 GiB-s = 192.222... GiB-h; at 0.0045 that is 0.865 exactly.
    # Dividing first in 28-digit Decimal gives 0.8649999999999999999999999999,
    # which half-up would wrongly round down to 0.86.
    priced = charge(PerUnit(D("0.0045")), 692_000, per="hour")
    assert priced.quantity == F(1730, 9)
    assert priced.exact == F(865, 1000)
    assert str(round_money(priced.exact, "EUR", "half_up")) == "0.87"
    assert str(round_money(priced.exact, "EUR", "half_even")) == "0.86"
    # 412,000 GiB-s: 0.515 exactly (divided first: 0.51499...98, 0.51 in both modes)
    assert str(round_money(charge(PerUnit(D("0.0045")), 412_000, per="hour").exact, "EUR", "half_even")) == "0.52"


@pytest.mark.parametrize(("per", "quantity"), [
    ("second", F(86_400)), ("minute", F(1440)), ("hour", F(24)), ("day", F(1)), ("unit", F(86_400)),
])
def test_a_day_of_unit_seconds_in_each_priced_unit(per, quantity):
    assert priced_quantity(86_400, per) == quantity


def test_an_unknown_priced_unit_is_refused():
    with pytest.raises(ValueError, match="'week' is not one of: second, minute, hour, day, unit"):
        priced_quantity(1, "week")


def test_the_free_allowance_is_taken_off_before_the_price():
    # 25 GB egress, 10 GB free, at 0.01: 15 GB billed = 0.15
    priced = charge(PerUnit(D("0.01")), 25, free=D("10"))
    assert (priced.quantity, priced.free, priced.exact) == (15, 10, F(15, 100))


def test_a_free_allowance_larger_than_the_usage_leaves_nothing_to_pay():
    priced = charge(PerUnit(D("0.01")), 7, free=D("10"))
    assert (priced.quantity, priced.free, priced.exact) == (0, 7, 0)
    assert after_free(7, 10) == 0


def test_a_free_allowance_is_in_the_priced_unit():
    # 36,000 GiB-s = 10 GiB-h; 4 GiB-h free; 6 GiB-h at 0.0055 = 0.033
    priced = charge(MEMORY, 36_000, per="hour", free=D("4"))
    assert (priced.quantity, priced.free, priced.exact) == (6, 4, F(33, 1000))


def test_a_free_allowance_comes_off_the_first_tier():
    # 1500 GiB-h with 600 free: 900 left, all in the first tier
    priced = charge(MEMORY, 1500 * 3600, per="hour", free=D("600"))
    assert priced.exact == 900 * F(D("0.0055"))
    assert [p.tier for p in priced.breakdown] == [1]


# --------------------------------------------------------------------------
# Price models


def test_per_unit_prices_the_quantity_at_the_unit_price():
    priced = price_of(VCPU, 762)
    assert priced.exact == F(D("0.008763"))
    assert [(p.tier, p.quantity, p.unit_price, p.amount) for p in priced.breakdown] == \
        [(1, 762, D("0.0000115"), F(D("0.008763")))]


def test_graduated_prices_a_quantity_straddling_a_tier_boundary_in_both_tiers():
    # 1500 GiB-h: 1000 at 0.0055 (5.50) + 500 at 0.0045 (2.25) = 7.75
    priced = price_of(MEMORY, 1500)
    assert priced.exact == F(D("7.75"))
    assert [(p.tier, p.quantity, p.unit_price, p.amount, p.up_to) for p in priced.breakdown] == [
        (1, 1000, D("0.0055"), F(D("5.5")), D("1000")),
        (2, 500, D("0.0045"), F(D("2.25")), None),
    ]


def test_graduated_prices_a_quantity_at_a_boundary_in_the_lower_tier_only():
    priced = price_of(MEMORY, 1000)
    assert priced.exact == F(D("5.5"))
    assert [p.tier for p in priced.breakdown] == [1]


def test_graduated_prices_a_quantity_straddling_a_boundary_from_unit_seconds():
    # a VM with 4 GiB for 300 hours (4,320,000 GiB-s = 1200 GiB-h):
    # 1000 x 0.0055 + 200 x 0.0045 = 5.50 + 0.90 = 6.40
    priced = charge(MEMORY, 4 * 300 * 3600, per="hour")
    assert priced.exact == F(D("6.4"))
    assert str(round_money(priced.exact, "EUR")) == "6.40"


def test_graduated_with_nothing_to_price_has_no_parts():
    assert price_of(MEMORY, 0) == price_of(MEMORY, F(0))
    assert price_of(MEMORY, 0).exact == 0
    assert price_of(MEMORY, 0).breakdown == ()


@pytest.mark.parametrize(("quantity", "tier", "exact"), [
    ("0", 1, "0"),
    ("50", 1, "5"),
    ("100", 1, "10"),          # at the boundary: the tier holds Q <= up_to
    ("101", 2, "8.08"),        # just above: all of it at the second tier's price
    ("1000", 2, "80"),
    ("1000.5", 3, "50.025"),
    ("20000", 3, "1000"),
])
def test_volume_prices_all_of_the_quantity_at_the_tier_that_holds_it(quantity, tier, exact):
    priced = price_of(STORAGE, D(quantity))
    assert priced.exact == F(D(exact))
    assert [(p.tier, p.quantity) for p in priced.breakdown] == [(tier, F(D(quantity)))]


@pytest.mark.parametrize(("quantity", "packages", "exact"), [
    ("0", 0, "0"), ("1", 1, "1.50"), ("100", 1, "1.50"), ("100.000000001", 2, "3.00"), ("250", 3, "4.50"),
])
def test_package_bills_every_started_package(quantity, packages, exact):
    priced = price_of(JOBS, D(quantity))
    assert priced.exact == F(D(exact))
    assert [(p.quantity, p.unit_price) for p in priced.breakdown] == [(packages, D("1.50"))]


def test_a_flat_price_is_prorated_by_the_seconds_the_account_was_active():
    # 9.00 a month; active 20 of 30 days -> 6.00
    assert flat_amount(D("9.00"), 20 * 86_400, 30 * 86_400) == 6
    # active 10 of 31 days -> 90/31 = 2.9032... -> 2.90
    amount = flat_amount(D("9.00"), 10 * 86_400, 31 * 86_400)
    assert amount == F(90, 31)
    assert str(round_money(amount, "EUR")) == "2.90"
    assert flat_amount(D("9.00"), 31 * 86_400, 31 * 86_400) == 9


def test_a_flat_price_is_not_priced_by_quantity():
    with pytest.raises(TypeError, match="prorate it with flat_amount"):
        price_of(Flat(D("9.00")), 1)


def test_flat_proration_outside_the_period_is_refused():
    with pytest.raises(ValueError, match="active seconds must be within 0..100, not 101"):
        flat_amount(D("9"), 101, 100)


def test_a_negative_quantity_is_refused():
    with pytest.raises(ValueError, match="a quantity cannot be negative"):
        price_of(VCPU, -1)


def test_exact_amounts_render_exactly_when_they_can():
    assert to_decimal(F(D("0.0000115")) * 10**12) == D("11500000")
    assert str(to_decimal(F(D("0.008763")))) == "0.008763"
    assert str(to_decimal(F(2, 3))) == "0.666666666667"


# --------------------------------------------------------------------------
# Properties

quantities = st.decimals(min_value=0, max_value=10**9, places=9, allow_nan=False, allow_infinity=False)
prices = st.decimals(min_value=0, max_value=100, places=7, allow_nan=False, allow_infinity=False)


@st.composite
def tier_lists(draw: st.DrawFn) -> tuple[Tier, ...]:
    bounds = sorted(draw(st.sets(st.decimals(min_value=D("0.001"), max_value=10**6, places=3), max_size=4)))
    ups: list[D | None] = [*bounds, None]
    return tuple(Tier(up, draw(prices)) for up in ups)


@given(tier_lists(), quantities, quantities)
def test_graduated_never_costs_less_for_more(tiers, a, b):
    price = Tiered("graduated", tiers)
    low, high = sorted((a, b))
    assert price_of(price, low).exact <= price_of(price, high).exact


@given(tier_lists(), quantities)
def test_graduated_is_the_sum_of_each_tiers_share(tiers, q):
    # the definition, written independently: tier i holds (up_to_{i-1}, up_to_i]
    expected, lower = F(0), F(0)
    for tier in tiers:
        upper = F(q) if tier.up_to is None else F(tier.up_to)
        expected += max(F(0), min(F(q), upper) - lower) * F(tier.unit_price)
        lower = upper
    priced = price_of(Tiered("graduated", tiers), q)
    assert priced.exact == expected
    assert sum(p.quantity for p in priced.breakdown) == q
    assert sum(p.amount for p in priced.breakdown) == priced.exact


@given(tier_lists(), quantities, quantities)
def test_graduated_prices_each_further_unit_at_the_tier_it_lands_in(tiers, a, b):
    # Q = a + b costs price(a) plus b's units each at the price of the tier
    # its position in (a, a + b] falls in: splitting Q into two adjacent ranges
    # changes nothing.
    price = Tiered("graduated", tiers)
    rest, lower = F(0), F(0)
    for tier in tiers:
        upper = None if tier.up_to is None else F(tier.up_to)
        start, end = max(lower, F(a)), F(a + b) if upper is None else min(upper, F(a + b))
        rest += max(F(0), end - start) * F(tier.unit_price)
        if upper is None:
            break
        lower = upper
    assert price_of(price, a + b).exact == price_of(price, a).exact + rest


@given(prices, quantities, st.sampled_from(["graduated", "volume"]))
def test_one_tier_is_a_per_unit_price(unit_price, q, mode):
    assert price_of(Tiered(mode, (Tier(None, unit_price),)), q).exact == price_of(PerUnit(unit_price), q).exact


@given(tier_lists(), quantities)
def test_volume_prices_the_whole_quantity_at_one_tier(tiers, q):
    priced = price_of(Tiered("volume", tiers), q)
    (part,) = priced.breakdown
    assert part.quantity == q and priced.exact == F(q) * F(part.unit_price)
    assert part.up_to is None or q <= part.up_to
    below = tiers[part.tier - 2].up_to if part.tier > 1 else None
    assert below is None or q > below


@given(st.decimals(min_value=D("0.001"), max_value=10**6, places=3), prices, quantities)
def test_package_pays_for_at_most_one_package_not_used(size, package_price, q):
    priced = price_of(Package(size, package_price), q)
    used = F(q) / F(size)
    assert used <= priced.breakdown[0].quantity < used + 1
    assert priced.exact == priced.breakdown[0].quantity * F(package_price)


@given(prices, quantities, st.sampled_from(["minute", "hour", "day"]))
def test_a_per_hour_price_is_the_per_second_price_divided_exactly(unit_price, q, per):
    divisor = {"minute": 60, "hour": 3600, "day": 86400}[per]
    assert charge(PerUnit(unit_price), q, per=per).exact == F(q) * F(unit_price) / divisor


@given(st.fractions(min_value=-10**6, max_value=10**6), st.sampled_from(["EUR", "JPY", "BHD"]))
def test_rounding_moves_an_amount_by_at_most_half_a_minor_unit(amount, currency):
    unit = F(1, 10 ** minor_digits(currency))
    up, even = round_money(amount, currency, "half_up"), round_money(amount, currency, "half_even")
    assert abs(F(up) - amount) <= unit / 2 and abs(F(even) - amount) <= unit / 2
    assert up.as_tuple().exponent == even.as_tuple().exponent == -minor_digits(currency)
    # the modes differ only on an exact tie, by one minor unit
    assert up == even or (abs(F(up) - amount) == unit / 2 and abs(F(up) - F(even)) == unit)


# --------------------------------------------------------------------------
# The same prices in exact Decimals (what a rating uses per second and unit)

any_price = st.one_of(
    prices.map(PerUnit),
    st.builds(Tiered, st.sampled_from(["graduated", "volume"]), tier_lists()),
    st.builds(Package, st.decimals(min_value=D("0.001"), max_value=10**6, places=3), prices),
)
# as the store counts them: nanos, up to 10^12 units (sums of a month's unit-seconds)
store_quantities = st.integers(min_value=0, max_value=10**21).map(lambda n: F(n, 10**9))


def _shown(priced):  # type: ignore[no-untyped-def]
    return (str(to_decimal(priced.quantity)), str(to_decimal(priced.exact)), str(to_decimal(priced.free)),
            [(p.tier, str(to_decimal(p.quantity)), p.unit_price, str(to_decimal(p.amount)), p.up_to)
             for p in priced.breakdown])


@given(any_price, store_quantities, st.sampled_from(["second", "unit"]),
       st.sampled_from([0, D("0"), D("3600"), D("0.5"), D("1000000")]), st.sampled_from(["half_up", "half_even"]))
def test_decimal_pricing_gives_the_fraction_pricings_values_to_the_digit(price, q, per, free, mode):
    in_fractions = charge(price, q, per=per, free=free)
    in_decimals = charge_decimal(price, finite_decimal(q), per=per, free=free)
    assert F(in_decimals.exact) == in_fractions.exact
    assert F(in_decimals.quantity) == in_fractions.quantity and F(in_decimals.free) == in_fractions.free
    assert _shown(in_decimals) == _shown(in_fractions)  # the same digits on the line and its tiers
    for currency in ("EUR", "JPY", "BHD"):
        assert str(round_money(in_decimals.exact, currency, mode)) == str(round_money(in_fractions.exact, currency,
                                                                                        mode))


def test_decimal_pricing_of_a_graduated_tie_rounds_as_the_rules_say():
    # 30,000 vCPU-s... as test_ties: 0.345 exactly, half-up 0.35, half-even 0.34
    priced = charge_decimal(PerUnit(D("0.0000115")), D("30000"), per="second")
    assert priced.exact == D("0.345")
    assert str(round_money(priced.exact, "EUR", "half_up")) == "0.35"
    assert str(round_money(priced.exact, "EUR", "half_even")) == "0.34"
    two_tiers = charge_decimal(MEMORY, D("1500.000000001"), per="unit")
    assert [str(to_decimal(p.quantity)) for p in two_tiers.breakdown] == ["1000", "500.000000001"]
    assert str(to_decimal(two_tiers.exact)) == "7.7500000000045"


def test_decimal_pricing_refuses_what_it_cannot_price_exactly():
    with pytest.raises(ValueError, match="per second or unit, not per 'hour'"):
        charge_decimal(VCPU, D("3600"), per="hour")
    with pytest.raises(TypeError, match="finite Decimal"):
        charge_decimal(VCPU, F(1, 3), per="second")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="finite Decimal"):
        charge_decimal(VCPU, D("NaN"), per="second")


@pytest.mark.parametrize(("value", "shown"), [
    (F(3, 2), "1.5"), (F(1, 10**9), "0.000000001"), (F(123, 1), "123"), (F(0), "0"),
    (F(10**20 + 1, 10**9), "100000000000.000000001"), (F(1, 10**18), "0.000000000000000001"),
])
def test_a_store_quantity_is_a_finite_decimal_with_its_shortest_digits(value, shown):
    assert format(to_decimal(finite_decimal(value)), "f") == shown


def test_a_quantity_with_no_finite_decimal_expansion_is_not_one():
    assert finite_decimal(F(1, 3)) is None and finite_decimal(F(1, 2 * 10**18)) is None


@pytest.mark.parametrize(("amount", "currency", "half_up", "half_even"), [
    ("0.345", "EUR", "0.35", "0.34"), ("-0.345", "EUR", "-0.35", "-0.34"), ("-0.001", "EUR", "0.00", "0.00"),
    ("2.5", "JPY", "3", "2"), ("1.0005", "BHD", "1.001", "1.000"), ("1.5E+3", "EUR", "1500.00", "1500.00"),
])
def test_a_decimal_amount_rounds_as_its_fraction_does(amount, currency, half_up, half_even):
    for mode, expected in (("half_up", half_up), ("half_even", half_even)):
        assert str(round_money(D(amount), currency, mode)) == expected
        assert str(round_money(F(D(amount)), currency, mode)) == expected


def test_a_value_of_more_than_28_digits_is_shown_with_every_digit():
    # 478,064,740,387.659829592 unit-s at 2.0917669: 29 significant digits
    # (Decimal's default context would round the last one off)
    amount = F(478064740387659829592, 10**9) * F(D("2.0917669"))
    assert str(to_decimal(amount)) == "1000000000000.0000000001861048"
    assert str(round_money(amount * 10**20, "EUR")) == "100000000000000000000018610480000.00"


@pytest.mark.parametrize(("value", "shown"), [
    ("1.500", "1.5"), ("1.5E+3", "1500"), ("-0.000", "0"), ("0.00000001", "1E-8"), ("100", "100"),
])
def test_a_decimal_is_shown_with_as_few_places_as_its_fraction(value, shown):
    assert str(to_decimal(D(value))) == shown == str(to_decimal(F(D(value))))


@given(st.decimals(allow_nan=False, allow_infinity=False, min_value=-10**30, max_value=10**30),
       st.sampled_from(["EUR", "JPY", "BHD"]), st.sampled_from(["half_up", "half_even"]))
def test_any_decimal_rounds_and_shows_as_its_fraction_does(value, currency, mode):
    assert str(round_money(value, currency, mode)) == str(round_money(F(value), currency, mode))
    assert str(to_decimal(value)) == str(to_decimal(F(value)))
