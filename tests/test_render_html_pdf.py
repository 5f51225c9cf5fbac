"""The html and pdf renderers (issue #5), on the sample invoices the hub's
own pipeline issued (tests/samples/invoices/).

Golden files: tests/golden/html/<sample>.html hold the HTML of each sample,
reviewed by eye once (rendered to PNG in a browser) and compared exactly.
After a deliberate change to the template, the presentation or the samples,
regenerate them and review the diff::

    HUB_UPDATE_GOLDEN=1 python3 -m pytest tests/test_render_html_pdf.py
"""

from __future__ import annotations

import io
import json
import os
import random
import re
from decimal import Decimal
from pathlib import Path

import jsonschema
import pytest
from babel.numbers import format_currency, format_decimal, get_currency_precision
from pypdf import PdfReader

from hub.plugin import Document, InstanceConfig, RenderContext, RendererType
from hub_plugins.renderers import html as html_module
from hub_plugins.renderers import pdf as pdf_module
from hub_plugins.renderers.html import HtmlRenderer
from hub_plugins.renderers.humanize import Formatter, duration, human_quantity, present, quantity_label
from hub_plugins.renderers.pdf import FontNotFound, PdfRenderer, find_fonts

HERE = Path(__file__).parent
SAMPLES = HERE / "samples" / "invoices"
GOLDEN = HERE / "golden" / "html"
SAMPLE_NAMES = sorted(p.stem for p in SAMPLES.glob("*.json"))
NNBSP, NBSP = "\u202f", "\u00a0"


def sample(name: str) -> dict:
    return json.loads((SAMPLES / f"{name}.json").read_text(encoding="utf-8"))


def config(type_: str, **options: object) -> InstanceConfig:
    return InstanceConfig(name=type_, type=type_, options=options, base_dir=HERE)


@pytest.fixture(scope="module")
def html() -> HtmlRenderer:
    return HtmlRenderer(config("html"))


@pytest.fixture(scope="module")
def pdf() -> PdfRenderer:
    return PdfRenderer(config("pdf"))


def html_text(renderer: HtmlRenderer, invoice: dict, ctx: RenderContext | None = None) -> str:
    return renderer.render(invoice, ctx or RenderContext()).content.decode("utf-8")


def pdf_pages(renderer: PdfRenderer, invoice: dict) -> list[str]:
    content = renderer.render(invoice, RenderContext()).content
    return [page.extract_text() for page in PdfReader(io.BytesIO(content)).pages]


# --------------------------------------------------------------------------
# Registration


def test_the_renderer_types_register_through_the_hook_with_a_schema_and_a_factory():
    (html_type,) = html_module.hub_register_renderer_types()
    (pdf_type,) = pdf_module.hub_register_renderer_types()
    assert isinstance(html_type, RendererType) and isinstance(pdf_type, RendererType)
    assert (html_type.name, pdf_type.name) == ("html", "pdf")
    built = html_type.factory(config("html")), pdf_type.factory(config("pdf"))
    assert [(r.format, r.requires) for r in built] == [("html", ()), ("pdf", ())]
    jsonschema.validate({"template": "statement.html"}, html_type.config_schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"template": "../etc/passwd"}, html_type.config_schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"font": "a.ttf"}, pdf_type.config_schema)  # bold_font is required with it


# --------------------------------------------------------------------------
# Locale formatting and human units (humanize is the one place for both)


@pytest.mark.parametrize("locale, expected", [
    ("de", "1.234,56\u00a0€"), ("fr", f"1{NNBSP}234,56{NBSP}€"), ("en", "€1,234.56"),
])
def test_money_is_formatted_in_the_buyer_locale(locale, expected):
    assert Formatter(locale, "EUR").money("1234.56") == expected


