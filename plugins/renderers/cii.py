"""The UN/CEFACT Cross Industry Invoice (CII D16B) of an invoice, in the
Factur-X 1.09 / ZUGFeRD 2 EN 16931 profile (guideline ``urn:cen.eu:en16931:2017``).

Built directly with lxml rather than with drafthorse: the element order,
which optional elements appear (none empty: PEPPOL-EN16931-R008), the
decimal text of every amount, quantity and price, and the bytes of the
output are all ours to fix, with no extra dependency and no object model
checked against an older (1.0.07) XSD in between. The invoice is the JSON
of ``hub invoices show NUMBER --json`` (``schemas/invoice.schema.json``);
its figures are copied, never recomputed, so a broken invoice shows as a
broken document and the EN 16931 rules refuse it.

How the hub's invoice maps onto EN 16931 (business terms in brackets):

- Type code 380 for an invoice, 381 for a credit note; a credit note
  names the invoice it corrects (BG-3, BT-25) and its reason is a note
  (BT-22). Amounts of a credit note are positive, as EN 16931 wants. A
  reissue names the voided invoice it replaces (BG-3) and says so in a
  note (BT-22) in the buyer's language.
- The buyer's reference (BT-10, ``BuyerReference``) and purchase order
  (BT-13, ``BuyerOrderReferencedDocument``) when the invoice has them.
- Seller and buyer (BG-4, BG-7): name, postal address, VAT identifier
  (``SpecifiedTaxRegistration`` scheme ``VA``; a seller's tax number with
  no country prefix is scheme ``FC``, a buyer's is left out because
  BT-48 must be a VAT id), electronic address (BT-34, BT-49): the
  ``peppol_id`` (``9930:DE136695976`` -> scheme 9930) or else the e-mail
  (scheme ``EM``). The buyer's account id is the buyer identifier (BT-46).
  The seller's ``commercial_register`` is its legal registration
  identifier (BT-30, ``SpecifiedLegalOrganization``, with its ICD scheme
  when known), its legal form, register court, managing directors and
  share capital the additional legal information (BT-33, ``Description``).
- One VAT breakdown (BG-23): the invoice's category (S, AE, E, G), rate,
  taxable amount and tax, with the exemption reason (BT-120, in the
  buyer's language) and VATEX code (BT-121) for the categories that have
  one. Every line and
  allowance carries the same category and rate.
- Lines (BG-25): quantity in UN/ECE Rec 20 units (second SEC, minute MIN,
  hour HUR, day DAY, unit C62), the rounded line amount as the net amount.
  Net price (BT-146) and base quantity (BT-149) follow the one rule of
  :mod:`hub.plugin.en16931`, as the UBL document does: a per-unit price
  that explains the amount (within half a minor unit per rounding) is
  given per a power of ten (0.0000115 EUR per second -> 1.15 per 100000
  SEC), so the price is exact and readable; a tiered or package price
  (``unit_price`` null), or a price that does not give the line amount (a
  free allowance), is the line amount per the line's whole quantity,
  which is exact too. The
  tiers, the resource, the member account, the period of a late-usage
  adjustment and the credited line of the invoice are written in the item
  description and the line note (BT-127, which also says what an
  adjustment billed before and now, or the period a carried line comes
  from); an adjustment line keeps its own period (BG-26).
- Discounts and promotional credits are document-level allowances (BG-20,
  reason code 95 "Discount" and 100 "Special rebate"), so the sum of the
  lines (BT-106) is the invoice's subtotal and the taxable amount (BT-109)
  is subtotal - discounts - promotional credit, exactly as the hub
  computes it. A percentage discount of one line also gives its percent
  and base amount (the line's amount) when the amount is that percent of
  it, rounded once (not when the line's discounts were capped at it).
- Prepaid credits are the paid amount (BT-113, ``TotalPrepaidAmount``),
  so the amount due (BT-115) is total - prepaid. Payments recorded after
  issue are not part of the document (it is the invoice as issued).
- Invoicing period (BG-14) and the actual delivery date (BT-72, the last
  day of the period: a continuous service is supplied when its period
  ends) in the buyer's time zone, which is the period's; payment terms
  (BT-20) and due date (BT-9); an invoice's number as remittance
  information (BT-83). Payment means (BG-16): a credit transfer to the
  seller's IBAN when ``[seller]`` has one.

This module must not know the PDF it is embedded in, the validators, the
store or the hub's stages: it maps the invoice view
(:class:`hub.plugin.invoice.Invoice`) onto CII elements.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any

from lxml import etree

from hub.plugin.en16931 import (
    REASON_DISCOUNT,
    REASON_SPECIAL_REBATE,
    decimal_text,
    explains,
    percent_explains,
    scaled_price,
    unit_code,
)
from hub.plugin.invoice import Invoice, Line, Party
from hub_plugins.renderers import business_terms

RSM = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
QDT = "urn:un:unece:uncefact:data:standard:QualifiedDataType:100"
UDT = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100"
NSMAP = {"rsm": RSM, "qdt": QDT, "ram": RAM, "udt": UDT}

#: BT-24 of the EN 16931 profile of Factur-X
GUIDELINE_EN16931 = "urn:cen.eu:en16931:2017"

XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'

TIME_UNITS = ("second", "minute", "hour", "day")

_R = "{" + RAM + "}"
_U = "{" + UDT + "}"
_S = "{" + RSM + "}"


def _el(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    """A ``ram:`` child (``tag`` without prefix), with text and attributes."""
    el = etree.SubElement(parent, _R + tag, attrs or None)  # type: ignore[arg-type]
    if text is not None:
        el.text = text
    return el


def _t(value: Decimal) -> str:
    """A figure as the invoice's JSON writes it (``2.60``, ``42.5``)."""
    return format(value, "f")


