"""``[[credits]]`` and ``[[discounts]]``: what is given to an account (a
credit grant, a discount on its lines), checked against the account it is
given to, and typed.

A credit or discount goes to the account that is invoiced (a root), in its
currency and its time zone; amounts have no more decimals than that
currency's minor unit. It must not know how a credit is consumed or a
discount applied (that is invoicing's), nor the catalog beyond product
names.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from hub.config.document import Document
from hub.config.errors import ConfigError
from hub.config.identifiers import is_currency
from hub.config.model import Account, CreditConfig, DiscountConfig
from hub.config.raw import RawAccounts, decimal_of, hub_currency, instant, instant_problem, items, table, text, zone
from hub.money import minor_digits

#: each array, the word for one of its tables, and its (start, end) keys
_ARRAYS = {"credits": ("credit", "granted", "expires"), "discounts": ("discount", "valid_from", "valid_until")}


def grant_errors(doc: Document, raw: RawAccounts) -> list[ConfigError]:
    """Each credit and discount: its account (known, invoiced itself), its
    currency and amount, its product, its dates (valid, start before end)."""
    errors: list[ConfigError] = []
    data = doc.data
    default_currency = hub_currency(data)
    hub_zone = text(table(data, "hub"), "timezone")
    product_names = {text(p, "name") for _, p in items(data, "products")}
    for array, (what, start_key, end_key) in _ARRAYS.items():
        for i, item in items(data, array):
            file, tbl, _ = doc.locate([array, i])

            def add(key: str, message: str) -> None:
                errors.append(ConfigError(file, tbl, key, message))

            account_id = text(item, "account")
            acc = raw.get(account_id)
            if account_id is not None and acc is None:
                add("account", f"unknown account {account_id!r}")
            elif acc is not None and text(acc, "parent") is not None:
                add("account", f"account {account_id!r} is invoiced through its parent {acc['parent']!r}: "
                               f"give the {what} to {acc['parent']!r}")
            acc_currency = raw.currency(acc["id"], default_currency) if acc is not None else None
            tz = zone(text(acc, "timezone") if acc is not None else None, hub_zone)
            if array == "credits":
                currency = text(item, "currency")
                if currency is not None and not is_currency(currency):
                    add("currency", f"{currency!r} is not an ISO 4217 currency")
                elif currency is not None and acc_currency is not None and currency != acc_currency:
                    add("currency", f"{currency} differs from account {account_id}'s {acc_currency}")
                amount_currency = currency or acc_currency
            else:
                product = text(item, "product")
                if product is not None and product not in product_names:
                    add("product", f"unknown product {product!r}")
                percent = decimal_of(item, "percent")
                if percent is not None and not 0 < percent <= 100:
                    add("percent", f"must be greater than 0 and at most 100, not {item['percent']}")
                amount_currency = acc_currency
            amount = decimal_of(item, "amount")
            problem = money_problem(item["amount"], amount, amount_currency) if amount is not None else None
            if problem:
                add("amount", problem)
            start_text, end_text = text(item, start_key), text(item, end_key)
            start, end = instant(start_text, tz), instant(end_text, tz, until=True)
            for key, written, value in ((start_key, start_text, start), (end_key, end_text, end)):
                if written is not None and value is None:
                    add(key, instant_problem(written))
            if start is not None and end is not None and not start < end:
                add(end_key, f"{end_text!r} is not after {start_key} {start_text!r}")
    return errors


def money_problem(written: str, value: Decimal, currency: str | None) -> str | None:
    """Why ``value`` (written ``written``) is not a positive amount of
    ``currency``, or None."""
    if value <= 0:
        return f"must be greater than 0, not {written}"
    if currency is None:
        return None
    try:
        digits = minor_digits(currency)
    except ValueError:
        return None  # the currency's own check reports it
    if value != value.quantize(Decimal(1).scaleb(-digits), rounding="ROUND_DOWN"):
        return f"{written} has more decimals than {currency}'s minor unit ({digits})"
    return None


def typed_credits(data: Mapping[str, Any], accounts: Mapping[str, Account]) -> tuple[CreditConfig, ...]:
    """The ``[[credits]]`` of a valid document, in their order."""
    credits = []
    for i, c in enumerate(data.get("credits", [])):
        acc = accounts[c["account"]]
        credits.append(CreditConfig(
            index=i, account=acc.id, amount=Decimal(c["amount"]), currency=c.get("currency", acc.currency),
            kind=c["kind"], granted=instant(c.get("granted"), acc.tz),
            expires=instant(c.get("expires"), acc.tz, until=True), description=c.get("description", ""),
        ))
    return tuple(credits)


def typed_discounts(data: Mapping[str, Any], accounts: Mapping[str, Account]) -> tuple[DiscountConfig, ...]:
    """The ``[[discounts]]`` of a valid document, in their order."""
    discounts = []
    for i, d in enumerate(data.get("discounts", [])):
        acc = accounts[d["account"]]
        amount = Decimal(d["amount"]) if "amount" in d else None
        discounts.append(DiscountConfig(
            index=i, account=acc.id, product=d.get("product"),
            percent=Decimal(d["percent"]) if "percent" in d else None, amount=amount,
            currency=acc.currency if amount is not None else None,
            valid_from=instant(d.get("valid_from"), acc.tz),
            valid_until=instant(d.get("valid_until"), acc.tz, until=True), description=d.get("description", ""),
        ))
    return tuple(discounts)
