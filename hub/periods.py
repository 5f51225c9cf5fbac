"""Billing periods: ``2026-10`` (month), ``2026-W43`` (ISO week), ``2026-10-15`` (day).

A period is a span of calendar dates; its instants depend on the account's
time zone: half-open ``[start, end)`` from local midnight to local midnight,
so a day holds 23 or 25 hours on daylight-saving changes.

Pure calendar arithmetic: it must not know accounts, schedules or the
clock (whether a period has ended is the caller's question).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from hub.timestamps import impossible_date

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
_DAY = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")


@dataclass(frozen=True, order=True)
class Period:
    """The calendar dates ``[start, end)`` of a daily, weekly or monthly period."""

    start: date
    end: date
    kind: str

    def __str__(self) -> str:
        if self.kind == "monthly":
            return f"{self.start:%Y-%m}"
        if self.kind == "weekly":
            year, week, _ = self.start.isocalendar()
            return f"{year}-W{week:02d}"
        return self.start.isoformat()

    def bounds(self, tz: ZoneInfo | timezone) -> tuple[datetime, datetime]:
        """The aware UTC instants ``[start, end)`` of the period in ``tz``."""
        return (
            datetime(self.start.year, self.start.month, self.start.day, tzinfo=tz).astimezone(timezone.utc),
            datetime(self.end.year, self.end.month, self.end.day, tzinfo=tz).astimezone(timezone.utc),
        )

    def following(self) -> Period:
        """The next period of the same kind."""
        if self.kind == "monthly":
            y, m = self.end.year, self.end.month
            return Period(self.end, date(y + m // 12, m % 12 + 1, 1), "monthly")
        return Period(self.end, self.end + (self.end - self.start), self.kind)

    def epoch_bounds(self, tz: ZoneInfo | timezone) -> tuple[int, int]:
        """:meth:`bounds` as whole epoch seconds."""
        start, end = self.bounds(tz)
        return int(start.timestamp()), int(end.timestamp())


class _NoSuchWeek(ValueError):
    """A week number the year does not have (2025-W53)."""


class _NoSuchDay(ValueError):
    """A month or day of the right shape that does not exist (2026-13,
    2026-11-31): why, said after the forms accepted."""


def parse_period(text: str) -> Period:
    """The period written ``text``; ``ValueError`` says what is accepted."""
    try:
        if m := _WEEK.match(text):
            year, week = int(m[1]), int(m[2])
            weeks = date(year, 12, 28).isocalendar()[1]  # 28 December is always in a year's last ISO week
            if not 1 <= week <= weeks:
                raise _NoSuchWeek(f"{text!r} is not a period: {year} has ISO weeks W01 to W{weeks}")
            start = date.fromisocalendar(year, week, 1)
            return Period(start, start + timedelta(days=7), "weekly")
        if m := _MONTH.match(text):
            year, month = int(m[1]), int(m[2])
            if not 1 <= month <= 12:
                raise _NoSuchDay(f"there is no month {month:02d}")
            start = date(year, month, 1)
            return Period(start, date(year + month // 12, month % 12 + 1, 1), "monthly")
        if _DAY.match(text):
            if (impossible := impossible_date(text)) is not None:
                raise _NoSuchDay(impossible.split(": ", 1)[1])
            start = date.fromisoformat(text)
            return Period(start, start + timedelta(days=1), "daily")
    except _NoSuchWeek:
        raise
    except _NoSuchDay as exc:
        why = f"; {exc}"  # of the right shape but does not exist: why, after the forms accepted
    except (ValueError, OverflowError):
        why = ""
    else:
        why = ""
    raise ValueError(f"{text!r} is not a period: write 2026-10 (a month), 2026-W43 (an ISO week) or 2026-10-15 (a day)"
                     f"{why}")


def period_of(kind: str, day: date) -> Period:
    """The ``kind`` period (``daily``, ``weekly``: an ISO week from Monday,
    ``monthly``) that holds the calendar date ``day``."""
    if kind == "monthly":
        return parse_period(f"{day.year:04d}-{day.month:02d}")
    if kind == "weekly":
        year, week, _ = day.isocalendar()
        return parse_period(f"{year:04d}-W{week:02d}")
    if kind == "daily":
        return parse_period(day.isoformat())
    raise ValueError(f"{kind!r} is not a schedule: daily, weekly or monthly")