def test_money_has_the_currency_minor_digits_and_unit_prices_their_full_precision():
    de = Formatter("de", "EUR")
    assert de.money("0.5") == f"0,50{NBSP}€"
    assert de.price("0.0000115") == f"0,0000115{NBSP}€"
    assert Formatter("en", "JPY").money("1230") == "¥1,230"
    assert Formatter("en", "BHD").money("1.234") == "BHD1.234"


@pytest.mark.parametrize("locale, expected", [
    ("de", "3. November 2025"), ("fr", "3 novembre 2025"), ("en", "November 3, 2025"),
])
def test_dates_are_formatted_in_the_buyer_locale(locale, expected):
    assert Formatter(locale, "EUR").date("2025-11-03") == expected


def test_a_period_shows_the_days_it_covers_in_the_buyer_time_zone():
    paris = Formatter("fr", "EUR", "Europe/Paris")
    # [2025-09-30T22:00Z, 2025-10-31T23:00Z) is October in Paris
    assert paris.period("2025-09-30T22:00:00+00:00", "2025-10-31T23:00:00+00:00") == "1–31 oct. 2025"
    assert Formatter("de", "EUR").period("2025-10-15T00:00:00+00:00", "2025-10-16T00:00:00+00:00") == \
        "15. Oktober 2025"


@pytest.mark.parametrize("seconds, expected", [
    ("762", "12 min 42 s"), ("60", "1 min"), ("3600", "1 h"), ("3605", "1 h 0 min 5 s"), ("42.5", "42.5 s"),
    ("3456762", "960 h 12 min 42 s"), ("0", "0 s"),
])
def test_seconds_read_as_hours_minutes_and_seconds(seconds, expected):
    assert duration(Decimal(seconds), Formatter("en", "EUR")) == expected


def test_human_units_of_time_weighted_quantities():
    en, de = Formatter("en", "EUR"), Formatter("de", "EUR")
    assert human_quantity("762", "second", "vCPU", en) == "12 min 42 s of vCPU time"
    assert human_quantity("90", "minute", "vCPU", en) == "1 h 30 min of vCPU time"
    assert human_quantity("2", "day", "GPU", en) == "48 h of GPU time"
    assert human_quantity("9676800", "second", "vCPU", de) == "2.688 h of vCPU time"
    assert human_quantity("7200", "second", "GiB", en) == "2 GiB-h"
    assert human_quantity("3456762", "second", "GiB", de) == "≈ 960,21 GiB-h"
    # already per hour, or not a time: the exact figure is enough
    assert human_quantity("3840", "hour", "GiB", en) is None
    assert human_quantity("42.5", "unit", "GB", en) is None
    # a flat plan's quantity is the share of the period the account was active
    assert human_quantity("0.5", "unit", None, en, flat=True) == "50% of the period"
    assert human_quantity("0.516129032", "unit", None, en, flat=True) == "≈ 51.61% of the period"


def test_exact_quantities_carry_their_priced_unit():
    de = Formatter("de", "EUR")
    assert quantity_label("3456762", "second", "vCPU", de) == "3.456.762 vCPU-s"
    assert quantity_label("3840", "hour", "GiB", de) == "3.840 GiB-h"
    assert quantity_label("42.5", "unit", "GB", de) == "42,5 GB"
    assert quantity_label("1", "unit", None, de) == "1"


@pytest.mark.parametrize("locale", ["de", "fr", "en", "es", "pl", "nl", "sv", "it", "de_CH", "hi", "ar", "fa"])
@pytest.mark.parametrize("currency", ["EUR", "USD", "JPY", "BHD"])
def test_formatting_without_babel_gives_exactly_what_babel_gives(locale, currency):
    fmt = Formatter(locale, currency)
    digits = get_currency_precision(currency)
    rng = random.Random(f"{locale}-{currency}")
    for _ in range(200):
        value = Decimal(rng.randrange(0, 10 ** rng.randrange(1, 14))) / 10 ** rng.choice([0, 1, 2, 3, 7])
        money = round(value, digits)
        assert fmt.money(money) == format_currency(money, currency, locale=fmt.locale)
        assert fmt.money(money, negate=True) == format_currency(-money, currency, locale=fmt.locale)
        assert fmt.price(value) == format_currency(value, currency, locale=fmt.locale, decimal_quantization=False)
        assert fmt.number(value) == format_decimal(value, locale=fmt.locale, decimal_quantization=False)


