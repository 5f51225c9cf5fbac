"""Timestamps of usage input: RFC 3339 in, whole UTC epoch seconds out."""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

UTC = timezone.utc


def parse_timestamp(text: str, tz: ZoneInfo | None = None) -> tuple[int | None, str | None]:
    """``(epoch seconds, None)`` or ``(None, error)`` for one timestamp.

    The time must carry ``Z`` or an offset; a naive time is accepted only
    when the input declares a time zone ``tz``, and then refused if it is
    ambiguous or does not exist there (DST changes). Fractions of a second
    are floored, as the billing rules say.
    """
    # The shape of RFC 3339, checked by hand: a regular expression would
    # cost as much as the parse itself, which then checks every digit.
    n = len(text)
    if n < 19 or text[4] != "-" or text[7] != "-" or text[10] not in "Tt " or text[13] != ":" or text[16] != ":" \
            or not text.isascii():
        if n == 10 and text[4:5] == "-":
            return None, f"{text!r} is a date, not a timestamp"
        return None, f"{text!r} is not an RFC 3339 timestamp"
    last = text[-1]
    zoned = last in "Zz" or (n >= 25 and text[-6] in "+-" and text[-3] == ":")
    try:
        value = datetime.fromisoformat(text[:-1] + "Z" if last == "z" else text)
    except ValueError:
        return None, f"{text!r} is not an RFC 3339 timestamp"
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
    return int(value.timestamp()), None


def format_epoch(seconds: int) -> str:
    """RFC 3339 UTC text of epoch ``seconds`` (``2026-10-01T00:00:00Z``)."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
