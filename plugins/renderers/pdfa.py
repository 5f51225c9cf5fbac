"""What can be checked of PDF/A-3 (ISO 19005-3) and of a Factur-X file
without a full validator (:func:`pdfa_failures`): every font embedded, no
encryption, no JavaScript, printable annotations, the OutputIntent, the XMP
identification and its agreement with the information dictionary, ``/ID``,
the attachment's keys, header and ``%%EOF``, no DeviceCMYK colour on a page
under the sRGB intent. Each failure names its clause (``PDF/A-3
6.2.11.4.1``) or ``Factur-X``.

Not verified here: the whole of ISO 19005-3 (no PDF/A validator runs in
this environment: veraPDF ships through Maven only), in particular the
font programs themselves (widths, glyph coverage, ``.notdef``), colour
spaces inside form XObjects, patterns and shadings, and the syntax
details veraPDF checks on every object.

This module must not know invoices or how the PDF was made: it reads a PDF.
"""

from __future__ import annotations

import io
import re
from typing import Any

from lxml import etree
from pypdf import PdfReader, PdfWriter
from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject, StreamObject

from hub.plugin import RuleFailure

#: the embedded CII file's name (Factur-X 1.0)
FILENAME = "factur-x.xml"

NS = {
    "x": "adobe:ns:meta/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "dc": "http://purl.org/dc/elements/1.1/",
    "pdf": "http://ns.adobe.com/pdf/1.3/",
    "xmp": "http://ns.adobe.com/xap/1.0/",
    "pdfaid": "http://www.aiim.org/pdfa/ns/id/",
    "fx": "urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#",
}
RDF = "{" + NS["rdf"] + "}"


#: annotation flags: Invisible 1, Hidden 2, Print 4, NoView 32, ToggleNoView 256
ANNOT_FORBIDDEN, ANNOT_PRINT = 1 | 2 | 32 | 256, 4


def _fail(clause: str, message: str) -> RuleFailure:
    return RuleFailure(f"PDF/A-3 {clause}", message)


def resolved(obj: Any) -> Any:
    """An object, its indirect reference followed (``None`` stays ``None``)."""
    return None if obj is None else obj.get_object()


def _xmp_text(tree: etree._Element, path: str) -> str | None:
    el = tree.find(path, NS)
    return None if el is None else (el.text or "")


