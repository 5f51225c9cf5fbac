"""Exact usage quantities: their encoding and the limits the store holds
them to.

A quantity is stored as canonical decimal text (the truth) and as two
integers, ``units`` and ``nanos`` (the fraction in 1e-9), which SQL can sum
exactly on every backend. Hence the limits: at most 9 decimal places and
less than 10**15.

A sum of quantities times seconds is taken in SQL as four *split sums*, so
that no product of 64-bit integers overflows (a quantity below 10**15 times
a period's 2,678,400 seconds would): the units split into millions
(``// UNITS_HI``) and the rest, the nanos into 1e-4 units (``// NANOS_HI``)
and the rest (:func:`split_products`); :func:`split_sums_nanos` adds them up
again exactly.

This module owns that encoding, once; it knows no table, connection or
stage (its SQL is text over the columns ``qty_units`` and ``qty_nanos``).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from fractions import Fraction

MAX_DECIMALS = 9
MAX_QUANTITY = Decimal(10) ** 15
#: 10**9: nanos per unit, and the bound of ``nanos``
NANOS = 10 ** MAX_DECIMALS
#: 10**15: the bound of ``units``
MAX_UNITS = 10 ** 15
#: 10**6: the high part of a split sum of units counts millions of units
UNITS_HI = 10 ** 6
#: 10**5: the high part of a split sum of nanos counts 1e-4 units
NANOS_HI = 10 ** 5
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def parse_quantity(text: str) -> tuple[Decimal | None, str | None]:
    """``(value, None)`` for a valid quantity, ``(None, error)`` otherwise.

    Plain decimal or E-notation in ASCII digits only: ``Decimal()`` alone
    would also take ``1_000``, non-ASCII digits and surrounding spaces.
    """
    # Fast path for plain non-negative decimals within the limits.
    if text.isascii():
        units, dot, fraction = text.partition(".")
        if (units.isdigit() or (dot and not units and fraction)) and len(units) <= 15 \
                and (not fraction or fraction.isdigit()) and len(fraction) <= MAX_DECIMALS:
            return Decimal(text), None
    if not _DECIMAL.fullmatch(text):
        return None, f"quantity: {text!r} is not a decimal number"
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None, f"quantity: {text!r} is not a decimal number"
    error = quantity_error(value, text)
    return (None, error) if error else (value, None)


def quantity_error(value: Decimal, text: str | None = None) -> str | None:
    """Why ``value`` (written ``text`` in the input) cannot be a usage
    quantity, or ``None``."""
    shown = repr(text) if text is not None else str(value)
    if not value.is_finite():
        return f"quantity: {shown} is not a finite number"
    if value < 0:
        return f"quantity: {shown} is negative"
    if value >= MAX_QUANTITY:
        return f"quantity: {shown} is too large (the limit is 10^15)"
    if value and _decimal_places(value) > MAX_DECIMALS:
        return f"quantity: {shown} has more than {MAX_DECIMALS} decimal places"
    return None


def _decimal_places(value: Decimal) -> int:
    """Decimal places of ``value`` without its trailing zeros (exact, unlike
    ``normalize()``, which rounds to the context's precision)."""
    t = value.as_tuple()
    digits, exponent = list(t.digits), int(t.exponent)
    while exponent < 0 and len(digits) > 1 and digits[-1] == 0:
        digits.pop()
        exponent += 1
    return max(0, -exponent)


def split_quantity(value: Decimal) -> tuple[str, int, int]:
    """``(canonical text, units, nanos)`` of a valid quantity."""
    units = int(value)
    nanos = int((value - units) * NANOS)
    normal = value.normalize()
    text = format(normal, "f") if normal else "0"
    return text, units, nanos


def quantity_parts(text: str) -> tuple[tuple[int, int] | None, str | None]:
    """``((units, nanos), None)`` for a valid quantity text, ``(None,
    error)`` otherwise: :func:`parse_quantity`'s rules and messages, without
    a ``Decimal`` for the plain decimals that make up nearly all usage."""
    if text.isascii():
        units, dot, fraction = text.partition(".")
        if (units.isdigit() or (dot and not units and fraction)) and len(units) <= 15 \
                and (not fraction or fraction.isdigit()) and len(fraction) <= MAX_DECIMALS:
            return (int(units) if units else 0, int(fraction.ljust(MAX_DECIMALS, "0")) if fraction else 0), None
    value, error = parse_quantity(text)
    if error:
        return None, error
    _text, units_, nanos = split_quantity(value)  # type: ignore[arg-type]
    return (units_, nanos), None


def parts_error(units: object, nanos: object) -> str | None:
    """Why ``(units, nanos)`` is not an exact usage quantity, or ``None``."""
    if type(units) is not int or type(nanos) is not int:
        return f"quantity: units and nanos must be integers, not {type(units).__name__} and {type(nanos).__name__}"
    if not 0 <= nanos < NANOS:
        return f"quantity: nanos {nanos} is not between 0 and 10^9 - 1"
    if units < 0:
        return f"quantity: {units} units is negative"
    if units >= MAX_UNITS:
        return f"quantity: {units} units is too large (the limit is 10^15)"
    return None


def format_parts(units: int, nanos: int) -> str:
    """The canonical text of ``units + nanos * 10^-9`` (as :func:`split_quantity` writes it)."""
    return f"{units}.{nanos:09d}".rstrip("0") if nanos else str(units)


# --------------------------------------------------------------------------
# split sums


def split_products(weight: str, aggregate: str = "SUM") -> str:
    """``quantity x weight`` in SQL as its four split parts (millions of
    units, units, 1e-4 units, 1e-9 units), each in ``aggregate(...)``, or
    bare with ``aggregate=""``."""
    parts = (f"(qty_units / {UNITS_HI})", f"(qty_units % {UNITS_HI})",
             f"(qty_nanos / {NANOS_HI})", f"(qty_nanos % {NANOS_HI})")
    return ", ".join(f"{aggregate}({part} * {weight})" if aggregate else f"{part} * {weight}" for part in parts)


def split_sums_nanos(units_hi: int, units_lo: int, nanos_hi: int, nanos_lo: int) -> int:
    """The exact quantity of four split sums (:func:`split_products`), in nanos."""
    return (units_hi * UNITS_HI + units_lo) * NANOS + nanos_hi * NANOS_HI + nanos_lo


def combine_split_sums(units_hi: int, units_lo: int, nanos_hi: int, nanos_lo: int) -> Fraction:
    """The exact quantity of split sums: ``units_hi`` counts millions of units,
    ``units_lo`` units, ``nanos_hi`` 1e-4 units and ``nanos_lo`` 1e-9 units."""
    return Fraction(split_sums_nanos(units_hi, units_lo, nanos_hi, nanos_lo), NANOS)


def nanos_decimal(nanos: int) -> Decimal:
    """``nanos`` 1e-9 units as an exact Decimal, whatever the context's precision."""
    return Decimal(f"{nanos}e-{MAX_DECIMALS}")


def plain_parts_column(texts: list[str]) -> tuple[list[int], list[int], list[int]] | None:
    """``(units, nanos, others)`` of many quantity texts at once.

    ``units[i], nanos[i]`` are :func:`quantity_parts` of ``texts[i]`` when
    it is a plain decimal within the limits (ASCII digits with at most one
    dot: up to 15 digits before it, up to 9 after, and at least one digit),
    which :func:`quantity_parts` itself takes without a ``Decimal``; the
    indexes of every other text are in ``others`` (their ``units`` and
    ``nanos`` are meaningless), for :func:`quantity_parts` to tell. ``None``
    when a text holds a newline: then none were looked at.

    Integers only (numpy int64: units < 10**15 and nanos < 10**9 fit).
    """
    import numpy as np  # here: most uses of this module need no numpy (0.1 s to import)

    n = len(texts)
    if not n:
        return [], [], []
    powers = 10 ** np.arange(19, dtype=np.int64)  # 10**0 .. 10**18
    a = np.frombuffer(("\n".join(texts) + "\n").encode("utf-8", "surrogatepass"), dtype=np.uint8)
    newline = a == 10
    ends = np.flatnonzero(newline)
    if len(ends) != n:
        return None
    starts = np.empty(n, dtype=np.int64)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    lengths = ends - starts
    field = np.repeat(np.arange(n), lengths + 1)  # each byte's text (its newline included)
    pos = np.arange(len(a)) - starts[field]
    digit = a - np.uint8(48)
    is_digit = digit < 10
    is_dot = a == 46
    strange = np.add.reduceat((~(is_digit | is_dot | newline)).astype(np.int64), starts)  # neither digit nor dot
    dots = np.add.reduceat(is_dot.astype(np.int64), starts)
    dot = np.maximum.reduceat(np.where(is_dot, pos, -1), starts)
    whole = np.where(dot >= 0, dot, lengths)  # digits before the dot
    fraction = np.where(dot >= 0, lengths - dot - 1, 0)  # digits after it
    ok = (strange == 0) & (dots <= 1) & (whole <= 15) & (fraction <= MAX_DECIMALS) & ((whole > 0) | (fraction > 0))
    whole_at = whole[field]
    valid = ok[field] & is_digit
    digits = digit.astype(np.int64)
    in_units = valid & (pos < whole_at)
    in_nanos = valid & (pos > whole_at)
    units = np.add.reduceat(np.where(in_units, digits * powers[np.clip(whole_at - pos - 1, 0, 18)], 0), starts)
    nanos = np.add.reduceat(np.where(in_nanos, digits * powers[np.clip(MAX_DECIMALS - (pos - whole_at), 0, 18)], 0),
                            starts)
    return units.tolist(), nanos.tolist(), np.flatnonzero(~ok).tolist()
