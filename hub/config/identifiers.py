"""Whether a code or identifier written in hub.toml is a valid one: time
zones, currencies, locales, e-mail addresses, telephone numbers, VAT ids.

Each check answers with the words ``hub check`` prints, or None when the
value is fine. It owns no table and must not know where a value is
written; the VAT rules come from :mod:`hub.invoicing.tax` (pure: no
configuration, no store), the currencies and locales from Babel.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.numbers import list_currencies

from hub.config.raw import text
from hub.config.values import is_timezone
from hub.invoicing.tax import EU_COUNTRIES, country_code, vat_id_error

#: a telephone number as written on an invoice
PHONE = re.compile(r"\+?[0-9 ()./-]{5,30}")


@functools.cache
def _currencies() -> frozenset[str]:
    return frozenset(list_currencies())


def is_currency(code: str) -> bool:
    """Whether ``code`` is an ISO 4217 currency Babel knows."""
    return code in _currencies()


def currency_problem(code: str | None) -> str | None:
    if code is not None and not is_currency(code):
        return f"{code!r} is not an ISO 4217 currency"
    return None


def zone_problem(name: str | None) -> str | None:
    if name is not None and not is_timezone(name):
        return f"{name!r} is not an IANA time zone such as Europe/Paris"
    return None


def zone_and_currency_problems(item: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The ``timezone`` and ``currency`` of a ``[hub]`` or ``[[accounts]]``
    table, as (key, message)."""
    out = []
    for key, problem in (("timezone", zone_problem(text(item, "timezone"))),
                         ("currency", currency_problem(text(item, "currency")))):
        if problem:
            out.append((key, problem))
    return out


def is_locale(value: str) -> bool:
    try:
        Locale.parse(value)
        return True
    except (UnknownLocaleError, ValueError, TypeError):
        return False


def locale_problem(value: str | None) -> str | None:
    if value is not None and not is_locale(value):
        return f"{value!r} is not a locale such as en, de or fr_CH"
    return None


def is_email(value: str) -> bool:
    local, at, domain = value.partition("@")
    return bool(at and local and domain and "@" not in domain and not any(c.isspace() for c in value))


def email_problem(value: str | None) -> str | None:
    if value is not None and not is_email(value):
        return f"{value!r} is not an e-mail address"
    return None


def phone_problem(value: str | None) -> str | None:
    if value is not None and not PHONE.fullmatch(value):
        return f"{value!r} is not a telephone number (5 to 30 digits, spaces and + ( ) . / -, a + only first)"
    return None


def vat_problem(vat_id: str, country: str | None) -> str | None:
    """Why ``vat_id`` is not a valid VAT id for ``country``, or None. A tax
    number of a country outside the EU is not an EU VAT id and is not
    checked (as :func:`hub.invoicing.tax.determine_tax` does)."""
    if country is not None:
        try:
            cc = country_code(country)
        except ValueError:
            return None  # the country's own check reports it
        if cc not in EU_COUNTRIES:
            return None if vat_id.strip() else "a VAT id cannot be empty"
        return vat_id_error(vat_id, cc)
    return vat_id_error(vat_id)
