"""From a quantity to an amount, exactly (docs/billing-rules.md, Prices).

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

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import (
    MAX_EMAX,
    MAX_PREC,
    MIN_EMIN,
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
    Rounded,
    localcontext,
)
from fractions import Fraction
from typing import Any, Callable, ClassVar, TypeAlias

# rounding to a currency's minor unit has its home in hub.money; these names stay importable from here
from hub.money import _ROUNDING_DECIMAL, ROUNDING_MODES, exact, minor_digits, round_money  # noqa: F401

Exact: TypeAlias = Fraction | Decimal | int
"""A value that converts to a Fraction without loss (never a float)."""

#: Decimal arithmetic that never rounds: with every digit kept, a sum, a
#: difference, a product or a comparison of finite decimals is exact, and
#: anything that would round instead raises (``Inexact``, ``Rounded``).
#: The pricing of a finite-decimal quantity (:func:`charge_decimal`) runs
#: in it.
EXACT_DECIMAL = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN,
                        traps=[InvalidOperation, DivisionByZero, Overflow, Inexact, Rounded])
#: :func:`finite_decimal` renders quantities with 9 (nanos, the store's) or up to 18 decimal places
_DECIMAL_SCALES = ((9, 10**9), (18, 10**18))

#: how a price model reads the catalog's Decimals: :func:`exact` (as Fractions) or as they are
Num: TypeAlias = Callable[[Any], Any]

#: the priced unit -> how many of the meter's unit-seconds make one of it
PER_DIVISOR = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "unit": 1}
TIME_UNITS = ("second", "minute", "hour", "day")
#: decimal places :func:`to_decimal` shows of a value without a finite decimal expansion
DISPLAY_PLACES = 12


_DZERO = Decimal(0)
_DONE = Decimal(1)


def to_decimal(value: Exact, places: int = DISPLAY_PLACES) -> Decimal:
    """A Decimal rendering of ``value`` for display (JSON, tables).

    Exact when ``value`` has a finite decimal expansion (its denominator is a
    product of 2s and 5s: every per-second, per-unit, package and volume
    amount); otherwise rounded half-even to ``places`` decimal places. Round
    money with :func:`round_money` on the Fraction, never on this rendering.

    A Decimal is exact already: it comes back with as few decimal places as
    its value needs (``Decimal("1.500")`` as ``1.5``, ``Decimal("1.5E+3")``
    as ``1500``), as the same value given as a Fraction does.
    """
    if type(value) is Decimal and value.is_finite():
        if value.is_zero():
            return _DZERO
        shortest = value.normalize(_ROUNDING_DECIMAL)
        return shortest.quantize(_DONE, context=_ROUNDING_DECIMAL) if shortest.as_tuple().exponent > 0 else shortest
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
        # every digit (the default context would keep 28)
        return Decimal(f.numerator * 10**k // f.denominator).scaleb(-k, _ROUNDING_DECIMAL)
    with localcontext() as ctx:
        ctx.prec = len(str(abs(f.numerator) // f.denominator)) + places + 2
        ctx.rounding = ROUND_HALF_EVEN
        return (Decimal(f.numerator) / Decimal(f.denominator)).quantize(Decimal(1).scaleb(-places))


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
    return _after_free(exact(quantity), free, exact)


def _after_free(q: Any, free: Exact, num: Num) -> Any:
    zero = num(_DZERO)
    if not free:
        return q if q >= 0 else zero
    return max(zero, q - num(free))


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
    free allowance) under ``price``, in Fractions.

    A flat price has no quantity: prorate it with :func:`flat_amount`.
    """
    return _price_of(price, exact(quantity), exact, _ZERO)


