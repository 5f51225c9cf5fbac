"""From a quantity to an amount, exactly (../shared/BILLING_RULES.md, Prices).

Pure functions, no I/O, no floats.

Exact arithmetic: every amount is a :class:`fractions.Fraction` until the
line is rounded. Decimal alone cannot be exact here: a price ``per = "hour"``
divides unit-seconds by 3600, and 1000 GiB-s at 0.0055 per hour is
0.0015277... with no finite decimal expansion. A Decimal division would
round there, before the line, which the rules forbid ("nothing is rounded
before the line"), and the error can cross a half-cent tie: 692,000 GiB-s at
0.0045 per hour is 0.865 exactly, but 692000/3600 in 28 digits times 0.0045
is 0.86499...9, which rounds half-up to 0.86 instead of 0.87. A Fraction built from a Decimal is exact
(``Fraction(Decimal("0.0000115")) == Fraction(23, 2000000)``), so prices and
quantities enter as Decimal and leave, once, through :func:`round_money`.
:func:`to_decimal` renders a Fraction for display only; never round the
rendering, round the Fraction.

Rounding: :func:`round_money` rounds to the currency's ISO 4217 minor unit
(from babel: EUR 2, JPY 0, BHD 3) with ``half_up`` (ties away from zero) or
``half_even`` (ties to the even digit), on the exact value, in integers.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from fractions import Fraction
from typing import ClassVar, TypeAlias

from babel.numbers import get_currency_precision, list_currencies

Exact: TypeAlias = Fraction | Decimal | int
"""A value that converts to a Fraction without loss (never a float)."""

ROUNDING_MODES = ("half_up", "half_even")
#: the priced unit -> how many of the meter's unit-seconds make one of it
PER_DIVISOR = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "unit": 1}
TIME_UNITS = ("second", "minute", "hour", "day")
#: decimal places :func:`to_decimal` shows of a value without a finite decimal expansion
DISPLAY_PLACES = 12


def exact(value: Exact) -> Fraction:
    """``value`` as a Fraction, refusing floats (which are never exact)."""
    if type(value) is Fraction:  # immutable: no copy (rating prices tens of thousands of lines)
        return value
    if isinstance(value, float) or isinstance(value, bool):
        raise TypeError(f"{value!r} is a {type(value).__name__}: money and quantities are Decimal, Fraction or int")
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{value} is not a finite number")
        return _decimal_fraction(value)
    return Fraction(value)


@functools.lru_cache(maxsize=4096)
def _decimal_fraction(value: Decimal) -> Fraction:
    """A finite Decimal as a Fraction, remembered: prices and tier bounds
    are the same few Decimals on every line."""
    return Fraction(value)


# --------------------------------------------------------------------------
# Currencies and rounding


@functools.cache
def minor_digits(currency: str) -> int:
    """Decimal places of ``currency``'s minor unit (ISO 4217, from babel):
    EUR 2, JPY 0, BHD 3. An unknown code is a ``ValueError`` (babel alone
    would answer 2)."""
    if currency not in list_currencies():
        raise ValueError(f"{currency!r} is not an ISO 4217 currency")
    return get_currency_precision(currency)


def round_money(amount: Exact, currency: str, mode: str = "half_up") -> Decimal:
    """``amount`` rounded once to ``currency``'s minor unit.

    :param amount: the exact amount (a Fraction from :func:`price_of`, or a
        Decimal); never a float.
    :param mode: ``"half_up"`` (a tie goes away from zero: 0.345 -> 0.35,
        -0.345 -> -0.35) or ``"half_even"`` (a tie goes to the even last
        digit: 0.345 -> 0.34, 0.575 -> 0.58).
    :returns: a Decimal with exactly the currency's number of places
        (``Decimal("0.35")``, ``Decimal("1500")`` for JPY).
    """
    if mode not in ROUNDING_MODES:
        raise ValueError(f"{mode!r} is not a rounding mode; use one of: {', '.join(ROUNDING_MODES)}")
    digits = minor_digits(currency)
    f = exact(amount)
    numerator, denominator = f.numerator * 10**digits, f.denominator  # the amount in minor units, not reduced
    sign = -1 if numerator < 0 else 1
    whole, rest = divmod(abs(numerator), denominator)
    twice = 2 * rest
    if twice > denominator or (twice == denominator and (mode == "half_up" or whole % 2 == 1)):
        whole += 1
    return Decimal(sign * whole).scaleb(-digits)


def to_decimal(value: Exact, places: int = DISPLAY_PLACES) -> Decimal:
    """A Decimal rendering of ``value`` for display (JSON, tables).

    Exact when ``value`` has a finite decimal expansion (its denominator is a
    product of 2s and 5s: every per-second, per-unit, package and volume
    amount); otherwise rounded half-even to ``places`` decimal places. Round
    money with :func:`round_money` on the Fraction, never on this rendering.
    """
    f = exact(value)
    d = f.denominator
    if d == 1:
        return Decimal(f.numerator)
    twos = fives = 0
    while d % 2 == 0:
        d //= 2
        twos += 1
    while d % 5 == 0:
        d //= 5
        fives += 1
    if d == 1:
        k = max(twos, fives)
        return Decimal(f.numerator * 10**k // f.denominator).scaleb(-k)
    with localcontext() as ctx:
        ctx.prec = len(str(abs(f.numerator) // f.denominator)) + places + 2
        ctx.rounding = ROUND_HALF_EVEN
        return (Decimal(f.numerator) / Decimal(f.denominator)).quantize(Decimal(1).scaleb(-places))


# --------------------------------------------------------------------------
# Seconds: granularity and minimum


def billable_seconds(seconds: int, granularity: int) -> int:
    """Billable seconds of a record in a period: ``ceil(seconds / g) * g``
    for ``seconds > 0``, else 0 (762 s bills 762 s at g = 1, 1200 s at g = 600)."""
    if granularity < 1:
        raise ValueError(f"granularity must be at least 1 second, not {granularity}")
    if seconds <= 0:
        return 0
    return -(-seconds // granularity) * granularity


def with_minimum(total_billable: int, minimum: int, finished: bool) -> int:
    """A record's billable seconds in total after the minimum ``m``.

    A finished record whose billable seconds in total (after granularity)
    are fewer than ``m`` is billed ``m``; a running record gets no top-up
    until it finishes. The top-up (:func:`minimum_top_up`) falls into the
    period that holds the record's start; that is the caller's to place.
    """
    return minimum if finished and total_billable < minimum else total_billable


def minimum_top_up(total_billable: int, minimum: int, finished: bool) -> int:
    """The seconds :func:`with_minimum` adds (0 when none)."""
    return with_minimum(total_billable, minimum, finished) - total_billable


# --------------------------------------------------------------------------
# Quantities: the priced unit and the free allowance


def priced_quantity(quantity: Exact, per: str) -> Fraction:
    """Q in the priced unit: unit-seconds divided exactly by 1 (second),
    60 (minute), 3600 (hour) or 86400 (day); a ``unit`` quantity as is."""
    try:
        divisor = PER_DIVISOR[per]
    except KeyError:
        raise ValueError(f"{per!r} is not one of: {', '.join(PER_DIVISOR)}") from None
    q = exact(quantity)
    return q if divisor == 1 else q / divisor


def after_free(quantity: Exact, free: Exact) -> Fraction:
    """``Q' = max(0, Q - F)``: what is left to price after the free allowance."""
    q = exact(quantity)
    if not free:
        return q if q >= 0 else _ZERO
    return max(_ZERO, q - exact(free))


