"""EN 16931 for plugins: the code lists and the one price rule every
e-invoice renderer follows, so that a UBL and a CII document of one invoice
state the same units, reasons and prices.

- Units: the hub's priced units as UN/ECE Recommendation 20 codes
  (:data:`UNIT_CODES`, :func:`unit_code`).
- VAT: the categories the hub issues (UNTDID 5305: ``S``, ``AE``, ``E``,
  ``G``) with their names, and the VATEX exemption reason codes
  (:data:`VAT_CATEGORIES`, :data:`VATEX_CODES`).
- Allowances: UNTDID 5189 reason codes (:data:`REASON_DISCOUNT`,
  :data:`REASON_SPECIAL_REBATE`).
- Net price (BT-146) and base quantity (BT-149): :func:`scaled_price` gives
  a price with more decimals than the currency's minor unit per a power of
  ten, exactly (0.0000115 EUR per second is 1.15 per 100000 SEC).
  :func:`explains` says whether quantity x price accounts for a line's
  amount: within half a minor unit of the currency for each rounding the
  amount went through (one for a line, two for a late-usage adjustment,
  which is the difference of two rounded amounts). EN 16931 itself has no
  rule tying BT-131 to BT-129 x BT-146 / BT-149; Peppol's R120 accepts
  0.02. Half a minor unit per rounding is the bound of the hub's own
  rounding (``docs/billing-rules.md``, Prices), so a price that passes it
  is the price the amount was computed from, and the two formats agree.
- :func:`decimal_text`: a decimal as e-invoices write it, no exponent and
  no trailing zeros.

This module must not know any document format's elements (UBL, CII), the
invoice's JSON layout, the store or the stages: it is the standard's side.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from decimal import Decimal

from hub.money import minor_digits

__all__ = [
    "MAX_BASE_EXPONENT", "REASON_DISCOUNT", "REASON_SPECIAL_REBATE", "UNIT_CODES", "VATEX_CODES",
    "VAT_CATEGORIES", "decimal_text", "explains", "minor_digits", "minor_unit", "percent_explains",
    "price_tolerance", "scaled_price", "unit_code",
]

#: the hub's priced units -> UN/ECE Recommendation 20 codes
UNIT_CODES: Mapping[str, str] = {
    "second": "SEC", "minute": "MIN", "hour": "HUR", "day": "DAY", "week": "WEE", "month": "MON",
    "year": "ANN", "unit": "C62",
}

#: the VAT categories the hub issues (UNTDID 5305) and their names
VAT_CATEGORIES: Mapping[str, str] = {
    "S": "Standard rate", "AE": "Reverse charge", "G": "Export outside the EU", "E": "Exempt",
}
#: the VATEX exemption reason code (BT-121) of a category that has one
VATEX_CODES: Mapping[str, str] = {"AE": "VATEX-EU-AE", "G": "VATEX-EU-G"}

#: UNTDID 5189 allowance reason codes
REASON_DISCOUNT = "95"
REASON_SPECIAL_REBATE = "100"

#: the largest base quantity (BT-149) a price is given per: 10**12
MAX_BASE_EXPONENT = 12


def unit_code(unit: str) -> str:
    """The UN/ECE Rec 20 code of a priced unit (``hour`` -> ``HUR``).

    :raises ValueError: a unit without a code here (naming the known ones).
    """
    code = UNIT_CODES.get(unit)
    if code is None:
        raise ValueError(f"unit {unit!r} has no UN/ECE Rec 20 code here (known: {', '.join(UNIT_CODES)})")
    return code


def decimal_text(value: str | Decimal) -> str:
    """A decimal as plain text without exponent or trailing zeros:
    ``1E+6`` -> ``1000000``, ``8.10`` -> ``8.1``, ``-0`` -> ``0``."""
    d = Decimal(value).normalize()
    if d == 0:
        return "0"
    return format(d, "f")


@functools.cache
def minor_unit(digits: int) -> Decimal:
    """One minor unit of a currency with ``digits`` minor digits (2 -> 0.01)."""
    return Decimal(1).scaleb(-digits)


@functools.cache
def price_tolerance(digits: int, roundings: int = 1) -> Decimal:
    """How far quantity x price may be from an amount that went through
    ``roundings`` roundings to ``digits`` places and still explain it: half
    a minor unit each."""
    return minor_unit(digits) * roundings / 2


def explains(quantity: Decimal, price: Decimal, amount: Decimal, digits: int, roundings: int = 1) -> bool:
    """Whether ``quantity`` x ``price`` is ``amount`` up to its roundings
    (:func:`price_tolerance`)."""
    return abs(quantity * price - amount) <= price_tolerance(digits, roundings)


def percent_explains(base: Decimal, percent: Decimal, amount: Decimal, digits: int) -> bool:
    """Whether an allowance of ``amount`` is ``percent`` of ``base``, rounded
    once (a discount capped at its line is not)."""
    return explains(base, percent / 100, amount, digits)


def scaled_price(price: Decimal, digits: int) -> tuple[Decimal, int] | None:
    """``price`` per the smallest power of ten (at most 10**12) that gives it
    at most ``digits`` decimals, exactly: ``(1.15, 100000)`` for 0.0000115
    and 2 digits; ``None`` when no such power exists.

    The price comes back quantized to ``digits`` places (``0.10``)."""
    minor = minor_unit(digits)
    for exponent in range(MAX_BASE_EXPONENT + 1):
        value = price.scaleb(exponent)
        if value == value.quantize(minor):
            return value.quantize(minor), 10**exponent
    return None
