"""Read hub.toml (and the files it includes), validate it, and type it.

Every problem is collected, then raised together as :class:`ConfigErrors`,
so an operator fixes a config in one pass, not one error per run.
"""

from __future__ import annotations

import copy
import datetime as dt
import difflib
import functools
import glob
import json
import os
import tomllib
from collections.abc import Iterable, Mapping
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
from babel.numbers import list_currencies

from hub.catalog import Catalog, catalog_problems
from hub.config.errors import ConfigError, ConfigErrors
from hub.config.model import Account, Config, HubSettings, Meter, SourceInstance
from hub.config.values import is_timezone, parse_duration
from hub.host import Host
from hub.plugin_types import InstanceConfig

#: arrays of tables that included files may add to
ARRAYS = ("meters", "products", "accounts", "credits", "discounts", "sources", "exporters", "renderers")
#: arrays holding plugin instances -> the kind of plugin type they name
PLUGIN_ARRAYS = {"sources": "source", "exporters": "exporter", "renderers": "renderer"}
#: keys of a plugin instance that belong to the host, not to the plugin
HOST_INSTANCE_KEYS = ("name", "type", "interval")

_PATTERN_WORDS = {
    "decimal": "is not a decimal number written as a string, such as \"0.0000115\"",
    "duration": "is not a duration such as 1s, 600s, 10m, 1h30m or 1d",
    "name": "is not a valid name (letters, digits and _ . : -, starting with a letter or digit)",
    "env_name": "is not an environment variable name",
    "currency": "is not an ISO 4217 currency code such as EUR",
    "country": "is not an ISO 3166 two-letter country code such as DE",
    "date_or_time": "is not a date (2027-06-30) or an RFC 3339 time with an offset (2027-06-30T00:00:00Z)",
}


@functools.cache
def hub_schema() -> dict[str, Any]:
    """The JSON schema of hub.toml (``schemas/hub.schema.json``); do not mutate."""
    return json.loads(resources.files("hub.schemas").joinpath("hub.schema.json").read_text("utf-8"))


class _Document:
    """The merged TOML document, remembering where each piece came from."""

    def __init__(self, main: Path) -> None:
        self.main = main
        self.data: dict[str, Any] = {}
        self.table_file: dict[str, str] = {}
        self.item_origin: dict[tuple[str, int], tuple[str, int]] = {}

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


def _dotted(parts: Iterable[Any]) -> str:
    out = ""
    for p in parts:
        out += f"[{p + 1}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _read_toml(path: Path, shown: str, errors: list[ConfigError]) -> dict[str, Any] | None:
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
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        errors.append(ConfigError(shown, "", "", f"not valid TOML: {exc}"))
        return None


def _normalize(value: Any) -> Any:
    """TOML dates and times become the strings the schema checks."""
    if isinstance(value, dict):
        return {k: _normalize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalize(v) for v in value]
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    return value


def _schema_name(error: jsonschema.ValidationError) -> str | None:
    """The ``$defs`` name of the schema an error comes from, if it is one of
    the hub's value formats (recognised by its pattern)."""
    pattern = error.schema.get("pattern") if isinstance(error.schema, dict) else None
    return _pattern_defs().get(pattern) if pattern else None


@functools.cache
def _pattern_defs() -> dict[str, str]:
    defs = hub_schema()["$defs"]
    return {d["pattern"]: name for name, d in defs.items() if isinstance(d, dict) and "pattern" in d}


def _describe_type(value: Any) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a float", str: "a string", list: "an array", dict: "a table"}
    return names.get(type(value), type(value).__name__)


