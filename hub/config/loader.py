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
import re
import string
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import replace
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
from babel import Locale, UnknownLocaleError
from babel.numbers import list_currencies
from stdnum import bic as stdnum_bic
from stdnum import iban as stdnum_iban
from stdnum.exceptions import ValidationError as StdnumError

from hub.catalog import Catalog, catalog_problems
from hub.config.errors import ConfigError, ConfigErrors
from hub.config.model import (
    Account,
    Address,
    Config,
    CreditConfig,
    DiscountConfig,
    ExporterInstance,
    HubSettings,
    InvoicingSettings,
    Meter,
    SellerConfig,
    SourceInstance,
)
from hub.config.values import inherited, is_timezone, parse_date_or_time, parse_duration, parse_until
from hub.host import Host
from hub.plugin.types import InstanceConfig

#: arrays of tables that included files may add to
ARRAYS = ("meters", "products", "accounts", "credits", "discounts", "sources", "exporters", "renderers")
#: arrays holding plugin instances -> the kind of plugin type they name
PLUGIN_ARRAYS = {"sources": "source", "exporters": "exporter", "renderers": "renderer"}
#: keys of a plugin instance that belong to the host, not to the plugin
HOST_INSTANCE_KEYS = ("name", "type", "interval")
#: the keys of an [[exporters]] table that belong to the hub's outbox
EXPORTER_HOST_KEYS = ("accounts", "tags", "events", "max_attempts")

_PATTERN_WORDS = {
    "decimal": "is not a decimal number written as a string, such as \"0.0000115\"",
    "duration": "is not a duration such as 1s, 600s, 10m, 1h30m or 1d",
    "name": "is not a valid name (letters, digits and _ . : -, starting with a letter or digit)",
    "env_name": "is not an environment variable name",
    "currency": "is not an ISO 4217 currency code such as EUR",
    "country": "is not an ISO 3166 two-letter country code such as DE",
    "date_or_time": "is not a date (2027-06-30) or an RFC 3339 time with an offset (2027-06-30T00:00:00Z)",
}


#: a telephone number as written on an invoice
_PHONE = re.compile(r"\+?[0-9 ()./-]{5,30}")


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


#: what a what-if catalog (``hub rate --catalog``) may hold
WHAT_IF_KEYS = ("meters", "products")


def load_config(path: str | os.PathLike[str], host: Host, *, check_secrets: bool = False,
                catalog: str | os.PathLike[str] | None = None) -> Config:
    """Load, validate and type the configuration at ``path``.

    :param host: the plugin host, whose types validate the plugin instances.
    :param check_secrets: also require every ``*_env`` variable to be set
        (``hub check`` does; other commands let the instance fail alone).
    :param catalog: a what-if catalog: a TOML file whose ``[[products]]``
        (and ``[[meters]]``, if it has any) replace the configuration's, with
        the same checks; the accounts and their price overrides stay.
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
    if catalog is not None:
        _replace_catalog(doc, Path(catalog).resolve(), errors)
    doc.data = _normalize(doc.data)

    validator = Validator(hub_schema())
    for error in validator.iter_errors(doc.data):
        errors.extend(_errors_of(error, doc))
    # The checks below read the document defensively, so that one run lists
    # their errors together with the schema's.
    # A value the schema refused is not reported a second time.
    refused = {(e.file, e.table, e.key) for e in errors}
    errors.extend(e for e in _semantic_errors(doc) + _catalog_errors(doc) if (e.file, e.table, e.key) not in refused)
    # Nor are the invoicing checks of a table the schema refused as a whole
    # (a discount with both percent and amount).
    errors.extend(e for e in _invoicing_errors(doc)
                  if (e.file, e.table, e.key) not in refused and (e.file, e.table, "") not in refused)
    instances = {kind: _plugin_instances(doc, kind, host, check_secrets, errors) for kind in PLUGIN_ARRAYS}
    if errors:
        raise ConfigErrors(errors)
    warnings = tuple(str(w) for w in _price_currency_warnings(doc, _hub_currency(doc.data)))
    return replace(_typed(main, doc.data, instances), warnings=warnings)


def _replace_catalog(doc: _Document, path: Path, errors: list[ConfigError]) -> None:
    """Put the products (and meters) of the what-if catalog at ``path`` in
    place of the document's."""
    other = _read_toml(path, doc.display(path), errors)
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


