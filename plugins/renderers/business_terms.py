"""The EN 16931 business terms the UBL and CII documents take from an
invoice beyond its figures, worded once for both (business terms in
brackets):

- the buyer's reference (BT-10) and purchase order (BT-13), the invoice
  JSON's top-level ``buyer_reference`` and ``purchase_order``
  (:func:`buyer_reference`, :func:`purchase_order`);
- the seller's legal registration identifier (BT-30, ``commercial_register``)
  with its ISO 6523 ICD scheme (BT-30-1) where the identifier's form and
  check digits name one: a French SIREN (0002, the 9 digits of ``RCS Paris
  552 100 554``) or SIRET (0009), a Belgian enterprise number (0208); a
  German ``HRB 12345`` has no ICD scheme and none is given
  (:func:`seller_registration`);
- the seller's additional legal information (BT-33): legal form, register
  court, register, managing directors and share capital as one text in the
  buyer's language (:func:`seller_legal_information`);
- the VAT exemption reason text (BT-120) in the buyer's language
  (:func:`exemption_reason`, :func:`hub_plugins.renderers.i18n.exemption_reason`);
  the VATEX code (BT-121) stays the invoice's;
- a reissue's voided invoice (``reissue_of``) as its preceding invoice
  reference (BG-3, BT-25: EN 16931 has it on any invoice that corrects a
  preceding one) and, with the credit note that voided it, its note (BT-22)
  (:func:`reissue_note`);
- the line note (BT-127) of an adjustment line (``adjusts``: what was billed
  before and what is billed now) and of a line carried from a period below
  the minimum invoice amount (``carried_from``) (:func:`line_note`).

The words come from the catalogs of :mod:`hub_plugins.renderers.i18n`
(the buyer's ``locale``; English without one).

This module must not know how either document is built, the validators,
the store or the hub's stages: it reads the invoice view of
:mod:`hub.plugin.invoice`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.numbers import format_currency, format_decimal

from hub.plugin.invoice import Invoice
from hub_plugins.renderers import i18n

__all__ = ["buyer_reference", "exemption_reason", "line_note", "purchase_order", "reissue_note", "reissue_of",
           "seller_legal_information", "seller_registration", "words"]

#: ISO 6523 ICD of the French SIREN and SIRET (BT-30-1)
ICD_SIREN, ICD_SIRET = "0002", "0009"
#: ISO 6523 ICD of the Belgian enterprise number
ICD_BE_ENTERPRISE = "0208"


def _s(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def words(inv: Invoice) -> Callable[[str], str]:
    """The gettext of the buyer's language."""
    return i18n.translator(inv.buyer.locale)


@functools.lru_cache(maxsize=32)
def _babel_locale(tag: str | None) -> Locale:
    try:
        return Locale.parse((tag or "en").replace("-", "_"))
    except (UnknownLocaleError, ValueError):
        return Locale.parse(i18n.language(tag))


def buyer_reference(inv: Invoice) -> str:
    """BT-10: the invoice's ``buyer_reference``, ``""`` without one."""
    return _s(inv.mapping.get("buyer_reference"))


def purchase_order(inv: Invoice) -> str:
    """BT-13: the invoice's ``purchase_order``, ``""`` without one."""
    return _s(inv.mapping.get("purchase_order"))


def _seller(inv: Invoice) -> Mapping[str, Any]:
    return inv.mapping.get("seller") or {}


def _luhn(digits: str) -> bool:
    from stdnum import luhn

    return luhn.is_valid(digits)


def seller_registration(inv: Invoice) -> tuple[str, str | None] | None:
    """BT-30 and its scheme (BT-30-1, ``None`` when not known), or ``None``
    when the seller has no ``commercial_register``."""
    register = _s(_seller(inv).get("commercial_register"))
    if not register:
        return None
    country = _s(inv.seller.country).upper()
    compact = re.sub(r"[\s.\-]", "", register)
    if country == "FR":
        if re.fullmatch(r"[0-9]{14}", compact) and _luhn(compact):
            return compact, ICD_SIRET
        # "RCS Paris 552 100 554": the SIREN is the identifier, the RCS entry its text (BT-33)
        found = re.findall(r"(?<![0-9])([0-9]{3} ?[0-9]{3} ?[0-9]{3})(?![0-9 ]*[0-9])", register)
        if len(found) == 1:
            siren = found[0].replace(" ", "")
            if _luhn(siren):
                return siren, ICD_SIREN
    if country == "BE" and re.fullmatch(r"(BE)?[01][0-9]{9}", compact):
        from stdnum.be import vat

        number = compact.removeprefix("BE")
        if vat.is_valid(number):
            return number, ICD_BE_ENTERPRISE
    return register, None


def _share_capital(inv: Invoice) -> str:
    capital = _seller(inv).get("share_capital")
    if isinstance(capital, str):  # an amount alone is in the invoice's currency
        capital = {"amount": capital}
    if not isinstance(capital, Mapping) or capital.get("amount") is None:
        return ""
    try:
        amount = Decimal(str(capital["amount"]))
    except InvalidOperation:
        return ""
    currency = _s(capital.get("currency")) or inv.currency
    return format_currency(amount, currency, locale=_babel_locale(inv.buyer.locale))


