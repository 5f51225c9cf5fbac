"""The sample invoices the renderer tests read are what the hub issues."""

from __future__ import annotations

import json

from tests.samples.make_invoice_samples import OUT, SAMPLES, issue


def test_the_sample_invoices_are_exactly_what_the_hub_issues_today(tmp_path):
    issued = issue(tmp_path)
    assert sorted(issued) == sorted(SAMPLES)
    for name, doc in issued.items():
        stored = json.loads((OUT / f"{name}.json").read_text(encoding="utf-8"))
        assert doc == stored, f"{name}: run python3 tests/samples/make_invoice_samples.py and review the diff"
