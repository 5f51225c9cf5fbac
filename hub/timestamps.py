"""Timestamps of usage input: RFC 3339 in, whole UTC epoch seconds out.

The home of the hub's timestamp rules (docs/billing-rules.md) and of their
error wording; plugins reach them through :mod:`hub.plugin.parsing`. Pure
value code: this module must not know sources, the store or any stage.
"""

from __future__ import annotations

import calendar
import re
from datetime import datetime, timezone
from operator import add, itemgetter
from zoneinfo import ZoneInfo

UTC = timezone.utc

#: the instants a usage timestamp may name, in epoch seconds (UTC): from
#: 1970-01-01T00:00:00Z to 9999-12-31T23:59:59Z; a time outside them (year 1
#: at +14:00 is year 0 in UTC) is refused where it is read
EARLIEST, LATEST = 0, 253_402_300_799

#: the seconds of the usual shape, ``...THH:MM:SSZ``: ``":SSZ"`` -> SS
_SECONDS_Z = {f":{s:02d}Z": s for s in range(60)}
_MINUTE, _SECOND = itemgetter(slice(None, 16)), itemgetter(slice(16, None))


#: the digits of a date, and of a time after it: a text of this shape that is
#: not a valid time names a day or a time of day that does not exist
_DATE_SHAPE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})(?:[Tt ]([0-9]{2}):([0-9]{2})(?::([0-9]{2}))?)?")


def impossible_date(text: str) -> str | None:
    """Why ``text``, written as a date or time (``2026-11-31``,
    ``2026-11-30T25:00:00Z``), names a day or a time of day that does not
    exist, in words (``'2026-11-31' is an impossible date: November 2026 has
    30 days``); None when it exists or is not of that shape."""
    match = _DATE_SHAPE.match(text)
    if match is None:
        return None
    year, month, day = (int(g) for g in match.group(1, 2, 3))
    if not 1 <= month <= 12:
        return f"{text!r} is an impossible date: there is no month {month:02d}"
    days = calendar.monthrange(year, month)[1] if year else 31
    if not 1 <= day <= days:
        return f"{text!r} is an impossible date: {calendar.month_name[month]} {year} has {days} days"
    for value, top, what in ((match.group(4), 23, "hours"), (match.group(5), 59, "minutes"),
                             (match.group(6), 60, "seconds")):
        if value is not None and int(value) > top:
            return f"{text!r} is an impossible time: {what} go from 00 to {min(top, 59)}"
    if match.group(6) == "60":
        return f"{text!r} is a leap second, which the hub does not count: write :59"
    return None


def parse_timestamp(text: str, tz: ZoneInfo | None = None) -> tuple[int | None, str | None]:
    """``(epoch seconds, None)`` or ``(None, error)`` for one timestamp.

    The time must carry ``Z`` or an offset; a naive time is accepted only
    when the input declares a time zone ``tz``, and then refused if it is
    ambiguous or does not exist there (DST changes). Fractions of a second
    are floored (docs/billing-rules.md).
    """
    # The shape of RFC 3339, checked by hand: a regular expression would
    # cost as much as the parse itself, which then checks every digit.
    n = len(text)
    if n < 19 or text[4] != "-" or text[7] != "-" or text[10] not in "Tt " or text[13] != ":" or text[16] != ":" \
            or not text.isascii():
        if n == 10 and text[4:5] == "-":
            return None, impossible_date(text) or f"{text!r} is a date, not a timestamp"
        return None, impossible_date(text) or f"{text!r} is not an RFC 3339 timestamp"
    last = text[-1]
    zoned = last in "Zz" or (n >= 25 and text[-6] in "+-" and text[-3] == ":")
    try:
        value = datetime.fromisoformat(text[:-1] + "Z" if last == "z" else text)
    except ValueError:
        return None, impossible_date(text) or f"{text!r} is not an RFC 3339 timestamp"
    if (value.tzinfo is not None) != zoned:
        return None, f"{text!r} is not an RFC 3339 timestamp"
    if value.tzinfo is None:
        if tz is None:
            return None, f"{text!r} has no UTC offset (end it with Z or +hh:mm, or set the source's timezone)"
        first, second = value.replace(tzinfo=tz, fold=0), value.replace(tzinfo=tz, fold=1)
        if first.utcoffset() != second.utcoffset():
            back = first.astimezone(UTC).astimezone(tz).replace(tzinfo=None)
            what = "does not exist" if back != value else "is ambiguous"
            return None, f"{text!r} {what} in {tz.key} (daylight saving change); write it with an offset"
        value = first
    if value.microsecond:
        value = value.replace(microsecond=0)
    seconds = int((value - _EPOCH).total_seconds())
    if seconds < EARLIEST:
        return None, f"{text!r} is before 1970-01-01T00:00:00Z, the earliest time the hub accepts"
    if seconds > LATEST:
        return None, f"{text!r} is after 9999-12-31T23:59:59Z, the latest time the hub accepts"
    return seconds, None


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class TimestampParser:
    """:func:`parse_timestamp` for many timestamps, with a memory of the
    minutes it has seen.

    Usage timestamps are overwhelmingly ``YYYY-MM-DDTHH:MM:SSZ`` and share
    their minutes: once ``2025-03-05T14:23:07Z`` was parsed, any
    ``2025-03-05T14:23:SSZ`` (SS from 00 to 59) is that minute plus SS
    seconds, valid by construction. Anything else goes through
    :func:`parse_timestamp` itself, so the results are the same.
    """

    #: minutes remembered at most (a month has 44,640); then it starts over
    MAX_MINUTES = 65_536

    def __init__(self, tz: ZoneInfo | None = None) -> None:
        self.tz = tz
        self._minutes: dict[str, int] = {}

    def parse(self, text: str) -> tuple[int | None, str | None]:
        """Exactly :func:`parse_timestamp` (``tz`` as given to the parser)."""
        second = _SECONDS_Z.get(text[16:])
        if second is not None:
            base = self._minutes.get(text[:16])
            if base is not None:
                return base + second, None
        value, error = parse_timestamp(text, self.tz)
        if value is not None and second is not None:
            if len(self._minutes) >= self.MAX_MINUTES:
                self._minutes.clear()
            self._minutes[text[:16]] = value - second
        return value, error

    def column(self, texts: list[str]) -> list[int] | None:
        """The epoch seconds of every text, or ``None`` if any is not a
        valid timestamp (then :meth:`parse` tells which and why)."""
        if len(texts) >= _VECTOR_MIN:
            found = utc_z_column(texts)
            if found is not None:
                values, others = found
                for i in others:  # other shapes, or not a valid time: as parse() says
                    value, error = self.parse(texts[i])
                    if error:
                        return None
                    values[i] = value  # type: ignore[call-overload]
                return values
        bases = list(map(self._minutes.get, map(_MINUTE, texts)))
        seconds = list(map(_SECONDS_Z.get, map(_SECOND, texts)))
        # Only the texts not of the usual shape, or of a minute not seen yet,
        # are parsed one by one.
        for column in (seconds, bases):
            i = -1
            while True:
                try:
                    i = column.index(None, i + 1)
                except ValueError:
                    break
                if bases[i] is not None and seconds[i] is not None:
                    continue  # already parsed
                value, error = self.parse(texts[i])
                if error:
                    return None
                bases[i], seconds[i] = value, 0
        return list(map(add, bases, seconds))  # type: ignore[arg-type]


