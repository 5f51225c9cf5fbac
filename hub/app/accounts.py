"""Accounts from a CSV file into the TOML file hub.toml includes, and accounts as JSON.

:func:`import_accounts` writes the accounts of a CSV file (a header of account keys, one account a row)
into a TOML file that hub.toml includes (default ``config/accounts.toml``), with tomlkit, so that the
comments and the layout of that file survive:

- every row is checked first, as ``hub check`` checks an ``[[accounts]]`` table; a bad row is reported
  with its CSV line number and nothing is written;
- a row whose id is already in the file updates that account: each column of the CSV sets its key, an
  empty cell removes it; keys the CSV has no column for (``plans``, ``prices``, ``tags``...) are kept;
- a row with a new id appends an ``[[accounts]]`` table;
- then the whole configuration is checked with the result; if it fails, the file is restored and the
  errors are listed.

This module knows the configuration's files and checks; it must not know the store, the stages or click.
"""

from __future__ import annotations

import csv
import difflib
import fnmatch
import glob
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.items import AoT, Table

from hub.app.core import Hub, HubError
from hub.config import Account, ConfigErrors, load_config
from hub.config.loader import check_account

#: the columns a CSV may have, in the order new tables are written
COLUMNS = ("id", "name", "country", "vat_id", "email", "currency", "schedule", "timezone", "since", "parent",
           "tax_exempt", "exemption_reason", "street", "city", "postal_code", "region", "locale", "peppol_id")
#: columns that go into the account's ``address`` table
ADDRESS = ("street", "city", "postal_code", "region")
TRUE = ("true", "yes", "1")
FALSE = ("false", "no", "0")
DEFAULT_INTO = Path("config") / "accounts.toml"


def account_json(a: Account) -> dict[str, Any]:
    """The typed account as JSON (``hub accounts list --json``)."""
    return {
        "id": a.id, "name": a.name, "country": a.country, "currency": a.currency, "timezone": a.timezone,
        "schedule": a.schedule, "parent": a.parent, "vat_id": a.vat_id, "email": a.email,
        "since": a.since.isoformat().replace("+00:00", "Z") if a.since else None,
        "tax_exempt": a.tax_exempt, "exemption_reason": a.exemption_reason,
        "address": {k: getattr(a.address, k) for k in ADDRESS if getattr(a.address, k) is not None},
        "locale": a.locale, "peppol_id": a.peppol_id, "tags": list(a.tags),
    }


