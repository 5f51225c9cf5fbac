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
that fails is never returned: :class:`~hub.plugin_types.DocumentRejected`
lists the rules it broke.

The invoice is the JSON of ``hub invoices show NUMBER --json``
(``schemas/invoice.schema.json``). Its figures are copied, never
recomputed, so an invoice that does not add up gives a document that does
not add up, and the EN 16931 rules refuse it (BR-CO-10 to BR-CO-16). How
it maps onto EN 16931 (business terms in brackets):

- Invoice type 380, credit note 381 (a UBL CreditNote with positive
  amounts); a credit note names the invoice it corrects (BG-3) and its
  reason is its note (BT-22). Invoices have no note (Peppol allows one).
- Buyer reference (BT-10): the account id. Invoicing period (BG-14): the
  period's first and last day in the buyer's time zone.
- Seller and buyer (BG-4, BG-7): legal and trading name, postal address,
  e-mail contact, electronic address (BT-34, BT-49) from ``peppol_id``. A
  VAT id with a country prefix is the VAT identifier (BT-31, BT-48); a
  seller's tax number without one is its tax registration id (BT-32); a
  buyer's is left out (BT-48 must carry the prefix, BR-CO-09).
- Lines (BG-25): the hub's lines one to one, the rounded amount as the net
  amount (BT-131), quantities in UN/ECE Rec 20 units (second SEC, minute
  MIN, hour HUR, day DAY, unit C62). The resource, the member account of
  an enterprise invoice (also as the line's accounting reference, BT-133,
  for cost allocation), the meter and a late-usage adjustment's period are
  item properties (BT-160/161); an adjustment also has a line note and, in
  plain EN 16931 documents only, its own period (BG-26: Peppol R110/R111
  want line periods inside the invoice's).
- Net price (BT-146) and base quantity (BT-149): a price has at most the
  currency's minor digits; a per-unit price with more is given per a power
  of ten (0.0000115 EUR per second is 1.15 per 100000 SEC), exactly. When
  the quantity at that price is more than the line amount by more than a
  cent (a free allowance: the line's quantity includes the free part), the
  difference is a line allowance "Free allowance" (BG-27), so the catalog
  price still shows. A tiered or package price (``unit_price`` null), or
  any other line the price does not explain, gets the line amount divided
  by its quantity, rounded to the minor digits per the smallest power of
  ten that keeps quantity x price / base quantity within half a cent of
  the amount (Peppol R120 allows 0.02); the tiers are in the item
  description.
- Discounts and promotional credits are document-level allowances (BG-20,
  UNTDID 5189 reason 95 "Discount" and 100 "Special rebate"), so the sum of
  the line amounts (BT-106) is the invoice's subtotal and the total
  without VAT (BT-109) is its taxable amount, subtotal - discounts -
  promotional credit, exactly as the hub computes it. A percentage
  discount names its line and, when amount = base x percent / 100 within a
  cent (it is, unless the discounts of a line were capped at the line),
  its percent and base amount (the line amount).
- One VAT breakdown (BG-23, one TaxTotal for Peppol R053): the invoice's
  category (S, AE reverse charge, E exempt, G export), rate, taxable
  amount and tax, with the exemption reason (BT-120) and VATEX code
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
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from lxml import etree

from hub.hookspecs import hookimpl
from hub.plugin_types import Document, DocumentRejected, InstanceConfig, RenderContext, RendererType
from hub.pricing import minor_digits
from hub_plugins.renderers.peppol import CUSTOMIZATION_ID as PEPPOL_CUSTOMIZATION_ID
from hub_plugins.renderers.peppol import PROFILE_ID as PEPPOL_PROFILE_ID
from hub_plugins.renderers.validation import ubl_failures

INVOICE_NS = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
CREDIT_NOTE_NS = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
_PREFIX = {"cac": CAC, "cbc": CBC}

MEDIA_TYPE = "application/xml"
XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'
#: BT-24 of a plain EN 16931 document
EN16931_CUSTOMIZATION_ID = "urn:cen.eu:en16931:2017"

#: the hub's priced units -> UN/ECE Recommendation 20 codes
UNIT_CODES = {"second": "SEC", "minute": "MIN", "hour": "HUR", "day": "DAY", "week": "WEE", "month": "MON",
              "year": "ANN", "unit": "C62"}

#: UNTDID 5189 allowance reason codes
REASON_DISCOUNT = "95"
REASON_SPECIAL_REBATE = "100"

#: how far quantity x catalog price may be from the line amount and still
#: be shown as is (rounding once, or twice for a late-usage adjustment)
PRICE_TOLERANCE = Decimal("0.01")
#: how far quantity x derived price / base quantity may be from the amount
DERIVED_TOLERANCE = Decimal("0.005")
#: the largest base quantity (BT-149) a price is given per
MAX_BASE_EXPONENT = 12

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


def is_peppol(invoice: Mapping[str, Any]) -> bool:
    """Whether ``invoice`` is rendered as Peppol BIS Billing 3.0: its seller
    and its buyer both have a ``peppol_id``."""
    return bool(_str((invoice.get("seller") or {}).get("peppol_id"))
                and _str((invoice.get("buyer") or {}).get("peppol_id")))


def build_ubl(invoice: Mapping[str, Any]) -> tuple[bytes, bool]:
    """The UBL 2.1 document of ``invoice``, unvalidated, and whether it is a
    Peppol document. :class:`UblRenderer` validates it."""
    if not invoice.get("number"):
        raise ValueError("a draft has no number: only issued invoices and credit notes are rendered")
    return _Builder(invoice).build(), is_peppol(invoice)


# --------------------------------------------------------------------------
# building


def _str(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _plain(value: Decimal) -> str:
    """A decimal without exponent or trailing zeros: 19, 8.1, 0."""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


def _sub(parent: etree._Element, tag: str, text: str | None = None, **attrib: str) -> etree._Element:
    prefix, local = tag.split(":")
    el = etree.SubElement(parent, f"{{{_PREFIX[prefix]}}}{local}", attrib)
    if text is not None:
        el.text = text
    return el


class _Builder:
    def __init__(self, invoice: Mapping[str, Any]) -> None:
        self.inv = invoice
        self.credit = invoice["kind"] == "credit_note"
        self.currency = str(invoice["currency"])
        self.digits = minor_digits(self.currency)
        self.minor = Decimal(1).scaleb(-self.digits)
        self.seller: Mapping[str, Any] = invoice.get("seller") or {}
        self.buyer: Mapping[str, Any] = invoice.get("buyer") or {}
        self.peppol = is_peppol(invoice)
        self.tax: Mapping[str, Any] = invoice["tax"]
        self.category = str(self.tax["category"])
        self.rate = _plain(Decimal(str(self.tax["rate"])))
        self.tz = ZoneInfo(_str(self.buyer.get("timezone")) or "UTC")
        self.lines: Sequence[Mapping[str, Any]] = invoice["lines"]

    # ---- helpers

    def money(self, value: Decimal) -> str:
        return format(value.quantize(self.minor), "f")

    def amount(self, parent: etree._Element, tag: str, value: str | Decimal) -> etree._Element:
        text = value if isinstance(value, str) else self.money(value)
        return _sub(parent, tag, text, currencyID=self.currency)

    def day(self, instant: str, *, end: bool = False) -> str:
        moment = datetime.fromisoformat(instant).astimezone(self.tz)
        return (moment - timedelta(microseconds=1)).date().isoformat() if end else moment.date().isoformat()

    def line_position(self, line: int) -> int:
        """The position on this document of an allowance's ``line``: the
        hub numbers a credit note's allowances by its own lines already."""
        return line

    def tax_category(self, parent: etree._Element, tag: str, *, exemption: bool = False) -> None:
        cat = _sub(parent, tag)
        _sub(cat, "cbc:ID", self.category)
        _sub(cat, "cbc:Percent", self.rate)
        if exemption and self.category != "S":
            if _str(self.tax.get("exemption_code")):
                _sub(cat, "cbc:TaxExemptionReasonCode", _str(self.tax.get("exemption_code")))
            if _str(self.tax.get("exemption_reason")):
                _sub(cat, "cbc:TaxExemptionReason", _str(self.tax.get("exemption_reason")))
        _sub(_sub(cat, "cac:TaxScheme"), "cbc:ID", "VAT")

    # ---- the document

    def build(self) -> bytes:
        inv = self.inv
        ns = CREDIT_NOTE_NS if self.credit else INVOICE_NS
        root = etree.Element(f"{{{ns}}}{'CreditNote' if self.credit else 'Invoice'}",
                             nsmap={None: ns, "cac": CAC, "cbc": CBC})
        _sub(root, "cbc:CustomizationID", PEPPOL_CUSTOMIZATION_ID if self.peppol else EN16931_CUSTOMIZATION_ID)
        if self.peppol:
            _sub(root, "cbc:ProfileID", PEPPOL_PROFILE_ID)
        _sub(root, "cbc:ID", str(inv["number"]))
        if inv.get("issue_date"):
            _sub(root, "cbc:IssueDate", str(inv["issue_date"]))
        if not self.credit and inv.get("due_date"):
            _sub(root, "cbc:DueDate", str(inv["due_date"]))
        _sub(root, "cbc:CreditNoteTypeCode" if self.credit else "cbc:InvoiceTypeCode", "381" if self.credit else "380")
        if self.credit and _str(inv.get("reason")):
            _sub(root, "cbc:Note", _str(inv.get("reason")))
        _sub(root, "cbc:DocumentCurrencyCode", self.currency)
        reference = _str(self.buyer.get("id")) or _str(inv.get("account"))
        if reference:
            _sub(root, "cbc:BuyerReference", reference)
        period = _sub(root, "cac:InvoicePeriod")
        _sub(period, "cbc:StartDate", self.day(inv["period_start"]))
        _sub(period, "cbc:EndDate", self.day(inv["period_end"], end=True))
        if self.credit and _str(inv.get("refers_to")):
            ref = _sub(_sub(root, "cac:BillingReference"), "cac:InvoiceDocumentReference")
            _sub(ref, "cbc:ID", _str(inv.get("refers_to")))
        self.party(root, "cac:AccountingSupplierParty", self.seller, buyer=False)
        self.party(root, "cac:AccountingCustomerParty", self.buyer, buyer=True)
        self.payment_means(root)
        _sub(_sub(root, "cac:PaymentTerms"), "cbc:Note", self.payment_terms())
        self.allowances(root)
        self.totals(root)
        for position, line in enumerate(self.lines, 1):
            self.line(root, position, line)
        return XML_DECLARATION + etree.tostring(root, encoding="UTF-8", pretty_print=True)

    def party(self, root: etree._Element, tag: str, party: Mapping[str, Any], *, buyer: bool) -> None:
        p = _sub(_sub(root, tag), "cac:Party")
        scheme, _, value = _str(party.get("peppol_id")).partition(":")
        if scheme and value.strip():
            _sub(p, "cbc:EndpointID", value.strip(), schemeID=scheme.strip())
        name = _str(party.get("name"))
        if name:
            _sub(_sub(p, "cac:PartyName"), "cbc:Name", name)
        address: Mapping[str, Any] = party.get("address") or {}
        parts = [("cbc:StreetName", address.get("street")), ("cbc:CityName", address.get("city")),
                 ("cbc:PostalZone", address.get("postal_code")), ("cbc:CountrySubentity", address.get("region"))]
        country = _str(party.get("country"))
        if any(_str(v) for _, v in parts) or country:
            postal = _sub(p, "cac:PostalAddress")
            for el, v in parts:
                if _str(v):
                    _sub(postal, el, _str(v))
            if country:
                _sub(_sub(postal, "cac:Country"), "cbc:IdentificationCode", country)
        vat = _str(party.get("vat_id"))
        if vat and (re.match(r"[A-Z]{2}", vat) or not buyer):
            scheme_el = _sub(p, "cac:PartyTaxScheme")
            _sub(scheme_el, "cbc:CompanyID", vat)
            # BT-31/BT-48 need the country prefix (BR-CO-09); a seller's number
            # without one is its tax registration identifier (BT-32)
            _sub(_sub(scheme_el, "cac:TaxScheme"), "cbc:ID", "VAT" if re.match(r"[A-Z]{2}", vat) else "TAX")
        if name:
            _sub(_sub(p, "cac:PartyLegalEntity"), "cbc:RegistrationName", name)
        if _str(party.get("phone")) or _str(party.get("email")):
            contact = _sub(p, "cac:Contact")
            if _str(party.get("phone")):
                _sub(contact, "cbc:Telephone", _str(party.get("phone")))
            if _str(party.get("email")):
                _sub(contact, "cbc:ElectronicMail", _str(party.get("email")))

    def payment_means(self, root: etree._Element) -> None:
        """BG-16: a credit transfer to the seller's IBAN (BT-84, its BIC
        BT-86), quoting the invoice number (BT-83); SEPA (code 58) for
        euros. None on a credit note (the seller pays) or without an IBAN."""
        iban = _str(self.seller.get("iban"))
        if self.credit or not iban:
            return
        means = _sub(root, "cac:PaymentMeans")
        sepa = self.currency == "EUR"
        _sub(means, "cbc:PaymentMeansCode", "58" if sepa else "30",
             name="SEPA credit transfer" if sepa else "Credit transfer")
        _sub(means, "cbc:PaymentID", str(self.inv["number"]))
        account = _sub(means, "cac:PayeeFinancialAccount")
        _sub(account, "cbc:ID", iban)
        if _str(self.seller.get("name")):
            _sub(account, "cbc:Name", _str(self.seller.get("name")))
        if _str(self.seller.get("bic")):
            _sub(_sub(account, "cac:FinancialInstitutionBranch"), "cbc:ID", _str(self.seller.get("bic")))

    def payment_terms(self) -> str:
        inv = self.inv
        if self.credit:
            ref = _str(inv.get("refers_to"))
            return f"Credit note{' for invoice ' + ref if ref else ''}: nothing is payable by the buyer."
        if Decimal(str(inv["amount_due"])) == 0:
            return "Nothing to pay: the invoice is settled by credits." if Decimal(str(inv["prepaid_applied"])) \
                else "Nothing to pay."
        if inv.get("due_date") and inv.get("issue_date"):
            days = (date.fromisoformat(inv["due_date"]) - date.fromisoformat(inv["issue_date"])).days
            return f"Payment within {days} days, due {inv['due_date']}."
        return "Payment due on receipt."

    def allowances(self, root: etree._Element) -> None:
        inv = self.inv
        for a in inv.get("allowances") or []:
            description = _str(a.get("description")) or "Discount"
            line_no = a.get("line")
            position = self.line_position(line_no) if line_no is not None else None
            factor = base = None
            if position is not None and 1 <= position <= len(self.lines):
                description = f"{description} (line {position})"
                base_amount = str(self.lines[position - 1]["amount"])
                percent = a.get("percent")
                if percent is not None and abs(Decimal(base_amount) * Decimal(str(percent)) / 100
                                               - Decimal(str(a["amount"]))) <= PRICE_TOLERANCE:
                    factor, base = _plain(Decimal(str(percent))), base_amount
            self.allowance(root, REASON_DISCOUNT, description, str(a["amount"]), factor, base)
        promotional = Decimal(str(inv["promotional_credit"]))
        grants = [c for c in inv.get("credits") or [] if c.get("kind") == "promotional"]
        if grants and sum((Decimal(str(c["amount"])) for c in grants), Decimal(0)) == promotional:
            for c in grants:
                self.allowance(root, REASON_SPECIAL_REBATE, "Promotional credit", str(c["amount"]))
        elif promotional:
            self.allowance(root, REASON_SPECIAL_REBATE, "Promotional credit", str(inv["promotional_credit"]))

    def allowance(self, root: etree._Element, code: str, reason: str, amount: str,
                  factor: str | None = None, base: str | None = None) -> None:
        ac = _sub(root, "cac:AllowanceCharge")
        _sub(ac, "cbc:ChargeIndicator", "false")
        _sub(ac, "cbc:AllowanceChargeReasonCode", code)
        _sub(ac, "cbc:AllowanceChargeReason", reason)
        if factor is not None:
            _sub(ac, "cbc:MultiplierFactorNumeric", factor)
        self.amount(ac, "cbc:Amount", amount)
        if base is not None:
            self.amount(ac, "cbc:BaseAmount", base)
        self.tax_category(ac, "cac:TaxCategory")

    def totals(self, root: etree._Element) -> None:
        inv = self.inv
        total = _sub(root, "cac:TaxTotal")
        self.amount(total, "cbc:TaxAmount", str(self.tax["amount"]))
        subtotal = _sub(total, "cac:TaxSubtotal")
        self.amount(subtotal, "cbc:TaxableAmount", str(inv["taxable_amount"]))
        self.amount(subtotal, "cbc:TaxAmount", str(self.tax["amount"]))
        self.tax_category(subtotal, "cac:TaxCategory", exemption=True)
        money = _sub(root, "cac:LegalMonetaryTotal")
        self.amount(money, "cbc:LineExtensionAmount", str(inv["subtotal"]))
        self.amount(money, "cbc:TaxExclusiveAmount", str(inv["taxable_amount"]))
        self.amount(money, "cbc:TaxInclusiveAmount", str(inv["total"]))
        allowed = Decimal(str(inv["discount_total"])) + Decimal(str(inv["promotional_credit"]))
        if allowed or root.find(f"{{{CAC}}}AllowanceCharge") is not None:
            self.amount(money, "cbc:AllowanceTotalAmount", allowed)
        if Decimal(str(inv["prepaid_applied"])):
            self.amount(money, "cbc:PrepaidAmount", str(inv["prepaid_applied"]))
        self.amount(money, "cbc:PayableAmount", str(inv["amount_due"]))

    def line(self, root: etree._Element, position: int, line: Mapping[str, Any]) -> None:
        inv = self.inv
        unit = str(line["unit"])
        if unit not in UNIT_CODES:
            raise ValueError(f"line {position}: unit {unit!r} has no UN/ECE Rec 20 code here "
                             f"(known: {', '.join(UNIT_CODES)})")
        code = UNIT_CODES[unit]
        el = _sub(root, "cac:CreditNoteLine" if self.credit else "cac:InvoiceLine")
        _sub(el, "cbc:ID", str(position))
        adjustment = _str(line.get("adjustment_for"))
        if adjustment:
            _sub(el, "cbc:Note", f"Late usage of {adjustment}, billed after that period was invoiced")
        _sub(el, "cbc:CreditedQuantity" if self.credit else "cbc:InvoicedQuantity", str(line["quantity"]),
             unitCode=code)
        self.amount(el, "cbc:LineExtensionAmount", str(line["amount"]))
        member = _str(line.get("account"))
        if member and member != _str(inv.get("account")):
            _sub(el, "cbc:AccountingCost", member)
        if adjustment and not self.peppol:
            period = _sub(el, "cac:InvoicePeriod")
            _sub(period, "cbc:StartDate", self.day(line["period_start"]))
            _sub(period, "cbc:EndDate", self.day(line["period_end"], end=True))
        price, base, free = self.price(line)
        if free is not None:
            ac = _sub(el, "cac:AllowanceCharge")
            _sub(ac, "cbc:ChargeIndicator", "false")
            _sub(ac, "cbc:AllowanceChargeReason", "Free allowance")
            self.amount(ac, "cbc:Amount", free)
        self.item(el, line, member)
        price_el = _sub(el, "cac:Price")
        self.amount(price_el, "cbc:PriceAmount", price)
        if base != 1:
            _sub(price_el, "cbc:BaseQuantity", str(base), unitCode=code)

    def item(self, parent: etree._Element, line: Mapping[str, Any], member: str) -> None:
        item = _sub(parent, "cac:Item")
        tiers = line.get("tiers") or []
        if tiers:
            _sub(item, "cbc:Description", "Price breakdown: " + " + ".join(
                f"{t['quantity']} x {t['unit_price']}" for t in tiers))
        _sub(item, "cbc:Name", _str(line.get("description")) or str(line["product"]))
        _sub(_sub(item, "cac:SellersItemIdentification"), "cbc:ID", str(line["product"]))
        self.tax_category(item, "cac:ClassifiedTaxCategory")
        properties = []
        if _str(line.get("resource_id")):
            properties.append(("Resource", _str(line.get("resource_id"))))
        if member and member != _str(self.inv.get("account")):
            name = _str((self.inv.get("members") or {}).get(member))
            properties.append(("Account", f"{name} ({member})" if name else member))
        meter = (self.inv.get("products") or {}).get(line["product"]) or {}
        if _str(meter.get("meter")):
            unit = _str(meter.get("meter_unit"))
            properties.append(("Meter", f"{_str(meter.get('meter'))} ({unit})" if unit else _str(meter.get("meter"))))
        if _str(line.get("adjustment_for")):
            properties.append(("Adjustment for", _str(line.get("adjustment_for"))))
        for name, value in properties:
            prop = _sub(item, "cac:AdditionalItemProperty")
            _sub(prop, "cbc:Name", name)
            _sub(prop, "cbc:Value", value)

    def price(self, line: Mapping[str, Any]) -> tuple[Decimal, int, Decimal | None]:
        """Net price (BT-146), base quantity (BT-149) and the free
        allowance of ``line``, if any (see the module docstring)."""
        quantity, amount = Decimal(str(line["quantity"])), Decimal(str(line["amount"]))
        if line.get("unit_price") is not None:
            unit_price = Decimal(str(line["unit_price"]))
            scaled = self.scaled(unit_price)
            if scaled is not None:
                gross_exact = quantity * unit_price
                if abs(gross_exact - amount) <= PRICE_TOLERANCE:
                    return scaled[0], scaled[1], None
                gross = gross_exact.quantize(self.minor, ROUND_HALF_UP)
                if gross > amount and abs(gross_exact - gross) <= DERIVED_TOLERANCE:
                    return scaled[0], scaled[1], gross - amount
        return self.derived(quantity, amount)

    def scaled(self, unit_price: Decimal) -> tuple[Decimal, int] | None:
        """``unit_price`` per the smallest power of ten that gives it at most
        the currency's minor digits, exactly."""
        for exponent in range(MAX_BASE_EXPONENT + 1):
            value = unit_price.scaleb(exponent)
            if value == value.quantize(self.minor):
                return value.quantize(self.minor), 10 ** exponent
        return None

    def derived(self, quantity: Decimal, amount: Decimal) -> tuple[Decimal, int, None]:
        """``amount / quantity`` per the smallest power of ten whose rounded
        price explains the amount within half a cent."""
        if quantity <= 0:
            return amount, 1, None
        price = amount
        for exponent in range(MAX_BASE_EXPONENT + 1):
            base = 10 ** exponent
            price = (amount * base / quantity).quantize(self.minor, ROUND_HALF_UP)
            if abs(quantity * price / base - amount) <= DERIVED_TOLERANCE:
                return price, base, None
        return price, 10 ** MAX_BASE_EXPONENT, None
