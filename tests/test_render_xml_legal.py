"""The XML documents (UBL 2.1 and the CII of Factur-X) carry the buyer's
references, the seller's legal details, the VAT exemption wording in the
buyer's language, and the preceding invoice of a credit note or a reissue;
each document still passes the UBL XSD, the EN 16931 schematron (not even
a warning) and, for Peppol, our Peppol checks.

Business terms: BT-10 buyer reference, BT-13 purchase order, BT-22 note,
BT-25 preceding invoice, BT-30 seller legal registration identifier (with
its ICD scheme, BT-30-1), BT-33 seller additional legal information,
BT-120 / BT-121 VAT exemption reason text and code, BT-127 line note.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from hub_plugins.renderers import cii, validation
from hub_plugins.renderers import facturx as fx
from hub_plugins.renderers.ubl import build_ubl
from hub_plugins.renderers.validation import ubl_failures

SAMPLES = Path(__file__).parent / "samples" / "invoices"
UBL = {"cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
       "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"}
CII = {"rsm": cii.RSM, "ram": cii.RAM, "udt": cii.UDT}
SVRL = "{http://purl.oclc.org/dsdl/svrl}"
SELLER_PARTY = "/*/cac:AccountingSupplierParty/cac:Party"
AGREEMENT = "/rsm:CrossIndustryInvoice/rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeAgreement"
SETTLEMENT = "/rsm:CrossIndustryInvoice/rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement"

#: a German GmbH's legal details, as the invoice JSON keeps them
GMBH = {"legal_form": "GmbH", "commercial_register": "HRB 123456", "register_court": "Amtsgericht Hamburg",
        "managing_directors": ["Erika Mustermann", "Max Mustermann"],
        "share_capital": {"amount": "25000.00", "currency": "EUR"}}


def sample(name: str, **top: Any) -> dict[str, Any]:
    invoice = json.loads((SAMPLES / f"{name}.json").read_text(encoding="utf-8"))
    invoice.update(top)
    return invoice


def with_locale(invoice: dict[str, Any], locale: str) -> dict[str, Any]:
    invoice["buyer"]["locale"] = locale
    return invoice


def ubl(invoice: dict[str, Any]) -> bytes:
    """The UBL document, after checking it passes every check without a warning."""
    xml, peppol = build_ubl(invoice)
    assert ubl_failures(xml, peppol=peppol, include_warnings=True) == []
    return xml


def factur_x(invoice: dict[str, Any]) -> bytes:
    """The CII XML, after checking it passes the Factur-X EN 16931 XSD and
    schematron without a warning or a "not used" report, and BR-CO-25."""
    xml = cii.to_xml(invoice)
    folder = fx.artefacts()
    assert fx.validate(xml) == []
    assert validation.schematron_failures(folder / "FACTUR-X_EN16931.xslt", xml, include_warnings=True) == []
    report = etree.fromstring(validation.schematron_report(folder / "FACTUR-X_EN16931.xslt", xml))
    assert [" ".join("".join(r.itertext()).split()) for r in report.iter(f"{SVRL}successful-report")] == []
    return xml


def u(xml: bytes, path: str) -> list[str]:
    return [e if isinstance(e, str) else (e.text or "") for e in etree.fromstring(xml).xpath(path, namespaces=UBL)]


def c(xml: bytes, path: str) -> list[str]:
    return [e if isinstance(e, str) else (e.text or "") for e in etree.fromstring(xml).xpath(path, namespaces=CII)]


# --------------------------------------------------------------------------
# BT-10 and BT-13


def test_the_purchase_order_is_bt13_and_the_buyer_reference_bt10_in_ubl():
    xml = ubl(sample("domestic-vat-discount-credit", purchase_order="PO-4711", buyer_reference="Cost centre 42"))
    assert u(xml, "/*/cac:OrderReference/cbc:ID/text()") == ["PO-4711"]
    assert u(xml, "/*/cbc:BuyerReference/text()") == ["Cost centre 42"]


def test_the_purchase_order_is_bt13_and_the_buyer_reference_bt10_in_cii():
    xml = factur_x(sample("domestic-vat-discount-credit", purchase_order="PO-4711", buyer_reference="Cost centre 42"))
    assert c(xml, f"{AGREEMENT}/ram:BuyerOrderReferencedDocument/ram:IssuerAssignedID/text()") == ["PO-4711"]
    assert c(xml, f"{AGREEMENT}/ram:BuyerReference/text()") == ["Cost centre 42"]


def test_without_a_buyer_reference_ubl_keeps_the_account_id_and_cii_has_none():
    invoice = sample("domestic-vat-discount-credit", purchase_order="PO-4711")
    assert u(ubl(invoice), "/*/cbc:BuyerReference/text()") == ["acme"]
    assert c(factur_x(invoice), f"{AGREEMENT}/ram:BuyerReference") == []
    plain = sample("domestic-vat-discount-credit")
    assert u(ubl(plain), "/*/cac:OrderReference") == []
    assert c(factur_x(plain), f"{AGREEMENT}/ram:BuyerOrderReferencedDocument") == []


def test_a_peppol_document_with_both_references_passes_the_peppol_checks():
    xml = ubl(sample("reverse-charge-prepaid-peppol", purchase_order="PO 2025/10", buyer_reference="4711-0815"))
    assert build_ubl(sample("reverse-charge-prepaid-peppol"))[1] is True  # the Peppol profile
    assert u(xml, "/*/cbc:BuyerReference/text()") == ["4711-0815"]
    assert u(xml, "/*/cac:OrderReference/cbc:ID/text()") == ["PO 2025/10"]


def test_a_credit_note_carries_the_references_too():
    invoice = sample("credit-note", purchase_order="PO-4711", buyer_reference="Cost centre 42")
    xml = ubl(invoice)
    assert u(xml, "/*/cac:OrderReference/cbc:ID/text()") == ["PO-4711"]
    assert u(xml, "/*/cbc:BuyerReference/text()") == ["Cost centre 42"]
    cii_xml = factur_x(invoice)
    assert c(cii_xml, f"{AGREEMENT}/ram:BuyerOrderReferencedDocument/ram:IssuerAssignedID/text()") == ["PO-4711"]


# --------------------------------------------------------------------------
# BT-30 and BT-33


def gmbh_invoice(locale: str) -> dict[str, Any]:
    invoice = with_locale(sample("domestic-vat-discount-credit"), locale)
    invoice["seller"].update(GMBH)
    return invoice


BT33 = {
    "de": "GmbH; Registergericht: Amtsgericht Hamburg; Handelsregister: HRB 123456; "
          "Geschäftsführer: Erika Mustermann, Max Mustermann; Stammkapital: 25.000,00\xa0€",
    "fr": "GmbH; Greffe : Amtsgericht Hamburg; Registre du commerce : HRB 123456; "
          "Dirigeants : Erika Mustermann, Max Mustermann; Capital social : 25\u202f000,00\xa0€",
    "en": "GmbH; Register court: Amtsgericht Hamburg; Register: HRB 123456; "
          "Managing directors: Erika Mustermann, Max Mustermann; Share capital: €25,000.00",
}


@pytest.mark.parametrize("locale", ["de", "fr", "en"])
def test_the_sellers_register_is_bt30_and_its_legal_details_bt33_in_the_buyers_language_in_ubl(locale):
    xml = ubl(gmbh_invoice(locale))
    legal = f"{SELLER_PARTY}/cac:PartyLegalEntity"
    assert u(xml, f"{legal}/cbc:RegistrationName/text()") == ["Nimbus Cloud GmbH"]
    assert u(xml, f"{legal}/cbc:CompanyID/text()") == ["HRB 123456"]
    assert u(xml, f"{legal}/cbc:CompanyID/@schemeID") == []  # a German register has no ICD scheme
    assert u(xml, f"{legal}/cbc:CompanyLegalForm/text()") == [BT33[locale]]
    # the buyer's legal entity has its name only
    buyer = "/*/cac:AccountingCustomerParty/cac:Party/cac:PartyLegalEntity"
    assert u(xml, f"{buyer}/*/text()") == ["ACME Maschinenbau GmbH"]


@pytest.mark.parametrize("locale", ["de", "fr", "en"])
def test_the_sellers_register_is_bt30_and_its_legal_details_bt33_in_the_buyers_language_in_cii(locale):
    xml = factur_x(gmbh_invoice(locale))
    seller = f"{AGREEMENT}/ram:SellerTradeParty"
    assert c(xml, f"{seller}/ram:SpecifiedLegalOrganization/ram:ID/text()") == ["HRB 123456"]
    assert c(xml, f"{seller}/ram:SpecifiedLegalOrganization/ram:ID/@schemeID") == []
    assert c(xml, f"{seller}/ram:Description/text()") == [BT33[locale]]
    assert c(xml, f"{AGREEMENT}/ram:BuyerTradeParty/ram:SpecifiedLegalOrganization") == []


def test_a_french_rcs_entry_gives_the_siren_as_bt30_with_icd_0002_and_stays_whole_in_bt33():
    invoice = with_locale(sample("domestic-vat-discount-credit"), "fr")
    invoice["seller"].update(country="FR", legal_form="SAS", commercial_register="RCS Paris 552 100 554",
                             share_capital={"amount": "10000", "currency": "EUR"})
    xml = ubl(invoice)
    legal = f"{SELLER_PARTY}/cac:PartyLegalEntity"
    assert u(xml, f"{legal}/cbc:CompanyID/text()") == ["552100554"]
    assert u(xml, f"{legal}/cbc:CompanyID/@schemeID") == ["0002"]
    assert u(xml, f"{legal}/cbc:CompanyLegalForm/text()") == [
        "SAS; Registre du commerce : RCS Paris 552 100 554; Capital social : 10\u202f000,00\xa0€"]
    cii_xml = factur_x(invoice)
    organization = f"{AGREEMENT}/ram:SellerTradeParty/ram:SpecifiedLegalOrganization/ram:ID"
    assert c(cii_xml, f"{organization}/text()") + c(cii_xml, f"{organization}/@schemeID") == ["552100554", "0002"]


def test_a_siren_with_a_bad_check_digit_is_given_as_written_without_a_scheme():
    invoice = sample("domestic-vat-discount-credit")
    invoice["seller"].update(country="FR", commercial_register="RCS Paris 552 100 555")
    xml = ubl(invoice)
    assert u(xml, f"{SELLER_PARTY}/cac:PartyLegalEntity/cbc:CompanyID/text()") == ["RCS Paris 552 100 555"]
    assert u(xml, f"{SELLER_PARTY}/cac:PartyLegalEntity/cbc:CompanyID/@schemeID") == []


def test_a_belgian_enterprise_number_is_bt30_with_icd_0208_and_passes_the_peppol_check_digits():
    invoice = sample("reverse-charge-prepaid-peppol")
    invoice["seller"].update(country="BE", commercial_register="0403.019.261")
    xml = ubl(invoice)
    legal = f"{SELLER_PARTY}/cac:PartyLegalEntity"
    assert u(xml, f"{legal}/cbc:CompanyID/text()") + u(xml, f"{legal}/cbc:CompanyID/@schemeID") == [
        "0403019261", "0208"]


def test_a_seller_without_legal_details_has_neither_bt30_nor_bt33():
    xml = ubl(sample("domestic-vat-discount-credit"))
    assert u(xml, f"{SELLER_PARTY}/cac:PartyLegalEntity/*[not(self::cbc:RegistrationName)]") == []
    cii_xml = factur_x(sample("domestic-vat-discount-credit"))
    assert c(cii_xml, f"{AGREEMENT}/ram:SellerTradeParty/ram:Description") == []
    assert c(cii_xml, f"{AGREEMENT}/ram:SellerTradeParty/ram:SpecifiedLegalOrganization") == []


def test_a_share_capital_given_as_an_amount_alone_is_in_the_invoices_currency():
    invoice = with_locale(sample("domestic-vat-discount-credit"), "de")
    invoice["seller"].update(share_capital="1000000")
    assert u(ubl(invoice), f"{SELLER_PARTY}/cac:PartyLegalEntity/cbc:CompanyLegalForm/text()") == [
        "Stammkapital: 1.000.000,00\xa0€"]


def test_a_register_court_alone_is_bt33_without_bt30():
    invoice = with_locale(sample("domestic-vat-discount-credit"), "de")
    invoice["seller"].update(register_court="Amtsgericht Hamburg")
    xml = ubl(invoice)
    assert u(xml, f"{SELLER_PARTY}/cac:PartyLegalEntity/cbc:CompanyID") == []
    assert u(xml, f"{SELLER_PARTY}/cac:PartyLegalEntity/cbc:CompanyLegalForm/text()") == [
        "Registergericht: Amtsgericht Hamburg"]


# --------------------------------------------------------------------------
# BT-120 in the buyer's language, BT-121 the VATEX code

REVERSE_CHARGE = {
    "fr": "Autoliquidation : TVA due par le preneur (article 196 de la directive 2006/112/CE)",
    "de": "Steuerschuldnerschaft des Leistungsempfängers (Artikel 196 der Richtlinie 2006/112/EG)",
}
EXPORT = {
    "fr": "Exportation hors UE : exonération de TVA (article 146 de la directive 2006/112/CE)",
    "de": "Ausfuhrlieferung: steuerfrei (Artikel 146 der Richtlinie 2006/112/EG)",
}
UBL_TAX = "/*/cac:TaxTotal/cac:TaxSubtotal/cac:TaxCategory"
CII_TAX = f"{SETTLEMENT}/ram:ApplicableTradeTax"


@pytest.mark.parametrize("locale", ["fr", "de"])
@pytest.mark.parametrize(("name", "code", "wording"), [
    ("reverse-charge-prepaid-peppol", "VATEX-EU-AE", REVERSE_CHARGE),
    ("export-fixed-discount", "VATEX-EU-G", EXPORT),
])
def test_the_exemption_reason_is_the_legal_wording_in_the_buyers_language_and_the_code_stays(
        name, code, wording, locale):
    invoice = with_locale(sample(name), locale)
    xml = ubl(invoice)
    assert u(xml, f"{UBL_TAX}/cbc:TaxExemptionReason/text()") == [wording[locale]]
    assert u(xml, f"{UBL_TAX}/cbc:TaxExemptionReasonCode/text()") == [code]
    cii_xml = factur_x(invoice)
    assert c(cii_xml, f"{CII_TAX}/ram:ExemptionReason/text()") == [wording[locale]]
    assert c(cii_xml, f"{CII_TAX}/ram:ExemptionReasonCode/text()") == [code]


@pytest.mark.parametrize("locale", ["fr", "de"])
def test_an_exempt_accounts_own_reason_is_kept_as_written_in_any_language(locale):
    invoice = with_locale(sample("exempt"), locale)
    assert u(ubl(invoice), f"{UBL_TAX}/cbc:TaxExemptionReason/text()") == ["Exempt under section 4 no. 18 UStG"]
    assert c(factur_x(invoice), f"{CII_TAX}/ram:ExemptionReason/text()") == ["Exempt under section 4 no. 18 UStG"]


def test_a_locale_without_a_catalog_reads_in_english():
    invoice = with_locale(sample("reverse-charge-prepaid-peppol"), "ja_JP")
    assert u(ubl(invoice), f"{UBL_TAX}/cbc:TaxExemptionReason/text()") == [
        "Reverse charge: VAT to be accounted for by the customer (Article 196 of Council Directive 2006/112/EC)"]


# --------------------------------------------------------------------------
# BT-25: a credit note's invoice, a reissue's voided invoice


def test_a_credit_note_names_its_invoice_as_bt25_in_ubl_and_cii():
    invoice = sample("credit-note")
    xml = ubl(invoice)
    assert u(xml, "/*/cbc:CreditNoteTypeCode/text()") == ["381"]
    assert u(xml, "/*/cac:BillingReference/cac:InvoiceDocumentReference/cbc:ID/text()") == ["INV-2025-000001"]
    cii_xml = factur_x(invoice)
    assert c(cii_xml, "/rsm:CrossIndustryInvoice/rsm:ExchangedDocument/ram:TypeCode/text()") == ["381"]
    assert c(cii_xml, f"{SETTLEMENT}/ram:InvoiceReferencedDocument/ram:IssuerAssignedID/text()") == [
        "INV-2025-000001"]


REISSUE_NOTE = {
    "de": "Ersetzt Rechnung INV-2025-000001 (storniert durch Gutschrift CN-2025-000001).",
    "fr": "Remplace la facture INV-2025-000001 (annulée par l'avoir CN-2025-000001).",
}


def reissue(locale: str, name: str = "domestic-vat-discount-credit") -> dict[str, Any]:
    invoice = with_locale(sample(name), locale)
    invoice.update(number="INV-2025-000009", reissue_of="INV-2025-000001", replaces_credit_note="CN-2025-000001")
    return invoice


@pytest.mark.parametrize("locale", ["de", "fr"])
def test_a_reissue_names_the_voided_invoice_as_bt25_and_says_so_in_its_note(locale):
    xml = ubl(reissue(locale))
    assert u(xml, "/*/cbc:InvoiceTypeCode/text()") == ["380"]
    assert u(xml, "/*/cac:BillingReference/cac:InvoiceDocumentReference/cbc:ID/text()") == ["INV-2025-000001"]
    assert u(xml, "/*/cbc:Note/text()") == [REISSUE_NOTE[locale]]
    cii_xml = factur_x(reissue(locale))
    assert c(cii_xml, f"{SETTLEMENT}/ram:InvoiceReferencedDocument/ram:IssuerAssignedID/text()") == [
        "INV-2025-000001"]
    assert c(cii_xml, "/rsm:CrossIndustryInvoice/rsm:ExchangedDocument/ram:IncludedNote/ram:Content/text()") == [
        REISSUE_NOTE[locale]]


def test_a_peppol_reissue_has_one_note_and_passes_the_peppol_checks():
    xml = ubl(reissue("fr", "reverse-charge-prepaid-peppol"))
    assert u(xml, "/*/cbc:Note/text()") == [REISSUE_NOTE["fr"]]


def test_an_invoice_that_replaces_nothing_has_no_preceding_invoice_and_no_note():
    xml = ubl(sample("domestic-vat-discount-credit"))
    assert u(xml, "/*/cac:BillingReference") + u(xml, "/*/cbc:Note") == []
    cii_xml = factur_x(sample("domestic-vat-discount-credit"))
    assert c(cii_xml, f"{SETTLEMENT}/ram:InvoiceReferencedDocument") == []


# --------------------------------------------------------------------------
# BT-127: adjustment and carried lines


def adjusted(locale: str) -> dict[str, Any]:
    invoice = with_locale(sample("exempt"), locale)
    line = invoice["lines"][0]
    line.update(carried_from="2025-09")
    return invoice


@pytest.mark.parametrize(("locale", "note"), [
    ("de", "übertragen aus 2025-09 (unter dem Mindestrechnungsbetrag)"),
    ("fr", "reporté de 2025-09 (en dessous du montant minimum de facturation)"),
])
def test_a_carried_line_says_where_it_was_carried_from_in_its_note(locale, note):
    invoice = adjusted(locale)
    assert u(ubl(invoice), "/*/cac:InvoiceLine[1]/cbc:Note/text()") == [note]
    notes = c(factur_x(invoice), "//ram:IncludedSupplyChainTradeLineItem[1]/ram:AssociatedDocumentLineDocument"
                                 "/ram:IncludedNote/ram:Content/text()")
    assert notes == [note]


def late_usage(locale: str) -> dict[str, Any]:
    """The exempt sample's line made an adjustment of September: 2,592,000
    vCPU-s more, 4,592,000 x 0.0000115 = 52.808 -> 52.81 now against
    2,000,000 x 0.0000115 = 23.00 billed, so the line is 29.81."""
    invoice = with_locale(sample("exempt"), locale)
    invoice["lines"][0].update(
        adjustment_for="2025-09", period_start="2025-09-01T00:00:00+00:00", period_end="2025-10-01T00:00:00+00:00",
        adjusts={"quantity_billed": "2000000", "amount_billed": "23.00", "quantity": "4592000", "amount": "52.81"})
    return invoice


@pytest.mark.parametrize(("locale", "note"), [
    ("de", "Nachträgliche Nutzung 2025-09; bisher berechnet: 2.000.000 (23,00\xa0€) · jetzt: 4.592.000 (52,81\xa0€)"),
    ("fr", "Consommation tardive de 2025-09; facturé avant : 2\u202f000\u202f000 (23,00\xa0€) · "
           "désormais : 4\u202f592\u202f000 (52,81\xa0€)"),
])
def test_an_adjustment_line_says_what_was_billed_before_and_what_its_period_costs_now(locale, note):
    invoice = late_usage(locale)
    xml = ubl(invoice)
    assert u(xml, "/*/cac:InvoiceLine[1]/cbc:Note/text()") == [note]
    assert u(xml, "/*/cac:InvoiceLine[1]/cac:InvoicePeriod/cbc:StartDate/text()") == ["2025-09-01"]
    notes = c(factur_x(invoice), "//ram:IncludedSupplyChainTradeLineItem[1]/ram:AssociatedDocumentLineDocument"
                                 "/ram:IncludedNote/ram:Content/text()")
    assert notes == [note]


def test_a_line_without_adjusts_keeps_its_english_late_usage_note():
    invoice = late_usage("de")
    del invoice["lines"][0]["adjusts"]
    assert u(ubl(invoice), "/*/cac:InvoiceLine[1]/cbc:Note/text()") == [
        "Late usage of 2025-09, billed after that period was invoiced"]


# --------------------------------------------------------------------------
# Invoices issued by the hub, on SQLite and PostgreSQL

PIPELINE = """
[seller]
name = "Nimbus Cloud GmbH"
country = "DE"
vat_id = "DE136695976"
address = { street = "Hafenstrasse 1", city = "Hamburg", postal_code = "20457" }
legal_form = "GmbH"
commercial_register = "HRB 123456"
register_court = "Amtsgericht Hamburg"
managing_directors = ["Jana Nimbus"]
share_capital = "25000.00"