def _date(parent: etree._Element, tag: str, day: date) -> None:
    """``<ram:tag><udt:DateTimeString format="102">YYYYMMDD</...></ram:tag>``."""
    etree.SubElement(_el(parent, tag), _U + "DateTimeString", format="102").text = day.strftime("%Y%m%d")


def net_price(line: Line, digits: int) -> tuple[str, str | None]:
    """The net price (BT-146) and base quantity (BT-149, ``None`` for 1) of a line.

    A per-unit price that explains the line's amount
    (:func:`hub.plugin.en16931.explains`) is kept exact, per the power of
    ten :func:`~hub.plugin.en16931.scaled_price` gives; otherwise (tiered,
    package, free allowance) the price is the line's amount for its whole
    quantity.
    """
    if line.unit_price is not None and explains(line.quantity, line.unit_price, line.amount, digits, line.roundings):
        scaled = scaled_price(line.unit_price, digits)
        if scaled is not None:
            price, base = scaled
            return decimal_text(price), (None if base == 1 else str(base))
    if line.quantity == 0:
        return _t(line.amount), None
    return _t(line.amount), decimal_text(line.quantity)


def _measure(invoice: Invoice, line: Line) -> str | None:
    """What the line's quantity counts, in words (``vCPU-seconds of compute.vcpu``)."""
    product = invoice.product(line.product)
    meter, meter_unit = product.meter, product.meter_unit
    if not meter:
        return None
    unit = line.unit
    if product.aggregation == "time_weighted" and unit in TIME_UNITS and meter_unit:
        what = f"{meter_unit}-{unit}s"
    elif unit != "unit":
        what = f"{meter_unit or ''} per {unit}".strip()
    else:
        what = meter_unit or "units"
    return f"Metered in {what} ({meter})"


def _item_description(invoice: Invoice, line: Line) -> str | None:
    parts = []
    measure = _measure(invoice, line)
    if measure:
        parts.append(measure)
    if line.unit_price is None and line.tiers:
        shown = "; ".join(
            f"{decimal_text(t.quantity)} at {decimal_text(t.unit_price)}"
            + (f" (up to {decimal_text(t.up_to)})" if t.up_to is not None else "")
            for t in line.tiers
        )
        parts.append(f"Price tiers per {line.unit}: {shown}")
    return ". ".join(parts) or None


