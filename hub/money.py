"""Money: an amount with its currency, and rounding to the currency's
minor unit (docs/billing-rules.md, Prices and Lines).

Owns the one rule every stage follows for money: an amount is a Decimal
that travels with its ISO 4217 currency (:class:`Money`), has exactly the
currency's minor digits (EUR 2, JPY 0, BHD 3, from babel), and is rounded
to them once, on the exact value (:func:`round_money`), never with a float.
In JSON, money is a decimal string with exactly those digits (``"12.30"``,
JPY ``"1230"``: :func:`money_str`).

Pure, and below every stage: it must not know prices, invoices, the
configuration or the store (it imports nothing of the hub), so pricing,
rating, invoicing and the renderers can all build on it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from decimal import (
    MAX_EMAX,
    MAX_PREC,
    MIN_EMIN,
    ROUND_HALF_EVEN,
    ROUND_HALF_UP,
    Context,
    Decimal,
    InvalidOperation,
    Overflow,
)
from fractions import Fraction

from babel.numbers import get_currency_precision, list_currencies

ROUNDING_MODES = ("half_up", "half_even")

#: every digit kept, rounding allowed (by the rounding mode a call gives)
_ROUNDING_DECIMAL = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN, traps=[InvalidOperation, Overflow])
_DECIMAL_ROUNDING = {"half_up": ROUND_HALF_UP, "half_even": ROUND_HALF_EVEN}
_MINOR_UNIT = {digits: Decimal(1).scaleb(-digits) for digits in range(10)}


@functools.cache
def minor_digits(currency: str) -> int:
    """Decimal places of ``currency``'s minor unit (ISO 4217, from babel):
    EUR 2, JPY 0, BHD 3. An unknown code is a ``ValueError`` (babel alone
    would answer 2)."""
    if currency not in list_currencies():
        raise ValueError(f"{currency!r} is not an ISO 4217 currency")
    return get_currency_precision(currency)


def exact(value: Fraction | Decimal | int) -> Fraction:
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


def round_money(amount: Fraction | Decimal | int, currency: str, mode: str = "half_up") -> Decimal:
    """``amount`` rounded once to ``currency``'s minor unit.

    :param amount: the exact amount (a Fraction from
        :func:`hub.pricing.price_of`, or a Decimal); never a float.
    :param mode: ``"half_up"`` (a tie goes away from zero: 0.345 -> 0.35,
        -0.345 -> -0.35) or ``"half_even"`` (a tie goes to the even last
        digit: 0.345 -> 0.34, 0.575 -> 0.58).
    :returns: a Decimal with exactly the currency's number of places
        (``Decimal("0.35")``, ``Decimal("1500")`` for JPY).
    """
    if mode not in ROUNDING_MODES:
        raise ValueError(f"{mode!r} is not a rounding mode; use one of: {', '.join(ROUNDING_MODES)}")
    digits = minor_digits(currency)
    if type(amount) is Decimal and amount.is_finite():
        # the same rounding of the same exact value, in Decimal (no Fraction):
        # ROUND_HALF_UP rounds a tie away from zero, as "half_up" does
        rounded = amount.quantize(_MINOR_UNIT[digits], rounding=_DECIMAL_ROUNDING[mode], context=_ROUNDING_DECIMAL)
        return rounded.copy_abs() if rounded.is_zero() else rounded  # never -0.00
    f = exact(amount)
    numerator, denominator = f.numerator * 10**digits, f.denominator  # the amount in minor units, not reduced
    sign = -1 if numerator < 0 else 1
    whole, rest = divmod(abs(numerator), denominator)
    twice = 2 * rest
    if twice > denominator or (twice == denominator and (mode == "half_up" or whole % 2 == 1)):
        whole += 1
    return Decimal(sign * whole).scaleb(-digits, _ROUNDING_DECIMAL)  # every digit, not the context's 28


def to_number(value: Decimal | str | int, what: str) -> Decimal:
    """``value`` as a finite Decimal; a float is a ``TypeError`` and
    anything else that is not a number a ``ValueError`` naming ``what``."""
    if isinstance(value, (float, bool)):
        raise TypeError(f"{what}: {value!r} is a {type(value).__name__}; money is a Decimal or a string, never a float")
    try:
        d = Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise ValueError(f"{what}: {value!r} is not a number") from None
    if not d.is_finite():
        raise ValueError(f"{what}: {value} is not a finite number")
    return d


def money(value: Decimal | str | int, currency: str, what: str = "amount") -> Decimal:
    """``value`` with exactly ``currency``'s minor digits (``12.3`` ->
    ``12.30``); a ``ValueError`` when it has more (money is never
    re-rounded here)."""
    d = to_number(value, what)
    digits = minor_digits(currency)
    quantum = _MINOR_UNIT[digits]
    if d != d.quantize(quantum, rounding="ROUND_DOWN"):
        raise ValueError(f"{what}: {value} has more decimals than {currency}'s minor unit ({digits})")
    return d.quantize(quantum)


def money_str(value: Decimal, currency: str) -> str:
    """``value`` as a JSON string with exactly ``currency``'s minor digits."""
    return format(money(value, currency), "f")


@dataclass(frozen=True, order=False)
class Money:
    """An amount in a currency: ``amount`` has exactly ``currency``'s
    minor digits (:meth:`of` checks and pads; :meth:`rounded` rounds an
    exact value once). Adding or comparing two amounts of different
    currencies is a ``ValueError``, never a silent sum."""

    amount: Decimal
    currency: str

    @classmethod
    def of(cls, value: Decimal | str | int, currency: str, what: str = "amount") -> Money:
        """``value`` in ``currency``; a ``ValueError`` when it has more
        decimals than the minor unit (see :func:`money`)."""
        return cls(money(value, currency, what), currency)

    @classmethod
    def rounded(cls, amount: Fraction | Decimal | int, currency: str, mode: str = "half_up") -> Money:
        """The exact ``amount`` rounded once to ``currency``'s minor unit."""
        return cls(round_money(amount, currency, mode), currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(money(0, currency), currency)

    def __str__(self) -> str:
        """The JSON form: a decimal string with the minor digits."""
        return money_str(self.amount, self.currency)

    def _same(self, other: Money) -> None:
        if not isinstance(other, Money):
            raise TypeError(f"{other!r} is not Money")
        if other.currency != self.currency:
            raise ValueError(f"{self.currency} and {other.currency} amounts cannot be combined")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.amount <= other.amount

    def __gt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount > other.amount

    def __ge__(self, other: Money) -> bool:
        self._same(other)
        return self.amount >= other.amount


__all__ = ["ROUNDING_MODES", "Money", "minor_digits", "money", "money_str", "round_money", "to_number"]
