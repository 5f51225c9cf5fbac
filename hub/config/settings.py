"""The hub-wide tables: ``[hub]`` (the store, the default currency, time
zone and rounding) and ``[invoicing]`` (schedule, grace, payment terms,
number formats, locale): their checks beyond the schema, and their typed
form.

It must not know the accounts, the catalog or the plugins; the accounts
take their defaults from the settings typed here.
"""

from __future__ import annotations

import os
import re
import string
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from hub.config.document import Document
from hub.config.errors import ConfigError
from hub.config.identifiers import locale_problem, zone_and_currency_problems
from hub.config.model import DunningSettings, HubSettings, InvoicingSettings
from hub.config.raw import decimal_of, table, text
from hub.config.values import parse_duration

#: the stores the hub runs on: SQLite and PostgreSQL (with any driver SQLAlchemy names)
_DATABASE_URL = re.compile(r"(sqlite|postgresql)(\+[A-Za-z0-9_]+)?://")
DATABASE_WORDS = ("is not a database URL the hub can use: sqlite:///hub.db (a file beside hub.toml) or "
                  "postgresql://user@host:5432/billing")

#: [invoicing] number formats are tried with these values
NUMBER_FIELDS = {"year": 2026, "month": 1, "seq": 1}
#: ... and measured with these: the longest number a format gives (a series
#: of up to a billion documents)
LONGEST_FIELDS = {"year": 9999, "month": 12, "seq": 999_999_999}
#: the characters of a document number: it names the documents' files and
#: is an EN 16931 identifier (BT-1), so no '/', no space, nothing to escape
NUMBER_CHARACTERS = frozenset(string.ascii_letters + string.digits + "-_.")
#: the longest document number (characters)
NUMBER_LENGTH = 64
#: the widest field of a number format, such as {seq:012d}
FIELD_WIDTH = 12
_WIDTH = re.compile(r"0?([0-9]{1,2})?d?")


def hub_errors(doc: Document) -> list[ConfigError]:
    """``[hub]``: its time zone and currency, and where the store is."""
    hub = table(doc.data, "hub")
    hub_file, hub_table, _ = doc.locate(["hub", "x"])
    errors = [ConfigError(hub_file, hub_table, key, message) for key, message in zone_and_currency_problems(hub)]
    env = text(hub, "database_env")
    database = text(hub, "database")
    if database is not None and not _DATABASE_URL.match(database):
        errors.append(ConfigError(hub_file, hub_table, "database", f"{database!r} {DATABASE_WORDS}"))
    if env is not None and "database" not in hub and os.environ.get(env) and not _DATABASE_URL.match(os.environ[env]):
        errors.append(ConfigError(hub_file, hub_table, "database_env", f"the URL in {env} {DATABASE_WORDS}"))
    if env is not None and "database" in hub:
        errors.append(ConfigError(hub_file, hub_table, "database_env", "set database or database_env, not both"))
    elif env is not None and not os.environ.get(env):
        errors.append(ConfigError(hub_file, hub_table, "database_env", f"environment variable {env} is not set"))
    return errors


def invoicing_errors(doc: Document) -> list[ConfigError]:
    """``[invoicing]``: number formats that number documents, and apart
    from each other; the locale."""
    errors: list[ConfigError] = []
    inv = table(doc.data, "invoicing")
    inv_file, inv_table, _ = doc.locate(["invoicing", "x"])
    formats = {}
    for key in ("number_format", "credit_note_format"):
        fmt = text(inv, key)
        if fmt is None:
            continue
        problem = number_format_problem(fmt)
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
    problem = locale_problem(text(inv, "locale"))
    if problem:
        errors.append(ConfigError(inv_file, inv_table, "locale", problem))
    minimum = decimal_of(inv, "minimum_amount")
    if minimum is not None and minimum < 0:
        errors.append(ConfigError(inv_file, inv_table, "minimum_amount",
                                  f"must be 0 or more, not {inv['minimum_amount']}"))
    steps = table(doc.data, "dunning").get("after_days")
    if isinstance(steps, list) and all(isinstance(d, int) for d in steps) and steps != sorted(set(steps)):
        dun_file, dun_table, _ = doc.locate(["dunning", "x"])
        errors.append(ConfigError(dun_file, dun_table, "after_days",
                                  f"the steps must increase, each once: {steps} (such as [7, 14, 30])"))
    return errors