def pdfa_failures(pdf: bytes | PdfReader | PdfWriter) -> list[RuleFailure]:
    """The PDF/A-3 (ISO 19005-3) and Factur-X requirements ``pdf`` breaks,
    among those checked here, each named by its clause of ISO 19005-3
    (``PDF/A-3 6.2.11.4.1``) or ``Factur-X``. An empty list is no proof of
    conformance: see the module's docstring for what is not checked.

    ``pdf``: the file's bytes, or a pypdf reader or writer (then the file
    header and end, which pypdf writes right, are not looked at)."""
    out: list[RuleFailure] = []
    if isinstance(pdf, bytes):
        if not re.match(rb"%PDF-1\.[0-7]\r?\n%[\x80-\xff]{4}", pdf):
            out.append(_fail("6.1.2", "the header is not %PDF-1.n followed by a comment of four bytes above 127"))
        if not re.search(rb"%%EOF\r?\n?$", pdf[-8:]):
            out.append(_fail("6.1.3", "data follows the last %%EOF"))
        pdf = PdfReader(io.BytesIO(pdf))
    if isinstance(pdf, PdfWriter):
        root, ids, encrypted = pdf._root_object, pdf._ID, pdf._encryption is not None
    else:
        root, ids, encrypted = pdf.trailer["/Root"].get_object(), pdf.trailer.get("/ID"), "/Encrypt" in pdf.trailer
    if encrypted:
        out.append(_fail("6.1.3", "the file is encrypted"))
    if not ids or len(ids) != 2:
        out.append(_fail("6.1.3", "the trailer has no /ID"))

    # fonts, colours, annotations, actions
    intents = [i.get_object() for i in resolved(root.get("/OutputIntents")) or []]
    pdfa = [i for i in intents if i.get("/S") == "/GTS_PDFA1"]
    profile_n = {int(p.get_object().get("/N", 0)) for p in (i.get("/DestOutputProfile") for i in pdfa) if p is not None}
    for number, page in enumerate(pdf.pages, start=1):
        _check_resources(page.get("/Resources"), f"page {number}", out, set())
        if 4 not in profile_n and _uses_cmyk(page):
            out.append(_fail("6.2.4.3", f"page {number} paints in DeviceCMYK without a CMYK OutputIntent"))
        for annot in resolved(page.get("/Annots")) or []:
            annot = annot.get_object()
            if annot.get("/Subtype") == "/Popup":
                continue
            flags = int(annot.get("/F", 0))
            if not flags & ANNOT_PRINT or flags & ANNOT_FORBIDDEN:
                out.append(_fail("6.3.2", f"page {number}: a {annot.get('/Subtype')} annotation is not printable "
                                          f"or is hidden (/F {flags})"))
            action = resolved(annot.get("/A")) or {}
            if action.get("/S") in ("/JavaScript", "/Launch"):
                out.append(_fail("6.6.1", f"page {number}: an annotation runs {action['/S']}"))
        if "/AA" in page:
            out.append(_fail("6.6.2", f"page {number} has additional actions (/AA)"))
    names = resolved(root.get("/Names"))
    if names is not None and "/JavaScript" in names:
        out.append(_fail("6.6.1", "the document has JavaScript (/Names /JavaScript)"))
    action = resolved(root.get("/OpenAction"))
    if isinstance(action, DictionaryObject) and action.get("/S") in ("/JavaScript", "/Launch"):
        out.append(_fail("6.6.1", f"the open action runs {action['/S']}"))
    if "/AA" in root:
        out.append(_fail("6.6.2", "the catalog has additional actions (/AA)"))

    # OutputIntent
    if not pdfa:
        out.append(_fail("6.2.3", "no /OutputIntents entry of subtype /GTS_PDFA1"))
    for intent in pdfa:
        profile = resolved(intent.get("/DestOutputProfile"))
        if not isinstance(profile, StreamObject) or profile.get("/N") not in (1, 3, 4):
            out.append(_fail("6.2.3", "the PDF/A OutputIntent has no ICC profile (/DestOutputProfile with /N)"))

    # XMP metadata and its agreement with the information dictionary
    meta_ref = root.get("/Metadata")
    if meta_ref is None:
        out.append(_fail("6.6.2.1", "the catalog has no XMP /Metadata stream"))
        return out
    meta_stream = meta_ref.get_object()
    if "/Filter" in meta_stream:
        out.append(_fail("6.6.2.1", "the XMP metadata stream is compressed (/Filter)"))
    data = meta_stream.get_data()
    try:
        xmp = etree.fromstring(data[data.index(b"<x:xmpmeta"):data.rindex(b"</x:xmpmeta>") + 12])
    except (ValueError, etree.XMLSyntaxError) as exc:
        out.append(_fail("6.6.2.1", f"the XMP metadata does not parse: {exc}"))
        return out
    if _xmp_text(xmp, ".//pdfaid:part") != "3" or _xmp_text(xmp, ".//pdfaid:conformance") not in ("A", "B", "U"):
        out.append(_fail("6.6.4", "the XMP does not identify PDF/A-3 (pdfaid:part 3, pdfaid:conformance A, B or U)"))
    for description in xmp.iter(RDF + "Description"):
        if description.get(RDF + "about") is None:
            out.append(_fail("6.6.2.1", "an rdf:Description has no rdf:about"))
            break
    info = pdf.metadata or {}
    pairs = {
        "/Title": ".//dc:title/rdf:Alt/rdf:li", "/Author": ".//dc:creator/rdf:Seq/rdf:li",
        "/Subject": ".//dc:description/rdf:Alt/rdf:li", "/Keywords": ".//pdf:Keywords",
        "/Creator": ".//xmp:CreatorTool", "/Producer": ".//pdf:Producer",
        "/CreationDate": ".//xmp:CreateDate", "/ModDate": ".//xmp:ModifyDate",
    }
    for key, path in pairs.items():
        if key not in info:
            continue
        value, xmp_value = str(info[key]), _xmp_text(xmp, path)
        if key in ("/CreationDate", "/ModDate"):
            value = _xmp_date(value)
        if xmp_value != value:
            out.append(_fail("6.6.3", f"information dictionary {key} {value!r} differs from the XMP's {xmp_value!r}"))

    # the Factur-X attachment
    level = _xmp_text(xmp, ".//fx:ConformanceLevel")
    if level != "EN 16931" or _xmp_text(xmp, ".//fx:DocumentFileName") != FILENAME:
        out.append(RuleFailure("Factur-X", f"XMP fx:ConformanceLevel {level!r} / fx:DocumentFileName is not "
                                           f"'EN 16931' / {FILENAME!r}"))
    af = [spec.get_object() for spec in resolved(root.get("/AF")) or []]
    specs = [s for s in af if s.get("/F") == FILENAME and s.get("/UF") == FILENAME]
    if not specs:
        out.append(RuleFailure("Factur-X", f"no {FILENAME} file specification in the catalog's /AF"))
    for spec in af:
        name = spec.get("/UF") or spec.get("/F")
        if spec.get("/AFRelationship") is None:
            out.append(_fail("6.8", f"the attachment {name} has no /AFRelationship"))
        stream = resolved((resolved(spec.get("/EF")) or {}).get("/F"))
        if stream is None or "/Subtype" not in stream:
            out.append(_fail("6.8", f"the attachment {name} has no embedded file stream with a MIME /Subtype"))
        elif "/ModDate" not in (resolved(stream.get("/Params")) or {}):
            out.append(_fail("6.8", f"the attachment {name} has no /Params /ModDate"))
    return out


