"""Parsers for the value formats used in hub.toml and in usage input:
durations, exact decimals, dates and times, time zones.

Pure functions of a string: they must not know where the value is
written (a table, a key) nor report it; their callers word the error.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_DURATION = re.compile(r"([0-9]+)([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> int:
    """Seconds of a duration such as ``30s``, ``10m``, ``1h30m`` or ``1d``."""
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"{text!r} is not a duration such as 30s, 10m, 1h30m or 1d")
    return sum(int(n) * _UNIT_SECONDS[u] for n, u in parts)


#: the longest duration the hub accepts (seconds): 366 days
LONGEST_DURATION = 366 * 86400


def too_long(seconds: int) -> str | None:
    """Why a duration of ``seconds`` is refused (longer than
    :data:`LONGEST_DURATION`), or None: hub.toml's durations and ``hub run``'s
    intervals share the bound and its words."""
    if seconds > LONGEST_DURATION:
        return f"is longer than {LONGEST_DURATION // 86400}d, the longest duration the hub accepts"
    return None


def parse_decimal(text: str) -> Decimal:
    """An exact decimal from its text; floats are refused by the schema."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{text!r} is not a decimal number") from None
    if not value.is_finite():
        raise ValueError(f"{text!r} is not a finite decimal number")
    return value


def parse_date_or_time(text: str, tz: ZoneInfo | timezone = timezone.utc) -> datetime:
    """An aware UTC datetime from a date (midnight in ``tz``) or an RFC 3339
    time with an offset."""
    if len(text) == 10:
        d = date.fromisoformat(text)
        return datetime(d.year, d.month, d.day, tzinfo=tz).astimezone(timezone.utc)
    value = datetime.fromisoformat(text.replace("z", "Z"))
    if value.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset")
    return value.astimezone(timezone.utc)


def parse_until(text: str, tz: ZoneInfo | timezone = timezone.utc) -> datetime:
    """The exclusive end of a validity that reads ``text``, as an aware UTC
    datetime: a date is inclusive, so it ends at the *following* midnight in
    ``tz`` (``2026-10-31`` in Europe/Paris is 2026-10-31T23:00:00Z); an
    RFC 3339 time with an offset is taken as given."""
    if len(text) == 10:
        d = date.fromisoformat(text) + timedelta(days=1)
        return datetime(d.year, d.month, d.day, tzinfo=tz).astimezone(timezone.utc)
    return parse_date_or_time(text, tz)


def is_timezone(name: str) -> bool:
    """Whether ``name`` is an IANA time zone (``Europe`` alone is not)."""
    try:
        ZoneInfo(name)
        return True
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False