def test_the_common_locales_take_the_fast_path():
    assert all(Formatter(loc, "EUR")._fast is not None for loc in ("de", "fr", "en", "es", "it", "nl"))


def test_an_unknown_locale_is_an_error_naming_it():
    with pytest.raises(ValueError, match="'xx_YY'"):
        Formatter("xx_YY", "EUR")


# --------------------------------------------------------------------------
# HTML


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_each_sample_renders_to_its_golden_html(html, name):
    got = html.render(sample(name), RenderContext()).content
    golden = GOLDEN / f"{name}.html"
    if os.environ.get("HUB_UPDATE_GOLDEN") == "1":
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_bytes(got)
    assert golden.is_file(), f"{golden} is missing: run with HUB_UPDATE_GOLDEN=1 and review it"
    assert got == golden.read_bytes(), f"{name}: the HTML differs from {golden} (HUB_UPDATE_GOLDEN=1 to accept)"


def test_the_html_document_is_named_after_the_invoice_and_typed_utf8(html):
    doc = html.render(sample("domestic-vat-discount-credit"), RenderContext())
    assert (doc.file_name, doc.media_type) == ("INV-2025-000001.html", "text/html; charset=utf-8")


def test_a_buyer_named_script_renders_as_text(html):
    text = html_text(html, sample("eu-b2c-buyer-rate"))
    assert "<script>" not in text
    assert '<p class="party-name">Umbrella &lt;script&gt;alert(1)&lt;/script&gt; &amp; Sons</p>' in text


def test_the_html_shows_localized_money_human_quantities_and_full_precision_prices(html):
    text = html_text(html, sample("domestic-vat-discount-credit"))  # locale de
    assert '<td class="num">3.456.762 vCPU-s<span class="note">960 h 12 min 42 s vCPU-Zeit</span></td>' in text
    assert f'<td class="num">0,0000115{NBSP}€<span class="note">pro vCPU-s</span></td>' in text
    assert f'<tr class="due"><th>Zahlbetrag</th><td class="num">61,46{NBSP}€</td></tr>' in text
    assert "<dt>Fällig am</dt><dd>3. Dezember 2025</dd>" in text


def test_tiers_are_broken_down_under_their_line(html):
    text = html_text(html, sample("domestic-vat-discount-credit"))
    tiers = re.findall(r'<tr class="tier">\s*<td class="no"></td>\s*<td class="desc">(.*?)</td>', text)
    # egress: 10 GB free of 42.5 GB; memory: two graduated tiers (locale de)
    assert tiers == ["Freikontingent", "Berechnet", "Stufe 1: bis 1.000 GiB-h", "Stufe 2: über 1.000 GiB-h"]


def test_discounts_and_promotional_credits_come_before_tax_and_prepaid_credit_after_the_total():
    domestic = [(t.label, t.amount) for t in present(sample("domestic-vat-discount-credit")).totals]
    assert domestic == [
        ("Zwischensumme", f"60,63{NBSP}€"), ("Contract discount on vCPU", f"-3,98{NBSP}€"),
        ("Aktionsguthaben", f"-5,00{NBSP}€"), ("Nettobetrag", f"51,65{NBSP}€"),
        (f"USt. 19{NBSP}%", f"9,81{NBSP}€"), ("Gesamtbetrag", f"61,46{NBSP}€"), ("Zahlbetrag", f"61,46{NBSP}€"),
    ]
    prepaid = [(t.label, t.amount) for t in present(sample("reverse-charge-prepaid-peppol")).totals]
    assert prepaid == [
        ("Sous-total", f"86,54{NBSP}€"), (f"TVA 0{NBSP}% (autoliquidation)", f"0,00{NBSP}€"),
        ("Total TTC", f"86,54{NBSP}€"), ("Crédit prépayé", f"-20,00{NBSP}€"), ("Montant à payer", f"66,54{NBSP}€"),
    ]


