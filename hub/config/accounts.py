"""``[[accounts]]``: the checks of each account table (alone, as ``hub
accounts import`` runs them on each row, and against the others: parents,
the parent's currency, time zone and schedule, which a child takes) and
the typed :class:`~hub.config.model.Account`.

It must not know the catalog (an account's ``prices`` are checked with the
products), the seller's tax or the credits and discounts given to it. The
walk up the parents is :mod:`hub.config.tree`'s.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any


from hub.config.document import Document, normalize
from hub.config.errors import ConfigError
from hub.config.identifiers import email_problem, locale_problem, vat_problem, zone_and_currency_problems
from hub.config.model import Account, Address, HubSettings, InvoicingSettings
from hub.config.raw import RawAccounts, hub_currency, instant, instant_problem, items, text, zone
from hub.config.raw import table as table_of
from hub.config.values import is_timezone
from hub.config.schema import Validator, errors_of, hub_schema
from hub.config.tree import AccountTree

#: the keys of an account table that :class:`Account` types itself (the
#: rest stay in ``extra`` as written)
TYPED_KEYS = {"id", "name", "country", "currency", "timezone", "parent"}
#: what a child takes from the account it is invoiced through, and the
#: word for it in messages; it may not set another
INHERITED = {"currency": "currency", "timezone": "time zone", "schedule": "schedule"}


def account_problems(acc: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The invoicing checks of one ``[[accounts]]`` table that need no other
    table, as (key, message): VAT id, exemption reason, since, locale,
    e-mail. The importer (``hub accounts import``) runs them on each row."""
    out: list[tuple[str, str]] = []
    vat_id, country = text(acc, "vat_id"), text(acc, "country")
    if vat_id is not None:
        problem = vat_problem(vat_id, country)
        if problem:
            out.append(("vat_id", problem))
    if acc.get("tax_exempt") is True and not (text(acc, "exemption_reason") or "").strip():
        out.append(("exemption_reason", "required when tax_exempt = true: an exempt invoice states why "
                                        "(EN 16931 BR-E-10)"))
    since = text(acc, "since")
    if since is not None and instant(since, dt.timezone.utc) is None:
        out.append(("since", instant_problem(since)))
    for key, problem in (("locale", locale_problem(text(acc, "locale"))),
                         ("email", email_problem(text(acc, "email")))):
        if problem:
            out.append((key, problem))
    return out


def check_account(item: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The checks ``hub check`` makes on one ``[[accounts]]`` table alone
    (its schema, time zone, currency and :func:`account_problems`), as
    (key, message) pairs worded as ``hub check`` words them. References to
    other tables (parent, prices) are not checked here."""
    doc = Document(Path("accounts.toml"))
    doc.data = {"accounts": [normalize(dict(item))]}
    account = doc.data["accounts"][0]
    schema = hub_schema()
    validator = Validator({"$ref": "#/$defs/account", "$defs": schema["$defs"]})
    errors: list[tuple[str, str]] = []
    for error in validator.iter_errors(account):
        errors.extend((e.key, e.message) for e in errors_of(error, doc, prefix=["accounts", 0]))
    refused = {key for key, _ in errors}
    more = account_problems(account) + zone_and_currency_problems(account)
    return errors + [(key, message) for key, message in more if key not in refused]


def account_errors(doc: Document, raw: RawAccounts) -> list[ConfigError]:
    """Each account's time zone and currency, its parent (known, not
    itself, no loop), and a currency, time zone or schedule of its own that
    must be its parent's (:func:`_inherited_problems`)."""
    errors: list[ConfigError] = []
    data = doc.data
    # As written, the last table of an id counts here: the loop a table is in
    # is reported on each table.
    links = AccountTree({acc["id"]: text(acc, "parent") for _, acc in items(data, "accounts") if text(acc, "id")})
    for i, acc in items(data, "accounts"):
        file, table, _ = doc.locate(["accounts", i])
        errors.extend(ConfigError(file, table, key, message) for key, message in zone_and_currency_problems(acc))
        parent = text(acc, "parent")
        if parent is not None and parent not in links:
            errors.append(ConfigError(file, table, "parent", f"unknown account {parent!r}"))
        elif parent is not None and parent == acc.get("id"):
            errors.append(ConfigError(file, table, "parent", "an account cannot be its own parent"))
        elif parent is not None:
            chain = links.loop_through(acc.get("id"), parent)
            if chain is not None:
                errors.append(ConfigError(file, table, "parent", f"the parents form a loop: {' -> '.join(chain)}"))
        if parent is not None and parent in links and parent != acc.get("id"):
            errors.extend(ConfigError(file, table, key, message) for key, message in _inherited_problems(acc, parent, raw, data))
    return errors


