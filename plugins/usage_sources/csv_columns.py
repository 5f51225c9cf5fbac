"""The csv source's shapes: where a header puts the columns, and the records
of a batch gathered as columns.

:class:`Layout` is worked out once per file from its header (and says what
is wrong with it or with a row's shape); :class:`Block` holds the values of
rows the block path took; :class:`Columns` gathers both paths' records into
the :class:`~hub.plugin.UsageColumns` of a batch. This module knows neither
how the file is read nor how a value is parsed.
"""

from __future__ import annotations

from typing import NamedTuple

from hub.plugin import UsageColumns

REQUIRED = ("record_id", "account", "resource_id", "meter", "start", "end", "quantity")
OPTIONAL = ("unit",)


class Layout:
    """Where the columns of a header are, worked out once per file."""

    def __init__(self, header: list[str]) -> None:
        self.width = len(header)
        self.header = header
        self.errors: list[str] = []
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            self.errors.append(f"missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)} (not in the header)")
        repeated = sorted({c for c in header if header.count(c) > 1 and c})
        if repeated:
            self.errors.append(f"the header repeats column{'s' if len(repeated) > 1 else ''} {', '.join(repeated)}")
        self.required = [header.index(c) if c in header else 0 for c in REQUIRED]
        self.unit = header.index("unit") if "unit" in header else None
        self.labels = [(i, name) for i, name in enumerate(header) if name and name not in REQUIRED and name not in OPTIONAL]

    def shape_errors(self, fields: list[str]) -> list[str]:
        """The errors of a row whose shape does not fit the header."""
        errors = list(self.errors)
        if len(fields) > self.width:
            errors.append(f"the row has {len(fields)} fields, the header {self.width}")
        short = [c for c in self.header[len(fields):] if c in REQUIRED]
        if short and not self.errors:
            errors.append(f"missing column{'s' if len(short) > 1 else ''} {', '.join(short)} "
                          f"(the row has {len(fields)} fields, the header {self.width})")
        if not errors and len(fields) < self.width:
            fields.extend([""] * (self.width - len(fields)))  # only optional columns are missing
        return errors

    def record_id_of(self, fields: list[str] | None) -> str | None:
        """The record id of a row, if it has one (to resolve it later)."""
        if fields and "record_id" in self.header:
            i = self.header.index("record_id")
            if i < len(fields) and fields[i].strip():
                return fields[i].strip()
        return None


class Block(NamedTuple):
    """The values of a block of rows that took the block path."""

    record_id: list[str]
    account: list[str]
    resource_id: list[str]
    meter: list[str]
    start: list[int]
    end: list[int | None]
    units: list[int]
    nanos: list[int]
    unit: list[str | None] | None
    labels: list[list[str]]


class Columns:
    """The records of a batch, gathered as columns."""

    def __init__(self, layout: Layout | None) -> None:
        self.record_id: list[str] = []
        self.account: list[str] = []
        self.resource_id: list[str] = []
        self.meter: list[str] = []
        self.start: list[int] = []
        self.end: list[int | None] = []
        self.units: list[int] = []
        self.nanos: list[int] = []
        self.unit: list[str | None] | None = [] if layout is not None and layout.unit is not None else None
        self.labels: list[list[str]] = [[] for _ in layout.labels] if layout is not None else []
        self.label_names = [name for _i, name in layout.labels] if layout is not None else []
        self.line: list[int] = []

    def __len__(self) -> int:
        return len(self.record_id)

    def add(self, record_id: str, account: str, resource_id: str, meter: str, start: int, end: int | None,
            parts: tuple[int, int], unit: str | None, labels: list[str], line: int) -> None:
        self.record_id.append(record_id)
        self.account.append(account)
        self.resource_id.append(resource_id)
        self.meter.append(meter)
        self.start.append(start)
        self.end.append(end)
        self.units.append(parts[0])
        self.nanos.append(parts[1])
        if self.unit is not None:
            self.unit.append(unit)
        for column, value in zip(self.labels, labels):
            column.append(value)
        self.line.append(line)

    def extend(self, values: Block, first_line: int) -> None:
        n = len(values.record_id)
        self.record_id += values.record_id
        self.account += values.account
        self.resource_id += values.resource_id
        self.meter += values.meter
        self.start += values.start
        self.end += values.end
        self.units += values.units
        self.nanos += values.nanos
        if self.unit is not None:
            self.unit += values.unit  # type: ignore[operator]
        for column, more in zip(self.labels, values.labels):
            column += more
        self.line += range(first_line, first_line + n)

    def freeze(self, location: str) -> UsageColumns | None:
        if not self.record_id:
            return None
        return UsageColumns(self.record_id, self.account, self.resource_id, self.meter, self.start, self.end,
                            self.units, self.nanos, self.unit, dict(zip(self.label_names, self.labels)),
                            location, self.line)