def _errors_of(error: jsonschema.ValidationError, doc: _Document, schema_words: Mapping[str, str] = _PATTERN_WORDS,
               prefix: Iterable[Any] = ()) -> list[ConfigError]:
    """Turn one jsonschema error into operator-facing config errors."""
    path = [*prefix, *error.absolute_path]
    file, table, key = doc.locate(path)

    def at(extra: str) -> str:
        return f"{key}.{extra}" if key else extra

    v = error.validator
    inst = error.instance
    if v == "required":
        missing = [k for k in error.validator_value if isinstance(inst, dict) and k not in inst]
        return [ConfigError(file, table, at(k), "required key is missing") for k in missing]
    if v == "additionalProperties" and isinstance(inst, dict):
        allowed = sorted((error.schema.get("properties") or {}).keys())
        out = []
        for extra in inst:
            if extra in allowed:
                continue
            if not path:  # a top-level key: in whichever file wrote it
                file = doc.table_file.get(extra, file)
            close = difflib.get_close_matches(extra, allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else (f"; allowed: {', '.join(allowed)}" if allowed else "")
            out.append(ConfigError(file, table, at(extra), f"unknown key{hint}"))
        return out
    if v == "type":
        if isinstance(inst, float) and _schema_name(error) == "decimal":
            text = format(Decimal(repr(inst)), "f")
            return [ConfigError(file, table, key, f"{text} is a TOML float, which is not exact; write decimal values "
                                                  f"as strings, such as \"{text}\"")]
        return [ConfigError(file, table, key, f"expected {_type_words(error.validator_value)}, got {_describe_type(inst)} ({inst!r})")]
    if v == "enum":
        choices = ", ".join(str(c) for c in error.validator_value)
        return [ConfigError(file, table, key, f"{inst!r} is not one of: {choices}")]
    if v == "pattern":
        word = schema_words.get(_schema_name(error) or "", f"does not match {error.validator_value}")
        return [ConfigError(file, table, key, f"{inst!r} {word}")]
    if v == "oneOf" and table.startswith("discounts"):
        return [ConfigError(file, table, key, "set exactly one of percent or amount")]
    if v == "format" and error.validator_value == "timezone":
        return [ConfigError(file, table, key, f"{inst!r} is not an IANA time zone such as Europe/Paris")]
    if v in ("minLength", "minItems") and not inst:
        return [ConfigError(file, table, key, "must not be empty")]
    return [ConfigError(file, table, key, error.message)]


def _type_words(types: Any) -> str:
    types = [types] if isinstance(types, str) else list(types)
    words = {"string": "a string", "integer": "an integer", "number": "a number", "boolean": "a boolean (true or false)",
             "array": "an array", "object": "a table"}
    return " or ".join(words.get(t, t) for t in types)


#: JSON Schema counts 30.0 as an integer; a TOML float is never one here.
Validator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator,
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda _checker, value: isinstance(value, int) and not isinstance(value, bool)
    ),
)

FORMATS = jsonschema.FormatChecker()


@FORMATS.checks("timezone")
def _check_timezone(value: object) -> bool:
    """``"format": "timezone"`` in a plugin's schema: an IANA time zone."""
    return not isinstance(value, str) or is_timezone(value)