def _line_note(invoice: Invoice, line: Line, number: int) -> str | None:
    parts = []
    credited = invoice.credited_lines
    if invoice.is_credit_note and invoice.refers_to and len(credited) == len(invoice.lines):
        parts.append(f"Credits line {credited[number - 1]} of invoice {invoice.refers_to}")
    if line.resource_id:
        parts.append(f"Resource {line.resource_id}")
    if line.account and line.account != invoice.account:
        name = invoice.member_name(line.account)
        parts.append(f"Account {name} ({line.account})" if name else f"Account {line.account}")
    detail = business_terms.line_note(invoice, number)  # an adjustment's or a carried line's, in the buyer's language
    if detail:
        parts.append(detail)
    elif line.adjustment_for:
        parts.append(f"Late usage of {line.adjustment_for}")
    return "; ".join(parts) or None


def _tax(parent: etree._Element, tag: str, invoice: Invoice, *, breakdown: bool) -> None:
    """A ``TradeTaxType``: the full breakdown (BG-23) or a line's or
    allowance's category and rate."""
    tax = invoice.tax
    el = _el(parent, tag)
    if breakdown:
        _el(el, "CalculatedAmount", _t(tax.amount))
    _el(el, "TypeCode", "VAT")
    reason = business_terms.exemption_reason(invoice) if breakdown and tax.category != "S" else ""
    if reason:
        _el(el, "ExemptionReason", reason)  # BT-120 in the buyer's language
    if breakdown:
        _el(el, "BasisAmount", _t(invoice.taxable_amount))
    _el(el, "CategoryCode", tax.category)
    if breakdown and tax.exemption_code and tax.category != "S":
        _el(el, "ExemptionReasonCode", tax.exemption_code)
    _el(el, "RateApplicablePercent", decimal_text(tax.rate))


def _vat_scheme(vat_id: str) -> str:
    """``VA`` for a VAT identifier (a country prefix), ``FC`` for a local tax number."""
    return "VA" if len(vat_id) > 2 and vat_id[:2].isalpha() and vat_id[:2].isupper() else "FC"


def _party(parent: etree._Element, tag: str, party: Party, *, seller: bool, invoice: Invoice | None = None) -> None:
    el = _el(parent, tag)
    if not seller and party.id:
        _el(el, "ID", party.id)  # BT-46
    _el(el, "Name", party.name or "")
    if seller and invoice is not None:
        information = business_terms.seller_legal_information(invoice)
        if information:
            _el(el, "Description", information)  # BT-33
        registration = business_terms.seller_registration(invoice)
        if registration is not None:  # BT-30 (BT-30-1)
            identifier, scheme = registration
            _el(_el(el, "SpecifiedLegalOrganization"), "ID", identifier, **({"schemeID": scheme} if scheme else {}))
    if seller and (party.email or party.phone):
        contact = _el(el, "DefinedTradeContact")
        if party.phone:
            _el(_el(contact, "TelephoneUniversalCommunication"), "CompleteNumber", party.phone)
        if party.email:
            _el(_el(contact, "EmailURIUniversalCommunication"), "URIID", party.email)
    address = party.address
    postal = _el(el, "PostalTradeAddress")
    if address.postal_code:
        _el(postal, "PostcodeCode", address.postal_code)
    if address.street:
        _el(postal, "LineOne", address.street)
    if address.city:
        _el(postal, "CityName", address.city)
    _el(postal, "CountryID", party.country or "")
    if address.region:
        _el(postal, "CountrySubDivisionName", address.region)
    peppol = party.peppol_id
    if peppol and ":" in peppol:
        scheme, _, value = peppol.partition(":")
        _el(_el(el, "URIUniversalCommunication"), "URIID", value, schemeID=scheme)
    elif party.email:
        _el(_el(el, "URIUniversalCommunication"), "URIID", party.email, schemeID="EM")
    vat_id = party.vat_id
    if vat_id:
        scheme = _vat_scheme(vat_id)
        if seller or scheme == "VA":
            _el(_el(el, "SpecifiedTaxRegistration"), "ID", vat_id, schemeID=scheme)


def _payment_terms(invoice: Invoice) -> str | None:
    if invoice.is_credit_note:
        refers = invoice.refers_to
        return f"Credit of {_t(invoice.amount_due)} {invoice.currency}" + (
            f" against invoice {refers}." if refers else ".")
    days = invoice.payment_days
    if days is not None:
        return f"Payable within {days} days of the invoice date, by {invoice.due_date}."
    return None


