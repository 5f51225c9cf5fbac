"""The ``csv`` usage source: usage records from CSV files.

Columns: ``record_id, account, resource_id, meter, start, end, quantity``,
optionally ``unit``; any other column becomes a label. Files are strict
UTF-8 (a BOM is fine); timestamps are RFC 3339 (an empty ``end`` means the
resource still runs).

The checkpoint remembers, per file, how many bytes were read (up to the last
complete line), the sha256 of those bytes, the header and the line number.
A file that grew is read from where it stopped; a file whose read part
changed is read again from the start and upserted; an unchanged file costs
one hash of its bytes.
"""

from __future__ import annotations

import csv
import glob
import hashlib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from hub.hookspecs import hookimpl
from hub.plugin_types import NO_LABELS, InstanceConfig, Origin, PullBatch, PullContext, RejectedRow, SourceType, UsageRecord
from hub.quantities import parse_quantity
from hub.timestamps import parse_timestamp

REQUIRED = ("record_id", "account", "resource_id", "meter", "start", "end", "quantity")
OPTIONAL = ("unit",)
CHECKPOINT_VERSION = 1

CONFIG_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["path"],
    "properties": {
        "path": {"type": "string", "minLength": 1,
                 "description": "A glob of CSV files, relative to hub.toml (usage/*.csv, exports/**/*.csv)."},
        "delimiter": {"type": "string", "minLength": 1, "maxLength": 1, "default": ",",
                      "description": "The field delimiter."},
        "timezone": {"type": "string", "format": "timezone",
                     "description": "IANA time zone of naive timestamps; without it they are errors."},
        "batch_size": {"type": "integer", "minimum": 1, "default": 10000,
                       "description": "Rows stored per transaction (and per checkpoint)."},
    },
}


@hookimpl
def hub_register_source_types() -> list[SourceType]:
    return [SourceType(
        name="csv",
        description="Usage records from CSV files (a glob), read incrementally and exactly once.",
        config_schema=CONFIG_SCHEMA,
        factory=CsvSource,
    )]


class _Lines:
    """Feeds a binary file to ``csv.reader`` line by line, keeping what the
    csv module cannot tell: byte offsets, raw bytes and UTF-8 errors."""

    def __init__(self, fh: Any, offset: int, line: int) -> None:
        self.fh = fh
        self.offset = offset
        self.line = line
        self.raw: list[bytes] = []
        self.decode_error: str | None = None
        self.complete = True
        self.eof = False

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        data = self.fh.readline()
        if not data:
            self.eof = True
            raise StopIteration
        start = self.offset
        self.offset += len(data)
        self.line += 1
        self.raw.append(data)
        self.complete = data.endswith(b"\n")
        if start == 0 and data.startswith(b"\xef\xbb\xbf"):
            data = data[3:]
            start = 3
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            if self.decode_error is None:
                self.decode_error = f"invalid UTF-8 at byte {start + exc.start} (line {self.line})"
            return data.decode("utf-8", "replace")

    def take(self) -> bytes:
        """The raw bytes of the row just read."""
        raw = b"".join(self.raw)
        self.raw.clear()
        return raw