def seller_legal_information(inv: Invoice) -> str:
    """BT-33: the seller's legal form, register court, register, managing
    directors and share capital, ``"; "``-separated, in the buyer's
    language (``GmbH; Registergericht: Amtsgericht Hamburg; Handelsregister:
    HRB 12345; Geschäftsführer: Erika Mustermann; Stammkapital: 25.000,00 €``);
    ``""`` without any."""
    seller = _seller(inv)
    _ = words(inv)
    parts = []
    if _s(seller.get("legal_form")):
        parts.append(_s(seller["legal_form"]))
    if _s(seller.get("register_court")):
        parts.append(_("Register court: %(court)s") % {"court": _s(seller["register_court"])})
    if _s(seller.get("commercial_register")):
        parts.append(_("Register: %(register)s") % {"register": _s(seller["commercial_register"])})
    directors = [_s(d) for d in seller.get("managing_directors") or () if _s(d)]
    if directors:
        parts.append(_("Managing directors: %(names)s") % {"names": ", ".join(directors)})
    capital = _share_capital(inv)
    if capital:
        parts.append(_("Share capital: %(amount)s") % {"amount": capital})
    return "; ".join(parts)


def exemption_reason(inv: Invoice) -> str:
    """BT-120: the legal wording of the invoice's zero-rated VAT category in
    the buyer's language (an exempt account's own reason as written), or
    the invoice's reason text when there is no wording for it; ``""`` when
    the invoice has neither a reason nor a VATEX code."""
    tax = inv.tax
    given = _s(tax.exemption_reason) or _s(tax.exemption_code)
    if not given:
        return ""  # nothing to word: an exemption without a reason stays refused (BR-E-10, BR-AE-10...)
    return _s(i18n.exemption_reason(str(tax.category), given, inv.buyer.locale)) or _s(tax.exemption_reason)


def reissue_of(inv: Invoice) -> str:
    """The number of the voided invoice a reissue replaces (BT-25), ``""``
    for any other document."""
    return "" if inv.is_credit_note else _s(inv.mapping.get("reissue_of"))


def reissue_note(inv: Invoice) -> str:
    """BT-22 of a reissue: the invoice it replaces and the credit note that
    voided it, in the buyer's language; ``""`` for any other document."""
    replaced = reissue_of(inv)
    if not replaced:
        return ""
    _ = words(inv)
    note = _s(inv.mapping.get("replaces_credit_note"))
    if note:
        return _("Replaces invoice %(invoice)s (cancelled by credit note %(credit_note)s).") % {
            "invoice": replaced, "credit_note": note}
    return _("Replaces invoice %(invoice)s.") % {"invoice": replaced}


def _number(value: Any, inv: Invoice, *, money: bool = False) -> str:
    """A figure of the invoice JSON in the buyer's locale, exactly (money
    with the currency's symbol)."""
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return str(value)
    locale = _babel_locale(inv.buyer.locale)
    if money:
        return format_currency(number, inv.currency, locale=locale)
    return format_decimal(number, locale=locale, decimal_quantization=False)


def line_note(inv: Invoice, position: int) -> str:
    """BT-127 of the line at ``position`` (1-based) when it is an adjustment
    (what was billed before and what its period costs now) or a carried
    line (the period it was carried from), in the buyer's language; ``""``
    for a line that is neither."""
    lines = inv.mapping.get("lines") or []
    raw = lines[position - 1] if 1 <= position <= len(lines) else None
    if not isinstance(raw, Mapping) or not (raw.get("adjusts") or raw.get("carried_from")):
        return ""
    line = inv.lines[position - 1]
    _ = words(inv)
    parts = []
    adjusts = raw.get("adjusts")
    if isinstance(adjusts, Mapping):
        period = _s(line.adjustment_for) or _s(adjusts.get("period"))
        if period:
            parts.append(_("Late usage of %(period)s") % {"period": period})
        before_q, before_a = adjusts.get("quantity_billed"), adjusts.get("amount_billed")
        now_q, now_a = adjusts.get("quantity"), adjusts.get("amount")
        if None not in (before_q, before_a, now_q, now_a):
            figures = {"quantity_billed": _number(before_q, inv), "amount_billed": _number(before_a, inv, money=True),
                       "quantity": _number(now_q, inv), "amount": _number(now_a, inv, money=True)}
            parts.append(_("billed before: %(quantity_billed)s (%(amount_billed)s) · now: %(quantity)s (%(amount)s)")
                         % figures)
    carried = raw.get("carried_from")
    period = carried.get("period") if isinstance(carried, Mapping) else carried
    if _s(period):
        parts.append(_("carried from %(period)s (below the minimum invoice amount)") % {"period": _s(period)})
    return "; ".join(parts)

