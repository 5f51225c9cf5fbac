"""Locale formatting of an invoice's figures: money, unit prices, exact
numbers, rates, dates and periods, with Babel for the buyer's locale and
time zone (:class:`Formatter`).

Babel formats one figure in about 50 µs and an invoice has hundreds, so for
a locale and currency whose formats probe as plain groups of three
:class:`_Numbers` formats without Babel, exactly as Babel would.

This module must not know invoices, lines or documents: it formats values.
"""

from __future__ import annotations

import functools
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_interval
from babel.numbers import (
    format_currency,
    format_decimal,
    format_percent,
    get_currency_precision,
    get_decimal_symbol,
    get_group_symbol,
)

from hub.plugin.invoice import local_days


@functools.lru_cache(maxsize=64)
def _locale(tag: str) -> Locale:
    try:
        return Locale.parse(tag.replace("-", "_"))
    except (UnknownLocaleError, ValueError) as exc:
        raise ValueError(f"buyer locale {tag!r} is not a locale Babel knows ({exc})") from None


class _Numbers:
    """Babel's number and money formats of one locale and currency, made
    without Babel: formatting a figure through Babel costs about 50 µs, and
    an invoice has hundreds. Only built when probes show it formats exactly
    as Babel does for that locale and currency (groups of three, the sign
    and the currency symbol in a fixed place); otherwise the
    :class:`Formatter` asks Babel every time."""

    def __init__(self, locale: Locale, currency: str) -> None:
        self.group = get_group_symbol(locale)
        self.decimal = get_decimal_symbol(locale)
        self.digits = get_currency_precision(currency)
        self.money_formats = []
        for sign in (1, -1):
            probes = [sign * Decimal(f"1234567.{'8' * self.digits}"), sign * Decimal(f"1234.{'5' * self.digits}")]
            shapes = {format_currency(p, currency, locale=locale).replace(self.fixed(abs(p), self.digits), "{}", 1)
                      for p in probes}
            if len(shapes) != 1 or "{}" not in next(iter(shapes)):
                raise LookupError("the currency format depends on the amount")
            self.money_formats.append(shapes.pop())
        for probe in ("1234567", "1234.5", "0.000010", "42"):
            if format_decimal(Decimal(probe), locale=locale, decimal_quantization=False) != self.exact(Decimal(probe)):
                raise LookupError("the number format is not groups of three")

    def grouped(self, whole: int) -> str:
        return f"{whole:,}".replace(",", self.group)

    def fixed(self, value: Decimal, digits: int) -> str:
        """``value`` (not negative) with exactly ``digits`` decimals."""
        text = f"{value:.{digits}f}"
        whole, _, fraction = text.partition(".")
        return self.grouped(int(whole)) + (self.decimal + fraction if fraction else "")

    def exact(self, value: Decimal) -> str:
        """``value`` (not negative) with the decimals it has, no trailing zeros."""
        digits = max(0, -value.normalize().as_tuple().exponent)  # type: ignore[operator]
        return self.fixed(value, digits)


@functools.lru_cache(maxsize=256)
def _numbers(locale: Locale, currency: str) -> _Numbers | None:
    try:
        return _Numbers(locale, currency)
    except LookupError:
        return None


class Formatter:
    """Formats for one locale, currency and time zone (the buyer's)."""

    def __init__(self, locale: str, currency: str, timezone: str = "UTC") -> None:
        self.locale = _locale(locale or "en")
        self.currency = currency
        self.tz = ZoneInfo(timezone or "UTC")
        self._fast = _numbers(self.locale, currency)

    def money(self, value: str | Decimal, negate: bool = False) -> str:
        """An amount with the currency's minor digits: ``1.234,56 €`` in de."""
        amount = -Decimal(value) if negate else Decimal(value)
        fast = self._fast
        if fast is not None and amount == round(amount, fast.digits):
            return fast.money_formats[amount < 0].format(fast.fixed(abs(amount), fast.digits))
        return format_currency(amount, self.currency, locale=self.locale)

    def price(self, value: str | Decimal) -> str:
        """A unit price at full precision: ``0,0000115 €`` (never rounded)."""
        amount = Decimal(value)
        fast = self._fast
        if fast is not None and amount >= 0:
            digits = max(fast.digits, -amount.normalize().as_tuple().exponent)  # type: ignore[operator]
            return fast.money_formats[0].format(fast.fixed(amount, digits))
        return format_currency(amount, self.currency, locale=self.locale, decimal_quantization=False)

    def number(self, value: str | Decimal) -> str:
        """An exact number with the locale's separators: ``3.456.762``, ``42,5``."""
        number = Decimal(value)
        if self._fast is not None and number >= 0:
            return self._fast.exact(number)
        return format_decimal(number, locale=self.locale, decimal_quantization=False)

    def percent(self, rate: str | Decimal) -> str:
        """A rate given in percent: ``19`` -> ``19 %`` (de), ``19%`` (en)."""
        return format_percent(Decimal(rate) / 100, locale=self.locale, decimal_quantization=False)

    def date(self, iso: str) -> str:
        """An ISO date, long form: ``3. November 2025`` (de)."""
        return format_date(date.fromisoformat(iso), "long", locale=self.locale)

    def period(self, start: str, end: str) -> str:
        """A half-open ``[start, end)`` of instants as the days it covers in
        the buyer's time zone: ``Oct 1 – 31, 2025`` (en)."""
        first, last = local_days(datetime.fromisoformat(start), datetime.fromisoformat(end), self.tz)
        if last <= first:
            return format_date(first, "long", locale=self.locale)
        return format_interval(first, last, "yMMMMd", locale=self.locale)

    def country(self, code: str | None) -> str:
        """A country's name in the buyer's language (``DE`` -> ``Deutschland``)."""
        return self.locale.territories.get(code, code) if code else ""
