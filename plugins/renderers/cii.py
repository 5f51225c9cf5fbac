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
  (BT-22). Amounts of a credit note are positive, as EN 16931 wants.
- Seller and buyer (BG-4, BG-7): name, postal address, VAT identifier
  (``SpecifiedTaxRegistration`` scheme ``VA``; a seller's tax number with
  no country prefix is scheme ``FC``, a buyer's is left out because
  BT-48 must be a VAT id), electronic address (BT-34, BT-49): the
  ``peppol_id`` (``9930:DE136695976`` -> scheme 9930) or else the e-mail
  (scheme ``EM``). The buyer's account id is the buyer identifier (BT-46).
- One VAT breakdown (BG-23): the invoice's category (S, AE, E, G), rate,
  taxable amount and tax, with the exemption reason (BT-120) and VATEX
  code (BT-121) for the categories that have one. Every line and
  allowance carries the same category and rate.
- Lines (BG-25): quantity in UN/ECE Rec 20 units (second SEC, minute MIN,
  hour HUR, day DAY, unit C62), the rounded line amount as the net amount.
  Net price (BT-146) and base quantity (BT-149): a per-unit price with
  more decimals than the currency's minor unit is given per a power of
  ten (0.0000115 EUR per second -> 1.15 per 100000 SEC), so the price is
  exact and readable; a tiered or package price (``unit_price`` null), or
  a price that does not give the line amount (a free allowance), is the
  line amount per the line's whole quantity, which is exact too. The
  tiers, the resource, the member account, the period of a late-usage
  adjustment and the credited line of the invoice are written in the item
  description and the line note; an adjustment line keeps its own period
  (BG-26).