def _items(data: Mapping[str, Any], array: str) -> list[tuple[int, dict[str, Any]]]:
    """The tables of an array with their positions, skipping malformed ones
    (the schema has reported those)."""
    value = data.get(array)
    return [(i, item) for i, item in enumerate(value) if isinstance(item, dict)] if isinstance(value, list) else []


def _text(item: Mapping[str, Any], key: str) -> str | None:
    value = item.get(key)
    return value if isinstance(value, str) else None


def _account_currency(accounts: Mapping[str, Mapping[str, Any]], account_id: str | None, default: str) -> str:
    """An account's currency: its own, else its parent's (up the tree: a
    child is invoiced through its parent, in its currency), else the
    hub's ``default``."""
    return inherited(accounts, account_id, "currency") or default


def _hub_currency(data: Mapping[str, Any]) -> str:
    """``[hub] currency``, the accounts' default (EUR when not set)."""
    hub = data.get("hub") if isinstance(data.get("hub"), dict) else {}
    return _text(hub, "currency") or "EUR"


def _accounts_by_id(data: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    by_id: dict[str, dict[str, Any]] = {}
    for _, acc in _items(data, "accounts"):
        if _text(acc, "id") is not None:
            by_id.setdefault(acc["id"], acc)
    return by_id


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
    by_id = _accounts_by_id(data)
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
        own = _text(acc, "currency")
        if parent is not None and own is not None and parent in parents and parent != acc.get("id"):
            theirs = _account_currency(by_id, parent, _hub_currency(data))
            if own != theirs:
                errors.append(ConfigError(file, table, "currency",
                                          f"{own!r} is not the currency of its parent {parent!r} ({theirs}), "
                                          f"through which it is invoiced: leave it out to take the parent's"))
    for i, prod in _items(data, "products"):
        meter = _text(prod, "meter")
        if meter is not None and meter not in meter_names:
            errors.append(ConfigError(*doc.locate(["products", i])[:2], "meter", f"unknown meter {meter!r}"))
        currency = _text(prod, "currency")
        if currency is not None and currency not in currencies:
            errors.append(ConfigError(*doc.locate(["products", i])[:2], "currency",
                                      f"{currency!r} is not an ISO 4217 currency"))
    return errors


def _price_currency_warnings(doc: _Document, default_currency: str) -> list[ConfigError]:
    """A product whose ``currency`` names the currency of its prices is
    billed as is to an account in another currency (the hub converts
    nothing: its amounts are read in the account's currency) unless the
    account gives it a price of its own (``prices``): a warning of ``hub
    check``, not an error (a catalog that names its currency for the
    record keeps working). A flat product counts only for the accounts
    that list it in ``plans``; a metered one for every account (any of
    them may have usage)."""
    priced_in: dict[str, tuple[str, bool]] = {}
    for _, prod in _items(doc.data, "products"):
        name, currency, price = _text(prod, "name"), _text(prod, "currency"), prod.get("price")
        if name is not None and currency is not None:
            priced_in[name] = (currency, isinstance(price, dict) and price.get("model") == "flat")
    if not priced_in:
        return []
    errors = []
    by_id = _accounts_by_id(doc.data)
    for i, acc in _items(doc.data, "accounts"):
        billed_in = _account_currency(by_id, _text(acc, "id"), default_currency)
        prices = acc.get("prices") if isinstance(acc.get("prices"), dict) else {}
        plans = acc.get("plans") if isinstance(acc.get("plans"), list) else []
        for product, (currency, flat) in priced_in.items():
            if currency != billed_in and product not in prices and (not flat or product in plans):
                errors.append(ConfigError(*doc.locate(["accounts", i])[:2], f"prices.{product}",
                                          f"product {product!r} is priced in {currency} and this account is "
                                          f"billed in {billed_in}: its amounts are billed as {billed_in} as they "
                                          f"are; give it a price in {billed_in} here"))
    return errors


#: [invoicing] number formats are tried with these values
NUMBER_FIELDS = {"year": 2026, "month": 1, "seq": 1}
#: a date or time the schema lets through but that does not exist (2026-02-30)
_INSTANT_WORDS = "is not a valid date or time"


def _zone(name: str | None, default: str | None = None) -> dt.tzinfo:
    """The time zone ``name`` (else ``default``), UTC when neither is one
    (an invalid zone is reported by its own check)."""
    from zoneinfo import ZoneInfo

    for candidate in (name, default):
        if isinstance(candidate, str) and is_timezone(candidate):
            return ZoneInfo(candidate)
    return dt.timezone.utc


def _instant(text: str | None, tz: dt.tzinfo, *, until: bool = False) -> dt.datetime | None:
    """``text`` as an aware UTC datetime (None when absent or not valid)."""
    if text is None:
        return None
    try:
        return (parse_until if until else parse_date_or_time)(text, tz)  # type: ignore[arg-type]
    except ValueError:
        return None


def _is_locale(value: str) -> bool:
    try:
        Locale.parse(value)
        return True
    except (UnknownLocaleError, ValueError, TypeError):
        return False


def _is_email(value: str) -> bool:
    local, at, domain = value.partition("@")
    return bool(at and local and domain and "@" not in domain and not any(c.isspace() for c in value))


def _decimal_of(item: Mapping[str, Any], key: str) -> Decimal | None:
    """The decimal at ``key`` when it is one (the schema reports the rest)."""
    text = _text(item, key)
    if text is None:
        return None
    try:
        value = Decimal(text)
    except ArithmeticError:
        return None
    return value if value.is_finite() else None


def _money_problem(text: str, value: Decimal, currency: str | None) -> str | None:
    """Why ``value`` is not a positive amount of ``currency``, or None."""
    from hub.pricing import minor_digits

    if value <= 0:
        return f"must be greater than 0, not {text}"
    if currency is None:
        return None
    try:
        digits = minor_digits(currency)
    except ValueError:
        return None  # the currency's own check reports it
    if value != value.quantize(Decimal(1).scaleb(-digits), rounding="ROUND_DOWN"):
        return f"{text} has more decimals than {currency}'s minor unit ({digits})"
    return None


def _vat_problem(vat_id: str, country: str | None) -> str | None:
    """Why ``vat_id`` is not a valid VAT id for ``country``, or None. A tax
    number of a country outside the EU is not an EU VAT id and is not
    checked (as :func:`hub.invoicing.tax.determine_tax` does)."""
    from hub.invoicing.tax import EU_COUNTRIES, country_code, vat_id_error

    if country is not None:
        try:
            cc = country_code(country)
        except ValueError:
            return None  # the country's own check reports it
        if cc not in EU_COUNTRIES:
            return None if vat_id.strip() else "a VAT id cannot be empty"
        return vat_id_error(vat_id, cc)
    return vat_id_error(vat_id)


def account_problems(acc: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The invoicing checks of one ``[[accounts]]`` table that need no other
    table, as (key, message): VAT id, exemption reason, since, locale,
    e-mail. The importer (``hub accounts import``) runs them on each row."""
    out: list[tuple[str, str]] = []
    vat_id, country = _text(acc, "vat_id"), _text(acc, "country")
    if vat_id is not None:
        problem = _vat_problem(vat_id, country)
        if problem:
            out.append(("vat_id", problem))
    if acc.get("tax_exempt") is True and not (_text(acc, "exemption_reason") or "").strip():
        out.append(("exemption_reason", "required when tax_exempt = true: an exempt invoice states why "
                                        "(EN 16931 BR-E-10)"))
    since = _text(acc, "since")
    if since is not None and _instant(since, dt.timezone.utc) is None:
        out.append(("since", f"{since!r} {_INSTANT_WORDS}"))
    locale = _text(acc, "locale")
    if locale is not None and not _is_locale(locale):
        out.append(("locale", f"{locale!r} is not a locale such as en, de or fr_CH"))
    email = _text(acc, "email")
    if email is not None and not _is_email(email):
        out.append(("email", f"{email!r} is not an e-mail address"))
    return out


def check_account(item: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The checks ``hub check`` makes on one ``[[accounts]]`` table alone
    (its schema, time zone, currency and :func:`account_problems`), as
    (key, message) pairs worded as ``hub check`` words them. References to
    other tables (parent, prices) are not checked here."""
    doc = _Document(Path("accounts.toml"))
    doc.data = {"accounts": [_normalize(dict(item))]}
    account = doc.data["accounts"][0]
    schema = hub_schema()
    validator = Validator({"$ref": "#/$defs/account", "$defs": schema["$defs"]})
    errors: list[tuple[str, str]] = []
    for error in validator.iter_errors(account):
        errors.extend((e.key, e.message) for e in _errors_of(error, doc, prefix=["accounts", 0]))
    refused = {key for key, _ in errors}
    tz, currency = _text(account, "timezone"), _text(account, "currency")
    more = account_problems(account)
    if tz is not None and not is_timezone(tz):
        more.append(("timezone", f"{tz!r} is not an IANA time zone such as Europe/Paris"))
    if currency is not None and currency not in list_currencies():
        more.append(("currency", f"{currency!r} is not an ISO 4217 currency"))
    return errors + [(key, message) for key, message in more if key not in refused]


def _number_format_problem(fmt: str) -> str | None:
    """Why ``fmt`` cannot number documents, or None."""
    fields = "{year}, {month} and {seq}"
    try:
        fmt.format(**NUMBER_FIELDS)
        names = {name.split(".")[0].split("[")[0] for _, name, _, _ in string.Formatter().parse(fmt) if name is not None}
    except KeyError as exc:
        return f"{fmt!r} names an unknown field {{{exc.args[0]}}}; it may use {fields}"
    except IndexError:
        return f"{fmt!r} has a positional field {{}}; name the fields: {fields}"
    except (ValueError, TypeError, AttributeError) as exc:
        return f"{fmt!r} cannot be formatted with {fields}: {exc}"
    if "seq" not in names or "{seq" not in fmt:
        return f"{fmt!r} must contain {{seq}}, the number in the series (such as {{seq:06d}})"
    if "month" in names and "year" not in names:
        return f"{fmt!r} shows the month without the year: its numbers would repeat every year"
    return None


def _invoicing_errors(doc: _Document) -> list[ConfigError]:
    """The invoicing tables: [[accounts]]' invoicing keys, [seller],
    [tax.rates], [invoicing], [[credits]] and [[discounts]]."""
    from hub.invoicing.tax import EU_COUNTRIES, Buyer, MissingTaxRate, Seller, country_code, determine_tax

    errors: list[ConfigError] = []
    data = doc.data
    currencies = set(list_currencies())
    hub = data.get("hub") if isinstance(data.get("hub"), dict) else {}
    hub_currency = _hub_currency(data)
    hub_zone = _text(hub, "timezone")
    accounts: dict[str, dict[str, Any]] = {}
    for i, acc in _items(data, "accounts"):
        file, table, _ = doc.locate(["accounts", i])
        errors.extend(ConfigError(file, table, key, message) for key, message in account_problems(acc))
        if _text(acc, "id") is not None:
            accounts.setdefault(acc["id"], acc)

    # [seller] and [tax.rates]
    seller = data.get("seller") if isinstance(data.get("seller"), dict) else None
    tax = data.get("tax") if isinstance(data.get("tax"), dict) else {}
    rates = tax.get("rates") if isinstance(tax.get("rates"), dict) else {}
    tax_file, tax_table, _ = doc.locate(["tax", "rates"])
    for cc, text in rates.items():
        rate = _decimal_of(rates, cc)
        if rate is not None and not 0 <= rate <= 100:
            errors.append(ConfigError(tax_file, tax_table, f"rates.{cc}",
                                      f"a tax rate is a percentage between 0 and 100, not {text}"))
    seller_cc: str | None = None
    if seller is not None:
        seller_file, seller_table, _ = doc.locate(["seller", "x"])
        country = _text(seller, "country")
        try:
            seller_cc = country_code(country) if country is not None else None
        except ValueError:
            seller_cc = None
        vat_id = _text(seller, "vat_id")
        problem = _vat_problem(vat_id, country) if vat_id is not None else None
        if problem:
            errors.append(ConfigError(seller_file, seller_table, "vat_id", problem))
        email = _text(seller, "email")
        if email is not None and not _is_email(email):
            errors.append(ConfigError(seller_file, seller_table, "email", f"{email!r} is not an e-mail address"))
        phone = _text(seller, "phone")
        if phone is not None and not _PHONE.fullmatch(phone):
            errors.append(ConfigError(seller_file, seller_table, "phone", f"{phone!r} is not a telephone number "
                                      "(5 to 30 digits, spaces and + ( ) . / -, a + only first)"))
        for key, module, what in (("iban", stdnum_iban, "an IBAN"), ("bic", stdnum_bic, "a BIC")):
            value = _text(seller, key)
            if value is not None:
                try:
                    module.validate(value)
                except StdnumError as exc:
                    errors.append(ConfigError(seller_file, seller_table, key, f"{value!r} is not {what}: {exc}"))
        rate_countries = set()
        for cc in rates:
            try:
                rate_countries.add(country_code(cc))
            except ValueError:
                pass  # refused by the schema
        if seller_cc is not None and seller_cc not in rate_countries:
            errors.append(ConfigError(tax_file, tax_table, "rates",
                                      f"no standard rate for the seller's country {seller_cc}: "
                                      f"add {seller_cc} = \"...\" to [tax.rates]"))
        # The rate each invoiced account's tax needs (an account invoiced
        # through its parent is taxed as the parent).
        elif seller_cc in EU_COUNTRIES:
            for i, acc in _items(data, "accounts"):
                acc_country = _text(acc, "country")
                if _text(acc, "parent") is not None or acc_country is None or acc.get("tax_exempt") is True:
                    continue
                vat = _text(acc, "vat_id")
                try:
                    determine_tax(Seller(seller_cc), Buyer(acc_country, vat), dict.fromkeys(rate_countries, 0))
                except MissingTaxRate as exc:
                    errors.append(ConfigError(*doc.locate(["accounts", i])[:2], "country", str(exc)))
                except ValueError:
                    continue  # an invalid VAT id or country: reported by its own check

    # [invoicing]
    inv = data.get("invoicing") if isinstance(data.get("invoicing"), dict) else {}
    inv_file, inv_table, _ = doc.locate(["invoicing", "x"])
    formats = {}
    for key in ("number_format", "credit_note_format"):
        fmt = _text(inv, key)
        if fmt is None:
            continue
        problem = _number_format_problem(fmt)
        if problem:
            errors.append(ConfigError(inv_file, inv_table, key, problem))
        else:
            formats[key] = fmt
    numbers = {key: fmt.format(**NUMBER_FIELDS) for key, fmt in
               ({"number_format": InvoicingSettings.number_format,
                 "credit_note_format": InvoicingSettings.credit_note_format} | formats).items()}
    if numbers["number_format"] == numbers["credit_note_format"] and set(formats) & {"number_format", "credit_note_format"}:
        key = "credit_note_format" if "credit_note_format" in formats else "number_format"
        errors.append(ConfigError(inv_file, inv_table, key, "invoices and credit notes would get the same numbers "
                                                            f"({numbers['number_format']}): give them different formats"))
    locale = _text(inv, "locale")
    if locale is not None and not _is_locale(locale):
        errors.append(ConfigError(inv_file, inv_table, "locale", f"{locale!r} is not a locale such as en, de or fr_CH"))

    # [[credits]] and [[discounts]]
    product_names = {_text(p, "name") for _, p in _items(data, "products")}
    for array in ("credits", "discounts"):
        what = "credit" if array == "credits" else "discount"
        for i, item in _items(data, array):
            file, table, _ = doc.locate([array, i])
            account_id = _text(item, "account")
            acc = accounts.get(account_id) if account_id is not None else None
            if account_id is not None and acc is None:
                errors.append(ConfigError(file, table, "account", f"unknown account {account_id!r}"))
            elif acc is not None and _text(acc, "parent") is not None:
                errors.append(ConfigError(file, table, "account",
                                          f"account {account_id!r} is invoiced through its parent {acc['parent']!r}: "
                                          f"give the {what} to {acc['parent']!r}"))
            acc_currency = _account_currency(accounts, acc["id"], hub_currency) if acc is not None else None
            tz = _zone(_text(acc, "timezone") if acc is not None else None, hub_zone)
            if array == "credits":
                currency = _text(item, "currency")
                if currency is not None and currency not in currencies:
                    errors.append(ConfigError(file, table, "currency", f"{currency!r} is not an ISO 4217 currency"))
                elif currency is not None and acc_currency is not None and currency != acc_currency:
                    errors.append(ConfigError(file, table, "currency", f"{currency} differs from account "
                                                                       f"{account_id}'s {acc_currency}"))
                amount = _decimal_of(item, "amount")
                problem = _money_problem(item["amount"], amount, currency or acc_currency) if amount is not None else None
                if problem:
                    errors.append(ConfigError(file, table, "amount", problem))
                start_key, end_key = "granted", "expires"
            else:
                product = _text(item, "product")
                if product is not None and product not in product_names:
                    errors.append(ConfigError(file, table, "product", f"unknown product {product!r}"))
                percent = _decimal_of(item, "percent")
                if percent is not None and not 0 < percent <= 100:
                    errors.append(ConfigError(file, table, "percent",
                                              f"must be greater than 0 and at most 100, not {item['percent']}"))
                amount = _decimal_of(item, "amount")
                problem = _money_problem(item["amount"], amount, acc_currency) if amount is not None else None
                if problem:
                    errors.append(ConfigError(file, table, "amount", problem))
                start_key, end_key = "valid_from", "valid_until"
            start_text, end_text = _text(item, start_key), _text(item, end_key)
            start, end = _instant(start_text, tz), _instant(end_text, tz, until=True)
            for key, text, value in ((start_key, start_text, start), (end_key, end_text, end)):
                if text is not None and value is None:
                    errors.append(ConfigError(file, table, key, f"{text!r} {_INSTANT_WORDS}"))
            if start is not None and end is not None and not start < end:
                errors.append(ConfigError(file, table, end_key, f"{end_text!r} is not after {start_key} {start_text!r}"))
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
        host_keys = HOST_INSTANCE_KEYS + (EXPORTER_HOST_KEYS if array == "exporters" else ())
        options = {k: v for k, v in item.items() if k not in host_keys}
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
        elif array == "exporters":
            supported = tuple(registered.type.events)
            events = tuple(item.get("events") or supported)
            unsupported = [e for e in events if e not in supported]
            if unsupported:
                errors.append(ConfigError(file, table, "events", f"type {type_name!r} cannot deliver "
                                          f"{', '.join(unsupported)}; it delivers {', '.join(supported)}"))
                continue
            accounts = {_text(a, "id") for _, a in _items(doc.data, "accounts")}
            unknown = [a for a in item.get("accounts", ()) if a not in accounts]
            if unknown:
                errors.append(ConfigError(file, table, "accounts", f"unknown account {', '.join(map(repr, unknown))}"))
                continue
            out.append(ExporterInstance(**base, accounts=tuple(item.get("accounts", ())),
                                        tags=tuple(item.get("tags", ())), events=events,
                                        max_attempts=int(item.get("max_attempts", 10))))
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
    inv = data.get("invoicing", {})
    defaults = InvoicingSettings()
    invoicing = InvoicingSettings(
        schedule=inv.get("schedule", defaults.schedule),
        grace=parse_duration(inv["grace"]) if "grace" in inv else defaults.grace,
        payment_terms_days=inv.get("payment_terms_days", defaults.payment_terms_days),
        number_format=inv.get("number_format", defaults.number_format),
        credit_note_format=inv.get("credit_note_format", defaults.credit_note_format),
        locale=inv.get("locale", defaults.locale),
    )
    accounts = {}
    typed_keys = {"id", "name", "country", "currency", "timezone", "parent"}
    by_id = _accounts_by_id(data)
    for a in data.get("accounts", []):
        timezone = a.get("timezone", settings.timezone)
        accounts[a["id"]] = Account(
            id=a["id"], name=a.get("name", a["id"]), country=a.get("country"),
            currency=_account_currency(by_id, a["id"], settings.currency), timezone=timezone,
            parent=a.get("parent"), extra={k: v for k, v in a.items() if k not in typed_keys},
            vat_id=a["vat_id"].strip() if "vat_id" in a else None,
            email=a.get("email"),
            schedule=a.get("schedule", invoicing.schedule),
            since=_instant(a.get("since"), _zone(timezone)),
            tax_exempt=a.get("tax_exempt", False),
            exemption_reason=a.get("exemption_reason"),
            address=_address(a.get("address")),
            locale=a.get("locale"),
            peppol_id=a.get("peppol_id"),
            tags=tuple(a.get("tags", ())),
        )
    seller = None
    if "seller" in data:
        s = data["seller"]
        seller = SellerConfig(
            name=s["name"], country=s["country"], vat_id=s["vat_id"].strip() if "vat_id" in s else None,
            email=s.get("email"), address=_address(s.get("address")), peppol_id=s.get("peppol_id"),
            iban=stdnum_iban.compact(s["iban"]) if "iban" in s else None,
            bic=stdnum_bic.compact(s["bic"]) if "bic" in s else None, phone=s.get("phone"),
        )
    tax_rates = {cc: Decimal(rate) for cc, rate in data.get("tax", {}).get("rates", {}).items()}
    credits = []
    for i, c in enumerate(data.get("credits", [])):
        acc = accounts[c["account"]]
        credits.append(CreditConfig(
            index=i, account=acc.id, amount=Decimal(c["amount"]), currency=c.get("currency", acc.currency),
            kind=c["kind"], granted=_instant(c.get("granted"), acc.tz),
            expires=_instant(c.get("expires"), acc.tz, until=True), description=c.get("description", ""),
        ))
    discounts = []
    for i, d in enumerate(data.get("discounts", [])):
        acc = accounts[d["account"]]
        amount = Decimal(d["amount"]) if "amount" in d else None
        discounts.append(DiscountConfig(
            index=i, account=acc.id, product=d.get("product"),
            percent=Decimal(d["percent"]) if "percent" in d else None, amount=amount,
            currency=acc.currency if amount is not None else None,
            valid_from=_instant(d.get("valid_from"), acc.tz),
            valid_until=_instant(d.get("valid_until"), acc.tz, until=True), description=d.get("description", ""),
        ))
    catalog = Catalog.from_data(data, {name: m.aggregation for name, m in meters.items()})
    return Config(
        path=main, hub=settings, meters=meters, accounts=accounts, catalog=catalog,
        sources=tuple(instances["sources"]),  # type: ignore[arg-type]
        exporters=tuple(instances["exporters"]), renderers=tuple(instances["renderers"]), raw=data,
        seller=seller, tax_rates=tax_rates, invoicing=invoicing, credits=tuple(credits), discounts=tuple(discounts),
    )


def _address(value: Mapping[str, Any] | None) -> Address:
    value = value or {}
    return Address(street=value.get("street"), city=value.get("city"), postal_code=value.get("postal_code"),
                   region=value.get("region"))
