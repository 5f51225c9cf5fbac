"""What a finance team reads on the HTML and PDF documents: rows that add
up to their line (the free allowance has a row), time billed shown as time
with what rounded it up, no drill-down for a single resource, totals that
stay with the last lines, the seller's legal details and the buyer's
references, a credit note that says what it credited and settled (never
an amount due), adjustments, reissues and carried periods explained.

The invoices are the pipeline's samples (tests/samples/invoices/) with
the lines and keys each test is about.
"""

from __future__ import annotations

import copy
import io
import json
from decimal import Decimal
from pathlib import Path

import pytest
from pypdf import PdfReader

from hub.plugin import InstanceConfig, RenderContext
from hub_plugins.renderers.html import HtmlRenderer
from hub_plugins.renderers.humanize import present
from hub_plugins.renderers.pdf import PdfRenderer

HERE = Path(__file__).parent
SAMPLES = HERE / "samples" / "invoices"
NBSP = "\u00a0"


def sample(name: str, locale: str = "en") -> dict:
    invoice = json.loads((SAMPLES / f"{name}.json").read_text(encoding="utf-8"))
    invoice["buyer"]["locale"] = locale
    return invoice


def _config(type_: str) -> InstanceConfig:
    return InstanceConfig(name=type_, type=type_, options={}, base_dir=HERE)


def html_text(invoice: dict) -> str:
    return HtmlRenderer(_config("html")).render(invoice, RenderContext()).content.decode("utf-8")


def pdf_pages(invoice: dict) -> list[str]:
    reader = PdfReader(io.BytesIO(PdfRenderer(_config("pdf")).render(invoice, RenderContext()).content))
    return [page.extract_text() for page in reader.pages]


def rows(invoice: dict) -> list:
    return [r for g in present(invoice).groups for r in g.rows]


def storage_line(base: dict) -> dict:
    """1,500 GB with 100 GB free, graduated: 1,000 GB at €0.05 and 400 GB at €0.065."""
    return dict(base, product="storage", description="Object storage egress", quantity="1500", free="100",
                unit="unit", unit_price=None, amount="76.00", records=3, resource_id=None,
                tiers=[{"quantity": "1000", "unit_price": "0.05", "amount": "50.00", "up_to": "1000"},
                       {"quantity": "400", "unit_price": "0.065", "amount": "26.00", "up_to": None}],
                resources=[{"resource_id": "bucket-a", "quantity": "1000", "records": 2},
                           {"resource_id": "bucket-b", "quantity": "500", "records": 1}])


def gpu_invoice(locale: str = "en", *, granularity: int = 600, minimum: int = 0, used: str | None = "762") -> dict:
    """A 12 min 42 s GPU run (762 s) billed as 20 min: 0.333333333333 GPU-h."""
    invoice = sample("eu-b2c-buyer-rate", locale)
    invoice["products"]["gpu"] = {"aggregation": "time_weighted", "meter": "compute.gpu", "meter_unit": "GPU",
                                  "granularity": granularity, "minimum": minimum}
    share = {"resource_id": "gpu-run-1", "quantity": "0.333333333333", "records": 1}
    if used is not None:
        share["used"] = str((Decimal(used) / 3600).quantize(Decimal("1E-12")))
    invoice["lines"] = [dict(invoice["lines"][0], product="gpu", description="GPU", quantity="0.333333333333",
                             unit="hour", unit_price="2.40", amount="0.80", resources=[share])]
    return invoice


# --------------------------------------------------------------------------
# Rows that add up


def test_a_graduated_line_with_a_free_allowance_has_a_free_row_and_its_rows_add_up_to_it():
    invoice = sample("domestic-vat-discount-credit")
    invoice["products"]["storage"] = {"aggregation": "sum", "meter": "storage.egress", "meter_unit": "GB"}
    invoice["lines"] = [storage_line(invoice["lines"][0])]
    [row] = rows(invoice)
    assert [(t.label, t.quantity, t.unit_price, t.amount) for t in row.tiers] == [
        ("Free allowance", "100 GB", "€0.00", "€0.00"),
        ("Tier 1: up to 1,000 GB", "1,000 GB", "€0.05", "€50.00"),
        ("Tier 2: above 1,000 GB", "400 GB", "€0.065", "€26.00"),
    ]
    assert row.quantity == "1,500 GB"
    assert sum(Decimal(t.quantity.split()[0].replace(",", "")) for t in row.tiers) == Decimal(1500)