def _xmp_date(pdf_date: str) -> str:
    """``D:20251103000000+00'00'`` -> ``2025-11-03T00:00:00+00:00``."""
    m = re.fullmatch(r"D:(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(?:([+-])(\d\d)'(\d\d)'?|Z)?", pdf_date)
    if not m:
        return pdf_date
    y, mo, d, h, mi, s, sign, oh, om = m.groups()
    zone = f"{sign}{oh}:{om}" if sign else "Z"
    return f"{y}-{mo}-{d}T{h}:{mi}:{s}{zone}"


#: the CMYK colour operators k and K with their four operands
_CMYK_OPERATOR = re.compile(rb"(?:^|\s)(?:[-+]?[\d.]+\s+){4}[kK](?=\s|$)")


def _uses_cmyk(page: Any) -> bool:
    """Whether the page's content sets a DeviceCMYK colour (``k``/``K``) or
    draws a DeviceCMYK image (form XObjects are not looked into)."""
    contents = page.get("/Contents")
    if contents is not None:
        contents = contents.get_object()
        streams = contents if isinstance(contents, ArrayObject) else [contents]
        if any(_CMYK_OPERATOR.search(s.get_object().get_data()) for s in streams):
            return True
    xobjects = resolved((resolved(page.get("/Resources")) or {}).get("/XObject")) or {}
    return any(x.get_object().get("/ColorSpace") == "/DeviceCMYK" for x in xobjects.values())


def _check_resources(resources: Any, where: str, out: list[RuleFailure], seen: set[int]) -> None:
    """Every font of ``resources`` (and of its form XObjects) embedded (6.2.11.4.1)."""
    if resources is None:
        return
    resources = resources.get_object()
    for name, ref in (resolved(resources.get("/Font")) or {}).items():
        font = ref.get_object()
        key = ref.idnum if isinstance(ref, IndirectObject) else id(font)
        if key in seen:
            continue
        seen.add(key)
        subtype = font.get("/Subtype")
        if subtype == "/Type3":
            _check_resources(font.get("/Resources"), where, out, seen)
            continue
        target = font["/DescendantFonts"][0].get_object() if subtype == "/Type0" else font
        descriptor = resolved(target.get("/FontDescriptor")) or {}
        if not any(k in descriptor for k in ("/FontFile", "/FontFile2", "/FontFile3")):
            out.append(_fail("6.2.11.4.1", f"{where}: font {font.get('/BaseFont')} ({name}) is not embedded"))
    for ref in (resolved(resources.get("/XObject")) or {}).values():
        xobject = ref.get_object()
        key = ref.idnum if isinstance(ref, IndirectObject) else id(xobject)
        if xobject.get("/Subtype") == "/Form" and key not in seen:
            seen.add(key)
            _check_resources(xobject.get("/Resources"), where, out, seen)
