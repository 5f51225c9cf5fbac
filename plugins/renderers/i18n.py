"""The words of an invoice in the buyer's language: Babel gettext catalogs
for the labels of the HTML and PDF documents (:func:`translator`) and the
legal wording of a zero VAT rate (:func:`exemption_reason`), which the UBL,
CII and Factur-X renderers also print as the exemption reason (BT-120).

Catalogs. ``locale/<lang>/LC_MESSAGES/messages.po`` next to this module
(shipped as package data), read with :func:`babel.messages.pofile.read_po`
when first needed, so a clean ``pip install -e .`` works without a
compile step. The message ids are the English labels; a locale without a
catalog (``ja``), or a label a catalog lacks, reads in English. A locale
is matched on its language: ``fr_CH`` and ``fr-FR`` use ``fr``.
Placeholders are Python's named ``%(name)s``: ``_("Page %(page)s") %
{"page": 2}``.

The exemption wording names the article of Council Directive 2006/112/EC
(the VAT directive) the zero rate rests on:

- ``AE`` reverse charge: Article 196 (the customer accounts for the VAT);
- ``G`` export outside the EU: Article 146;
- ``K`` intra-community supply: Article 138;
- ``E`` exempt: the account's own exemption reason (the operator writes the
  legal basis in the buyer's language), else a generic "Exempt from VAT";
- ``O`` outside the scope of VAT.

A VATEX code given as the reason (``VATEX-EU-AE``) is read as its category,
so a document never prints the code instead of the words.

This module must not know invoices, documents or the store: it translates.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.messages.pofile import read_po

__all__ = ["CATALOGS", "DEFAULT_LANGUAGE", "EXEMPTION_WORDING", "LANGUAGES", "exemption_reason", "language",
           "translator"]

#: where the catalogs are: <lang>/LC_MESSAGES/messages.po
CATALOGS = Path(__file__).parent / "locale"
DEFAULT_LANGUAGE = "en"

#: the legal wording of a zero-rated category, per language
EXEMPTION_WORDING: Mapping[str, Mapping[str, str]] = {
    "AE": {
        "en": "Reverse charge: VAT to be accounted for by the customer (Article 196 of Council Directive "
              "2006/112/EC)",
        "fr": "Autoliquidation : TVA due par le preneur (article 196 de la directive 2006/112/CE)",
        "de": "Steuerschuldnerschaft des Leistungsempfängers (Artikel 196 der Richtlinie 2006/112/EG)",
    },
    "G": {
        "en": "Export outside the EU: exempt from VAT (Article 146 of Council Directive 2006/112/EC)",
        "fr": "Exportation hors UE : exonération de TVA (article 146 de la directive 2006/112/CE)",
        "de": "Ausfuhrlieferung: steuerfrei (Artikel 146 der Richtlinie 2006/112/EG)",
    },
    "K": {
        "en": "Intra-community supply: exempt from VAT (Article 138 of Council Directive 2006/112/EC)",
        "fr": "Livraison intracommunautaire : exonération de TVA (article 138 de la directive 2006/112/CE)",
        "de": "Innergemeinschaftliche Lieferung: steuerfrei (Artikel 138 der Richtlinie 2006/112/EG)",
    },
    "E": {
        "en": "Exempt from VAT",
        "fr": "Exonéré de TVA",
        "de": "Steuerfrei",
    },
    "O": {
        "en": "Not subject to VAT",
        "fr": "Non soumis à la TVA",
        "de": "Nicht steuerbar",
    },
}

#: VATEX codes (CEF list) read as the category whose wording they stand for
_VATEX_CATEGORY: Mapping[str, str] = {
    "VATEX-EU-AE": "AE", "VATEX-EU-G": "G", "VATEX-EU-IC": "K", "VATEX-EU-O": "O",
}

#: the reason texts the hub's tax rules write (hub.invoicing.tax), which are
#: the category's name rather than an account's own wording
_GENERIC_REASONS = frozenset({"reverse charge", "export outside the eu", "exempt", "intra-community supply"})


@functools.lru_cache(maxsize=64)
def language(locale: str | None) -> str:
    """The language of ``locale`` with a catalog here (``fr_CH`` -> ``fr``),
    else :data:`DEFAULT_LANGUAGE`."""
    if not locale:
        return DEFAULT_LANGUAGE
    try:
        lang = Locale.parse(locale.replace("-", "_")).language
    except (UnknownLocaleError, ValueError):
        lang = locale.replace("-", "_").split("_")[0].lower()
    return lang if lang in LANGUAGES else DEFAULT_LANGUAGE


@functools.lru_cache(maxsize=16)
def _messages(lang: str) -> Mapping[str, str]:
    path = CATALOGS / lang / "LC_MESSAGES" / "messages.po"
    if not path.is_file():
        return {}
    with path.open("rb") as f:
        catalog = read_po(f, locale=lang)
    out: dict[str, str] = {}
    for message in catalog:
        if message.id and isinstance(message.id, str) and isinstance(message.string, str) \
                and message.string and not message.fuzzy:
            out[message.id] = message.string
    return out


@functools.lru_cache(maxsize=64)
def translator(locale: str | None) -> Callable[[str], str]:
    """The gettext callable of ``locale``'s language: the label in that
    language, or the English ``message`` when the catalog lacks it."""
    messages = _messages(language(locale))

    def gettext(message: str) -> str:
        return messages.get(message) or message

    return gettext


def exemption_reason(category: str, reason_code: str | None, locale: str | None) -> str:
    """The legal wording of VAT category ``category`` in ``locale``'s
    language (see the module docstring), for the document and BT-120.

    ``reason_code`` is the invoice's exemption reason or VATEX code: for
    ``E`` an account's own reason text is returned as it is (it is the
    operator's legal wording); a VATEX code or the hub's generic reason
    texts give the category's wording. ``""`` for a category without one
    (``S``) and no reason."""
    lang = language(locale)
    reason = (reason_code or "").strip()
    key = _VATEX_CATEGORY.get(reason.upper(), category.upper())
    if key == "E" and reason and not reason.upper().startswith("VATEX-") \
            and reason.lower() not in _GENERIC_REASONS:
        return reason
    wording = EXEMPTION_WORDING.get(key)
    if wording is None:
        return "" if reason.upper().startswith("VATEX-") else reason
    return wording.get(lang) or wording[DEFAULT_LANGUAGE]


#: the languages with a catalog here
LANGUAGES: frozenset[str] = frozenset(
    p.name for p in CATALOGS.iterdir() if (p / "LC_MESSAGES" / "messages.po").is_file()
) if CATALOGS.is_dir() else frozenset()