def test_a_per_unit_line_with_a_free_allowance_shows_what_was_free_and_what_was_charged():
    [egress, *_] = rows(sample("domestic-vat-discount-credit", "fr"))  # 42.5 GB, 10 free, €0.08
    assert [(t.label, t.quantity, t.unit_price, t.amount) for t in egress.tiers] == [
        ("Franchise gratuite", "10 GB", f"0,00{NBSP}€", f"0,00{NBSP}€"),
        ("Facturé", "32,5 GB", f"0,08{NBSP}€", f"2,60{NBSP}€"),
    ]


def test_a_line_without_a_free_allowance_has_no_free_row():
    vcpu = rows(sample("domestic-vat-discount-credit"))[2]
    assert vcpu.tiers == ()


# --------------------------------------------------------------------------
# Time


@pytest.mark.parametrize("locale, human, explained", [
    ("en", "20 min of GPU time", "used 12 min 42 s, billed 20 min (granularity 10 min)"),
    ("fr", "20 min de temps GPU", "utilisé 12 min 42 s, facturé 20 min (granularité 10 min)"),
    ("de", "20 min GPU-Zeit", "genutzt 12 min 42 s, berechnet 20 min (Taktung 10 min)"),
])
def test_a_gpu_run_billed_by_the_hour_reads_as_time_and_says_its_granularity_rounded_it_up(locale, human, explained):
    [row] = rows(gpu_invoice(locale))
    assert row.human == human
    assert row.explains == (explained,)
    assert row.resources == ()  # one resource: the line itself
    assert explained in html_text(gpu_invoice(locale))


def test_a_minimum_is_named_with_what_it_billed():
    [row] = rows(gpu_invoice(granularity=1, minimum=1800))
    assert row.explains == ("used 12 min 42 s, billed 20 min (minimum 30 min)",)


def test_without_the_used_quantity_a_line_says_what_it_billed_and_the_rule():
    [row] = rows(gpu_invoice(used=None))
    assert row.explains == ("billed 20 min (granularity 10 min)",)


def test_a_product_that_does_not_round_explains_nothing():
    invoice = gpu_invoice()
    invoice["products"]["gpu"] = {k: v for k, v in invoice["products"]["gpu"].items()
                                  if k not in ("granularity", "minimum")}
    [row] = rows(invoice)
    assert row.explains == () and row.human == "20 min of GPU time"


# --------------------------------------------------------------------------
# Drill-down and pages


def test_a_line_of_one_resource_has_no_drill_down_and_a_line_of_two_has_one():
    one, _, two = rows(sample("domestic-vat-discount-credit"))
    assert one.resources == ()
    assert [r.label for r in two.resources] == ["Resource vm-1", "Resource job-7"]
    assert "Resource vm-1" not in html_text(sample("eu-b2c-buyer-rate"))


def six_lines(locale: str = "en") -> dict:
    """The reproduction: six lines of one resource each, which went to two pages with the totals alone."""
    invoice = sample("domestic-vat-discount-credit", locale)
    lines = []
    for i in range(6):
        line = copy.deepcopy(invoice["lines"][i % 3])
        line["resources"] = [{"resource_id": f"vm-{i}", "quantity": line["quantity"], "records": 1}]
        lines.append(line)
    invoice["lines"] = lines
    return invoice


@pytest.mark.parametrize("locale, due", [("en", "Amount due"), ("fr", "Montant à payer"), ("de", "Zahlbetrag")])
def test_the_six_line_invoice_fits_on_one_page_with_its_totals(locale, due):
    [page] = pdf_pages(six_lines(locale))
    assert due in page and "Resource vm-" not in page and "Ressource vm-" not in page


def test_the_totals_never_stand_alone_on_a_page():
    invoice = sample("eu-b2c-buyer-rate")
    base = invoice["lines"][0]
    seen = set()
    for count in range(8, 26):
        invoice["lines"] = [dict(base, description=f"Service {i:02d}") for i in range(1, count + 1)]
        pages = pdf_pages(invoice)
        seen.add(len(pages))
        last = pages[-1]
        assert "Amount due" in last
        assert f"Service {count:02d}" in last, f"{count} lines: the totals are alone on page {len(pages)}"
    assert seen == {1, 2}  # the range crosses the page break


def test_the_html_keeps_the_totals_with_the_last_line_when_printed():
    text = html_text(sample("domestic-vat-discount-credit"))
    assert ".lines tbody:last-of-type tr:last-child { page-break-after: avoid; break-after: avoid; }" in text
    assert ".summary { page-break-before: avoid; break-before: avoid;" in text


# --------------------------------------------------------------------------
# Parties


def with_legal_details(invoice: dict) -> dict:
    invoice["seller"].update(legal_form="GmbH", commercial_register="HRB 123456",
                             register_court="Amtsgericht Hamburg",
                             managing_directors=["Erika Mustermann", "Max Mustermann"],
                             share_capital={"amount": "25000.00", "currency": "EUR"})
    return invoice


