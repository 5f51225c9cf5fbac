"""The documents in the buyer's language: the gettext catalogs of
plugins/renderers/locale (en, fr, de), chosen by the buyer's ``locale``,
and the legal wording of a zero VAT rate (reverse charge, export,
intra-community supply, exemption) that the HTML, the PDF and the XML
renderers print instead of a VATEX code.
"""

from __future__ import annotations

import io
import json
import re
import tomllib
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from pypdf import PdfReader

from hub.plugin import InstanceConfig, RenderContext
from hub_plugins.renderers import i18n
from hub_plugins.renderers.html import HtmlRenderer
from hub_plugins.renderers.i18n import exemption_reason, language, translator
from hub_plugins.renderers.pdf import PdfRenderer

HERE = Path(__file__).parent
ROOT = HERE.parent
SAMPLES = HERE / "samples" / "invoices"
NBSP = "\u00a0"


def sample(name: str, locale: str | None = None) -> dict:
    invoice = json.loads((SAMPLES / f"{name}.json").read_text(encoding="utf-8"))
    if locale is not None:
        invoice["buyer"]["locale"] = locale
    return invoice


def renderer(type_: str):
    cfg = InstanceConfig(name=type_, type=type_, options={}, base_dir=HERE)
    return HtmlRenderer(cfg) if type_ == "html" else PdfRenderer(cfg)


def html_text(invoice: dict) -> str:
    return renderer("html").render(invoice, RenderContext()).content.decode("utf-8").replace("&#39;", "'")


def pdf_text(invoice: dict) -> list[str]:
    reader = PdfReader(io.BytesIO(renderer("pdf").render(invoice, RenderContext()).content))
    return [page.extract_text() for page in reader.pages]


@pytest.mark.parametrize("locale, expected", [
    ("en", ("Invoice", "Amount due", "Billing period", "Reverse charge")),
    ("fr", ("Facture", "Montant à payer", "Période de facturation", "Autoliquidation")),
    ("de", ("Rechnung", "Zahlbetrag", "Leistungszeitraum", "Steuerschuldnerschaft des Leistungsempfängers")),
])
def test_the_translator_of_a_locale_gives_its_labels(locale, expected):
    _ = translator(locale)
    assert tuple(_(m) for m in ("Invoice", "Amount due", "Billing period", "Reverse charge")) == expected


def test_placeholders_are_named_and_filled_after_translation():
    assert translator("de")("Page %(page)s of %(pages)s") % {"page": 2, "pages": 3} == "Seite 2 von 3"
    assert translator("fr")("Page %(page)s of %(pages)s") % {"page": 2, "pages": 3} == "Page 2 sur 3"


@pytest.mark.parametrize("locale, lang", [
    ("fr_CH", "fr"), ("de-AT", "de"), ("en_US", "en"), ("ja", "en"), ("", "en"), (None, "en"), ("xx-bogus", "en"),
])
def test_a_locale_is_matched_on_its_language_and_one_without_a_catalog_reads_english(locale, lang):
    assert language(locale) == lang
    assert translator(locale)("Amount due") == {"fr": "Montant à payer", "de": "Zahlbetrag"}.get(lang, "Amount due")


def test_a_label_a_catalog_lacks_reads_in_english():
    assert translator("de")("A label nobody translated") == "A label nobody translated"


def _catalog(lang: str):
    with (i18n.CATALOGS / lang / "LC_MESSAGES" / "messages.po").open("rb") as f:
        return read_po(f, locale=lang)


@pytest.mark.parametrize("lang", ["fr", "de"])
def test_every_message_is_translated_with_the_same_placeholders(lang):
    english = {m.id for m in _catalog("en") if m.id}
    catalog = {m.id: m.string for m in _catalog(lang) if m.id}
    assert set(catalog) == english
    untranslated = sorted(k for k, v in catalog.items() if not v)
    assert untranslated == []
    names = re.compile(r"%\((\w+)\)s")
    assert [k for k, v in catalog.items() if sorted(names.findall(k)) != sorted(names.findall(v))] == []


def test_the_catalogs_ship_as_package_data_and_load_without_a_build_step():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = pyproject["tool"]["setuptools"]["package-data"]["hub_plugins.renderers"]
    assert "locale/*/LC_MESSAGES/*.po" in patterns
    assert i18n.LANGUAGES >= {"en", "fr", "de"}
    assert not list(i18n.CATALOGS.rglob("*.mo"))  # read from the .po at run time


# --------------------------------------------------------------------------
# The legal wording of a zero rate (BT-120 too)