@dataclass
class Row:
    """One CSV row: its line, and the value of each column (None: empty)."""

    line: int
    values: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.values["id"]

    def table(self, existing: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The ``[[accounts]]`` table this row makes of ``existing`` (the
        account's current table; None for a new account)."""
        out = {k: v for k, v in (existing or {}).items() if k not in self.values}
        out.update({k: v for k, v in self.values.items() if v is not None and k not in ADDRESS})
        old = (existing or {}).get("address")
        address = {k: v for k, v in old.items() if k not in self.values} if isinstance(old, Mapping) else {}
        address.update({k: self.values[k] for k in ADDRESS if self.values.get(k) is not None})
        out.pop("address", None)
        if address:
            out["address"] = address
        return out


class CsvErrors(Exception):
    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        super().__init__("\n".join(errors))


def read_rows(path: Path, known: Mapping[str, Mapping[str, Any]], shown: str | None = None) -> list[Row]:
    """The rows of the CSV file at ``path``, each checked as the account it
    makes (its current table with the row's values); :class:`CsvErrors`
    lists every problem as ``FILE: line N: key: message``.

    :param known: the current ``[[accounts]]`` tables by id (rows update
        them; parents may name them).
    """
    shown = shown or str(path)
    errors: list[str] = []

    def error(line: int, key: str, message: str) -> None:
        errors.append(": ".join(p for p in (shown, f"line {line}", key, message) if p))

    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise CsvErrors([f"{shown}: cannot be read: {exc.strerror}"]) from None
    except UnicodeDecodeError as exc:
        raise CsvErrors([f"{shown}: not UTF-8 at byte {exc.start}"]) from None
    reader = csv.reader(text.splitlines(keepends=True))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise CsvErrors([f"{shown}: is empty: the first line must be a header such as id,name,country"]) from None
    except csv.Error as exc:
        raise CsvErrors([f"{shown}: line 1: {exc}"]) from None
    for i, name in enumerate(header):
        if name not in COLUMNS:
            close = difflib.get_close_matches(name, COLUMNS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f"; columns: {', '.join(COLUMNS)}"
            error(1, name or f"column {i + 1}", f"unknown column{hint}")
        elif name in header[:i]:
            error(1, name, "is a column twice")
    if "id" not in header:
        error(1, "id", "the header has no id column")
    if errors:
        raise CsvErrors(errors)

    rows: list[Row] = []
    seen: dict[str, int] = {}
    line = 1
    while True:
        start = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            error(reader.line_num, "", str(exc))
            break
        line = start
        if not any(c.strip() for c in cells):
            continue  # a blank line
        if len(cells) > len(header):
            error(line, "", f"has {len(cells)} fields, the header {len(header)}")
            continue
        row = Row(line)
        for name, cell in zip(header, cells + [""] * (len(header) - len(cells))):
            value = cell.strip()
            row.values[name] = value or None
        if row.values.get("tax_exempt") is not None:
            flag = row.values["tax_exempt"].lower()
            if flag in TRUE + FALSE:
                row.values["tax_exempt"] = flag in TRUE
            else:
                error(line, "tax_exempt", f"{row.values['tax_exempt']!r} is not true or false (or yes/no, 1/0)")
                row.values["tax_exempt"] = None
        if row.values.get("id") is None:
            error(line, "id", "is empty")
            continue
        for key, message in check_account(row.table(known.get(row.id))):
            error(line, key, message)
        if row.id in seen:
            error(line, "id", f"{row.id!r} is already on line {seen[row.id]}")
        seen.setdefault(row.id, line)
        rows.append(row)
    ids = set(known) | set(seen)
    for row in rows:
        parent = row.values.get("parent")
        if parent is not None and parent not in ids:
            error(row.line, "parent", f"unknown account {parent!r}")
    if errors:
        raise CsvErrors(sorted(errors, key=_line_order))
    return rows


def _line_order(message: str) -> int:
    part = message.split(": line ", 1)[1] if ": line " in message else "0"
    digits = part.split(":", 1)[0]
    return int(digits) if digits.isdigit() else 0


def is_included(config_path: Path, target: Path) -> bool:
    """Whether hub.toml at ``config_path`` includes ``target`` (or is it),
    also when ``target`` does not exist yet."""
    import tomllib

    if target == config_path:
        return True
    try:
        includes = tomllib.loads(config_path.read_text("utf-8-sig")).get("include", [])
        rel = target.relative_to(config_path.parent).as_posix()
    except (OSError, ValueError, tomllib.TOMLDecodeError):
        return False
    for pattern in includes:
        if not isinstance(pattern, str):
            continue
        if target.exists() and any(Path(m).resolve() == target
                                   for m in glob.glob(str(config_path.parent / pattern), recursive=True)):
            return True
        pattern = pattern.removeprefix("./")
        if fnmatch.fnmatchcase(rel, pattern) or fnmatch.fnmatchcase(rel, pattern.replace("**/", "")):
            return True
    return False


def _set(t: Table, key: str, value: Any) -> None:
    """Set ``key`` of ``t``; a new key goes after the table's last key, not
    after the comments that follow it (they belong to the next table)."""
    if key in t:
        t[key] = value
        return
    body = t.value.body
    last = max((i for i, (k, item) in enumerate(body) if k is not None and not isinstance(item, (Table, AoT))),
               default=None)
    if last is not None and last + 1 < len(body):
        try:
            t.value._insert_at(last + 1, key, value)  # noqa: SLF001 - tomlkit has no public insert
            return
        except (AttributeError, ValueError):
            pass
    t[key] = value


def _update(t: Table, row: Row) -> bool:
    """Apply ``row`` to the existing table ``t``; whether anything changed."""
    before = t.unwrap()
    for key, value in row.values.items():
        if key in ADDRESS or key == "id":
            continue
        if value is None:
            if key in t:
                del t[key]
        elif t.get(key) != value:
            _set(t, key, value)
    columns = [k for k in ADDRESS if k in row.values]
    if columns:
        address = t.get("address")
        if address is None:
            wanted = {k: row.values[k] for k in columns if row.values[k] is not None}
            if wanted:
                inline = tomlkit.inline_table()
                inline.update(wanted)
                _set(t, "address", inline)
        else:
            for k in columns:
                if row.values[k] is None:
                    if k in address:
                        del address[k]
                elif address.get(k) != row.values[k]:
                    address[k] = row.values[k]
            if not address:
                del t["address"]
    return t.unwrap() != before


def _new_table(row: Row) -> Table:
    t = tomlkit.table()
    values = row.table()
    for key in COLUMNS:
        if key in values:
            t[key] = values[key]
    if "address" in values:
        inline = tomlkit.inline_table()
        inline.update(values["address"])
        t["address"] = inline
    return t


def merge_rows(text: str, rows: list[Row]) -> tuple[str, list[str], list[str]]:
    """The TOML ``text`` with ``rows`` written in; (new text, added ids,
    updated ids). Raises ValueError when ``text`` is not TOML whose
    ``accounts`` is an array of tables."""
    doc = tomlkit.parse(text)
    if "accounts" in doc and not isinstance(doc["accounts"], AoT):
        raise ValueError("its accounts is not an array of tables ([[accounts]])")
    aot = doc.get("accounts")
    existing = {t.get("id"): t for t in aot} if aot is not None else {}
    added: list[str] = []
    updated: list[str] = []
    for row in rows:
        if row.id in existing:
            if _update(existing[row.id], row):
                updated.append(row.id)
            continue
        t = _new_table(row)
        if aot is None:
            aot = tomlkit.aot()
            if doc.body and text.strip():
                doc.add(tomlkit.nl())
            doc.append("accounts", aot)
            aot = doc["accounts"]
        if len(aot) and not aot[-1].as_string().endswith("\n\n"):
            aot[-1].add(tomlkit.nl())  # a blank line between the tables
        aot.append(t)
        existing[row.id] = t
        added.append(row.id)
    return tomlkit.dumps(doc), added, updated


def _write(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` at once (a crash leaves the old file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


class ImportRefused(HubError):
    """Nothing was written: ``errors`` lists every problem (``FILE: line N: key: message``), the message
    sums them up."""

    def __init__(self, message: str, errors: list[str] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or []


@dataclass(frozen=True)
class ImportResult:
    """What :func:`import_accounts` did to ``target`` (as shown: relative to hub.toml's folder)."""

    target: str
    rows: int
    added: list[str]
    updated: list[str]
    #: the configuration's file name and its account count after the import (None: nothing written)
    checked: tuple[str, int] | None

    @property
    def unchanged(self) -> int:
        return self.rows - len(self.added) - len(self.updated)


def import_accounts(hub: Hub, csv_file: Path, into: Path | None = None) -> ImportResult:
    """Add or update the accounts of ``csv_file`` in ``into`` (default ``config/accounts.toml`` beside
    hub.toml), which hub.toml must include. An empty cell removes its key; columns the file does not have
    are left as they are. Every row is checked first, then the whole configuration with the result.

    :raises ImportRefused: nothing was written, and why.
    """
    config = hub.config
    target = (into if into is not None else config.base_dir / DEFAULT_INTO).resolve()
    try:
        shown_target = target.relative_to(config.base_dir).as_posix()
    except ValueError:
        shown_target = str(target)
    if not is_included(config.path, target):
        raise ImportRefused(f"{shown_target} is not included by {config.path.name}: add it to its include list, "
                            f"or choose an included file with --into")
    old_text = target.read_text("utf-8-sig") if target.exists() else None
    existing_ids: set[str] = set()
    if old_text is not None:
        try:
            existing_ids = {t.get("id") for t in tomlkit.parse(old_text).get("accounts", [])}
        except Exception as exc:  # noqa: BLE001 - the config check has read it; tomlkit may still refuse
            raise ImportRefused(f"{shown_target}: cannot be rewritten: {exc}") from None
    try:
        current = {a["id"]: a for a in config.raw.get("accounts", []) if isinstance(a, dict) and "id" in a}
        rows = read_rows(csv_file, current, shown=str(csv_file))
    except CsvErrors as exc:
        raise ImportRefused(f"{_plural(len(exc.errors), 'error')} in {csv_file}; nothing written", exc.errors) from None
    elsewhere = [r for r in rows if r.id in config.accounts and r.id not in existing_ids]
    if elsewhere:
        raise ImportRefused(f"{_plural(len(elsewhere), 'error')} in {csv_file}; nothing written",
                            [f"{csv_file}: line {r.line}: id: account {r.id!r} is defined in another file than "
                             f"{shown_target}; import it into that file with --into" for r in elsewhere])
    try:
        new_text, added, updated = merge_rows(old_text or "", rows)
    except ValueError as exc:
        raise ImportRefused(f"{shown_target}: cannot be rewritten: {exc}") from None
    if not added and not updated:
        return ImportResult(shown_target, len(rows), [], [], None)
    _write(target, new_text)
    try:
        checked = load_config(config.path, hub.host, check_secrets=False)
    except ConfigErrors as exc:
        if old_text is None:
            target.unlink(missing_ok=True)
        else:
            _write(target, old_text)
        raise ImportRefused(f"the configuration with these accounts has {_plural(len(exc.errors), 'error')}; "
                            f"nothing written", [str(e) for e in exc.errors]) from None
    return ImportResult(shown_target, len(rows), added, updated, (checked.path.name, len(checked.accounts)))
