"""The csv source's block path: plain rows, many at a time.

Most usage files are nothing but plain fields: ASCII, no quotes, one row per
line, every row valid. :class:`FastPath` reads such a block of lines with
``str.split`` and checks it a column at a time (timestamps and quantities
in numpy, :meth:`hub.plugin.TimestampParser.column` and
:func:`hub.plugin.plain_parts_column`). A block with anything else in it
(a bad row, a quote, a multi-line field, a byte ``str.strip()`` would remove)
is refused (``None``), for the row path of the source to read: it stores the
same records and quarantines what is wrong at its line, with its text and
every error.

This module knows a header's :class:`~.csv_columns.Layout` and the pull's
context; it must not know the source that calls it (its files, checkpoints
and row path), which depends on it, not the other way round.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from operator import lt

from hub.plugin import PullContext, TimestampParser, plain_parts_column
from hub.plugin.limits import TEXT_LIMITS

from .csv_columns import Block, Layout

#: a quantity text's ``(units, nanos)`` or its error (the row path's parser)
QuantityParser = Callable[[str], tuple[tuple[int, int] | None, str | None]]

#: lines the fast path takes at once (at most a batch); a block with a bad
#: row is tried again in blocks of SMALL_BLOCK lines, and a small block with
#: a bad row goes to the row path
FAST_BLOCK = 16_384
SMALL_BLOCK = 1024
#: what the fast path leaves to the row path: quotes, and what the csv module
#: or str.strip() would treat specially (the block must also be ASCII)
_SPECIAL = re.compile(rb'["\x00\t\r\x0b\x0c\x1c-\x1f ]')
_SPECIAL_BYTES = tuple(bytes([b]) for b in b'"\x00\t\r\x0b\x0c\x1c\x1d\x1e\x1f ')
#: the marker of a line's end among the fields of a block
_EOL = "\x00"
#: a line no longer than this has no record or resource id over its limit
#: (hub.plugin.limits)
_ID_LIMIT = min(TEXT_LIMITS["record_id"], TEXT_LIMITS["resource_id"])


class FastPath:
    """Rows that are nothing but plain fields, many at a time.

    A block of lines qualifies when it is ASCII with no quote, no blank line
    and nothing ``str.strip()`` would remove, so that ``str.split`` reads
    every line exactly as ``csv.reader`` does, one row per line; and when
    every row in it is valid, checked column by column with the same rules
    as the row path, with the same parsers (``timestamps``, ``quantity``).
    Any other block goes to the row path.
    """

    def __init__(self, layout: Layout, delimiter: str, timestamps: TimestampParser, quantity: QuantityParser,
                 ctx: PullContext) -> None:
        self.width = layout.width
        self.step = layout.width + 1
        self.required = layout.required
        self.unit = layout.unit
        self.labels = [i for i, _name in layout.labels]
        self.delimiter = delimiter
        self.newline = delimiter + _EOL + delimiter
        self.accounts = ctx.accounts
        self.meters = dict(ctx.meters)
        self.meter_names = frozenset(ctx.meters)
        self.timestamps = timestamps
        self.quantity = quantity
        self.limit = csv.field_size_limit()
        # a configured account or meter name over its limit (only those pass the block's check)
        self.long_names = any(len(a) > TEXT_LIMITS["account"] for a in ctx.accounts) \
            or any(len(m) > TEXT_LIMITS["meter"] for m in ctx.meters)

    @classmethod
    def for_layout(cls, layout: Layout | None, delimiter: str, timestamps: TimestampParser,
                   quantity: QuantityParser, ctx: PullContext) -> FastPath | None:
        """The block path of a file with this header, or ``None`` when no
        block of it can take that path (a bad header, a special delimiter)."""
        if layout is None or layout.errors or not delimiter.isascii() \
                or _SPECIAL.search(delimiter.encode()) or delimiter in "\n\x00":
            return None
        return cls(layout, delimiter, timestamps, quantity, ctx)

    def block(self, lines: list[bytes]) -> tuple[bytes, Block] | None:
        """``(raw bytes, values)`` of a block that qualifies, else ``None``."""
        n = len(lines)
        raw = b"\n".join(lines) + b"\n"
        # one memchr a byte: 30 times faster than _SPECIAL.search()
        if not raw.isascii() or any(map(raw.__contains__, _SPECIAL_BYTES)) or b"" in lines \
                or (len(raw) > self.limit and max(map(len, lines)) > self.limit):
            return None
        flat = raw.decode("ascii").replace("\n", self.newline).split(self.delimiter)
        flat.pop()
        step = self.step
        if len(flat) != n * step or flat[self.width::step].count(_EOL) != n:
            return None  # a row with too few or too many fields
        r = self.required
        record_id, account, resource_id, meter = flat[r[0]::step], flat[r[1]::step], flat[r[2]::step], flat[r[3]::step]
        start_text, end_text, qty_text = flat[r[4]::step], flat[r[5]::step], flat[r[6]::step]
        if "" in record_id or "" in account or "" in resource_id or "" in meter or "" in start_text \
                or "" in qty_text or not self.accounts.issuperset(account) \
                or not self.meter_names.issuperset(meter):
            return None
        if (max(map(len, lines)) > _ID_LIMIT and (max(map(len, record_id)) > TEXT_LIMITS["record_id"]
                                                  or max(map(len, resource_id)) > TEXT_LIMITS["resource_id"])) \
                or (self.long_names and (max(map(len, account)) > TEXT_LIMITS["account"]
                                         or max(map(len, meter)) > TEXT_LIMITS["meter"])):
            return None  # a text over its limit: the row path quarantines it
        unit: list[str | None] | None = None
        if self.unit is not None:
            unit_text = flat[self.unit::step]
            for m, u in set(zip(meter, unit_text)):
                if (u and self.meters[m] and u != self.meters[m]) or len(u) > TEXT_LIMITS["unit"]:
                    return None
            unit = [u or None for u in unit_text]
        running = []
        if "" in end_text:
            end_text = list(end_text)
            i = -1
            try:
                while True:
                    i = end_text.index("", i + 1)
                    running.append(i)
                    end_text[i] = start_text[i]  # parsed as the start, then None
            except ValueError:
                pass
        # both columns at once (one numpy pass)
        both = self.timestamps.column(start_text + end_text)
        if both is None:
            return None
        start, end = both[:n], both[n:]
        if any(map(lt, end, start)):
            return None
        for i in running:
            end[i] = None  # type: ignore[call-overload]
        parts = plain_parts_column(qty_text)
        if parts is None:
            return None
        units, nanos, others = parts
        for i in others:  # E-notation, a sign...: quantity_parts() says
            one, error = self.quantity(qty_text[i])
            if error:
                return None
            units[i], nanos[i] = one  # type: ignore[misc]
        return raw, Block(record_id, account, resource_id, meter, start, end, units, nanos,
                          unit, [flat[i::step] for i in self.labels])