@pytest.mark.parametrize("name, reason", [
    ("exempt", "Exemption reason: Exempt under section 4 no. 18 UStG"),
    ("export-fixed-discount",
     "Exemption reason: Export outside the EU: exempt from VAT (Article 146 of Council Directive 2006/112/EC)"),
    ("reverse-charge-prepaid-peppol",
     "Motif d'exonération : Autoliquidation : TVA due par le preneur (article 196 de la directive 2006/112/CE)"),
])
def test_the_tax_breakdown_states_why_no_vat_is_charged_in_words_never_as_its_code(html, name, reason):
    text = html_text(html, sample(name))
    assert f'<p class="reason">{reason}</p>' in text.replace("&#39;", "'")
    assert "VATEX" not in text


def test_a_credit_note_is_titled_so_and_names_its_invoice_and_reason(html):
    text = html_text(html, sample("credit-note"))
    assert "<h1>Gutschrift</h1>" in text  # locale de
    assert "<dt>Zu Rechnung</dt><dd>INV-2025-000001</dd>" in text
    assert "<p>Grund: vCPU billed twice for vm-1 on 2025-10-01</p>" in text
    assert "Zahlbetrag" not in text and "Fällig am" not in text


def test_an_enterprise_parent_groups_lines_by_member_with_subtotals():
    groups = present(sample("enterprise-parent")).groups
    assert [(g.title, [r.number for r in g.rows], g.subtotal) for g in groups] == [
        ("Data platform (ent-data)", [1, 2], "€161.28"), ("Web shop (ent-web)", [3, 4], "€128.03"),
    ]


def test_itemized_lines_name_their_resource():
    rows = present(sample("long-itemized")).groups[0].rows
    assert len(rows) == 240
    assert (rows[0].description, rows[0].notes, rows[0].human) == \
        ("Batch job vCPU", ("Resource job-000",), "17 min of vCPU time")


def test_late_usage_a_shorter_period_and_a_manual_charge_are_labelled():
    invoice = sample("domestic-vat-discount-credit")
    late, partial, manual = (dict(invoice["lines"][0]) for _ in range(3))
    late.update(adjustment_for="2025-09", period_start="2025-09-01T00:00:00+00:00",
                period_end="2025-10-01T00:00:00+00:00")
    partial.update(period_start="2025-10-15T00:00:00+00:00")
    manual.update(product="manual", description="Setup fee", quantity="1", unit="unit", unit_price="150.00",
                  amount="150.00", records=0)
    invoice["lines"] = [late, partial, manual]
    rows = present(invoice).groups[0].rows
    assert rows[0].notes == ("Zeitraum 1.–30. Sept. 2025", "Nachträgliche Nutzung 2025-09")
    assert rows[1].notes == ("Zeitraum 15.–31. Okt. 2025",)
    assert (rows[2].description, rows[2].quantity, rows[2].human, rows[2].unit_price) == \
        ("Setup fee", "1", None, f"150,00{NBSP}€")


def test_a_template_in_a_template_folder_overrides_the_bundled_one(html, tmp_path):
    (tmp_path / "invoice.html").write_text("{{ doc.title }} {{ doc.number }} for {{ invoice.buyer.name }}\n")
    ctx = RenderContext(template_dirs=(tmp_path,))
    assert html_text(html, sample("eu-b2c-buyer-rate"), ctx) == \
        "Invoice INV-2025-000003 for Umbrella &lt;script&gt;alert(1)&lt;/script&gt; &amp; Sons\n"