@pytest.mark.parametrize("locale, legal", [
    ("en", "Register court: Amtsgericht Hamburg · Register: HRB 123456 · "
           "Managing directors: Erika Mustermann, Max Mustermann · Share capital: €25,000.00"),
    ("de", "Registergericht: Amtsgericht Hamburg · Handelsregister: HRB 123456 · "
           f"Geschäftsführer: Erika Mustermann, Max Mustermann · Stammkapital: 25.000,00{NBSP}€"),
])
def test_the_sellers_legal_details_are_in_the_footer(locale, legal):
    invoice = with_legal_details(sample("domestic-vat-discount-credit", locale))
    assert " · ".join(present(invoice).legal) == legal
    assert f"<br>{legal}</footer>" in html_text(invoice)
    for page in pdf_pages(invoice):
        assert "Amtsgericht Hamburg" in page and "HRB 123456" in page


def test_a_seller_without_legal_details_has_no_second_footer_line():
    invoice = sample("domestic-vat-discount-credit")
    assert present(invoice).legal == ()
    assert "<br>" not in html_text(invoice).split("<footer>")[1]


@pytest.mark.parametrize("locale, po, ref", [
    ("en", "Purchase order", "Buyer reference"), ("fr", "Bon de commande", "Référence acheteur"),
    ("de", "Bestellnummer", "Käuferreferenz"),
])
def test_the_buyers_purchase_order_and_reference_are_in_the_header(locale, po, ref):
    invoice = sample("domestic-vat-discount-credit", locale)
    invoice.update(purchase_order="PO-4711", buyer_reference="ACME-CC-42")
    facts = dict(present(invoice).facts)
    assert (facts[po], facts[ref]) == ("PO-4711", "ACME-CC-42")
    assert f"<dt>{po}</dt><dd>PO-4711</dd>" in html_text(invoice)
    [page] = pdf_pages(invoice)
    assert "PO-4711" in page and "ACME-CC-42" in page and po.upper() in page


def test_without_references_the_header_names_none():
    labels = [label for label, _ in present(sample("domestic-vat-discount-credit")).facts]
    assert labels == ["Invoice number", "Issue date", "Due date", "Billing period"]


# --------------------------------------------------------------------------
# Credit notes, adjustments, reissues, carried periods


def credit_note(locale: str, applied: str, balance: str) -> dict:
    note = sample("credit-note", locale)  # €24.85 on INV-2025-000001
    note["applied"], note["credit_balance"] = applied, balance
    return note


def test_a_credit_note_says_what_it_credited_settled_and_left_as_a_credit_balance():
    note = credit_note("en", "20.00", "4.85")
    totals = [(t.label, t.amount, t.kind, t.note) for t in present(note).totals]
    assert totals == [
        ("Subtotal", "€20.88", "sum", None), ("VAT 19%", "€3.97", "item", None),
        ("Credited", "€24.85", "total", None), ("Settles invoice INV-2025-000001", "€20.00", "item", None),
        ("Credit balance", "€4.85", "item", "kept as credit for the next invoices"),
    ]
    assert present(note).notices == (
        "Reason: vCPU billed twice for vm-1 on 2025-10-01",
        "This credit note credits €24.85 of invoice INV-2025-000001.",
        "It settles €20.00 of invoice INV-2025-000001.",
        "€4.85 becomes a credit balance that pays your next invoices.",
    )


@pytest.mark.parametrize("locale, due, credited", [
    ("en", "Amount due", "Credited"), ("fr", "Montant à payer", "Crédité"), ("de", "Zahlbetrag", "Gutgeschrieben"),
])
def test_a_credit_note_has_no_amount_due_in_any_format(locale, due, credited):
    note = credit_note(locale, "24.85", "0.00")
    text = html_text(note)
    pages = "\n".join(pdf_pages(note))
    assert due not in text and due not in pages
    assert f"<th>{credited}</th>" in text and credited in pages
    assert [t.label for t in present(note).totals if t.kind == "due"] == []
    assert not any("balance" in t.label.lower() or "Guthaben" == t.label for t in present(note).totals)