def _inherited_problems(acc: Mapping[str, Any], parent: str, raw: RawAccounts,
                        data: Mapping[str, Any]) -> list[tuple[str, str]]:
    """A child's own currency, time zone or schedule that is not its
    parent's: it is invoiced through the parent, in the parent's currency,
    on its schedule and in its time zone (else its usage would be split
    over other periods than the invoice's)."""
    out: list[tuple[str, str]] = []
    for key, what in INHERITED.items():
        own = text(acc, key)
        if own is None or (key == "timezone" and not is_timezone(own)):
            continue  # not set, or not a time zone: reported by its own check
        theirs = raw.setting(parent, key, inherited_default(data, key))
        if own != theirs:
            out.append((key, f"{own!r} is not the {what} of its parent {parent!r} ({theirs}), through which it is "
                             f"invoiced: leave it out to take the parent's"))
    return out


def inherited_default(data: Mapping[str, Any], key: str) -> str:
    """The default of an :data:`INHERITED` key for an account without a
    parent that does not set it: ``[hub]``'s currency and time zone,
    ``[invoicing]``'s schedule."""
    if key == "currency":
        return hub_currency(data)
    if key == "timezone":
        return text(table_of(data, "hub"), "timezone") or HubSettings.timezone
    return text(table_of(data, "invoicing"), "schedule") or InvoicingSettings.schedule


def account_invoicing_errors(doc: Document) -> list[ConfigError]:
    """:func:`account_problems` of every account table, located."""
    errors: list[ConfigError] = []
    for i, acc in items(doc.data, "accounts"):
        file, table, _ = doc.locate(["accounts", i])
        errors.extend(ConfigError(file, table, key, message) for key, message in account_problems(acc))
    return errors


def typed_accounts(data: Mapping[str, Any], raw: RawAccounts, settings: HubSettings,
                   invoicing: InvoicingSettings) -> dict[str, Account]:
    """The accounts of a valid document by id, in configuration order,
    with the hub's and ``[invoicing]``'s defaults; a child without a
    currency, time zone or schedule takes its parent's (up the tree)."""
    accounts = {}
    for a in data.get("accounts", []):
        timezone = raw.setting(a["id"], "timezone", settings.timezone)
        accounts[a["id"]] = Account(
            id=a["id"], name=a.get("name", a["id"]), country=a.get("country"),
            currency=raw.currency(a["id"], settings.currency), timezone=timezone,
            parent=a.get("parent"), extra={k: v for k, v in a.items() if k not in TYPED_KEYS},
            vat_id=a["vat_id"].strip() if "vat_id" in a else None,
            email=a.get("email"),
            schedule=raw.setting(a["id"], "schedule", invoicing.schedule),
            since=instant(a.get("since"), zone(timezone)),
            tax_exempt=a.get("tax_exempt", False),
            exemption_reason=a.get("exemption_reason"),
            address=Address.of(a.get("address")),
            locale=a.get("locale"),
            peppol_id=a.get("peppol_id"),
            tags=tuple(a.get("tags", ())),
            purchase_order=a.get("purchase_order"),
            buyer_reference=a.get("buyer_reference"),
        )
    return accounts