def test_an_override_can_extend_the_bundled_template_and_replace_one_block(html, tmp_path):
    (tmp_path / "invoice.html").write_text(
        '{% extends "hub/invoice.html" %}{% block footer %}<footer>IBAN DE00 1234</footer>{% endblock %}')
    text = html_text(html, sample("exempt"), RenderContext(template_dirs=(tmp_path,)))
    assert "<footer>IBAN DE00 1234</footer>" in text
    assert "<h1>Invoice</h1>" in text


def test_an_override_of_the_stylesheet_alone_is_used(html, tmp_path):
    (tmp_path / "invoice.css").write_text("body { color: rebeccapurple; }")
    text = html_text(html, sample("exempt"), RenderContext(template_dirs=(tmp_path,)))
    assert "<style>\nbody { color: rebeccapurple; }</style>" in text


def test_the_template_option_picks_another_file(tmp_path):
    (tmp_path / "short.html").write_text("{{ doc.number }}: {{ fmt.money(invoice.total) }}")
    renderer = HtmlRenderer(config("html", template="short.html"))
    text = html_text(renderer, sample("domestic-vat-discount-credit"), RenderContext(template_dirs=(tmp_path,)))
    assert text == f"INV-2025-000001: 61,46{NBSP}€"


# --------------------------------------------------------------------------
# PDF


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_the_pdf_text_holds_the_number_the_total_and_every_line(pdf, name):
    invoice = sample(name)
    doc = present(invoice)
    text = "\n".join(pdf_pages(pdf, invoice))
    assert doc.number in text
    total = next(t for t in doc.totals if t.kind == "total")
    assert f"{total.label}\n{total.amount}" in text or f"{total.label} {total.amount}" in text
    for group in doc.groups:
        for row in group.rows:
            assert row.description in text and row.amount in text
            for note in row.notes:
                assert note in text


def test_the_pdf_document_is_named_after_the_invoice(pdf):
    doc = pdf.render(sample("credit-note"), RenderContext())
    assert (doc.file_name, doc.media_type) == ("CN-2025-000001.pdf", "application/pdf")
    assert doc.content.startswith(b"%PDF-")


def test_a_long_invoice_breaks_across_pages_each_with_the_table_header_and_its_number(pdf):
    pages = pdf_pages(pdf, sample("long-itemized"))
    assert len(pages) >= 5
    for n, page in enumerate(pages, 1):
        assert f"Page {n} of {len(pages)}" in page
        if n > 1:
            assert "Invoice INV-2025-000007 (continued)" in page
        if "Resource job-" in page:
            assert re.search(r"#\s*DESCRIPTION\s*QUANTITY\s*UNIT PRICE\s*AMOUNT", page), f"page {n}"
    listed = re.findall(r"Resource (job-\d{3})", "\n".join(pages))
    assert listed == [f"job-{i:03d}" for i in range(240)]  # every line once, in order


def test_a_long_description_wraps_inside_its_column(pdf):
    invoice = sample("exempt")
    invoice["lines"][0]["description"] = "Virtual CPU " + "reserved-capacity " * 12 + "end"
    text = "\n".join(pdf_pages(pdf, invoice))
    words = re.sub(r"\s+", " ", text)
    assert ("Virtual CPU " + "reserved-capacity " * 12 + "end") in words
    assert text.count("reserved-capacity") == 12


@pytest.mark.parametrize("name", ["domestic-vat-discount-credit", "long-itemized", "credit-note"])
def test_rendering_twice_gives_the_same_bytes(html, pdf, name):
    invoice = sample(name)
    assert html.render(invoice, RenderContext()) == html.render(invoice, RenderContext())
    first = pdf.render(invoice, RenderContext())
    assert first == pdf.render(invoice, RenderContext())
    assert first == PdfRenderer(config("pdf")).render(invoice, RenderContext())  # fresh fonts too


def test_the_pdf_is_dated_by_the_invoice_and_titled_with_it(pdf):
    reader = PdfReader(io.BytesIO(pdf.render(sample("domestic-vat-discount-credit"), RenderContext()).content))
    info = reader.metadata
    assert info["/CreationDate"].startswith("D:20251103000000")
    assert info["/Title"] == "Rechnung INV-2025-000001"  # locale de
    assert info["/Author"] == "Nimbus Cloud GmbH"