_ZERO = Fraction(0)


# --------------------------------------------------------------------------
# Price models


@dataclass(frozen=True)
class PerUnit:
    """``per_unit``: ``Q' * unit_price``."""

    unit_price: Decimal
    model: ClassVar[str] = "per_unit"


@dataclass(frozen=True)
class Tier:
    """One tier: quantities up to ``up_to`` (inclusive; ``None`` = no upper
    bound, the last tier) at ``unit_price``."""

    up_to: Decimal | None
    unit_price: Decimal


@dataclass(frozen=True)
class Tiered:
    """``graduated`` (each tier's part of Q' at that tier's price, summed) or
    ``volume`` (all of Q' at the price of the tier that holds it, that is the
    first tier with ``Q' <= up_to``). The catalog guarantees increasing
    ``up_to`` and a last tier without one."""

    mode: str
    tiers: tuple[Tier, ...]

    @property
    def model(self) -> str:
        return self.mode


@dataclass(frozen=True)
class Package:
    """``package``: ``ceil(Q' / size) * package_price`` (started packages are
    paid in full; Q' = 0 buys none)."""

    size: Decimal
    package_price: Decimal
    model: ClassVar[str] = "package"


@dataclass(frozen=True)
class Flat:
    """``flat``: ``amount`` per period, prorated by :func:`flat_amount`."""

    amount: Decimal
    model: ClassVar[str] = "flat"


Price: TypeAlias = PerUnit | Tiered | Package | Flat