#: columns shorter than this are not worth numpy's overhead
_VECTOR_MIN = 16
#: the digits of ``YYYY-MM-DDTHH:MM:SSZ``, and its other characters
_DIGITS = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18]
_MARKS = {4: ord("-"), 7: ord("-"), 10: ord("T"), 13: ord(":"), 16: ord(":"), 19: ord("Z")}
#: days in each month of a common year (index 0 unused)
_MONTH_DAYS = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def utc_z_column(texts: list[str]) -> tuple[list[int | None], list[int]] | None:
    """The epoch seconds of the texts of the usual shape, all at once.

    ``(values, others)``: ``values[i]`` is the epoch seconds of ``texts[i]``
    when it is ``YYYY-MM-DDTHH:MM:SSZ`` (upper-case ``T`` and ``Z``) and a
    valid time, exactly what :func:`parse_timestamp` gives for it; the
    indexes of every other text are in ``others`` (their ``values`` are
    meaningless), for :func:`parse_timestamp` to tell. ``None`` when the
    texts are not all 20 characters long: then none were looked at.

    Computed in integers (numpy int64, days from the civil date as in
    H. Hinnant's ``days_from_civil``), never through floats.
    """
    import numpy as np  # here: most uses of this module need no numpy (0.1 s to import)

    n = len(texts)
    if not n:
        return [], []
    joined = "".join(texts).encode("utf-8", "surrogatepass")
    if len(joined) != 20 * n or min(map(len, texts)) != 20:
        return None  # every text is 20 characters and 20 bytes, or this is not for them
    a = np.frombuffer(joined, dtype=np.uint8).reshape(n, 20)
    d = a[:, _DIGITS].astype(np.int64) - 48
    ok = ((d >= 0) & (d <= 9)).all(axis=1)
    for i, mark in _MARKS.items():
        ok &= a[:, i] == mark
    year = d[:, 0] * 1000 + d[:, 1] * 100 + d[:, 2] * 10 + d[:, 3]
    month = d[:, 4] * 10 + d[:, 5]
    day = d[:, 6] * 10 + d[:, 7]
    hour = d[:, 8] * 10 + d[:, 9]
    minute = d[:, 10] * 10 + d[:, 11]
    second = d[:, 12] * 10 + d[:, 13]
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    ok &= (year >= 1970) & (month >= 1) & (month <= 12) & (day >= 1) & (hour <= 23) & (minute <= 59) & (second <= 59)
    ok &= day <= np.array(_MONTH_DAYS, dtype=np.int64)[np.clip(month, 0, 12)] + (leap & (month == 2))
    # days since 1970-01-01 of the civil date (the year starting in March)
    y = year - (month <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * ((month + 9) % 12) + 2) // 5 + day - 1
    days = era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
    values = days * 86400 + hour * 3600 + minute * 60 + second
    return values.tolist(), np.flatnonzero(~ok).tolist()


def format_epoch(seconds: int) -> str:
    """RFC 3339 UTC text of epoch ``seconds`` (``2026-10-01T00:00:00Z``)."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