- Discounts and promotional credits are document-level allowances (BG-20,
  reason code 95 "Discount" and 100 "Special rebate"), so the sum of the
  lines (BT-106) is the invoice's subtotal and the taxable amount (BT-109)
  is subtotal - discounts - promotional credit, exactly as the hub
  computes it. A percentage discount of one line also gives its percent
  and base amount (the line's amount).
- Prepaid credits are the paid amount (BT-113, ``TotalPrepaidAmount``),
  so the amount due (BT-115) is total - prepaid. Payments recorded after
  issue are not part of the document (it is the invoice as issued).
- Invoicing period (BG-14) and the actual delivery date (BT-72, the last
  day of the period: a continuous service is supplied when its period
  ends) in the buyer's time zone, which is the period's; payment terms
  (BT-20) and due date (BT-9); an invoice's number as remittance
  information (BT-83). No payment means (BG-16): ``[seller]`` has no bank
  account to give.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from lxml import etree

from hub.pricing import minor_digits  # the currency's minor digits, as the hub rounds to them

RSM = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
QDT = "urn:un:unece:uncefact:data:standard:QualifiedDataType:100"
UDT = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100"
NSMAP = {"rsm": RSM, "qdt": QDT, "ram": RAM, "udt": UDT}

#: BT-24 of the EN 16931 profile of Factur-X
GUIDELINE_EN16931 = "urn:cen.eu:en16931:2017"

XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'

#: the hub's priced units -> UN/ECE Recommendation 20 codes
UNIT_CODES = {"second": "SEC", "minute": "MIN", "hour": "HUR", "day": "DAY", "unit": "C62"}
TIME_UNITS = ("second", "minute", "hour", "day")

#: UNTDID 5189 allowance reason codes
REASON_DISCOUNT = "95"
REASON_SPECIAL_REBATE = "100"

_R = "{" + RAM + "}"
_U = "{" + UDT + "}"
_S = "{" + RSM + "}"


def _el(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    """A ``ram:`` child (``tag`` without prefix), with text and attributes."""
    el = etree.SubElement(parent, _R + tag, attrs or None)  # type: ignore[arg-type]
    if text is not None:
        el.text = text
    return el


def _date(parent: etree._Element, tag: str, day: date | str) -> None:
    """``<ram:tag><udt:DateTimeString format="102">YYYYMMDD</...></ram:tag>``."""
    text = day.strftime("%Y%m%d") if isinstance(day, date) else str(day).replace("-", "")
    etree.SubElement(_el(parent, tag), _U + "DateTimeString", format="102").text = text


def decimal_text(value: str | Decimal) -> str:
    """A decimal as plain text without exponent or trailing zeros (``1E+6`` -> ``1000000``)."""
    d = Decimal(value).normalize()
    if d == 0:
        return "0"
    return format(d, "f")


def local_period(invoice: Mapping[str, Any], line: Mapping[str, Any] | None = None) -> tuple[date, date]:
    """The first and last day (inclusive) of the invoice's (or a line's)
    period ``[period_start, period_end)`` in the buyer's time zone, the one
    its periods were cut in."""
    tz = ZoneInfo((invoice.get("buyer") or {}).get("timezone") or "UTC")
    src = line if line is not None else invoice
    start = datetime.fromisoformat(src["period_start"]).astimezone(tz)
    end = datetime.fromisoformat(src["period_end"]).astimezone(tz)
    last = (end - timedelta(microseconds=1)).date() if end > start else end.date()
    return start.date(), last


def net_price(line: Mapping[str, Any], digits: int) -> tuple[str, str | None]:
    """The net price (BT-146) and base quantity (BT-149, ``None`` for 1) of a line.

    A per-unit price is kept exact, scaled by a power of ten until it has
    at most ``digits`` decimals, when quantity x price rounds to the line's
    amount; otherwise (tiered, package, free allowance) the price is the
    line's amount for its whole quantity.
    """
    quantity = Decimal(line["quantity"])
    amount = Decimal(line["amount"])
    unit_price = line.get("unit_price")
    if unit_price is not None:
        price = Decimal(unit_price)
        if abs(quantity * price - amount) <= Decimal(1).scaleb(-digits) / 2:
            exponent = price.normalize().as_tuple().exponent if price else 0
            shift = max(0, -int(exponent) - digits)
            if shift == 0:
                return decimal_text(price), None
            return decimal_text(price.scaleb(shift)), str(10**shift)
    if quantity == 0:
        return line["amount"], None
    return line["amount"], decimal_text(quantity)


def _measure(invoice: Mapping[str, Any], line: Mapping[str, Any]) -> str | None:
    """What the line's quantity counts, in words (``vCPU-seconds of compute.vcpu``)."""
    product = (invoice.get("products") or {}).get(line["product"]) or {}
    meter, meter_unit = product.get("meter"), product.get("meter_unit")
    if not meter:
        return None
    unit = line["unit"]
    if product.get("aggregation") == "time_weighted" and unit in TIME_UNITS and meter_unit:
        what = f"{meter_unit}-{unit}s"
    elif unit != "unit":
        what = f"{meter_unit or ''} per {unit}".strip()
    else:
        what = meter_unit or "units"
    return f"Metered in {what} ({meter})"


def _item_description(invoice: Mapping[str, Any], line: Mapping[str, Any]) -> str | None:
    parts = []
    measure = _measure(invoice, line)
    if measure:
        parts.append(measure)
    tiers = line.get("tiers") or []
    if line.get("unit_price") is None and tiers:
        shown = "; ".join(
            f"{decimal_text(t['quantity'])} at {decimal_text(t['unit_price'])}"
            + (f" (up to {decimal_text(t['up_to'])})" if t.get("up_to") is not None else "")
            for t in tiers
        )
        parts.append(f"Price tiers per {line['unit']}: {shown}")
    return ". ".join(parts) or None


def _line_note(invoice: Mapping[str, Any], line: Mapping[str, Any], number: int) -> str | None:
    parts = []
    credited = invoice.get("credited_lines") or []
    if invoice["kind"] == "credit_note" and invoice.get("refers_to") and len(credited) == len(invoice["lines"]):
        parts.append(f"Credits line {credited[number - 1]} of invoice {invoice['refers_to']}")
    if line.get("resource_id"):
        parts.append(f"Resource {line['resource_id']}")
    if line.get("account") and line["account"] != invoice.get("account"):
        name = (invoice.get("members") or {}).get(line["account"])
        parts.append(f"Account {name} ({line['account']})" if name else f"Account {line['account']}")
    if line.get("adjustment_for"):
        parts.append(f"Late usage of {line['adjustment_for']}")
    return "; ".join(parts) or None


def _tax(parent: etree._Element, tag: str, tax: Mapping[str, Any], *, breakdown: bool,
         basis: str | None = None) -> None:
    """A ``TradeTaxType``: the full breakdown (BG-23) or a line's or
    allowance's category and rate."""
    el = _el(parent, tag)
    if breakdown:
        _el(el, "CalculatedAmount", tax["amount"])
    _el(el, "TypeCode", "VAT")
    if breakdown and tax.get("exemption_reason") and tax["category"] != "S":
        _el(el, "ExemptionReason", tax["exemption_reason"])
    if breakdown:
        _el(el, "BasisAmount", basis)
    _el(el, "CategoryCode", tax["category"])
    if breakdown and tax.get("exemption_code") and tax["category"] != "S":
        _el(el, "ExemptionReasonCode", tax["exemption_code"])
    _el(el, "RateApplicablePercent", decimal_text(tax["rate"]))


def _vat_scheme(vat_id: str) -> str:
    """``VA`` for a VAT identifier (a country prefix), ``FC`` for a local tax number."""
    return "VA" if len(vat_id) > 2 and vat_id[:2].isalpha() and vat_id[:2].isupper() else "FC"


def _party(parent: etree._Element, tag: str, party: Mapping[str, Any], *, seller: bool) -> None:
    el = _el(parent, tag)
    if not seller and party.get("id"):
        _el(el, "ID", party["id"])  # BT-46
    _el(el, "Name", party.get("name") or "")
    if seller and (party.get("email") or party.get("phone")):
        contact = _el(el, "DefinedTradeContact")
        if party.get("phone"):
            _el(_el(contact, "TelephoneUniversalCommunication"), "CompleteNumber", party["phone"])
        if party.get("email"):
            _el(_el(contact, "EmailURIUniversalCommunication"), "URIID", party["email"])
    address = party.get("address") or {}
    postal = _el(el, "PostalTradeAddress")
    if address.get("postal_code"):
        _el(postal, "PostcodeCode", address["postal_code"])
    if address.get("street"):
        _el(postal, "LineOne", address["street"])
    if address.get("city"):
        _el(postal, "CityName", address["city"])
    _el(postal, "CountryID", party.get("country") or "")
    if address.get("region"):
        _el(postal, "CountrySubDivisionName", address["region"])
    peppol = party.get("peppol_id")
    if peppol and ":" in peppol:
        scheme, _, value = peppol.partition(":")
        _el(_el(el, "URIUniversalCommunication"), "URIID", value, schemeID=scheme)
    elif party.get("email"):
        _el(_el(el, "URIUniversalCommunication"), "URIID", party["email"], schemeID="EM")
    vat_id = party.get("vat_id")
    if vat_id:
        scheme = _vat_scheme(vat_id)
        if seller or scheme == "VA":
            _el(_el(el, "SpecifiedTaxRegistration"), "ID", vat_id, schemeID=scheme)


def _payment_terms(invoice: Mapping[str, Any]) -> str | None:
    if invoice["kind"] == "credit_note":
        refers = invoice.get("refers_to")
        return f"Credit of {invoice['amount_due']} {invoice['currency']}" + (
            f" against invoice {refers}." if refers else ".")
    issue, due = invoice.get("issue_date"), invoice.get("due_date")
    if issue and due:
        days = (date.fromisoformat(due) - date.fromisoformat(issue)).days
        return f"Payable within {days} days of the invoice date, by {due}."
    return None


def build(invoice: Mapping[str, Any]) -> etree._Element:
    """The ``rsm:CrossIndustryInvoice`` element of ``invoice``."""
    if not invoice.get("number"):
        raise ValueError("a draft has no number: only issued invoices and credit notes have documents")
    credit_note = invoice["kind"] == "credit_note"
    currency = invoice["currency"]
    digits = minor_digits(currency)
    tax = invoice["tax"]
    lines = invoice["lines"]
    period_first, period_last = local_period(invoice)

    root = etree.Element(_S + "CrossIndustryInvoice", nsmap=NSMAP)
    context = etree.SubElement(root, _S + "ExchangedDocumentContext")
    _el(_el(context, "GuidelineSpecifiedDocumentContextParameter"), "ID", GUIDELINE_EN16931)

    document = etree.SubElement(root, _S + "ExchangedDocument")
    _el(document, "ID", invoice["number"])
    _el(document, "TypeCode", "381" if credit_note else "380")
    _date(document, "IssueDateTime", invoice["issue_date"])
    if credit_note and invoice.get("reason"):
        _el(_el(document, "IncludedNote"), "Content", invoice["reason"])

    transaction = etree.SubElement(root, _S + "SupplyChainTradeTransaction")
    for number, line in enumerate(lines, start=1):
        item = _el(transaction, "IncludedSupplyChainTradeLineItem")
        doc_line = _el(item, "AssociatedDocumentLineDocument")
        _el(doc_line, "LineID", str(number))
        note = _line_note(invoice, line, number)
        if note:
            _el(_el(doc_line, "IncludedNote"), "Content", note)
        product = _el(item, "SpecifiedTradeProduct")
        _el(product, "SellerAssignedID", line["product"])
        _el(product, "Name", line.get("description") or line["product"])
        description = _item_description(invoice, line)
        if description:
            _el(product, "Description", description)
        unit_code = UNIT_CODES.get(line["unit"], "C62")
        price, basis = net_price(line, digits)
        net = _el(_el(item, "SpecifiedLineTradeAgreement"), "NetPriceProductTradePrice")
        _el(net, "ChargeAmount", price)
        if basis is not None:
            _el(net, "BasisQuantity", basis, unitCode=unit_code)
        _el(_el(item, "SpecifiedLineTradeDelivery"), "BilledQuantity", decimal_text(line["quantity"]),
            unitCode=unit_code)
        settlement = _el(item, "SpecifiedLineTradeSettlement")
        _tax(settlement, "ApplicableTradeTax", tax, breakdown=False)
        first, last = local_period(invoice, line)
        if (first, last) != (period_first, period_last):
            span = _el(settlement, "BillingSpecifiedPeriod")
            _date(span, "StartDateTime", first)
            _date(span, "EndDateTime", last)
        _el(_el(settlement, "SpecifiedTradeSettlementLineMonetarySummation"), "LineTotalAmount", line["amount"])

    agreement = _el(transaction, "ApplicableHeaderTradeAgreement")
    _party(agreement, "SellerTradeParty", invoice.get("seller") or {}, seller=True)
    _party(agreement, "BuyerTradeParty", invoice.get("buyer") or {}, seller=False)

    delivery = _el(transaction, "ApplicableHeaderTradeDelivery")
    _date(_el(delivery, "ActualDeliverySupplyChainEvent"), "OccurrenceDateTime", period_last)

    settlement = _el(transaction, "ApplicableHeaderTradeSettlement")
    if not credit_note:
        _el(settlement, "PaymentReference", invoice["number"])
    _el(settlement, "InvoiceCurrencyCode", currency)
    seller = invoice.get("seller") or {}
    if seller.get("iban") and not credit_note:
        # BG-16: a credit transfer to the seller's IBAN (BT-84) and BIC
        # (BT-86); SEPA (58) for euros
        means = _el(settlement, "SpecifiedTradeSettlementPaymentMeans")
        _el(means, "TypeCode", "58" if currency == "EUR" else "30")
        account = _el(means, "PayeePartyCreditorFinancialAccount")
        _el(account, "IBANID", seller["iban"])
        if seller.get("name"):
            _el(account, "AccountName", seller["name"])
        if seller.get("bic"):
            _el(_el(means, "PayeeSpecifiedCreditorFinancialInstitution"), "BICID", seller["bic"])
    _tax(settlement, "ApplicableTradeTax", tax, breakdown=True, basis=invoice["taxable_amount"])
    span = _el(settlement, "BillingSpecifiedPeriod")
    _date(span, "StartDateTime", period_first)
    _date(span, "EndDateTime", period_last)

    allowances: list[tuple[str, str, str, str | None, str | None]] = []
    for allowance in invoice.get("allowances") or []:
        percent = basis_amount = None
        index = allowance.get("line")
        if allowance.get("percent") is not None and index and 1 <= index <= len(lines):
            percent, basis_amount = decimal_text(allowance["percent"]), lines[index - 1]["amount"]
        allowances.append((allowance["amount"], REASON_DISCOUNT, allowance.get("description") or "Discount",
                           percent, basis_amount))
    if Decimal(invoice["promotional_credit"]) != 0:
        allowances.append((invoice["promotional_credit"], REASON_SPECIAL_REBATE, "Promotional credit", None, None))
    for amount, code, reason, percent, basis_amount in allowances:
        charge = _el(settlement, "SpecifiedTradeAllowanceCharge")
        etree.SubElement(_el(charge, "ChargeIndicator"), _U + "Indicator").text = "false"
        if percent is not None:
            _el(charge, "CalculationPercent", percent)
            _el(charge, "BasisAmount", basis_amount)
        _el(charge, "ActualAmount", amount)
        _el(charge, "ReasonCode", code)
        _el(charge, "Reason", reason)
        _tax(charge, "CategoryTradeTax", tax, breakdown=False)

    terms = _payment_terms(invoice)
    if terms or invoice.get("due_date"):
        payment = _el(settlement, "SpecifiedTradePaymentTerms")
        if terms:
            _el(payment, "Description", terms)
        if invoice.get("due_date"):
            _date(payment, "DueDateDateTime", invoice["due_date"])

    totals = _el(settlement, "SpecifiedTradeSettlementHeaderMonetarySummation")
    _el(totals, "LineTotalAmount", invoice["subtotal"])
    if allowances:
        allowance_total = Decimal(invoice["discount_total"]) + Decimal(invoice["promotional_credit"])
        _el(totals, "AllowanceTotalAmount", f"{allowance_total:.{digits}f}")
    _el(totals, "TaxBasisTotalAmount", invoice["taxable_amount"])
    _el(totals, "TaxTotalAmount", tax["amount"], currencyID=currency)
    _el(totals, "GrandTotalAmount", invoice["total"])
    if Decimal(invoice["prepaid_applied"]) != 0:
        _el(totals, "TotalPrepaidAmount", invoice["prepaid_applied"])
    _el(totals, "DuePayableAmount", invoice["amount_due"])

    if credit_note and invoice.get("refers_to"):
        _el(_el(settlement, "InvoiceReferencedDocument"), "IssuerAssignedID", invoice["refers_to"])
    return root


def to_xml(invoice: Mapping[str, Any]) -> bytes:
    """The CII XML of ``invoice``: UTF-8 with an XML declaration, indented,
    the same bytes for the same invoice."""
    return XML_DECLARATION + etree.tostring(build(invoice), encoding="UTF-8", pretty_print=True)