@dataclass(frozen=True)
class TierPart:
    """One part of a priced quantity, for the invoice line and its drill-down.

    - ``tier``: 1-based position of the tier (1 for per_unit and package).
    - ``quantity``: the quantity priced in this part, in the priced unit
      (for a package price: the number of packages).
    - ``unit_price``: the price of one of ``quantity`` (for a package
      price: ``package_price``).
    - ``amount``: ``quantity * unit_price``, exact.
    - ``up_to``: the tier's upper bound (``None`` for the last tier and for
      models without tiers).
    """

    tier: int
    quantity: Fraction
    unit_price: Decimal
    amount: Fraction
    up_to: Decimal | None = None


@dataclass(frozen=True)
class Priced:
    """The exact price of a quantity.

    - ``quantity``: Q' (after the free allowance), in the priced unit.
    - ``exact``: the amount, exact and never rounded; round it once per
      line with :func:`round_money`.
    - ``breakdown``: how ``exact`` is made up; the parts' amounts sum to it.
    - ``free``: the part of Q the free allowance took off (0 without one).
    """

    quantity: Fraction
    exact: Fraction
    breakdown: tuple[TierPart, ...]
    free: Fraction = Fraction(0)

    @property
    def exact_amount(self) -> Decimal:
        """``exact`` rendered as a Decimal for display (:func:`to_decimal`)."""
        return to_decimal(self.exact)


def price_of(price: Price, quantity: Exact) -> Priced:
    """The exact amount of ``quantity`` (Q', in the priced unit, after the
    free allowance) under ``price``.

    A flat price has no quantity: prorate it with :func:`flat_amount`.
    """
    q = exact(quantity)
    if q.numerator < 0:
        raise ValueError(f"a quantity cannot be negative ({to_decimal(q)})")
    if isinstance(price, PerUnit):
        amount = q * exact(price.unit_price)
        return Priced(q, amount, (TierPart(1, q, price.unit_price, amount),))
    if isinstance(price, Tiered):
        parts = _graduated(price.tiers, q) if price.mode == "graduated" else _volume(price.tiers, q)
        return Priced(q, parts[0].amount if len(parts) == 1 else sum((p.amount for p in parts), _ZERO), parts)
    if isinstance(price, Package):
        size = exact(price.size)
        packages = Fraction(-(-q // size))
        amount = packages * exact(price.package_price)
        return Priced(q, amount, (TierPart(1, packages, price.package_price, amount),))
    if isinstance(price, Flat):
        raise TypeError("a flat price is not priced by quantity: prorate it with flat_amount()")
    raise TypeError(f"not a price: {price!r}")


def _graduated(tiers: Sequence[Tier], q: Fraction) -> tuple[TierPart, ...]:
    parts = []
    lower = Fraction(0)
    for i, tier in enumerate(tiers, 1):
        upper = None if tier.up_to is None else exact(tier.up_to)
        if q <= lower:
            break
        inside = (q if upper is None else min(q, upper)) - lower
        parts.append(TierPart(i, inside, tier.unit_price, inside * exact(tier.unit_price), tier.up_to))
        if upper is None:
            break
        lower = upper
    return tuple(parts)


def _volume(tiers: Sequence[Tier], q: Fraction) -> tuple[TierPart, ...]:
    for i, tier in enumerate(tiers, 1):
        if tier.up_to is None or q <= exact(tier.up_to):
            return (TierPart(i, q, tier.unit_price, q * exact(tier.unit_price), tier.up_to),)
    raise ValueError(f"no tier holds {to_decimal(q)}: the last tier must have no up_to")


def charge(price: Price, quantity: Exact, *, per: str = "unit", free: Exact = 0) -> Priced:
    """Q as the meter measures it (unit-seconds for a time-weighted meter,
    units otherwise) to its exact price: into the priced unit
    (:func:`priced_quantity`), less the free allowance ``free`` (in the
    priced unit), then through the price model (:func:`price_of`)."""
    q = priced_quantity(quantity, per)
    rest = after_free(q, free)
    priced = price_of(price, rest)
    return Priced(priced.quantity, priced.exact, priced.breakdown, _ZERO if rest is q else q - rest)


def flat_amount(amount: Exact, active_seconds: int, period_seconds: int) -> Fraction:
    """A flat price prorated: ``amount * active / period``, exact."""
    if period_seconds <= 0:
        raise ValueError(f"a period lasts more than 0 seconds, not {period_seconds}")
    if not 0 <= active_seconds <= period_seconds:
        raise ValueError(f"active seconds must be within 0..{period_seconds}, not {active_seconds}")
    return exact(amount) * Fraction(active_seconds, period_seconds)
