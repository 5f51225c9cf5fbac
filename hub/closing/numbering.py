"""Invoice and credit note numbers, and the issue day.

- **A series** restarts each year when the number format holds ``{year}``
  (and each month with ``{month}``); ``year`` and ``month`` are those of the
  issue date.
- **Gap-free, in issue order.** :func:`next_number` takes the next number
  inside the issuing transaction: ``UPDATE ... RETURNING`` holds the series
  row until the commit, so a rolled-back issue gives its number back and
  two processes never take one number.

It owns the ``sequences`` table and the hub's calendar for issue dates; it
must not know what is numbered (invoices, credit notes) beyond its kind.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, insert, update

from hub.config.model import Config
from hub.store.tables import sequences


def series_of(kind: str, fmt: str, issue_date: date) -> str:
    """The sequence a number is taken from: per kind, and per year (month)
    when the format shows the year (month)."""
    key = kind
    if "{year" in fmt:
        key += f":{issue_date.year}"
    if "{month" in fmt:
        key += f"-{issue_date.month:02d}"
    return key


def issue_day(config: Config, now: datetime) -> date:
    """The default issue date: today in the hub's time zone (``[hub]
    timezone``), the one calendar every invoice's date is read in, so that
    dates follow the numbers whatever the accounts' time zones."""
    return now.astimezone(ZoneInfo(config.hub.timezone)).date()


def next_number(conn: Connection, kind: str, fmt: str, issue_date: date) -> str:
    """The next number of the series, taken inside the caller's transaction
    (the series row stays locked until it commits or rolls back)."""
    series = series_of(kind, fmt, issue_date)
    seq = conn.execute(
        update(sequences).where(sequences.c.series == series).values(last=sequences.c.last + 1)
        .returning(sequences.c.last)
    ).scalar()
    if seq is None:
        conn.execute(insert(sequences).values(series=series, last=1))
        seq = 1
    return fmt.format(year=issue_date.year, month=issue_date.month, seq=seq)