def _line_item(transaction: etree._Element, invoice: Invoice, line: Line, number: int) -> None:
    """One ``IncludedSupplyChainTradeLineItem`` (BG-25)."""
    item = _el(transaction, "IncludedSupplyChainTradeLineItem")
    doc_line = _el(item, "AssociatedDocumentLineDocument")
    _el(doc_line, "LineID", str(number))
    note = _line_note(invoice, line, number)
    if note:
        _el(_el(doc_line, "IncludedNote"), "Content", note)
    product = _el(item, "SpecifiedTradeProduct")
    _el(product, "SellerAssignedID", line.product)
    _el(product, "Name", line.description or line.product)
    description = _item_description(invoice, line)
    if description:
        _el(product, "Description", description)
    code = unit_code(line.unit)
    price, basis = net_price(line, invoice.minor_digits)
    net = _el(_el(item, "SpecifiedLineTradeAgreement"), "NetPriceProductTradePrice")
    _el(net, "ChargeAmount", price)
    if basis is not None:
        _el(net, "BasisQuantity", basis, unitCode=code)
    _el(_el(item, "SpecifiedLineTradeDelivery"), "BilledQuantity", decimal_text(line.quantity), unitCode=code)
    settlement = _el(item, "SpecifiedLineTradeSettlement")
    _tax(settlement, "ApplicableTradeTax", invoice, breakdown=False)
    first, last = invoice.local_period(line)
    if (first, last) != invoice.local_period():
        span = _el(settlement, "BillingSpecifiedPeriod")
        _date(span, "StartDateTime", first)
        _date(span, "EndDateTime", last)
    _el(_el(settlement, "SpecifiedTradeSettlementLineMonetarySummation"), "LineTotalAmount", _t(line.amount))


