"""Reading the merged document defensively, before it is known to be valid.

The checks beyond the schema run on the same document the schema checked,
so that one run of ``hub check`` lists every problem: whatever the schema
refused (a table that is not a table, a number where text belongs) reads
here as absent, and the schema's own error says what is wrong with it.

It owns these readers (tables of an array, text, decimals, instants, the
``[hub]`` defaults the accounts take) and the raw accounts by id with their
tree. It must not report anything: it answers None where a value is not
usable, and the caller decides whether that is an error.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from hub.config.tree import AccountTree, inherited
from hub.config.values import is_timezone, parse_date_or_time, parse_until
from hub.timestamps import impossible_date

#: a date or time the schema lets through but that cannot be read
INSTANT_WORDS = "is not a valid date or time"


def items(data: Mapping[str, Any], array: str) -> list[tuple[int, dict[str, Any]]]:
    """The tables of an array with their positions, skipping malformed ones
    (the schema has reported those)."""
    value = data.get(array)
    return [(i, item) for i, item in enumerate(value) if isinstance(item, dict)] if isinstance(value, list) else []


def table(data: Mapping[str, Any], key: str) -> dict[str, Any]:
    """The table at ``key``, empty when absent or not a table."""
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def text(item: Mapping[str, Any], key: str) -> str | None:
    value = item.get(key)
    return value if isinstance(value, str) else None


def decimal_of(item: Mapping[str, Any], key: str) -> Decimal | None:
    """The decimal at ``key`` when it is one (the schema reports the rest)."""
    written = text(item, key)
    if written is None:
        return None
    try:
        value = Decimal(written)
    except ArithmeticError:
        return None
    return value if value.is_finite() else None


def zone(name: str | None, default: str | None = None) -> dt.tzinfo:
    """The time zone ``name`` (else ``default``), UTC when neither is one
    (an invalid zone is reported by its own check)."""
    for candidate in (name, default):
        if isinstance(candidate, str) and is_timezone(candidate):
            return ZoneInfo(candidate)
    return dt.timezone.utc


def instant(written: str | None, tz: dt.tzinfo, *, until: bool = False) -> dt.datetime | None:
    """``written`` as an aware UTC datetime (None when absent or not valid);
    ``until``: the exclusive end of a validity (a date is inclusive)."""
    if written is None:
        return None
    try:
        return (parse_until if until else parse_date_or_time)(written, tz)  # type: ignore[arg-type]
    except ValueError:
        return None


def instant_problem(written: str) -> str:
    """Why ``written`` is not a date or time :func:`instant` reads: a day or
    time that does not exist (2026-11-31) says so."""
    return impossible_date(written) or f"{written!r} {INSTANT_WORDS}"


def hub_currency(data: Mapping[str, Any]) -> str:
    """``[hub] currency``, the accounts' default (EUR when not set)."""
    return text(table(data, "hub"), "currency") or "EUR"


@dataclass(frozen=True)
class RawAccounts:
    """The ``[[accounts]]`` tables by id (an id's first table counts) and
    their tree, as written: a parent may be unknown, or the parents loop."""

    tables: Mapping[str, Mapping[str, Any]]
    tree: AccountTree

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> RawAccounts:
        by_id: dict[str, dict[str, Any]] = {}
        for _, acc in items(data, "accounts"):
            if text(acc, "id") is not None:
                by_id.setdefault(acc["id"], acc)
        return cls(by_id, AccountTree.from_tables(by_id.values()))

    def get(self, account_id: str | None) -> Mapping[str, Any] | None:
        return self.tables.get(account_id) if account_id is not None else None

    def currency(self, account_id: str | None, default: str) -> str:
        """An account's currency: its own, else its parent's (up the tree: a
        child is invoiced through its parent, in its currency), else the
        hub's ``default``."""
        return self.setting(account_id, "currency", default)

    def setting(self, account_id: str | None, key: str, default: str) -> str:
        """What a child takes from the account it is invoiced through
        (``currency``, ``timezone``, ``schedule``): its own, else its
        nearest ancestor's, else ``default`` (``[hub]``'s or
        ``[invoicing]``'s)."""
        return inherited(self.tables, self.tree, account_id, key) or default