def test_greek_and_cyrillic_names_print_and_the_euro_sign_too(pdf):
    invoice = sample("exempt")
    invoice["buyer"]["name"] = "Ελληνική Εταιρεία & ООО «Ромашка»"
    text = "\n".join(pdf_pages(pdf, invoice))
    assert "Ελληνική Εταιρεία & ООО «Ромашка»" in text
    assert "€29.81" in text


def test_characters_the_fonts_lack_are_refused_rather_than_printed_as_holes(pdf):
    invoice = sample("exempt")
    invoice["buyer"]["name"] = "株式会社テスト"
    with pytest.raises(pdf_module.MissingGlyphs, match=r"DejaVuSans.ttf and DejaVuSans-Bold.ttf have no glyph for "
                                                       r"'ス' \(U\+30B9\), 'テ' \(U\+30C6\), 'ト' \(U\+30C8\), '会'"):
        pdf.render(invoice, RenderContext())


def test_fonts_embedded_in_the_pdf_are_subsets(pdf):
    content = pdf.render(sample("exempt"), RenderContext()).content
    reader = PdfReader(io.BytesIO(content))
    fonts = reader.pages[0]["/Resources"]["/Font"]
    names = sorted(str(f.get_object()["/BaseFont"]) for f in fonts.values())
    assert names == ["/MPDFAA+DejaVuSansBold", "/MPDFAA+DejaVuSansBook"]
    for f in fonts.values():
        descendant = f.get_object()["/DescendantFonts"][0].get_object()
        assert "/FontFile2" in descendant["/FontDescriptor"]


def test_without_any_font_the_renderer_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setattr(pdf_module, "FONT_DIRS", ())
    monkeypatch.setattr(pdf_module, "_matplotlib_fonts", lambda: [])
    with pytest.raises(FontNotFound, match=f"no folder holds DejaVuSans.ttf and DejaVuSans-Bold.ttf; looked in "
                                          f"{re.escape(str(tmp_path))}. Install them"):
        find_fonts(config("pdf", font_dir=str(tmp_path)))
    with pytest.raises(FontNotFound, match="font file not found: .*missing.ttf"):
        find_fonts(config("pdf", font=str(tmp_path / "missing.ttf"), bold_font=str(tmp_path / "missing.ttf")))


def test_a_font_folder_from_the_configuration_is_searched_first(tmp_path):
    regular, bold = find_fonts(config("pdf"))
    for f in (regular, bold):
        (tmp_path / f.name).write_bytes(f.read_bytes())
    assert find_fonts(config("pdf", font_dir=str(tmp_path))) == (tmp_path / regular.name, tmp_path / bold.name)


def test_documents_are_the_contract_type():
    invoice = sample("exempt")
    for renderer in (HtmlRenderer(config("html")), PdfRenderer(config("pdf"))):
        assert isinstance(renderer.render(invoice, RenderContext()), Document)


def test_the_seller_bank_account_and_phone_are_on_the_invoice_and_its_pdf(html, pdf):
    invoice = sample("domestic-vat-discount-credit")
    invoice["seller"] = {**invoice["seller"], "iban": "DE89370400440532013000", "bic": "COBADEFFXXX",
                         "phone": "+49 40 123456-0"}
    text = html_text(html, invoice)
    assert f"<p>Überweisung an {invoice['seller']['name']}: IBAN DE89 3704 0044 0532 0130 00, BIC COBADEFFXXX.</p>" \
        in text
    assert "+49 40 123456-0" in text
    pages = "\n".join(pdf_pages(pdf, invoice))
    assert "IBAN DE89 3704 0044 0532 0130 00, BIC COBADEFFXXX" in pages.replace("\n", " ")
    assert "Tel. +49 40 123456-0" in pages