def _fill_defaults(schema: Mapping[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    filled = dict(options)
    for key, sub in (schema.get("properties") or {}).items():
        if key not in filled and isinstance(sub, dict) and "default" in sub:
            filled[key] = copy.deepcopy(sub["default"])
    return filled


def load_config(path: str | os.PathLike[str], host: Host, *, check_secrets: bool = False) -> Config:
    """Load, validate and type the configuration at ``path``.

    :param host: the plugin host, whose types validate the plugin instances.
    :param check_secrets: also require every ``*_env`` variable to be set
        (``hub check`` does; other commands let the instance fail alone).
    :raises ConfigErrors: with every problem found.
    """
    main = Path(path).resolve()
    doc = _Document(main)
    errors: list[ConfigError] = []
    data = _read_toml(main, doc.display(main), errors)
    if data is None:
        raise ConfigErrors(errors)
    includes = data.get("include", [])
    doc.merge(main, {k: v for k, v in data.items()}, errors)
    merged: set[Path] = set()
    if isinstance(includes, list):
        for i, pattern in enumerate(includes):
            if not isinstance(pattern, str):
                continue
            matches = sorted(glob.glob(str(main.parent / pattern), recursive=True))
            if not matches:
                errors.append(ConfigError(doc.display(main), "", f"include[{i + 1}]", f"{pattern!r} matches no file"))
            for match in matches:
                inc = Path(match).resolve()
                if inc == main or inc in merged:  # hub.toml itself, or a file two patterns match
                    continue
                merged.add(inc)
                included = _read_toml(inc, doc.display(inc), errors)
                if included is None:
                    continue
                if "include" in included:
                    errors.append(ConfigError(doc.display(inc), "", "include", "included files cannot include others"))
                    included.pop("include")
                doc.merge(inc, included, errors)
    doc.data = _normalize(doc.data)

    validator = Validator(hub_schema())
    for error in validator.iter_errors(doc.data):
        errors.extend(_errors_of(error, doc))
    # The checks below read the document defensively, so that one run lists
    # their errors together with the schema's.
    # A value the schema refused is not reported a second time.
    refused = {(e.file, e.table, e.key) for e in errors}
    errors.extend(e for e in _semantic_errors(doc) + _catalog_errors(doc) if (e.file, e.table, e.key) not in refused)
    instances = {kind: _plugin_instances(doc, kind, host, check_secrets, errors) for kind in PLUGIN_ARRAYS}
    if errors:
        raise ConfigErrors(errors)
    return _typed(main, doc.data, instances)


def _items(data: Mapping[str, Any], array: str) -> list[tuple[int, dict[str, Any]]]:
    """The tables of an array with their positions, skipping malformed ones
    (the schema has reported those)."""
    value = data.get(array)
    return [(i, item) for i, item in enumerate(value) if isinstance(item, dict)] if isinstance(value, list) else []


def _text(item: Mapping[str, Any], key: str) -> str | None:
    value = item.get(key)
    return value if isinstance(value, str) else None


def _semantic_errors(doc: _Document) -> list[ConfigError]:
    """Checks across tables: duplicates, references, zones, currencies."""
    errors: list[ConfigError] = []
    data = doc.data
    for array, key in (("meters", "name"), ("products", "name"), ("accounts", "id"),
                       ("sources", "name"), ("exporters", "name"), ("renderers", "name")):
        seen: dict[str, str] = {}
        for i, item in _items(data, array):
            name = _text(item, key)
            file, table, _ = doc.locate([array, i])
            if name is None:
                continue
            if name in seen:
                errors.append(ConfigError(file, table, key, f"{name!r} is already used by {seen[name]}"))
            else:
                seen[name] = f"{table} in {file}"
    currencies = set(list_currencies())
    hub = data.get("hub") if isinstance(data.get("hub"), dict) else {}
    hub_file, hub_table, _ = doc.locate(["hub", "x"])
    tables = [(hub_file, hub_table, hub)] + [(*doc.locate(["accounts", i])[:2], acc) for i, acc in _items(data, "accounts")]
    for file, table, item in tables:
        tz, currency = _text(item, "timezone"), _text(item, "currency")
        if tz is not None and not is_timezone(tz):
            errors.append(ConfigError(file, table, "timezone", f"{tz!r} is not an IANA time zone such as Europe/Paris"))
        if currency is not None and currency not in currencies:
            errors.append(ConfigError(file, table, "currency", f"{currency!r} is not an ISO 4217 currency"))
    env = _text(hub, "database_env")
    if env is not None and "database" in hub:
        errors.append(ConfigError(hub_file, hub_table, "database_env", "set database or database_env, not both"))
    elif env is not None and not os.environ.get(env):
        errors.append(ConfigError(hub_file, hub_table, "database_env", f"environment variable {env} is not set"))

    parents = {acc["id"]: _text(acc, "parent") for _, acc in _items(data, "accounts") if _text(acc, "id")}
    product_names = {_text(p, "name") for _, p in _items(data, "products")}
    meter_names = {_text(m, "name") for _, m in _items(data, "meters")}
    for i, acc in _items(data, "accounts"):
        file, table, _ = doc.locate(["accounts", i])
        parent = _text(acc, "parent")
        if parent is not None and parent not in parents:
            errors.append(ConfigError(file, table, "parent", f"unknown account {parent!r}"))
        elif parent is not None and parent == acc.get("id"):
            errors.append(ConfigError(file, table, "parent", "an account cannot be its own parent"))
        elif parent is not None:
            chain = [acc.get("id"), parent]
            while parents.get(chain[-1]) is not None and chain[-1] not in chain[:-1]:
                chain.append(parents[chain[-1]])
            if chain[-1] in chain[:-1]:
                errors.append(ConfigError(file, table, "parent", f"the parents form a loop: {' -> '.join(chain)}"))
        prices = acc.get("prices")
        for product in prices if isinstance(prices, dict) else ():
            if product not in product_names:
                errors.append(ConfigError(file, table, f"prices.{product}", f"unknown product {product!r}"))
    for i, prod in _items(data, "products"):
        meter = _text(prod, "meter")
        if meter is not None and meter not in meter_names:
            errors.append(ConfigError(*doc.locate(["products", i])[:2], "meter", f"unknown meter {meter!r}"))
        currency = _text(prod, "currency")
        if currency is not None and currency not in currencies:
            errors.append(ConfigError(*doc.locate(["products", i])[:2], "currency",
                                      f"{currency!r} is not an ISO 4217 currency"))
    return errors


def _catalog_errors(doc: _Document) -> list[ConfigError]:
    """The catalog's own rules (tiers, signs, meters and units that fit;
    see :func:`hub.catalog.catalog_problems`), located in their files."""
    return [ConfigError(*doc.locate(path), message) for path, message in catalog_problems(doc.data)]


def _plugin_instances(doc: _Document, array: str, host: Host, check_secrets: bool,
                      errors: list[ConfigError]) -> list[InstanceConfig]:
    """Validate each instance of ``array`` against its type's schema."""
    kind = PLUGIN_ARRAYS[array]
    out: list[InstanceConfig] = []
    for i, item in _items(doc.data, array):
        file, table, _ = doc.locate([array, i])
        type_name, name = _text(item, "type"), _text(item, "name")
        if not type_name or name is None:
            continue  # reported by the schema
        registered = host.type_of(kind, type_name)
        if registered is None:
            known = host.names(kind)
            close = difflib.get_close_matches(type_name, known, n=1)
            failed = [f.plugin for f in host.failures if f.hook in ("load", "register")]
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            hint += f"; installed: {', '.join(known)}" if known else f"; no {kind} type is installed"
            if failed:
                hint += f"; plugins that failed to load: {', '.join(failed)} (see `hub plugins`)"
            errors.append(ConfigError(file, table, "type", f"unknown {kind} type {type_name!r}{hint}"))
            continue
        options = {k: v for k, v in item.items() if k not in HOST_INSTANCE_KEYS}
        schema = registered.type.config_schema
        try:
            jsonschema.Draft202012Validator.check_schema(schema)
        except jsonschema.SchemaError as exc:
            errors.append(ConfigError(file, table, "type", f"plugin {registered.plugin.name!r} declares an invalid "
                                                           f"schema for type {type_name!r}: {exc.message}"))
            continue
        option_errors = [
            e for error in Validator(schema, format_checker=FORMATS).iter_errors(options)
            for e in _errors_of(error, doc, prefix=[array, i])
        ]
        errors.extend(option_errors)
        if option_errors:
            continue
        options = _fill_defaults(schema, options)
        if check_secrets:
            for key, value in options.items():
                if key.endswith("_env") and isinstance(value, str) and not os.environ.get(value):
                    errors.append(ConfigError(file, table, key, f"environment variable {value} is not set"))
        base = dict(name=name, type=type_name, options=options, base_dir=doc.main.parent)
        if array == "sources":
            try:
                interval = parse_duration(item["interval"]) if "interval" in item else None
            except (TypeError, ValueError):
                continue  # reported by the schema
            out.append(SourceInstance(**base, interval=interval))
        else:
            out.append(InstanceConfig(**base))
    return out


def _typed(main: Path, data: dict[str, Any], instances: dict[str, list[InstanceConfig]]) -> Config:
    hub = data.get("hub", {})
    # checked by _semantic_errors: set, and not together with database
    database = os.environ[hub["database_env"]] if "database_env" in hub else hub.get("database", "sqlite:///hub.db")
    settings = HubSettings(
        database=database,
        currency=hub.get("currency", "EUR"),
        timezone=hub.get("timezone", "UTC"),
        rounding=hub.get("rounding", "half_up"),
    )
    meters = {m["name"]: Meter(m["name"], m["aggregation"], m.get("unit"), m.get("description", "")) for m in data.get("meters", [])}
    accounts = {}
    typed_keys = {"id", "name", "country", "currency", "timezone", "parent"}
    for a in data.get("accounts", []):
        accounts[a["id"]] = Account(
            id=a["id"], name=a.get("name", a["id"]), country=a.get("country"),
            currency=a.get("currency", settings.currency), timezone=a.get("timezone", settings.timezone),
            parent=a.get("parent"), extra={k: v for k, v in a.items() if k not in typed_keys},
        )
    catalog = Catalog.from_data(data, {name: m.aggregation for name, m in meters.items()})
    return Config(
        path=main, hub=settings, meters=meters, accounts=accounts, catalog=catalog,
        sources=tuple(instances["sources"]),  # type: ignore[arg-type]
        exporters=tuple(instances["exporters"]), renderers=tuple(instances["renderers"]), raw=data,
    )
