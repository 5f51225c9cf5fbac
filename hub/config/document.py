"""Reading hub.toml: the TOML files, the files it includes, a what-if
catalog put in place of the products, and where each piece came from; and
what an operator should hear of while reading (an include glob matching
nothing, a file under config/ that no include reads).

It owns the merged document (:class:`Document`) and turns a JSON path into
it back into the (file, table, key) an operator reads in an error. It
knows which top-level keys are arrays of tables, and nothing of what any
table means: the checks and the typing read the merged data it leaves.
"""

from __future__ import annotations

import datetime as dt
import glob
import re
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hub.config.errors import ConfigError
from hub.timestamps import impossible_date

#: arrays of tables that included files may add to
ARRAYS = ("meters", "products", "accounts", "credits", "discounts", "sources", "exporters", "renderers")
#: what a what-if catalog (``hub rate --catalog``) may hold
WHAT_IF_KEYS = ("meters", "products")
#: the folder next to hub.toml whose .toml files an include is expected to read
CONFIG_FOLDER = "config"


class Document:
    """The merged TOML document, remembering where each piece came from."""

    def __init__(self, main: Path) -> None:
        self.main = main
        self.data: dict[str, Any] = {}
        self.table_file: dict[str, str] = {}
        self.item_origin: dict[tuple[str, int], tuple[str, int]] = {}
        #: what ``hub check`` warns of: an include glob matching nothing, a
        #: file under config/ that no include reads
        self.warnings: list[ConfigError] = []
        #: the files merged (the main one and those its include read)
        self.files: set[Path] = {main}

    def display(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.main.parent)) if path != self.main else path.name
        except ValueError:
            return str(path)

    def merge(self, path: Path, data: dict[str, Any], errors: list[ConfigError]) -> None:
        shown = self.display(path)
        for key, value in data.items():
            if key in ARRAYS:
                if not isinstance(value, list):
                    errors.append(ConfigError(shown, f"[{key}]", "", f"must be an array of tables: write [[{key}]]"))
                    continue
                target = self.data.setdefault(key, [])
                self.table_file.setdefault(key, shown)
                for local, item in enumerate(value):
                    self.item_origin[(key, len(target))] = (shown, local)
                    target.append(item)
            elif key in self.data:
                errors.append(ConfigError(shown, f"[{key}]", "", f"is already defined in {self.table_file[key]}"))
            else:
                self.data[key] = value
                self.table_file[key] = shown

    def locate(self, path: Iterable[Any]) -> tuple[str, str, str]:
        """(file, table, key) of a JSON path into the merged document."""
        parts = list(path)
        main = self.display(self.main)
        if not parts:
            return main, "", ""
        top = parts[0]
        if top in ARRAYS and len(parts) > 1 and isinstance(parts[1], int):
            file, local = self.item_origin.get((top, parts[1]), (main, parts[1]))
            item = self.data.get(top, [])[parts[1]] if parts[1] < len(self.data.get(top, [])) else {}
            label = item.get("id" if top == "accounts" else "name") if isinstance(item, dict) else None
            table = f"{top}[{local + 1}]" + (f' "{label}"' if isinstance(label, str) else "")
            return file, table, _dotted(parts[2:])
        if len(parts) == 1 and top not in self.table_file:
            return main, "", _dotted(parts)
        return self.table_file.get(top, main), f"[{top}]", _dotted(parts[1:])

    def error(self, path: Iterable[Any], key: str, message: str) -> ConfigError:
        """The error ``message`` about ``key`` of the table at ``path``."""
        file, table, _ = self.locate(path)
        return ConfigError(file, table, key, message)


def _dotted(parts: Iterable[Any]) -> str:
    out = ""
    for p in parts:
        out += f"[{p + 1}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def read_document(main: Path, errors: list[ConfigError], catalog: Path | None = None) -> Document | None:
    """``main`` merged with the files its ``include`` patterns match (and
    the what-if ``catalog``'s products), TOML dates and times as strings;
    None when ``main`` itself cannot be read. Problems go to ``errors``."""
    doc = Document(main)
    data = read_toml(main, doc.display(main), errors)
    if data is None:
        return None
    includes = data.get("include", [])
    doc.merge(main, {k: v for k, v in data.items()}, errors)
    if isinstance(includes, list):
        for i, pattern in enumerate(includes):
            if not isinstance(pattern, str):
                continue
            matches = sorted(glob.glob(str(main.parent / pattern), recursive=True))
            if not matches:
                # a glob may match nothing yet (config/*.toml before the
                # first file); a file named alone must be there
                problem = ConfigError(doc.display(main), "", f"include[{i + 1}]", f"{pattern!r} matches no file")
                (doc.warnings if glob.has_magic(pattern) else errors).append(problem)
            for match in matches:
                inc = Path(match).resolve()
                if inc in doc.files:  # hub.toml itself, or a file two patterns match
                    continue
                doc.files.add(inc)
                included = read_toml(inc, doc.display(inc), errors)
                if included is None:
                    continue
                if "include" in included:
                    errors.append(ConfigError(doc.display(inc), "", "include", "included files cannot include others"))
                    included.pop("include")
                doc.merge(inc, included, errors)
    if catalog is not None:
        _replace_catalog(doc, catalog, errors)
    doc.warnings.extend(_unread_files(doc, catalog))
    doc.data = normalize(doc.data)
    return doc