[tax.rates]
DE = "19"

[invoicing]
payment_terms_days = 14

[[meters]]
name = "network.egress"
aggregation = "sum"
unit = "GB"

[[products]]
name = "egress"
description = "Internet egress"
meter = "network.egress"
price = { model = "per_unit", unit_price = "0.08" }

[[sources]]
name = "files"
type = "csv"
path = "usage/*.csv"

[[accounts]]
id = "bonjour"
name = "Bonjour SAS"
country = "FR"
vat_id = "FR40303265045"
locale = "fr"
address = { street = "1 rue de la Paix", city = "Paris", postal_code = "75002" }
purchase_order = "BC-2026-117"
buyer_reference = "Service achats"
"""


def test_the_hubs_invoice_credit_note_and_reissue_carry_every_term_and_validate(workspace):
    workspace.config(PIPELINE)
    # 125 GB x 0.08 = 10.00, reverse charge (a French buyer with a VAT id): 0.00 VAT
    workspace.write("usage/2026-11.csv", "record_id,account,resource_id,meter,start,end,quantity\n"
                    "b1,bonjour,vm-1,network.egress,2026-11-12T00:00:00Z,2026-11-12T00:00:00Z,125\n", dedent=False)
    assert workspace.hub("pull").exit_code == 0
    assert [r["number"] for r in workspace.json("invoice", "--period", "2026-11", "--issue-date", "2026-12-01")] == [
        "INV-2026-000001"]
    workspace.json("credit-note", "INV-2026-000001", "--reason", "mauvaise adresse", "--issue-date", "2026-12-02")
    reissued = workspace.json("invoice", "--period", "2026-11", "--account", "bonjour", "--reissue",
                              "--issue-date", "2026-12-03")
    assert [r["number"] for r in reissued] == ["INV-2026-000002"]
    legal = ("GmbH; Greffe : Amtsgericht Hamburg; Registre du commerce : HRB 123456; Dirigeants : Jana Nimbus; "
             "Capital social : 25\u202f000,00\xa0€")
    for number, preceding, note in [
        ("INV-2026-000001", [], []),
        ("CN-2026-000001", ["INV-2026-000001"], ["mauvaise adresse"]),
        ("INV-2026-000002", ["INV-2026-000001"],
         ["Remplace la facture INV-2026-000001 (annulée par l'avoir CN-2026-000001)."]),
    ]:
        invoice = workspace.json("invoices", "show", number)
        xml = ubl(invoice)
        cii_xml = factur_x(invoice)
        # the credit note carries its invoice's references too
        assert u(xml, "/*/cbc:BuyerReference/text()") == ["Service achats"], number
        assert u(xml, "/*/cac:OrderReference/cbc:ID/text()") == ["BC-2026-117"]
        assert c(cii_xml, f"{AGREEMENT}/ram:BuyerReference/text()") == ["Service achats"]
        assert c(cii_xml, f"{AGREEMENT}/ram:BuyerOrderReferencedDocument/ram:IssuerAssignedID/text()") == [
            "BC-2026-117"]
        assert u(xml, "/*/cac:BillingReference/cac:InvoiceDocumentReference/cbc:ID/text()") == preceding
        assert u(xml, "/*/cbc:Note/text()") == note
        assert u(xml, f"{SELLER_PARTY}/cac:PartyLegalEntity/cbc:CompanyID/text()") == ["HRB 123456"]
        assert u(xml, f"{SELLER_PARTY}/cac:PartyLegalEntity/cbc:CompanyLegalForm/text()") == [legal]
        assert u(xml, f"{UBL_TAX}/cbc:TaxExemptionReason/text()") == [REVERSE_CHARGE["fr"]]
        assert u(xml, f"{UBL_TAX}/cbc:TaxExemptionReasonCode/text()") == ["VATEX-EU-AE"]
        assert c(cii_xml, f"{SETTLEMENT}/ram:InvoiceReferencedDocument/ram:IssuerAssignedID/text()") == preceding
        assert c(cii_xml, f"{AGREEMENT}/ram:SellerTradeParty/ram:Description/text()") == [legal]
        assert c(cii_xml, f"{CII_TAX}/ram:ExemptionReason/text()") == [REVERSE_CHARGE["fr"]]