@pytest.mark.parametrize("locale, explained", [
    ("en", "billed before: 3,456,000 vCPU-s (€39.74) · now: 3,463,200 vCPU-s (€39.82)"),
    ("de", f"bisher berechnet: 3.456.000 vCPU-s (39,74{NBSP}€) · jetzt: 3.463.200 vCPU-s (39,82{NBSP}€)"),
])
def test_an_adjustment_line_says_what_was_billed_before_and_what_is_billed_now(locale, explained):
    invoice = sample("domestic-vat-discount-credit", locale)
    late = dict(invoice["lines"][2], quantity="7200", amount="0.08", adjustment_for="2025-09",
                adjusts={"quantity_billed": "3456000", "amount_billed": "39.74",
                         "quantity": "3463200", "amount": "39.82"})
    invoice["lines"] = [late]
    [row] = rows(invoice)
    assert row.explains == (explained,)
    assert explained in html_text(invoice)


@pytest.mark.parametrize("locale, notice", [
    ("en", "Replaces invoice INV-2025-000009 (cancelled by credit note CN-2025-000003)."),
    ("fr", "Remplace la facture INV-2025-000009 (annulée par l'avoir CN-2025-000003)."),
    ("de", "Ersetzt Rechnung INV-2025-000009 (storniert durch Gutschrift CN-2025-000003)."),
])
def test_a_reissue_names_the_invoice_and_the_credit_note_it_replaces(locale, notice):
    invoice = sample("domestic-vat-discount-credit", locale)
    invoice.update(reissue_of="INV-2025-000009", replaces_credit_note="CN-2025-000003")
    assert present(invoice).notices == (notice,)
    assert notice in html_text(invoice).replace("&#39;", "'")
    assert notice in pdf_pages(invoice)[0].replace("\n", " ")


def test_a_carried_line_names_the_period_it_comes_from():
    invoice = sample("domestic-vat-discount-credit")
    carried = dict(invoice["lines"][0], carried_from="2025-09", period_start="2025-09-01T00:00:00+00:00",
                   period_end="2025-10-01T00:00:00+00:00")
    invoice["lines"] = [carried, invoice["lines"][1]]
    invoice["carried_periods"] = ["2025-09"]
    first, second = rows(invoice)
    assert first.explains == ("carried from Sep 1\u2009–\u200930, 2025 (below the minimum invoice amount)",)
    assert first.notes == ()  # the period is named once
    assert second.explains == ()
    assert present(invoice).notices == (
        "Includes charges carried from September 2025 (below the minimum invoice amount).",)


# --------------------------------------------------------------------------
# The GPU reproduction through the pipeline (SQLite and PostgreSQL)

GPU_CONFIG = """
[seller]
name = "Hub Cloud GmbH"
country = "DE"
vat_id = "DE136695976"

[tax.rates]
DE = "19"

[[meters]]
name = "compute.gpu"
aggregation = "time_weighted"
unit = "GPU"

[[products]]
name = "gpu"
description = "GPU"
meter = "compute.gpu"
per = "hour"
granularity = "10m"
price = { model = "per_unit", unit_price = "2.40" }

[[accounts]]
id = "acme"
name = "ACME GmbH"
country = "DE"
locale = "LOCALE"

[[sources]]
name = "files"
type = "csv"
path = "usage/*.csv"
"""


@pytest.mark.parametrize("locale, human, explained", [
    ("en", "20 min of GPU time", "used 12 min 42 s, billed 20 min (granularity 10 min)"),
    ("de", "20 min GPU-Zeit", "genutzt 12 min 42 s, berechnet 20 min (Taktung 10 min)"),
])
def test_a_gpu_run_of_12_min_42_s_billed_as_20_min_is_explained_on_the_issued_invoice(workspace, locale, human,
                                                                                        explained):
    import hub.cli.invoices  # noqa: F401 - registers the commands for the in-process runner
    from tests.conftest import HEADER

    workspace.config(GPU_CONFIG.replace("LOCALE", locale))
    workspace.write("usage/2025-10.csv", HEADER + "g1,acme,gpu-run-1,compute.gpu,2025-10-03T10:00:00Z,"
                    "2025-10-03T10:12:42Z,1\n", dedent=False)
    assert workspace.hub("pull").exit_code == 0
    [result] = workspace.json("invoice", "--period", "2025-10", "--issue-date", "2025-11-03")
    doc = workspace.json("invoices", "show", result["number"])
    [line] = doc["lines"]
    assert (line["quantity"], line["amount"]) == ("0.333333333333", "0.80")
    assert line["resources"] == [{"resource_id": "gpu-run-1", "quantity": "0.333333333333", "records": 1,
                                  "used": "0.211666666667"}]  # 762 s
    assert doc["products"]["gpu"]["granularity"] == 600
    [row] = rows(doc)
    assert (row.human, row.explains, row.resources) == (human, (explained,), ())
    assert explained in html_text(doc)
    assert explained.split(" (")[0] in " ".join(pdf_pages(doc)).replace("\n", " ")