def _unread_files(doc: Document, catalog: Path | None) -> list[ConfigError]:
    """The ``.toml`` files under the config/ folder next to the main file
    that no ``include`` pattern reads: a file added there is not merged
    until ``include`` names it, which an operator should hear of."""
    folder = doc.main.parent / CONFIG_FOLDER
    if not folder.is_dir():
        return []
    unread = sorted(p for p in (q.resolve() for q in folder.rglob("*.toml") if q.is_file())
                    if p not in doc.files and p != catalog)
    return [ConfigError(doc.display(p), "", "", f"not read: no include of {doc.display(doc.main)} matches it "
                                                f"(include = [\"{CONFIG_FOLDER}/*.toml\"] reads every file there)")
            for p in unread]


def read_toml(path: Path, shown: str, errors: list[ConfigError]) -> dict[str, Any] | None:
    """The TOML at ``path`` (shown as ``shown`` in errors), or None."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        hint = " (run `hub init` to write a starter hub.toml)" if path.name == "hub.toml" else ""
        errors.append(ConfigError(shown, "", "", f"file not found{hint}"))
        return None
    except IsADirectoryError:
        errors.append(ConfigError(shown, "", "", "is a directory, not a TOML file"))
        return None
    except OSError as exc:
        errors.append(ConfigError(shown, "", "", f"cannot be read: {exc.strerror}"))
        return None
    except UnicodeDecodeError as exc:
        errors.append(ConfigError(shown, "", "", f"not UTF-8 at byte {exc.start}"))
        return None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        errors.append(_syntax_error(shown, text, exc))
        return None
    except RecursionError:  # tomllib reads nested arrays and inline tables recursively
        data = None
    if data is None or _depth(data) > MAX_DEPTH:
        errors.append(ConfigError(shown, "", "", f"nests arrays or tables more than {MAX_DEPTH} deep, "
                                                 "more than any hub.toml needs"))
        return None
    return data


#: how deep arrays and tables may nest in a TOML file of the configuration
#: (the deepest of hub.toml's own is 6: accounts, prices, product, tiers, a tier)
MAX_DEPTH = 32


def _depth(value: Any) -> int:
    """How deep ``value`` nests (a scalar 0), without recursion."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, depth + 1)
            if deepest > MAX_DEPTH:
                return deepest
            stack.extend((v, depth + 1) for v in (item.values() if isinstance(item, dict) else item))
    return deepest


#: where tomllib says an error is: "... (at line 3, column 9)" or "(at end of document)"
_AT = re.compile(r"^(?P<message>.*) \(at (?:line (?P<line>[0-9]+), column (?P<column>[0-9]+)|(?P<end>end of document))\)$")


def _syntax_error(shown: str, text: str, exc: tomllib.TOMLDecodeError) -> ConfigError:
    """A TOML syntax error at its line and column (``line 3, column 9``);
    a date or time that does not exist (``expires = 2026-11-31``) says so."""
    found = _AT.match(str(exc))
    if found is None:
        return ConfigError(shown, "", "", f"not valid TOML: {exc}")
    message = found["message"]
    if found["end"]:
        lines = text.splitlines() or [""]
        line, column = len(lines), len(lines[-1]) + 1
    else:
        line, column = int(found["line"]), int(found["column"])
    rest = (text.splitlines()[line - 1:line] or [""])[0][column - 1:]
    impossible = impossible_date(rest.split()[0].rstrip(",]}")) if rest.strip() else None
    if impossible is not None and "date" in message:
        return ConfigError(shown, f"line {line}, column {column}", "", impossible)
    return ConfigError(shown, f"line {line}, column {column}", "", f"not valid TOML: {message[:1].lower()}{message[1:]}")


def normalize(value: Any) -> Any:
    """TOML dates and times become the strings the schema checks."""
    if isinstance(value, dict):
        return {k: normalize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalize(v) for v in value]
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    return value


def _replace_catalog(doc: Document, path: Path, errors: list[ConfigError]) -> None:
    """Put the products (and meters) of the what-if catalog at ``path`` in
    place of the document's."""
    other = read_toml(path, doc.display(path), errors)
    if other is None:
        return
    for key in other:
        if key not in WHAT_IF_KEYS:
            errors.append(ConfigError(doc.display(path), f"[{key}]", "",
                                      "a what-if catalog holds only [[meters]] and [[products]]"))
    replaced = {key: other[key] for key in WHAT_IF_KEYS if key in other}
    if "products" not in replaced:
        errors.append(ConfigError(doc.display(path), "", "products", "a what-if catalog needs [[products]]"))
        return
    for key in replaced:
        doc.data.pop(key, None)
        doc.table_file.pop(key, None)
        doc.item_origin = {k: v for k, v in doc.item_origin.items() if k[0] != key}
    doc.merge(path, replaced, errors)
