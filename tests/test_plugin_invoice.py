"""hub.plugin.invoice (the typed view of an invoice's JSON) and
hub.plugin.en16931 (codes and the one net-price rule)."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from hub.plugin import Invoice, en16931

SAMPLES = Path(__file__).parent / "samples" / "invoices"


def sample(name: str) -> dict:
    return json.loads((SAMPLES / f"{name}.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", sorted(p.stem for p in SAMPLES.glob("*.json")))
def test_every_figure_is_a_decimal_that_gives_back_the_json_text(name):
    invoice = sample(name)
    view = Invoice.of(invoice)
    assert format(view.total, "f") == invoice["total"] and isinstance(view.total, Decimal)
    for line, raw in zip(view.lines, invoice["lines"]):
        assert format(line.quantity, "f") == raw["quantity"]
        assert format(line.amount, "f") == raw["amount"]
        assert all(isinstance(t.amount, Decimal) for t in line.tiers)
    assert Invoice.of(view) is view


def test_a_float_is_refused():
    invoice = sample("exempt")
    invoice["total"] = 29.81
    with pytest.raises(TypeError, match="float"):
        Invoice.of(invoice)


def test_the_period_is_cut_in_the_buyer_time_zone_and_the_payment_term_is_in_days():
    invoice = sample("exempt")
    invoice.update(period_start="2025-09-30T22:00:00+00:00", period_end="2025-10-31T23:00:00+00:00")
    invoice["buyer"]["timezone"] = "Europe/Paris"
    view = Invoice.of(invoice)
    assert view.local_period() == (date(2025, 10, 1), date(2025, 10, 31))
    assert view.payment_days == 30
    invoice["due_date"] = None
    assert Invoice.of(invoice).payment_days is None


def test_the_price_rule_allows_half_a_minor_unit_per_rounding():
    q, p = Decimal("10.1"), Decimal("0.08")
    assert not en16931.explains(q, p, Decimal("0.80"), 2)  # 0.808: more than half a cent off
    assert en16931.explains(q, p, Decimal("0.80"), 2, roundings=2)  # an adjustment: two roundings
    assert en16931.explains(q, p, Decimal("0.81"), 2)
    assert en16931.explains(Decimal("3"), Decimal("0.4"), Decimal("1"), 0)  # JPY: half a yen
    assert en16931.scaled_price(Decimal("0.0000115"), 2) == (Decimal("1.15"), 100000)
    assert en16931.scaled_price(Decimal("0.1"), 2) == (Decimal("0.10"), 1)
    assert en16931.decimal_text(Decimal("1E+6")) == "1000000" and en16931.decimal_text("-0.0") == "0"
