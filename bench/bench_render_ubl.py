#!/usr/bin/env python3
"""Benchmark: UBL 2.1 documents per second, rendered and validated.

Measures :meth:`hub_plugins.renderers.ubl.UblRenderer.render`'s path on N
invoices of L lines (default 1,000 of 20): building the document with lxml,
then validating it as every render does (UBL 2.1 XSD with lxml, the CEN
EN 16931 schematron 1.3.16 with Saxon, BR-CO-25, and our Peppol checks for
the Peppol documents). Each part is timed; the sum is the render.

The invoices are made from the lines of the sample invoices the hub issued
(tests/samples/invoices/: per-second prices with a base quantity,
graduated tiers, a free allowance, itemized batch jobs), L lines each,
picked with a seeded generator, totals computed by the billing rules
(subtotal, 10 % on the vCPU lines, promotional or prepaid credit, tax
rounded half-up once, total, amount due). Three in four are domestic
invoices (plain EN 16931, 19 % VAT, discount and promotional credit), one
in four a reverse-charge Peppol BIS 3 invoice with a prepaid credit. Every
document must pass; the first ones are also rendered through
``UblRenderer.render`` and must be byte for byte the same.

The stylesheet compiles once per process (about a second): reported
apart, not in the documents/s. With ``--workers 2`` each of two processes
renders half the invoices (the hub's render stage is one process; this
shows what a second core gives).

    python3 bench/bench_render_ubl.py                          # 1,000 invoices of 20 lines, 1 and 2 workers
    python3 bench/bench_render_ubl.py --invoices 200 --workers 1
    python3 bench/bench_render_ubl.py --lines 240 --invoices 50
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "tests" / "samples" / "invoices"
CENT = Decimal("0.01")


def _money(value: Decimal) -> str:
    return format(value.quantize(CENT, ROUND_HALF_UP), "f")


def make_invoices(count: int, lines: int, seed: int) -> list[dict[str, Any]]:
    """``count`` invoices of ``lines`` lines from the samples' lines, with
    totals by the billing rules (see the module docstring)."""
    samples = {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted(SAMPLES.glob("*.json"))}
    domestic, peppol = samples["domestic-vat-discount-credit"], samples["reverse-charge-prepaid-peppol"]
    pool = [ln for name in ("domestic-vat-discount-credit", "enterprise-parent", "export-fixed-discount",
                            "reverse-charge-prepaid-peppol", "long-itemized") for ln in samples[name]["lines"]]
    rng = random.Random(seed)
    out = []
    for k in range(count):
        base = peppol if k % 4 == 3 else domestic
        inv = json.loads(json.dumps(base))
        inv["number"] = f"INV-2025-{100000 + k:06d}"
        inv["lines"] = [dict(ln, account=inv["account"]) for ln in rng.sample(pool, lines)]
        inv["members"] = {}
        inv["products"] = {ln["product"]: samples["long-itemized"]["products"].get(ln["product"])
                           or domestic["products"].get(ln["product"]) for ln in inv["lines"]}
        subtotal = sum((Decimal(ln["amount"]) for ln in inv["lines"]), Decimal(0))
        allowances = []
        if base is domestic:
            for pos, ln in enumerate(inv["lines"], 1):
                if ln["product"] == "vcpu":
                    allowances.append({"amount": _money(Decimal(ln["amount"]) * 10 / 100), "line": pos,
                                       "description": "Contract discount on vCPU", "discount": "discounts[0]",
                                       "percent": "10"})
        discount = sum((Decimal(a["amount"]) for a in allowances), Decimal(0))
        promotional = min(Decimal("5.00"), subtotal - discount) if base is domestic else Decimal(0)
        taxable = subtotal - discount - promotional
        tax = (taxable * Decimal(inv["tax"]["rate"]) / 100).quantize(CENT, ROUND_HALF_UP)
        total = taxable + tax
        prepaid = min(Decimal("20.00"), total) if base is peppol else Decimal(0)
        credits = []
        if promotional:
            credits.append({"amount": _money(promotional), "grant": "g-bench", "kind": "promotional",
                            "remaining": "0.00"})
        if prepaid:
            credits.append({"amount": _money(prepaid), "grant": "g-bench", "kind": "prepaid", "remaining": "0.00"})
        inv.update(allowances=allowances, credits=credits, subtotal=_money(subtotal), discount_total=_money(discount),
                   promotional_credit=_money(promotional), taxable_amount=_money(taxable),
                   tax=dict(inv["tax"], amount=_money(tax)), total=_money(total), prepaid_applied=_money(prepaid),
                   amount_due=_money(total - prepaid))
        out.append(inv)
    return out


def _work(job: tuple[list[dict[str, Any]], int]) -> dict[str, Any]:
    """Render and validate ``invoices`` in this process; the timings."""
    invoices, check = job
    sys.path.insert(0, str(ROOT))
    from lxml import etree

    from hub.plugin_types import RenderContext
    from hub_plugins.renderers import validation
    from hub_plugins.renderers.peppol import peppol_failures
    from hub_plugins.renderers.ubl import UblRenderer, build_ubl

    t = time.perf_counter()
    validation.schematron_failures(validation.en16931_ubl_xslt(), build_ubl(invoices[0])[0])  # compile once
    warmup = time.perf_counter() - t
    parts = {"build": 0.0, "xsd": 0.0, "schematron": 0.0, "peppol+BR-CO-25": 0.0}
    per_doc, peppol_docs, lines, size = [], 0, 0, 0
    started, cpu_started = time.perf_counter(), time.process_time()
    for inv in invoices:
        t0 = time.perf_counter()
        xml, peppol = build_ubl(inv)
        t1 = time.perf_counter()
        root = etree.fromstring(xml)
        failures = validation.xsd_failures(validation.ubl_xsd(root.tag), xml)
        t2 = time.perf_counter()
        failures += validation.schematron_failures(validation.en16931_ubl_xslt(), xml)
        t3 = time.perf_counter()
        failures += validation.due_date_failures(root)
        if peppol:
            failures += peppol_failures(root)
            peppol_docs += 1
        t4 = time.perf_counter()
        if failures:
            raise SystemExit(f"FAILED: {inv['number']} was refused: {failures}")
        parts["build"] += t1 - t0
        parts["xsd"] += t2 - t1
        parts["schematron"] += t3 - t2
        parts["peppol+BR-CO-25"] += t4 - t3
        per_doc.append(t4 - t0)
        lines += len(inv["lines"])
        size += len(xml)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    renderer = UblRenderer()
    for inv in invoices[:check]:  # the measured path is render()'s
        if renderer.render(inv, RenderContext()).content != build_ubl(inv)[0]:
            raise SystemExit(f"FAILED: render() of {inv['number']} differs from the measured document")
    return {"docs": len(invoices), "elapsed": elapsed, "cpu": cpu, "warmup": warmup, "parts": parts, "per_doc": per_doc,
            "peppol": peppol_docs, "lines": lines, "bytes": size}


def run(invoices: list[dict[str, Any]], workers: int) -> dict[str, Any]:
    chunks = [invoices[i::workers] for i in range(workers)]
    if workers == 1:
        results = [_work((chunks[0], 20))]
    else:
        # spawned, not forked: each worker loads its own Saxon and compiles
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            results = list(pool.map(_work, [(c, 5) for c in chunks]))
    per_doc = sorted(d for r in results for d in r["per_doc"])
    wall = max(r["elapsed"] for r in results)
    parts = {k: sum(r["parts"][k] for r in results) for k in results[0]["parts"]}
    return {"workers": workers, "docs": sum(r["docs"] for r in results), "wall": wall,
            "cpu_ms": 1000 * sum(r["cpu"] for r in results) / len(per_doc),
            "docs_per_s": sum(r["docs"] for r in results) / wall, "warmup": max(r["warmup"] for r in results),
            "p50_ms": 1000 * statistics.median(per_doc), "p95_ms": 1000 * per_doc[int(0.95 * (len(per_doc) - 1))],
            "parts_ms": {k: 1000 * v / len(per_doc) for k, v in parts.items()},
            "peppol": sum(r["peppol"] for r in results), "lines": sum(r["lines"] for r in results),
            "kb": sum(r["bytes"] for r in results) / len(per_doc) / 1024}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--invoices", type=int, default=1000)
    ap.add_argument("--lines", type=int, default=20)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="process counts to run (default: 1 2)")
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    args = ap.parse_args()
    invoices = make_invoices(args.invoices, args.lines, args.seed)
    results = [run(invoices, w) for w in args.workers]
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    try:
        load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        load = "?"
    print(f"UBL render + validation: {args.invoices} invoices of {args.lines} lines "
          f"({results[0]['peppol']} Peppol), {results[0]['kb']:.1f} KB each; {os.cpu_count()} CPUs, load {load}")
    print(f"{'workers':>7} {'docs/s':>8} {'wall s':>7} {'p50 ms':>7} {'p95 ms':>7} {'10,000 in':>10} {'CPU ms':>7}  "
          f"per document (ms): build / XSD / EN 16931 schematron / Peppol+BR-CO-25   (compile once: s)")
    for r in results:
        p = r["parts_ms"]
        print(f"{r['workers']:>7} {r['docs_per_s']:>8.1f} {r['wall']:>7.1f} {r['p50_ms']:>7.1f} {r['p95_ms']:>7.1f} "
              f"{10000 / r['docs_per_s'] / 60:>8.1f} m {r['cpu_ms']:>7.1f}  "
              f"{p['build']:.1f} / {p['xsd']:.1f} / {p['schematron']:.1f} / {p['peppol+BR-CO-25']:.1f}   "
              f"({r['warmup']:.1f})")
    print("CPU ms: the process's processor time per document, all its threads (Saxon's collector included); "
          "wall times grow with the machine's load")
    return 0


if __name__ == "__main__":
    sys.exit(main())