def number_format_problem(fmt: str) -> str | None:
    """Why ``fmt`` cannot number documents, or None."""
    fields = "{year}, {month} and {seq}"
    wide = _too_wide(fmt)
    if wide:  # before formatting it: {seq:099999999d} is a hundred million characters
        return wide
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
    return _number_shape_problem(fmt)


def _number_shape_problem(fmt: str) -> str | None:
    """Why the numbers of ``fmt`` (which formats) cannot name a document and
    its files: a field beyond a plain {year}, {month} or {seq} with a width,
    a character beyond letters, digits, '-', '_' and '.', a number longer
    than :data:`NUMBER_LENGTH`; or None."""
    for _, name, spec, conversion in string.Formatter().parse(fmt):
        if name is None:
            continue
        if name not in NUMBER_FIELDS or conversion:
            return (f"{fmt!r} has the field {_written(name, spec, conversion)}: a field is {{year}}, {{month}} or "
                    "{seq}, with a width such as {seq:06d}")
    wide = _too_wide(fmt, plain=True)
    if wide:
        return wide
    sample = fmt.format(**NUMBER_FIELDS)
    bad = sorted({c for c in sample if c not in NUMBER_CHARACTERS})
    if bad:
        return (f"{fmt!r} gives numbers with {', '.join(repr(c) for c in bad)} (such as {sample!r}): a document number "
                "holds only letters, digits, '-', '_' and '.' (it names the documents' files)")
    if not sample[0].isalnum():
        return f"{fmt!r} gives numbers starting with {sample[0]!r} (such as {sample!r}): start it with a letter or a digit"
    longest = fmt.format(**LONGEST_FIELDS)
    if len(longest) > NUMBER_LENGTH:
        return (f"{fmt!r} gives numbers of up to {len(longest)} characters; a document number has at most "
                f"{NUMBER_LENGTH}")
    return None


def _written(name: str, spec: str | None, conversion: str | None) -> str:
    return "{" + name + ("!" + conversion if conversion else "") + (":" + spec if spec else "") + "}"


def _too_wide(fmt: str, *, plain: bool = False) -> str | None:
    """A field of ``fmt`` wider than :data:`FIELD_WIDTH` (``plain``: or
    with a spec other than a width), in words; None when there is none or
    ``fmt`` does not parse (the caller says why)."""
    try:
        parsed = list(string.Formatter().parse(fmt))
    except ValueError:
        return None
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        match = _WIDTH.fullmatch(spec or "")
        widths = [int(w) for w in re.findall(r"[0-9]+", spec or "")]
        if (plain and match is None) or any(w > FIELD_WIDTH for w in widths):
            return (f"{fmt!r} has the field {_written(name, spec, conversion)}: a field takes only a width of at most "
                    f"{FIELD_WIDTH} digits, such as {{seq:06d}}")
    return None


def hub_settings(data: Mapping[str, Any]) -> HubSettings:
    """``[hub]`` of a valid document typed (reads ``database_env``)."""
    hub = data.get("hub", {})
    # checked by hub_errors: set, and not together with database
    database = os.environ[hub["database_env"]] if "database_env" in hub else hub.get("database", "sqlite:///hub.db")
    return HubSettings(
        database=database,
        currency=hub.get("currency", "EUR"),
        timezone=hub.get("timezone", "UTC"),
        rounding=hub.get("rounding", "half_up"),
    )


def invoicing_settings(data: Mapping[str, Any]) -> InvoicingSettings:
    """``[invoicing]`` of a valid document typed, with its defaults."""
    inv = data.get("invoicing", {})
    defaults = InvoicingSettings()
    return InvoicingSettings(
        schedule=inv.get("schedule", defaults.schedule),
        grace=parse_duration(inv["grace"]) if "grace" in inv else defaults.grace,
        payment_terms_days=inv.get("payment_terms_days", defaults.payment_terms_days),
        number_format=inv.get("number_format", defaults.number_format),
        credit_note_format=inv.get("credit_note_format", defaults.credit_note_format),
        locale=inv.get("locale", defaults.locale),
        minimum_amount=Decimal(inv["minimum_amount"]) if "minimum_amount" in inv else None,
    )


def dunning_settings(data: Mapping[str, Any]) -> DunningSettings:
    """``[dunning]`` of a valid document typed (no steps by default)."""
    return DunningSettings(after_days=tuple(data.get("dunning", {}).get("after_days", ())))