def test_an_invoice_without_a_bank_account_asks_for_no_transfer(html):
    invoice = sample("domestic-vat-discount-credit")
    assert "Überweisung an" in html_text(html, invoice)  # locale de
    invoice["seller"] = {k: v for k, v in invoice["seller"].items() if k not in ("iban", "bic")}
    assert "Überweisung" not in html_text(html, invoice)


# --------------------------------------------------------------------------
# Display precision: quantities to 3 decimals, tier parts as money; the
# figures stay exact in the JSON and the XML


@pytest.mark.parametrize("quantity, unit, meter_unit, locale, expected", [
    ("6082.626527777778", "hour", "GiB", "en", "6,082.627 GiB-h"),
    ("5894.972222222222", "hour", "GiB", "en", "5,894.972 GiB-h"),
    ("31683.059166666667", "hour", "GiB", "de", "31.683,059 GiB-h"),
    ("3.839722222222", "hour", "GiB", "en", "3.84 GiB-h"),  # trailing zero dropped
    ("2.0005", "day", "GPU", "en", "2.001 GPU-d"),  # half up
    ("3840.000", "hour", "GiB", "en", "3,840 GiB-h"),  # an integer stays an integer
    ("2", "unit", None, "en", "2"),
    ("33045566.25", "second", "vCPU", "en", "33,045,566.25 vCPU-s"),
    ("0.000416666667", "hour", "GiB", "en", "0.000417 GiB-h"),  # not zero: three significant digits
    ("0", "hour", "GiB", "en", "0 GiB-h"),
])
def test_a_quantity_shows_at_most_three_decimals(quantity, unit, meter_unit, locale, expected):
    assert quantity_label(quantity, unit, meter_unit, Formatter(locale, "EUR")) == expected


def test_a_duration_shows_a_fraction_of_a_second_to_three_decimals():
    assert duration(Decimal("762.123456789"), Formatter("en", "EUR")) == "12 min 42.123 s"


def _long_memory_line() -> dict:
    invoice = sample("domestic-vat-discount-credit")
    memory = invoice["lines"][1]
    assert memory["product"] == "memory"
    memory.update(quantity="31683.059166666667", amount="143.57", resources=[])
    memory["tiers"] = [
        {"amount": "5.5", "quantity": "1000", "unit_price": "0.0055", "up_to": "1000"},
        {"amount": "138.07376625", "quantity": "30683.059166666667", "unit_price": "0.0045", "up_to": None},
    ]
    invoice["buyer"]["locale"] = "en"
    return invoice


def test_tier_parts_show_as_money_and_their_quantities_to_three_decimals(html):
    invoice = _long_memory_line()
    row = present(invoice).groups[0].rows[1]
    assert row.quantity == "31,683.059 GiB-h"
    assert [(t.quantity, t.unit_price, t.amount) for t in row.tiers] == [
        ("1,000 GiB-h", "€0.0055", "€5.50"), ("30,683.059 GiB-h", "€0.0045", "€138.07"),
    ]
    assert row.amount == "€143.57"
    text = html_text(html, invoice)
    assert "€138.07376625" not in text and "31,683.059166666667" not in text
    invoice["lines"][1]["tiers"][1]["amount"] = "22.871819375"
    assert present(invoice).groups[0].rows[1].tiers[1].amount == "€22.87"


def test_the_e_invoices_keep_the_exact_quantities_the_documents_round():
    from hub_plugins.renderers import cii
    from hub_plugins.renderers.ubl import build_ubl

    invoice = _long_memory_line()
    ubl = build_ubl(invoice)[0].decode()
    assert '<cbc:InvoicedQuantity unitCode="HUR">31683.059166666667</cbc:InvoicedQuantity>' in ubl
    assert "1000 x 0.0055 + 30683.059166666667 x 0.0045" in ubl
    xml = cii.to_xml(invoice).decode()
    assert '<ram:BilledQuantity unitCode="HUR">31683.059166666667</ram:BilledQuantity>' in xml