def _price_of(price: Price, q: Any, num: Num, free: Any) -> Priced:
    """:func:`price_of` of ``q``, a Fraction (``num`` = :func:`exact`, which
    turns the catalog's Decimals into Fractions) or a Decimal (``num``
    keeps them, in :data:`EXACT_DECIMAL`): one formula for both; ``free``
    goes into the result as it is."""
    if q < 0:
        raise ValueError(f"a quantity cannot be negative ({to_decimal(q)})")
    if isinstance(price, PerUnit):
        amount = q * num(price.unit_price)
        return Priced(q, amount, (TierPart(1, q, price.unit_price, amount),), free)
    if isinstance(price, Tiered):
        parts = _graduated(price.tiers, q, num) if price.mode == "graduated" else _volume(price.tiers, q, num)
        amount = parts[0].amount if len(parts) == 1 else sum((part.amount for part in parts), num(_DZERO))
        return Priced(q, amount, parts, free)
    if isinstance(price, Package):
        whole, rest = divmod(q, num(price.size))  # q >= 0: the floor, for a Decimal too
        packages = num(Decimal(whole)) + (1 if rest else 0)  # started packages are paid in full
        amount = packages * num(price.package_price)
        return Priced(q, amount, (TierPart(1, packages, price.package_price, amount),), free)
    if isinstance(price, Flat):
        raise TypeError("a flat price is not priced by quantity: prorate it with flat_amount()")
    raise TypeError(f"not a price: {price!r}")


def _graduated(tiers: Sequence[Tier], q: Any, num: Num) -> tuple[TierPart, ...]:
    parts = []
    lower = num(_DZERO)
    for i, tier in enumerate(tiers, 1):
        upper = None if tier.up_to is None else num(tier.up_to)
        if q <= lower:
            break
        inside = (q if upper is None else min(q, upper)) - lower
        parts.append(TierPart(i, inside, tier.unit_price, inside * num(tier.unit_price), tier.up_to))
        if upper is None:
            break
        lower = upper
    return tuple(parts)


def _volume(tiers: Sequence[Tier], q: Any, num: Num) -> tuple[TierPart, ...]:
    for i, tier in enumerate(tiers, 1):
        if tier.up_to is None or q <= num(tier.up_to):
            return (TierPart(i, q, tier.unit_price, q * num(tier.unit_price), tier.up_to),)
    raise ValueError(f"no tier holds {to_decimal(q)}: the last tier must have no up_to")


def charge(price: Price, quantity: Exact, *, per: str = "unit", free: Exact = 0) -> Priced:
    """Q as the meter measures it (unit-seconds for a time-weighted meter,
    units otherwise) to its exact price: into the priced unit
    (:func:`priced_quantity`), less the free allowance ``free`` (in the
    priced unit), then through the price model (:func:`price_of`)."""
    q = priced_quantity(quantity, per)
    rest = after_free(q, free)
    return _price_of(price, rest, exact, _ZERO if rest is q else q - rest)


def finite_decimal(value: Fraction) -> Decimal | None:
    """``value`` as an exact Decimal when it has at most 18 decimal places
    (every quantity of the store does: it counts in nanos), else None."""
    d = value.denominator
    for digits, scale in _DECIMAL_SCALES:  # fewer digits: faster arithmetic
        if not scale % d:
            return Decimal(value.numerator * (scale // d)).scaleb(-digits, _ROUNDING_DECIMAL)
    return None


def charge_decimal(price: Price, quantity: Decimal, *, per: str = "unit", free: Decimal | int = 0) -> Priced:
    """:func:`charge` of a finite-decimal quantity priced per ``second`` or
    ``unit`` (no division: every value stays a finite decimal), in exact
    Decimal arithmetic (:data:`EXACT_DECIMAL`) instead of Fractions: the
    same values, several times faster (a rating prices tens of thousands of
    lines). Its ``quantity``, ``exact``, ``free`` and parts are Decimals;
    :func:`round_money` and :func:`to_decimal` take them as they are."""
    if PER_DIVISOR.get(per) != 1:
        raise ValueError(f"charge_decimal prices per second or unit, not per {per!r}: use charge()")
    if type(quantity) is not Decimal or not quantity.is_finite() or isinstance(free, Fraction):
        raise TypeError("charge_decimal takes a finite Decimal quantity and a Decimal or int allowance")
    with localcontext(EXACT_DECIMAL):
        rest = _after_free(quantity, free, _same)
        return _price_of(price, rest, _same, _DZERO if rest is quantity else quantity - rest)


def _same(value: Any) -> Any:
    return value


def flat_amount(amount: Exact, active_seconds: int, period_seconds: int) -> Fraction:
    """A flat price prorated: ``amount * active / period``, exact."""
    if period_seconds <= 0:
        raise ValueError(f"a period lasts more than 0 seconds, not {period_seconds}")
    if not 0 <= active_seconds <= period_seconds:
        raise ValueError(f"active seconds must be within 0..{period_seconds}, not {active_seconds}")
    return exact(amount) * Fraction(active_seconds, period_seconds)
