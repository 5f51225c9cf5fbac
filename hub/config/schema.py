"""The JSON schemas: hub.toml's own (``schemas/hub.schema.json``) and the
ones plugin types declare for their instances, and the wording of their
errors for an operator.

It owns the validator (a TOML float is never an integer, ``"format":
"timezone"`` is an IANA zone, ``"format": "outbound-url"`` a URL the
outbound guard accepts), the translation of a jsonschema error into
:class:`~hub.config.errors.ConfigError` located in its file, and the
defaults a plugin schema fills in. It must not know what a table means:
the checks beyond the schema live in the modules of their tables.
"""

from __future__ import annotations

import copy
import difflib
import functools
import json
import re
from collections.abc import Iterable, Mapping
from decimal import Decimal
from importlib import resources
from typing import Any

import jsonschema

from hub.config.document import Document
from hub.config.errors import ConfigError
from hub.config.values import is_timezone, parse_duration, too_long
from hub.plugin.outbound import PRIVATE_URL_FORMAT, URL_FORMAT, UrlRefused, check_url

PATTERN_WORDS = {
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


@FORMATS.checks(URL_FORMAT, raises=UrlRefused)
def _check_outbound_url(value: object) -> bool:
    """``"format": "outbound-url"``: a URL the outbound guard accepts
    (:mod:`hub.plugin.outbound`; ``outbound-url-private``: with ``allow_private``)."""
    return not isinstance(value, str) or check_url(value) is not None


@FORMATS.checks(PRIVATE_URL_FORMAT, raises=UrlRefused)
def _check_private_outbound_url(value: object) -> bool:
    return not isinstance(value, str) or check_url(value, allow_private=True) is not None


#: the most digits a decimal of hub.toml has before its point (leading zeros
#: aside; a usage quantity has as many) and after it
DECIMAL_INTEGER_DIGITS, DECIMAL_PLACES = 15, 18


class OutOfBounds(ValueError):
    """A value of a hub format beyond what the hub can compute with."""


@FORMATS.checks("hub-decimal", raises=OutOfBounds)
def _check_decimal_bounds(value: object) -> bool:
    """``"format": "hub-decimal"``: at most :data:`DECIMAL_INTEGER_DIGITS`
    digits before the point and :data:`DECIMAL_PLACES` after it (the
    pattern refuses what is not a decimal)."""
    if not isinstance(value, str) or not _DECIMAL_TEXT.fullmatch(value):
        return True
    whole, _, places = value.lstrip("-").partition(".")
    digits = len(whole.lstrip("0"))
    if digits > DECIMAL_INTEGER_DIGITS:
        raise OutOfBounds(f"has {digits} digits before the decimal point; the hub accepts at most "
                          f"{DECIMAL_INTEGER_DIGITS}")
    if len(places) > DECIMAL_PLACES:
        raise OutOfBounds(f"has {len(places)} digits after the decimal point; the hub accepts at most {DECIMAL_PLACES}")
    return True


@FORMATS.checks("hub-duration", raises=OutOfBounds)
def _check_duration_bounds(value: object) -> bool:
    """``"format": "hub-duration"``: at most :data:`hub.config.values.LONGEST_DURATION`."""
    if not isinstance(value, str) or not _DURATION_TEXT.fullmatch(value):
        return True
    if (why := too_long(parse_duration(value))) is not None:
        raise OutOfBounds(why)
    return True


_DECIMAL_TEXT = re.compile(r"-?[0-9]+(\.[0-9]+)?")
_DURATION_TEXT = re.compile(r"([0-9]+[smhd])+")


def schema_errors(doc: Document) -> list[ConfigError]:
    """What hub.toml's schema refuses in the merged document."""
    validator = Validator(hub_schema(), format_checker=FORMATS)
    return [e for error in validator.iter_errors(doc.data) for e in errors_of(error, doc)]


def fill_defaults(schema: Mapping[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    """``options`` with the defaults ``schema`` declares for its top-level
    properties (each a fresh copy)."""
    filled = dict(options)
    for key, sub in (schema.get("properties") or {}).items():
        if key not in filled and isinstance(sub, dict) and "default" in sub:
            filled[key] = copy.deepcopy(sub["default"])
    return filled


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


def errors_of(error: jsonschema.ValidationError, doc: Document, schema_words: Mapping[str, str] = PATTERN_WORDS,
              prefix: Iterable[Any] = ()) -> list[ConfigError]:
    """Turn one jsonschema error into operator-facing config errors
    (``prefix``: the JSON path of the validated value in the document)."""
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
    if v == "format" and error.validator_value in (URL_FORMAT, PRIVATE_URL_FORMAT) and error.cause is not None:
        return [ConfigError(file, table, key, f"{inst!r}: {error.cause}")]
    if v == "format" and error.validator_value in ("hub-decimal", "hub-duration") and error.cause is not None:
        return [ConfigError(file, table, key, f"{inst!r} {error.cause}")]
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
