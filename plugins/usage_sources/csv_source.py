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

This module owns the source: its configuration, the files and their
checkpoint, the row path (one row at a time, through ``csv.reader``, with
every error of a bad row) and the choice between it and the block path of
:mod:`.csv_fast`. It reads lines through :mod:`.csv_lines` and gathers
records in the shapes of :mod:`.csv_columns`; timestamps and quantities are
parsed by :mod:`hub.plugin`'s parsers, never here. It must know nothing of
the hub but :mod:`hub.plugin`: the store and the pull stage see only the
batches it yields.
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

from hub.plugin import (
    InstanceConfig,
    Origin,
    PullBatch,
    PullContext,
    RejectedRow,
    SourceType,
    TimestampParser,
    hookimpl,
    quantity_parts,
)
from hub.plugin.limits import record_text_errors

from .csv_columns import Columns, Layout
from .csv_fast import FAST_BLOCK, SMALL_BLOCK, FastPath
from .csv_lines import Lines

#: the block path (the name the tests turn it off by)
_FastPath = FastPath

CHECKPOINT_VERSION = 1
#: quantity texts remembered at most
MAX_QUANTITIES = 16_384

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


def _through_link(base: Path, rel: Path) -> bool:
    """Whether the name ``rel`` under ``base`` goes through a symlink."""
    at = base
    for part in rel.parts:
        at = at / part
        if at.is_symlink():
            return True
    return False


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
        self._timestamps = TimestampParser(self.tz)
        self._quantities: dict[str, tuple[int, int]] = {}
        #: the other names of the files read (set by _files)
        self._aliases: set[str] = set()

    # -- the files -------------------------------------------------------------

    def _files(self) -> list[tuple[str, Path]]:
        """The files the glob matches, each once, in sorted order.

        A file is identified by its real path: one reached under several
        names (a symlink to it, a symlinked directory, a symlink loop under
        ``**``) is read once, under the name that goes through no symlink
        if it has one, else its shortest (then the first in sorted order).
        """
        pattern = self.pattern if os.path.isabs(self.pattern) else str(self.base_dir / self.pattern)
        names: dict[str, tuple[tuple[bool, int, str], str, Path]] = {}
        every: dict[str, list[str]] = {}
        for match in glob.glob(pattern, recursive=True):
            path = Path(match)
            if path.is_file():
                try:
                    key = str(path.relative_to(self.base_dir))
                    under = self.base_dir
                except ValueError:
                    key, under = str(path), Path(path.anchor)
                real = os.path.realpath(path)
                rank = (_through_link(under, Path(key)), len(path.parts), key)
                every.setdefault(real, []).append(key)
                if real not in names or rank < names[real][0]:
                    names[real] = (rank, key, path)
        self._aliases = {alias for real, (_rank, key, _path) in names.items() for alias in every[real] if alias != key}
        return sorted(((key, path) for _rank, key, path in names.values()), key=lambda kp: str(kp[1]))

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
        files = self._files()
        # A file read under other names before (a symlink loop under **):
        # what was quarantined under those names is the same rows, read now
        # under the file's one name (all of them when reading everything).
        stale = sorted(self._aliases if not state["files"] else self._aliases & state["files"].keys())
        if stale:
            state["files"] = {k: v for k, v in state["files"].items() if k not in self._aliases}
            yield PullBatch((), (), checkpoint=dict(state), superseded=tuple((alias, 1) for alias in stale))
        plans = []
        for key, path in files:
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
                                superseded=batch.superseded, progress=(done, total), columns=batch.columns)

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
        layout = Layout(header) if header is not None else None
        line = entry["line"] if entry else 0
        quarantined = entry.get("quarantined", 0) if entry else 0
        # What this read reports replaces what earlier reads of the same
        # lines reported (a re-read file, or a last line read unfinished).
        superseded: tuple[tuple[str, int], ...] = ((key, line + 1),)
        columns = Columns(layout)
        rejected: list[RejectedRow] = []
        safe_offset, safe_line = offset, line
        reported = offset
        fast = _FastPath.for_layout(layout, self.delimiter, self._timestamps, self._quantity, ctx)
        slow_until = 0  # the row path reads at least up to this line
        small_until = 0  # the block path takes small blocks up to this line

        def checkpoint() -> dict[str, Any]:
            files = dict(state["files"])
            files[key] = {"offset": safe_offset, "line": safe_line, "sha256": hasher.hexdigest(),
                          "header": header, "quarantined": quarantined, "refs": refs}
            state["files"] = files
            return dict(state)

        def batch() -> PullBatch:
            return PullBatch((), tuple(rejected), checkpoint(), superseded, columns=columns.freeze(key))

        with open(path, "rb") as fh:
            fh.seek(offset)
            lines = Lines(fh, offset, line)
            reader = csv.reader(lines, delimiter=self.delimiter, strict=True)
            while True:
                if fast is not None and lines.line >= slow_until:
                    size = SMALL_BLOCK if lines.line < small_until else FAST_BLOCK
                    block = lines.peek(min(self.batch_size - len(columns) - len(rejected), size))
                    if block:
                        taken = fast.block(block)
                        if taken is None and len(block) > SMALL_BLOCK:
                            small_until = lines.line + len(block)  # again, in small blocks
                            continue
                        if taken is None:
                            # Something in it needs the row path: a bad row
                            # (quarantined with its line and text), a quote...
                            slow_until = lines.line + len(block)
                        else:
                            raw, values = taken
                            columns.extend(values, lines.line + 1)
                            lines.skip(len(block), len(raw))
                            hasher.update(raw)
                            safe_offset, safe_line = lines.offset, lines.line
                            if len(columns) + len(rejected) >= self.batch_size:
                                yield batch(), lines.offset - reported
                                reported = lines.offset
                                columns, rejected, superseded = Columns(layout), [], ()
                            continue
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
                    layout = Layout(header)
                    columns = Columns(layout)
                    fast = _FastPath.for_layout(layout, self.delimiter, self._timestamps, self._quantity, ctx)
                    if not errors:
                        continue
                result = errors or self._record(layout, fields, first_line, ctx, columns)  # type: ignore[arg-type]
                if result:
                    text = raw.decode("utf-8", "replace").removeprefix("\ufeff").rstrip("\r\n")
                    rejected.append(RejectedRow(Origin(key, first_line, text), tuple(result),
                                                layout.record_id_of(fields)))
                    quarantined += 1
                if len(columns) + len(rejected) >= self.batch_size:
                    yield batch(), lines.offset - reported
                    reported = lines.offset
                    columns, rejected, superseded = Columns(layout), [], ()
        yield batch(), lines.offset - reported

    # -- one row ---------------------------------------------------------------

    def _record(self, lay: Layout, fields: list[str], line: int, ctx: PullContext,
                out: Columns) -> list[str] | None:
        """Add the record of a data row to ``out``; or return the list of
        everything wrong with the row."""
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
        start = end = parts = None
        if start_text:
            start, error = self._timestamps.parse(start_text)
            if error:
                errors.append(f"start: {error}")
        if end_text:
            end, error = self._timestamps.parse(end_text)
            if error:
                errors.append(f"end: {error}")
            elif start is not None and end is not None and end < start:
                errors.append(f"end: {end_text!r} is before start {start_text!r}")
        if qty_text:
            parts, error = self._quantity(qty_text)
            if error:
                errors.append(error)
        if account not in ctx.accounts or meter not in ctx.meters or unit:
            errors.extend(ctx.reference_errors(account, meter, unit))
        errors.extend(self._text_errors(lay, fields, record_id, account, resource_id, meter, unit))
        if errors:
            return errors
        out.add(record_id, account, resource_id, meter, start, end, parts, unit,  # type: ignore[arg-type]
                [fields[i].strip() for i, _name in lay.labels], line)
        return None

    @staticmethod
    def _text_errors(lay: Layout, fields: list[str], record_id: str, account: str, resource_id: str, meter: str,
                     unit: str | None) -> list[str]:
        """What of a row's text the store cannot hold (:mod:`hub.plugin.limits`:
        too long, a NUL), on any backend."""
        return record_text_errors(
            (("record_id", record_id), ("account", account), ("resource_id", resource_id), ("meter", meter),
             ("unit", unit)),
            [(name, value) for i, name in lay.labels if (value := fields[i].strip())])

    def _quantity(self, text: str) -> tuple[tuple[int, int] | None, str | None]:
        """:func:`quantity_parts`, remembering the valid texts (usage repeats
        its quantities: 1 vCPU, 4 GiB...)."""
        parts = self._quantities.get(text)
        if parts is not None:
            return parts, None
        parts, error = quantity_parts(text)
        if parts is not None:
            if len(self._quantities) >= MAX_QUANTITIES:
                self._quantities.clear()
            self._quantities[text] = parts
        return parts, error