@pytest.mark.parametrize("category, locale, wording", [
    ("AE", "en", "Reverse charge: VAT to be accounted for by the customer (Article 196 of Council Directive "
                 "2006/112/EC)"),
    ("AE", "fr", "Autoliquidation : TVA due par le preneur (article 196 de la directive 2006/112/CE)"),
    ("AE", "de", "Steuerschuldnerschaft des Leistungsempfängers (Artikel 196 der Richtlinie 2006/112/EG)"),
    ("G", "en", "Export outside the EU: exempt from VAT (Article 146 of Council Directive 2006/112/EC)"),
    ("G", "fr", "Exportation hors UE : exonération de TVA (article 146 de la directive 2006/112/CE)"),
    ("G", "de", "Ausfuhrlieferung: steuerfrei (Artikel 146 der Richtlinie 2006/112/EG)"),
    ("K", "en", "Intra-community supply: exempt from VAT (Article 138 of Council Directive 2006/112/EC)"),
    ("K", "fr", "Livraison intracommunautaire : exonération de TVA (article 138 de la directive 2006/112/CE)"),
    ("K", "de", "Innergemeinschaftliche Lieferung: steuerfrei (Artikel 138 der Richtlinie 2006/112/EG)"),
    ("E", "en", "Exempt from VAT"), ("E", "fr", "Exonéré de TVA"), ("E", "de", "Steuerfrei"),
])
def test_a_zero_rate_has_its_legal_wording_in_the_buyers_language(category, locale, wording):
    assert exemption_reason(category, None, locale) == wording


def test_a_vatex_code_or_the_generic_reason_reads_as_the_categorys_wording():
    assert exemption_reason("AE", "VATEX-EU-AE", "fr") == exemption_reason("AE", None, "fr")
    assert exemption_reason("AE", "Reverse charge", "de") == exemption_reason("AE", None, "de")
    assert exemption_reason("G", "VATEX-EU-G", "de_DE") == exemption_reason("G", None, "de")
    assert exemption_reason("S", None, "en") == ""


def test_an_exempt_accounts_own_reason_is_its_wording():
    assert exemption_reason("E", "Exempt under section 4 no. 18 UStG", "fr") == "Exempt under section 4 no. 18 UStG"


# --------------------------------------------------------------------------
# The documents

@pytest.mark.parametrize("locale, words", [
    ("en", ["<h1>Invoice</h1>", "<h2>From</h2>", "<h2>Bill to</h2>", '<th class="desc">Description</th>',
            '<th class="num">Unit price</th>', "<dt>Due date</dt>", "<h2>VAT breakdown</h2>",
            f'<tr class="due"><th>Amount due</th><td class="num">€61.46</td></tr>', "Please pay €61.46 by"]),
    ("fr", ["<h1>Facture</h1>", "<h2>Émetteur</h2>", "<h2>Facturé à</h2>", '<th class="desc">Désignation</th>',
            '<th class="num">Prix unitaire</th>', "<dt>Échéance</dt>", "<h2>Détail de la TVA</h2>",
            f'<tr class="due"><th>Montant à payer</th><td class="num">61,46{NBSP}€</td></tr>',
            f"Merci de régler 61,46{NBSP}€ avant le"]),
    ("de", ["<h1>Rechnung</h1>", "<h2>Von</h2>", "<h2>Rechnungsempfänger</h2>", '<th class="desc">Beschreibung</th>',
            '<th class="num">Einzelpreis</th>', "<dt>Fällig am</dt>", "<h2>Umsatzsteuer</h2>",
            f'<tr class="due"><th>Zahlbetrag</th><td class="num">61,46{NBSP}€</td></tr>',
            f"Bitte zahlen Sie 61,46{NBSP}€ bis"]),
])
def test_the_html_labels_are_in_the_buyers_language(locale, words):
    text = html_text(sample("domestic-vat-discount-credit", locale))
    assert [w for w in words if w not in text] == []
    assert f'<html lang="{locale}">' in text


@pytest.mark.parametrize("locale, words", [
    ("en", ["Invoice", "DESCRIPTION", "UNIT PRICE", "Amount due", "Page 1 of 1"]),
    ("fr", ["Facture", "DÉSIGNATION", "PRIX UNITAIRE", "Montant à payer", "Page 1 sur 1"]),
    ("de", ["Rechnung", "BESCHREIBUNG", "EINZELPREIS", "Zahlbetrag", "Seite 1 von 1"]),
])
def test_the_pdf_labels_are_in_the_buyers_language(locale, words):
    [page] = pdf_text(sample("domestic-vat-discount-credit", locale))
    assert [w for w in words if w not in page] == []


@pytest.mark.parametrize("name", ["reverse-charge-prepaid-peppol", "export-fixed-discount"])
@pytest.mark.parametrize("locale", ["en", "fr", "de"])
def test_no_document_prints_a_vatex_code_but_the_legal_wording(name, locale):
    invoice = sample(name, locale)
    category = invoice["tax"]["category"]
    wording = exemption_reason(category, None, locale)
    text = html_text(invoice)
    pages = " ".join(pdf_text(invoice)).replace("\n", " ")
    assert "VATEX" not in text and "VATEX" not in pages
    assert wording in text
    assert wording.split(" (")[0] in pages  # the PDF wraps the wording over lines