class CsvSource:
    """One ``[[sources]]`` instance of type ``csv``."""

    def __init__(self, config: InstanceConfig) -> None:
        self.name = config.name
        self.base_dir = config.base_dir
        self.pattern = config.options["path"]
        self.delimiter = config.options["delimiter"]
        self.batch_size = config.options["batch_size"]
        tz = config.options.get("timezone")
        self.tz = ZoneInfo(tz) if tz else None

    # -- the files -------------------------------------------------------------

    def _files(self) -> list[tuple[str, Path]]:
        pattern = self.pattern if os.path.isabs(self.pattern) else str(self.base_dir / self.pattern)
        out = []
        for match in sorted(glob.glob(pattern, recursive=True)):
            path = Path(match)
            if path.is_file():
                try:
                    key = str(path.relative_to(self.base_dir))
                except ValueError:
                    key = str(path)
                out.append((key, path))
        return out

    @staticmethod
    def _refs(ctx: PullContext) -> str:
        h = hashlib.sha256()
        for name in sorted(ctx.accounts):
            h.update(b"a" + name.encode() + b"\0")
        for name, unit in sorted(ctx.meters.items()):
            h.update(b"m" + name.encode() + b"\0" + (unit or "").encode() + b"\0")
        return h.hexdigest()[:16]

    # -- the pull --------------------------------------------------------------

    def pull(self, checkpoint: Mapping[str, Any] | None, ctx: PullContext) -> Iterator[PullBatch]:
        state: dict[str, Any] = {"version": CHECKPOINT_VERSION, "files": {}}
        if checkpoint and checkpoint.get("version") == CHECKPOINT_VERSION:
            state["files"] = {k: dict(v) for k, v in checkpoint["files"].items()}
        refs = self._refs(ctx)
        plans = []
        for key, path in self._files():
            size = path.stat().st_size
            entry = state["files"].get(key)
            plan = self._plan(path, size, entry, refs)
            if plan is not None:
                plans.append((key, path, size, plan))
        total = sum(size - plan[0] for _key, _path, size, plan in plans)
        done = 0
        for key, path, _size, (offset, hasher) in plans:
            entry = state["files"].get(key) if offset else None
            for batch, read in self._read(key, path, offset, hasher, entry, ctx, state, refs):
                done += read
                yield PullBatch(batch.records, batch.rejected, checkpoint=batch.checkpoint,
                                superseded=batch.superseded, progress=(done, total))

    def _plan(self, path: Path, size: int, entry: Mapping[str, Any] | None, refs: str) -> tuple[int, Any] | None:
        """Where to start reading ``path``: ``(offset, hasher of the bytes
        before it)``, or ``None`` when there is nothing new."""
        # Files with quarantined rows are read again when accounts or meters
        # changed: the rows they refused may now be valid.
        if entry is None or (entry.get("quarantined") and entry.get("refs") != refs):
            return 0, hashlib.sha256()
        offset = entry["offset"]
        if size < offset:
            return 0, hashlib.sha256()
        hasher = hashlib.sha256()
        with open(path, "rb") as fh:
            remaining = offset
            while remaining:
                chunk = fh.read(min(1 << 20, remaining))
                if not chunk:
                    break
                hasher.update(chunk)
                remaining -= len(chunk)
        if hasher.hexdigest() != entry["sha256"]:
            return 0, hashlib.sha256()  # changed in place: read it all again
        if size == offset:
            return None
        return offset, hasher

    def _read(self, key: str, path: Path, offset: int, hasher: Any, entry: Mapping[str, Any] | None,
              ctx: PullContext, state: dict[str, Any], refs: str) -> Iterator[tuple[PullBatch, int]]:
        # None: no header read yet; []: an unreadable header
        header: list[str] | None = list(entry["header"]) if entry and entry["header"] is not None else None
        layout = _Layout(header) if header is not None else None
        line = entry["line"] if entry else 0
        quarantined = entry.get("quarantined", 0) if entry else 0
        # What this read reports replaces what earlier reads of the same
        # lines reported (a re-read file, or a last line read unfinished).
        superseded: tuple[tuple[str, int], ...] = ((key, line + 1),)
        records: list[UsageRecord] = []
        rejected: list[RejectedRow] = []
        safe_offset, safe_line = offset, line
        reported = offset

        def checkpoint() -> dict[str, Any]:
            files = dict(state["files"])
            files[key] = {"offset": safe_offset, "line": safe_line, "sha256": hasher.hexdigest(),
                          "header": header, "quarantined": quarantined, "refs": refs}
            state["files"] = files
            return dict(state)

        with open(path, "rb") as fh:
            fh.seek(offset)
            lines = _Lines(fh, offset, line)
            reader = csv.reader(lines, delimiter=self.delimiter, strict=True)
            while True:
                first_line = lines.line + 1
                try:
                    fields: list[str] | None = next(reader)
                    parse_error = None
                except StopIteration:
                    break
                except csv.Error as exc:
                    fields, parse_error = None, f"malformed CSV: {exc}"
                raw = lines.take()
                # A row is finished when its last line ends with a newline and
                # no quoted field ran into the end of the file; an unfinished
                # one is read again, from its first line, by the next pull.
                if lines.complete and not (parse_error and lines.eof):
                    hasher.update(raw)
                    safe_offset, safe_line = lines.offset, lines.line
                decode_error, lines.decode_error = lines.decode_error, None
                if fields == [] and not decode_error:
                    continue  # a blank line
                errors = [e for e in (decode_error, parse_error) if e]
                if layout is None:
                    header = [h.strip() for h in fields or []]
                    if errors:
                        # An unreadable header: every row after it is
                        # quarantined as missing its columns, and it says why.
                        header = []
                        errors.insert(0, "the header row is unreadable")
                    layout = _Layout(header)
                    if not errors:
                        continue
                result = errors if errors else self._record(layout, fields, key, first_line, ctx)  # type: ignore[arg-type]
                if isinstance(result, list):
                    text = raw.decode("utf-8", "replace").removeprefix("\ufeff").rstrip("\r\n")
                    rejected.append(RejectedRow(Origin(key, first_line, text), tuple(result),
                                                layout.record_id_of(fields)))
                    quarantined += 1
                else:
                    records.append(result)
                if len(records) + len(rejected) >= self.batch_size:
                    yield PullBatch(tuple(records), tuple(rejected), checkpoint(), superseded), lines.offset - reported
                    reported = lines.offset
                    records, rejected, superseded = [], [], ()
        yield PullBatch(tuple(records), tuple(rejected), checkpoint(), superseded), lines.offset - reported

    # -- one row ---------------------------------------------------------------

    def _record(self, lay: _Layout, fields: list[str], location: str, line: int,
                ctx: PullContext) -> UsageRecord | list[str]:
        """The record of a data row, or the list of everything wrong with it."""
        if lay.errors or len(fields) != lay.width:
            errors = lay.shape_errors(fields)
            if errors:
                return errors
        r = lay.required
        record_id, account, resource_id = fields[r[0]].strip(), fields[r[1]].strip(), fields[r[2]].strip()
        meter, start_text, end_text = fields[r[3]].strip(), fields[r[4]].strip(), fields[r[5]].strip()
        qty_text = fields[r[6]].strip()
        unit = fields[lay.unit].strip() or None if lay.unit is not None else None
        if record_id and account and resource_id and meter and start_text and qty_text:
            errors = []
        else:
            errors = [f"{column}: empty" for column, value in (
                ("record_id", record_id), ("account", account), ("resource_id", resource_id), ("meter", meter),
                ("start", start_text), ("quantity", qty_text)) if not value]
        start = end = quantity = None
        if start_text:
            start, error = parse_timestamp(start_text, self.tz)
            if error:
                errors.append(f"start: {error}")
        if end_text:
            end, error = parse_timestamp(end_text, self.tz)
            if error:
                errors.append(f"end: {error}")
            elif start is not None and end is not None and end < start:
                errors.append(f"end: {end_text!r} is before start {start_text!r}")
        if qty_text:
            quantity, error = parse_quantity(qty_text)
            if error:
                errors.append(error)
        if account not in ctx.accounts or meter not in ctx.meters or unit:
            errors.extend(ctx.reference_errors(account, meter, unit))
        if errors:
            return errors
        labels = {name: value for i, name in lay.labels if (value := fields[i].strip())} if lay.labels else NO_LABELS
        return UsageRecord(record_id, account, resource_id, meter, start, end, quantity, unit,  # type: ignore[arg-type]
                           labels, Origin(location, line))


class _Layout:
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
