"""How fast the html and pdf renderers make documents.

    python3 bench/bench_render_html_pdf.py [--count 1000] [--lines 20]
    python3 bench/bench_render_html_pdf.py --compare-weasyprint   # needs `pip install weasyprint`

Renders ``--count`` generated invoices of ``--lines`` lines each (copies of
tests/samples/invoices/domestic-vat-discount-credit.json with other
quantities, resources, buyers and locales, and figures that add up) and
the 240-line sample, in one process, and prints documents per second and
what 10,000 invoices would take. ``--compare-weasyprint`` also prints the
generated invoices' HTML with WeasyPrint (fewer of them: it is slow), the
figures behind the choice of fpdf2 in ``hub_plugins/renderers/pdf.py``.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "tests" / "samples" / "invoices"
sys.path.insert(0, str(ROOT))

from hub.plugin_types import InstanceConfig, RenderContext  # noqa: E402
from hub_plugins.renderers.html import HtmlRenderer  # noqa: E402
from hub_plugins.renderers.pdf import PdfRenderer  # noqa: E402

BUYERS = (("de", "Müller & Söhne Maschinenbau GmbH", "DE"), ("fr", "Société Générale d'Hébergement", "FR"),
          ("en", "Initech Inc.", "US"), ("de", "Bäckerei Zürcher AG", "DE"), ("fr", "Crème Brûlée SARL", "FR"))
CENT = Decimal("0.01")


def make_invoice(i: int, lines: int) -> dict[str, Any]:
    """The ``i``-th generated invoice: the domestic sample's lines repeated
    with other quantities and resources, its figures recomputed."""
    base = json.loads((SAMPLES / "domestic-vat-discount-credit.json").read_text())
    inv = copy.deepcopy(base)
    locale, name, country = BUYERS[i % len(BUYERS)]
    inv["number"] = f"INV-2025-{100000 + i:06d}"
    inv["buyer"].update(id=f"customer-{i}", name=f"{name} {i}", locale=locale, country=country)
    out = []
    for n in range(lines):
        line = copy.deepcopy(base["lines"][n % len(base["lines"])])
        if line["unit_price"] is not None:
            q = Decimal(line["quantity"]) * (1 + (i * 7 + n * 13) % 29) / 7
            q = q.quantize(Decimal(1)) if line["unit"] == "second" else q.quantize(CENT)
            line["quantity"] = str(q)
            line["amount"] = str((q * Decimal(line["unit_price"])).quantize(CENT, ROUND_HALF_UP))
            line["resource_id"] = f"vm-{i:04d}-{n:02d}"
        out.append(line)
    inv["lines"] = out
    subtotal = sum((Decimal(x["amount"]) for x in out), Decimal(0))
    tax = (subtotal * 19 / 100).quantize(CENT, ROUND_HALF_UP)
    inv.update(allowances=[], credits=[], discount_total="0.00", promotional_credit="0.00", prepaid_applied="0.00",
               subtotal=str(subtotal), taxable_amount=str(subtotal), total=str(subtotal + tax),
               amount_due=str(subtotal + tax))
    inv["tax"]["amount"] = str(tax)
    return inv


def per_second(render: Callable[[dict[str, Any]], Any], invoices: list[dict[str, Any]]) -> tuple[float, float]:
    """Documents per second of wall time, and per second of this process's
    CPU time (the steadier figure on a machine that runs other work)."""
    render(invoices[0])  # warm: templates compiled, font subsets made
    wall, cpu = time.perf_counter(), time.process_time()
    for inv in invoices:
        render(inv)
    return len(invoices) / (time.perf_counter() - wall), len(invoices) / (time.process_time() - cpu)


def report(label: str, rates: tuple[float, float]) -> None:
    wall, cpu = rates
    print(f"{label:<46} {wall:7.1f} documents/s ({cpu:7.1f} per CPU-second)   "
          f"10,000 in {10000 / wall / 60:5.1f} min")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--lines", type=int, default=20)
    parser.add_argument("--compare-weasyprint", action="store_true")
    args = parser.parse_args()

    invoices = [make_invoice(i, args.lines) for i in range(args.count)]
    long = json.loads((SAMPLES / "long-itemized.json").read_text())
    ctx = RenderContext()
    html = HtmlRenderer(InstanceConfig("html", "html", {}, ROOT))
    pdf = PdfRenderer(InstanceConfig("pdf", "pdf", {}, ROOT))
    report(f"html, {args.count} invoices of {args.lines} lines", per_second(lambda i: html.render(i, ctx), invoices))
    report(f"pdf (fpdf2), {args.count} invoices of {args.lines} lines",
           per_second(lambda i: pdf.render(i, ctx), invoices))
    report("html, 240-line sample x 20", per_second(lambda i: html.render(i, ctx), [long] * 20))
    report("pdf (fpdf2), 240-line sample x 20", per_second(lambda i: pdf.render(i, ctx), [long] * 20))
    if args.compare_weasyprint:
        import weasyprint

        def weasy(inv: dict[str, Any]) -> bytes:
            return weasyprint.HTML(string=html.render(inv, ctx).content.decode()).write_pdf()

        few = invoices[: max(1, min(args.count, 50))]
        report(f"pdf (WeasyPrint {weasyprint.__version__}), {len(few)} of {args.lines} lines", per_second(weasy, few))
        report(f"pdf (WeasyPrint {weasyprint.__version__}), 240-line sample x 3", per_second(weasy, [long] * 3))


if __name__ == "__main__":
    main()
