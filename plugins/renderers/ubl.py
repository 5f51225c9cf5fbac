"""The UBL 2.1 Invoice or CreditNote of an issued invoice, validated.

Where the seller and the buyer both have a ``peppol_id`` (``SCHEME:VALUE``,
``0208:0403019261``), the document follows Peppol BIS Billing 3.0
(CustomizationID ``urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:
2017:poacc:billing:3.0``, ProfileID ``urn:fdc:peppol.eu:2017:poacc:billing:
01:1.0``, both electronic addresses); otherwise it is plain EN 16931 UBL
(CustomizationID ``urn:cen.eu:en16931:2017``), which e-mail delivery and
most ERPs accept. Every document is validated before it is returned
(:func:`~hub_plugins.renderers.validation.ubl_failures`: UBL 2.1 XSD, CEN
EN 16931 rules, BR-CO-25 and, for Peppol, our Peppol checks); a document
that fails is never returned: :class:`~hub.plugin.DocumentRejected`
lists the rules it broke.

The invoice is the JSON of ``hub invoices show NUMBER --json``
(``schemas/invoice.schema.json``). Its figures are copied, never
recomputed, so an invoice that does not add up gives a document that does
not add up, and the EN 16931 rules refuse it (BR-CO-10 to BR-CO-16). How
it maps onto EN 16931 (business terms in brackets):

- Invoice type 380, credit note 381 (a UBL CreditNote with positive
  amounts); a credit note names the invoice it corrects (BG-3, BT-25) and
  its reason is its note (BT-22). A reissue names the voided invoice it
  replaces as its preceding invoice (BG-3: EN 16931 has it on an invoice
  that corrects a preceding one) and says so, with the credit note that
  voided it, in its note (BT-22, in the buyer's language); other invoices
  have no note (Peppol allows one).
- Buyer reference (BT-10): the invoice's ``buyer_reference``, else the
  account id (Peppol wants BT-10 or BT-13, R003); purchase order (BT-13,
  ``OrderReference``): its ``purchase_order``. Invoicing period (BG-14):
  the period's first and last day in the buyer's time zone.
- Seller and buyer (BG-4, BG-7): legal and trading name, postal address,
  e-mail contact, electronic address (BT-34, BT-49) from ``peppol_id``. A
  VAT id with a country prefix is the VAT identifier (BT-31, BT-48); a
  seller's tax number without one is its tax registration id (BT-32); a
  buyer's is left out (BT-48 must carry the prefix, BR-CO-09). The
  seller's ``commercial_register`` is its legal registration identifier
  (BT-30, with its ICD scheme when known) and its legal form, register
  court, managing directors and share capital its additional legal
  information (BT-33, ``CompanyLegalForm``), worded by
  :mod:`~hub_plugins.renderers.business_terms`.
- Lines (BG-25): the hub's lines one to one, the rounded amount as the net
  amount (BT-131), quantities in UN/ECE Rec 20 units (second SEC, minute
  MIN, hour HUR, day DAY, unit C62). The resource, the member account of
  an enterprise invoice (also as the line's accounting reference, BT-133,
  for cost allocation), the meter and a late-usage adjustment's period are
  item properties (BT-160/161); an adjustment also has a line note (BT-127:
  what was billed before and now, when the invoice says) and, in plain
  EN 16931 documents only, its own period (BG-26: Peppol R110/R111 want
  line periods inside the invoice's); a line carried from a period below
  the minimum invoice amount says so in its note.
- Net price (BT-146) and base quantity (BT-149), by the one rule of
  :mod:`hub.plugin.en16931` that the CII document follows too: a price has
  at most the currency's minor digits; a per-unit price with more is given
  per a power of ten (0.0000115 EUR per second is 1.15 per 100000 SEC),
  exactly. The catalog price is stated when quantity x price is the line
  amount within half a minor unit per rounding behind it (one for a line,
  two for a late-usage adjustment). When quantity x price rounds to more
  than the amount (a free allowance: the line's quantity includes the
  free part), the difference is a line allowance "Free allowance"
  (BG-27), so the catalog price still shows. A tiered or package price
  (``unit_price`` null), or any other line the price does not explain,
  gets the line amount divided by its quantity, rounded to the minor
  digits per the smallest power of ten that keeps quantity x price / base
  quantity within half a minor unit of the amount (Peppol R120 allows
  0.02); the tiers are in the item description.
- Discounts and promotional credits are document-level allowances (BG-20,
  UNTDID 5189 reason 95 "Discount" and 100 "Special rebate"), so the sum of
  the line amounts (BT-106) is the invoice's subtotal and the total
  without VAT (BT-109) is its taxable amount, subtotal - discounts -
  promotional credit, exactly as the hub computes it. A percentage
  discount names its line and, when amount = base x percent / 100 within
  half a minor unit (it is, unless the discounts of a line were capped at
  the line), its percent and base amount (the line amount).
- One VAT breakdown (BG-23, one TaxTotal for Peppol R053): the invoice's
  category (S, AE reverse charge, E exempt, G export), rate, taxable
  amount and tax, with the exemption reason (BT-120: the legal wording of
  :func:`hub_plugins.renderers.i18n.exemption_reason` in the buyer's
  language, an exempt account's own reason as written) and VATEX code
  (BT-121) for the categories that have them; every line and allowance has
  the same category and rate.
- Prepaid credits are the prepaid amount (BT-113), so the amount due
  (BT-115) is total - prepaid. Due date (BT-9) and payment terms (BT-20)
  for an invoice; a credit note (no due date) says in its payment terms
  that nothing is payable by the buyer, which BR-CO-25 needs. No payment
  means (BG-16): the hub has no bank details.

Limits: EN 16931 allows 2 decimals in amounts, so an invoice in a currency
with 3 (BHD, KWD) is refused (BR-DEC-*, UBL-DT-01). Peppol's German rules
for a German seller and buyer (DE-R-001, -002, -005 to -007 since May
2026: payment instructions, a seller contact with name and telephone) need
data the hub's invoices do not have; such documents pass our checks but a
Peppol access point running that release refuses them.

Deterministic: the same invoice renders to the same bytes (no clock, no
random ids; element order and number formatting are fixed).

This module owns the renderer and the document's header, parties, payment,
allowances and totals; the lines are ``ubl_lines.py``'s. It must not know
the store or the hub's stages: it reads the invoice view of
:mod:`hub.plugin.invoice`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from lxml import etree

from hub.plugin import Document, DocumentRejected, InstanceConfig, RenderContext, RendererType, hookimpl
from hub.plugin.en16931 import REASON_DISCOUNT, REASON_SPECIAL_REBATE, UNIT_CODES, decimal_text, percent_explains
from hub.plugin.invoice import Invoice, Party
from hub_plugins.renderers import business_terms as terms
from hub_plugins.renderers.peppol import CUSTOMIZATION_ID as PEPPOL_CUSTOMIZATION_ID
from hub_plugins.renderers.peppol import PROFILE_ID as PEPPOL_PROFILE_ID
from hub_plugins.renderers.ubl_lines import (
    CAC,
    CBC,
    CREDIT_NOTE_NS,
    INVOICE_NS,
    UblContext,
    add_line,
    exact,
    sub,
    text,
)
from hub_plugins.renderers.validation import ubl_failures

__all__ = ["CAC", "CBC", "CREDIT_NOTE_NS", "INVOICE_NS", "UNIT_CODES", "UblRenderer", "build_ubl", "is_peppol"]

MEDIA_TYPE = "application/xml"
XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'
#: BT-24 of a plain EN 16931 document
EN16931_CUSTOMIZATION_ID = "urn:cen.eu:en16931:2017"

CONFIG_SCHEMA: dict[str, Any] = {"type": "object", "additionalProperties": False, "properties": {}}


class UblRenderer:
    """The ``ubl`` renderer: one validated UBL 2.1 document per invoice or
    credit note, ``NUMBER.xml``, ``application/xml``."""

    format = "ubl"
    requires: tuple[str, ...] = ()

    def __init__(self, config: InstanceConfig | None = None) -> None:
        self.config = config

    def render(self, invoice: Mapping[str, Any], context: RenderContext | None = None) -> Document:
        """The UBL document of ``invoice``.

        :raises DocumentRejected: the document breaks the UBL 2.1 XSD, a
            fatal EN 16931 rule, BR-CO-25 or (Peppol) one of our Peppol
            checks; every failure is listed with its rule id.
        :raises ValueError: ``invoice`` is a draft (no number) or has a
            unit or currency the renderer does not know.
        """
        xml, peppol = build_ubl(invoice)
        failures = ubl_failures(xml, peppol=peppol)
        if failures:
            raise DocumentRejected(failures)
        return Document(f"{invoice['number']}.xml", MEDIA_TYPE, xml)


@hookimpl
def hub_register_renderer_types() -> list[RendererType]:
    return [RendererType(
        name="ubl",
        description="UBL 2.1 invoices and credit notes (Peppol BIS 3 or EN 16931), validated.",
        config_schema=CONFIG_SCHEMA,
        factory=UblRenderer,
    )]


def is_peppol(invoice: Mapping[str, Any] | Invoice) -> bool:
    """Whether ``invoice`` is rendered as Peppol BIS Billing 3.0: its seller
    and its buyer both have a ``peppol_id``."""
    inv = Invoice.of(invoice)
    return bool(text(inv.seller.peppol_id) and text(inv.buyer.peppol_id))


def build_ubl(invoice: Mapping[str, Any] | Invoice) -> tuple[bytes, bool]:
    """The UBL 2.1 document of ``invoice``, unvalidated, and whether it is a
    Peppol document. :class:`UblRenderer` validates it."""
    if not (invoice.number if isinstance(invoice, Invoice) else invoice.get("number")):
        raise ValueError("a draft has no number: only issued invoices and credit notes are rendered")
    inv = Invoice.of(invoice)
    peppol = is_peppol(inv)
    return _Builder(UblContext(inv, peppol=peppol)).build(), peppol


class _Builder:
    def __init__(self, ctx: UblContext) -> None:
        self.ctx = ctx
        self.inv = ctx.inv
        self.credit = ctx.credit

    def build(self) -> bytes:
        inv, ctx = self.inv, self.ctx
        ns = CREDIT_NOTE_NS if self.credit else INVOICE_NS
        root = etree.Element(f"{{{ns}}}{'CreditNote' if self.credit else 'Invoice'}",
                             nsmap={None: ns, "cac": CAC, "cbc": CBC})
        sub(root, "cbc:CustomizationID", PEPPOL_CUSTOMIZATION_ID if ctx.peppol else EN16931_CUSTOMIZATION_ID)
        if ctx.peppol:
            sub(root, "cbc:ProfileID", PEPPOL_PROFILE_ID)
        sub(root, "cbc:ID", str(inv.number))
        if inv.issue_date:
            sub(root, "cbc:IssueDate", inv.issue_date.isoformat())
        if not self.credit and inv.due_date:
            sub(root, "cbc:DueDate", inv.due_date.isoformat())
        sub(root, "cbc:CreditNoteTypeCode" if self.credit else "cbc:InvoiceTypeCode", "381" if self.credit else "380")
        note = text(inv.reason) if self.credit else terms.reissue_note(inv)
        if note:
            sub(root, "cbc:Note", note)
        sub(root, "cbc:DocumentCurrencyCode", ctx.currency)
        # BT-10, else the account id: Peppol wants BT-10 or BT-13 (R003)
        reference = terms.buyer_reference(inv) or text(inv.buyer.id) or text(inv.account)
        if reference:
            sub(root, "cbc:BuyerReference", reference)
        first, last = inv.local_period()
        period = sub(root, "cac:InvoicePeriod")
        sub(period, "cbc:StartDate", first.isoformat())
        sub(period, "cbc:EndDate", last.isoformat())
        if terms.purchase_order(inv):
            sub(sub(root, "cac:OrderReference"), "cbc:ID", terms.purchase_order(inv))
        preceding = text(inv.refers_to) if self.credit else terms.reissue_of(inv)
        if preceding:
            ref = sub(sub(root, "cac:BillingReference"), "cac:InvoiceDocumentReference")
            sub(ref, "cbc:ID", preceding)
        self.party(root, "cac:AccountingSupplierParty", inv.seller, buyer=False)
        self.party(root, "cac:AccountingCustomerParty", inv.buyer, buyer=True)
        self.payment_means(root)
        sub(sub(root, "cac:PaymentTerms"), "cbc:Note", self.payment_terms())
        self.allowances(root)
        self.totals(root)
        for position, line in enumerate(inv.lines, 1):
            add_line(ctx, root, position, line)
        return XML_DECLARATION + etree.tostring(root, encoding="UTF-8", pretty_print=True)

    def party(self, root: etree._Element, tag: str, party: Party, *, buyer: bool) -> None:
        p = sub(sub(root, tag), "cac:Party")
        scheme, _, value = text(party.peppol_id).partition(":")
        if scheme and value.strip():
            sub(p, "cbc:EndpointID", value.strip(), schemeID=scheme.strip())
        name = text(party.name)
        if name:
            sub(sub(p, "cac:PartyName"), "cbc:Name", name)
        address = party.address
        parts = [("cbc:StreetName", address.street), ("cbc:CityName", address.city),
                 ("cbc:PostalZone", address.postal_code), ("cbc:CountrySubentity", address.region)]
        country = text(party.country)
        if any(text(v) for _, v in parts) or country:
            postal = sub(p, "cac:PostalAddress")
            for el, v in parts:
                if text(v):
                    sub(postal, el, text(v))
            if country:
                sub(sub(postal, "cac:Country"), "cbc:IdentificationCode", country)
        vat = text(party.vat_id)
        if vat and (re.match(r"[A-Z]{2}", vat) or not buyer):
            scheme_el = sub(p, "cac:PartyTaxScheme")
            sub(scheme_el, "cbc:CompanyID", vat)
            # BT-31/BT-48 need the country prefix (BR-CO-09); a seller's number
            # without one is its tax registration identifier (BT-32)
            sub(sub(scheme_el, "cac:TaxScheme"), "cbc:ID", "VAT" if re.match(r"[A-Z]{2}", vat) else "TAX")
        if name:
            legal = sub(p, "cac:PartyLegalEntity")
            sub(legal, "cbc:RegistrationName", name)
            if not buyer:
                registration = terms.seller_registration(self.inv)
                if registration is not None:
                    identifier, scheme = registration
                    sub(legal, "cbc:CompanyID", identifier, **({"schemeID": scheme} if scheme else {}))
                information = terms.seller_legal_information(self.inv)
                if information:
                    sub(legal, "cbc:CompanyLegalForm", information)
        if text(party.phone) or text(party.email):
            contact = sub(p, "cac:Contact")
            if text(party.phone):
                sub(contact, "cbc:Telephone", text(party.phone))
            if text(party.email):
                sub(contact, "cbc:ElectronicMail", text(party.email))

    def payment_means(self, root: etree._Element) -> None:
        """BG-16: a credit transfer to the seller's IBAN (BT-84, its BIC
        BT-86), quoting the invoice number (BT-83); SEPA (code 58) for
        euros. None on a credit note (the seller pays) or without an IBAN."""
        seller = self.inv.seller
        iban = text(seller.iban)
        if self.credit or not iban:
            return
        means = sub(root, "cac:PaymentMeans")
        sepa = self.ctx.currency == "EUR"
        sub(means, "cbc:PaymentMeansCode", "58" if sepa else "30",
            name="SEPA credit transfer" if sepa else "Credit transfer")
        sub(means, "cbc:PaymentID", str(self.inv.number))
        account = sub(means, "cac:PayeeFinancialAccount")
        sub(account, "cbc:ID", iban)
        if text(seller.name):
            sub(account, "cbc:Name", text(seller.name))
        if text(seller.bic):
            sub(sub(account, "cac:FinancialInstitutionBranch"), "cbc:ID", text(seller.bic))

    def payment_terms(self) -> str:
        inv = self.inv
        if self.credit:
            ref = text(inv.refers_to)
            return f"Credit note{' for invoice ' + ref if ref else ''}: nothing is payable by the buyer."
        if inv.amount_due == 0:
            return "Nothing to pay: the invoice is settled by credits." if inv.prepaid_applied else "Nothing to pay."
        if inv.payment_days is not None:
            return f"Payment within {inv.payment_days} days, due {inv.due_date}."
        return "Payment due on receipt."

    def allowances(self, root: etree._Element) -> None:
        inv, lines = self.inv, self.inv.lines
        for a in inv.allowances:
            description = text(a.description) or "Discount"
            position = a.line
            factor = base = None
            if position is not None and 1 <= position <= len(lines):
                description = f"{description} (line {position})"
                base_amount = lines[position - 1].amount
                if a.percent is not None and percent_explains(base_amount, a.percent, a.amount, self.ctx.digits):
                    factor, base = decimal_text(a.percent), exact(base_amount)
            self.allowance(root, REASON_DISCOUNT, description, exact(a.amount), factor, base)
        grants = [c for c in inv.credits if c.kind == "promotional"]
        if grants and sum((c.amount for c in grants), Decimal(0)) == inv.promotional_credit:
            for c in grants:
                self.allowance(root, REASON_SPECIAL_REBATE, "Promotional credit", exact(c.amount))
        elif inv.promotional_credit:
            self.allowance(root, REASON_SPECIAL_REBATE, "Promotional credit", exact(inv.promotional_credit))

    def allowance(self, root: etree._Element, code: str, reason: str, amount: str,
                  factor: str | None = None, base: str | None = None) -> None:
        ac = sub(root, "cac:AllowanceCharge")
        sub(ac, "cbc:ChargeIndicator", "false")
        sub(ac, "cbc:AllowanceChargeReasonCode", code)
        sub(ac, "cbc:AllowanceChargeReason", reason)
        if factor is not None:
            sub(ac, "cbc:MultiplierFactorNumeric", factor)
        self.ctx.amount(ac, "cbc:Amount", amount)
        if base is not None:
            self.ctx.amount(ac, "cbc:BaseAmount", base)
        self.ctx.tax_category(ac, "cac:TaxCategory")

    def totals(self, root: etree._Element) -> None:
        inv, ctx = self.inv, self.ctx
        total = sub(root, "cac:TaxTotal")
        ctx.amount(total, "cbc:TaxAmount", exact(inv.tax.amount))
        subtotal = sub(total, "cac:TaxSubtotal")
        ctx.amount(subtotal, "cbc:TaxableAmount", exact(inv.taxable_amount))
        ctx.amount(subtotal, "cbc:TaxAmount", exact(inv.tax.amount))
        ctx.tax_category(subtotal, "cac:TaxCategory", exemption=True)
        money = sub(root, "cac:LegalMonetaryTotal")
        ctx.amount(money, "cbc:LineExtensionAmount", exact(inv.subtotal))
        ctx.amount(money, "cbc:TaxExclusiveAmount", exact(inv.taxable_amount))
        ctx.amount(money, "cbc:TaxInclusiveAmount", exact(inv.total))
        allowed = inv.discount_total + inv.promotional_credit
        if allowed or root.find(f"{{{CAC}}}AllowanceCharge") is not None:
            ctx.amount(money, "cbc:AllowanceTotalAmount", allowed)
        if inv.prepaid_applied:
            ctx.amount(money, "cbc:PrepaidAmount", exact(inv.prepaid_applied))
        ctx.amount(money, "cbc:PayableAmount", exact(inv.amount_due))
