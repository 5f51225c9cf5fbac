"""Timestamps of usage input: RFC 3339 in, whole UTC epoch seconds out."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

UTC = timezone.utc

# RFC 3339 date-time; the offset is optional here only so that a naive time
# can get the error that names it (or the source's declared zone).
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})?")


def parse_timestamp(text: str, tz: ZoneInfo | None = None) -> tuple[int | None, str | None]:
    """``(epoch seconds, None)`` or ``(None, error)`` for one timestamp.

    The time must carry ``Z`` or an offset; a naive time is accepted only
    when the input declares a time zone ``tz``, and then refused if it is
    ambiguous or does not exist there (DST changes). Fractions of a second
    are floored, as the billing rules say.
    """
    if not _RFC3339.fullmatch(text):
        if len(text) == 10 and text[4:5] == "-":
            return None, f"{text!r} is a date, not a timestamp"
        return None, f"{text!r} is not an RFC 3339 timestamp"
    try:
        value = datetime.fromisoformat(text[:-1] + "Z" if text[-1] == "z" else text)
    except ValueError:
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
    return int(value.timestamp()), None


def format_epoch(seconds: int) -> str:
    """RFC 3339 UTC text of epoch ``seconds`` (``2026-10-01T00:00:00Z``)."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