def build(invoice: Mapping[str, Any] | Invoice) -> etree._Element:
    """The ``rsm:CrossIndustryInvoice`` element of ``invoice`` (its JSON
    mapping or its :class:`~hub.plugin.invoice.Invoice` view)."""
    if not (invoice.number if isinstance(invoice, Invoice) else invoice.get("number")):
        raise ValueError("a draft has no number: only issued invoices and credit notes have documents")
    inv = Invoice.of(invoice)
    number = str(inv.number)
    credit_note = inv.is_credit_note
    currency = inv.currency
    digits = inv.minor_digits
    lines = inv.lines
    period_first, period_last = inv.local_period()

    root = etree.Element(_S + "CrossIndustryInvoice", nsmap=NSMAP)
    context = etree.SubElement(root, _S + "ExchangedDocumentContext")
    _el(_el(context, "GuidelineSpecifiedDocumentContextParameter"), "ID", GUIDELINE_EN16931)

    document = etree.SubElement(root, _S + "ExchangedDocument")
    _el(document, "ID", number)
    _el(document, "TypeCode", "381" if credit_note else "380")
    if inv.issue_date is None:
        raise ValueError(f"{number} has no issue date")
    _date(document, "IssueDateTime", inv.issue_date)
    note = inv.reason if credit_note else business_terms.reissue_note(inv)
    if note:
        _el(_el(document, "IncludedNote"), "Content", note)

    transaction = etree.SubElement(root, _S + "SupplyChainTradeTransaction")
    for position, line in enumerate(lines, start=1):
        _line_item(transaction, inv, line, position)

    agreement = _el(transaction, "ApplicableHeaderTradeAgreement")
    if business_terms.buyer_reference(inv):
        _el(agreement, "BuyerReference", business_terms.buyer_reference(inv))  # BT-10
    _party(agreement, "SellerTradeParty", inv.seller, seller=True, invoice=inv)
    _party(agreement, "BuyerTradeParty", inv.buyer, seller=False)
    if business_terms.purchase_order(inv):  # BT-13
        _el(_el(agreement, "BuyerOrderReferencedDocument"), "IssuerAssignedID", business_terms.purchase_order(inv))

    delivery = _el(transaction, "ApplicableHeaderTradeDelivery")
    _date(_el(delivery, "ActualDeliverySupplyChainEvent"), "OccurrenceDateTime", period_last)

    settlement = _el(transaction, "ApplicableHeaderTradeSettlement")
    if not credit_note:
        _el(settlement, "PaymentReference", number)
    _el(settlement, "InvoiceCurrencyCode", currency)
    seller = inv.seller
    if seller.iban and not credit_note:
        # BG-16: a credit transfer to the seller's IBAN (BT-84) and BIC
        # (BT-86); SEPA (58) for euros
        means = _el(settlement, "SpecifiedTradeSettlementPaymentMeans")
        _el(means, "TypeCode", "58" if currency == "EUR" else "30")
        account = _el(means, "PayeePartyCreditorFinancialAccount")
        _el(account, "IBANID", seller.iban)
        if seller.name:
            _el(account, "AccountName", seller.name)
        if seller.bic:
            _el(_el(means, "PayeeSpecifiedCreditorFinancialInstitution"), "BICID", seller.bic)
    _tax(settlement, "ApplicableTradeTax", inv, breakdown=True)
    span = _el(settlement, "BillingSpecifiedPeriod")
    _date(span, "StartDateTime", period_first)
    _date(span, "EndDateTime", period_last)

    allowances: list[tuple[str, str, str, str | None, str | None]] = []
    for allowance in inv.allowances:
        percent = basis_amount = None
        index = allowance.line
        if allowance.percent is not None and index and 1 <= index <= len(lines) \
                and percent_explains(lines[index - 1].amount, allowance.percent, allowance.amount, digits):
            percent, basis_amount = decimal_text(allowance.percent), _t(lines[index - 1].amount)
        allowances.append((_t(allowance.amount), REASON_DISCOUNT, allowance.description or "Discount",
                           percent, basis_amount))
    if inv.promotional_credit != 0:
        allowances.append((_t(inv.promotional_credit), REASON_SPECIAL_REBATE, "Promotional credit", None, None))
    for amount, code, reason, percent, basis_amount in allowances:
        charge = _el(settlement, "SpecifiedTradeAllowanceCharge")
        etree.SubElement(_el(charge, "ChargeIndicator"), _U + "Indicator").text = "false"
        if percent is not None:
            _el(charge, "CalculationPercent", percent)
            _el(charge, "BasisAmount", basis_amount)
        _el(charge, "ActualAmount", amount)
        _el(charge, "ReasonCode", code)
        _el(charge, "Reason", reason)
        _tax(charge, "CategoryTradeTax", inv, breakdown=False)

    terms = _payment_terms(inv)
    if terms or inv.due_date:
        payment = _el(settlement, "SpecifiedTradePaymentTerms")
        if terms:
            _el(payment, "Description", terms)
        if inv.due_date:
            _date(payment, "DueDateDateTime", inv.due_date)

    totals = _el(settlement, "SpecifiedTradeSettlementHeaderMonetarySummation")
    _el(totals, "LineTotalAmount", _t(inv.subtotal))
    if allowances:
        allowance_total = inv.discount_total + inv.promotional_credit
        _el(totals, "AllowanceTotalAmount", f"{allowance_total:.{digits}f}")
    _el(totals, "TaxBasisTotalAmount", _t(inv.taxable_amount))
    _el(totals, "TaxTotalAmount", _t(inv.tax.amount), currencyID=currency)
    _el(totals, "GrandTotalAmount", _t(inv.total))
    if inv.prepaid_applied != 0:
        _el(totals, "TotalPrepaidAmount", _t(inv.prepaid_applied))
    _el(totals, "DuePayableAmount", _t(inv.amount_due))

    preceding = inv.refers_to if credit_note else business_terms.reissue_of(inv)
    if preceding:  # BG-3: the invoice a credit note corrects, or the voided one a reissue replaces
        _el(_el(settlement, "InvoiceReferencedDocument"), "IssuerAssignedID", preceding)
    return root


def to_xml(invoice: Mapping[str, Any] | Invoice) -> bytes:
    """The CII XML of ``invoice``: UTF-8 with an XML declaration, indented,
    the same bytes for the same invoice."""
    return XML_DECLARATION + etree.tostring(build(invoice), encoding="UTF-8", pretty_print=True)
