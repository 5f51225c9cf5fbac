"""The lines of a UBL 2.1 Invoice or CreditNote (BG-25), and the element
helpers the whole document uses.

:class:`UblContext` holds what every element of one document depends on
(the invoice view, its currency and minor unit, its one VAT category and
rate, whether it is Peppol) and writes amounts, days and tax categories.
:func:`add_line` writes one ``InvoiceLine`` / ``CreditNoteLine``: quantity
in UN/ECE Rec 20 units, the rounded line amount, the member account as
accounting cost, a late-usage adjustment's note and (plain EN 16931 only)
its period, the free allowance, the item with its properties, and the net
price per base quantity (see :func:`line_price` and ``ubl.py``'s docstring).

This module must not know the document's header, parties, allowances or
totals (``ubl.py``), the validators, the store or the hub's stages.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from lxml import etree

from hub.plugin.en16931 import MAX_BASE_EXPONENT, decimal_text, explains, minor_unit, scaled_price, unit_code
from hub.plugin.invoice import Invoice, Line
from hub_plugins.renderers import business_terms as terms

INVOICE_NS = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
CREDIT_NOTE_NS = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
_PREFIX = {"cac": CAC, "cbc": CBC}


def text(value: str | None) -> str:
    """A text field stripped, ``""`` for none."""
    return value.strip() if isinstance(value, str) else ""


def exact(value: Decimal) -> str:
    """A figure as the invoice's JSON writes it (``2.60``, ``42.5``)."""
    return format(value, "f")


def sub(parent: etree._Element, tag: str, content: str | None = None, **attrib: str) -> etree._Element:
    """A ``cac:`` or ``cbc:`` child of ``parent`` with text and attributes."""
    prefix, local = tag.split(":")
    el = etree.SubElement(parent, f"{{{_PREFIX[prefix]}}}{local}", attrib)
    if content is not None:
        el.text = content
    return el


class UblContext:
    """One document's invoice view and what its elements share."""

    def __init__(self, inv: Invoice, *, peppol: bool) -> None:
        self.inv = inv
        self.credit = inv.is_credit_note
        self.currency = inv.currency
        self.digits = inv.minor_digits
        self.minor = minor_unit(self.digits)
        self.peppol = peppol
        self.category = str(inv.tax.category)
        self.rate = decimal_text(inv.tax.rate)
        #: BT-120 in the buyer's language
        self.exemption_reason = terms.exemption_reason(inv)

    def money(self, value: Decimal) -> str:
        return format(value.quantize(self.minor), "f")

    def amount(self, parent: etree._Element, tag: str, value: str | Decimal) -> etree._Element:
        """An amount with ``currencyID``: a text as given, a computed
        Decimal with the currency's minor digits."""
        content = value if isinstance(value, str) else self.money(value)
        return sub(parent, tag, content, currencyID=self.currency)

    def tax_category(self, parent: etree._Element, tag: str, *, exemption: bool = False) -> None:
        tax = self.inv.tax
        cat = sub(parent, tag)
        sub(cat, "cbc:ID", self.category)
        sub(cat, "cbc:Percent", self.rate)
        if exemption and self.category != "S":
            if text(tax.exemption_code):
                sub(cat, "cbc:TaxExemptionReasonCode", text(tax.exemption_code))
            if self.exemption_reason:
                sub(cat, "cbc:TaxExemptionReason", self.exemption_reason)
        sub(sub(cat, "cac:TaxScheme"), "cbc:ID", "VAT")


def add_line(ctx: UblContext, root: etree._Element, position: int, line: Line) -> None:
    """The ``InvoiceLine`` (``CreditNoteLine``) of ``line`` at ``position``."""
    inv = ctx.inv
    try:
        code = unit_code(line.unit)
    except ValueError as exc:
        raise ValueError(f"line {position}: {exc}") from None
    el = sub(root, "cac:CreditNoteLine" if ctx.credit else "cac:InvoiceLine")
    sub(el, "cbc:ID", str(position))
    adjustment = text(line.adjustment_for)
    note = terms.line_note(inv, position)  # BT-127 of an adjustment or a carried line, in the buyer's language
    if note or adjustment:
        sub(el, "cbc:Note", note or f"Late usage of {adjustment}, billed after that period was invoiced")
    sub(el, "cbc:CreditedQuantity" if ctx.credit else "cbc:InvoicedQuantity", exact(line.quantity), unitCode=code)
    ctx.amount(el, "cbc:LineExtensionAmount", exact(line.amount))
    member = text(line.account)
    if member and member != text(inv.account):
        sub(el, "cbc:AccountingCost", member)
    if adjustment and not ctx.peppol:
        period = sub(el, "cac:InvoicePeriod")
        first, last = inv.local_period(line)
        sub(period, "cbc:StartDate", first.isoformat())
        sub(period, "cbc:EndDate", last.isoformat())
    price, base, free = line_price(line, ctx.digits)
    if free is not None:
        ac = sub(el, "cac:AllowanceCharge")
        sub(ac, "cbc:ChargeIndicator", "false")
        sub(ac, "cbc:AllowanceChargeReason", "Free allowance")
        ctx.amount(ac, "cbc:Amount", free)
    _item(ctx, el, line, member)
    price_el = sub(el, "cac:Price")
    ctx.amount(price_el, "cbc:PriceAmount", price)
    if base != 1:
        sub(price_el, "cbc:BaseQuantity", str(base), unitCode=code)


def _item(ctx: UblContext, parent: etree._Element, line: Line, member: str) -> None:
    inv = ctx.inv
    item = sub(parent, "cac:Item")
    if line.tiers:
        sub(item, "cbc:Description", "Price breakdown: " + " + ".join(
            f"{exact(t.quantity)} x {exact(t.unit_price)}" for t in line.tiers))
    sub(item, "cbc:Name", text(line.description) or str(line.product))
    sub(sub(item, "cac:SellersItemIdentification"), "cbc:ID", str(line.product))
    ctx.tax_category(item, "cac:ClassifiedTaxCategory")
    properties = []
    if text(line.resource_id):
        properties.append(("Resource", text(line.resource_id)))
    if member and member != text(inv.account):
        name = text(inv.member_name(member))
        properties.append(("Account", f"{name} ({member})" if name else member))
    meter = inv.product(line.product)
    if text(meter.meter):
        unit = text(meter.meter_unit)
        properties.append(("Meter", f"{text(meter.meter)} ({unit})" if unit else text(meter.meter)))
    if text(line.adjustment_for):
        properties.append(("Adjustment for", text(line.adjustment_for)))
    for name, value in properties:
        prop = sub(item, "cac:AdditionalItemProperty")
        sub(prop, "cbc:Name", name)
        sub(prop, "cbc:Value", value)


def line_price(line: Line, digits: int) -> tuple[Decimal, int, Decimal | None]:
    """Net price (BT-146), base quantity (BT-149) and the free allowance of
    ``line``, if any.

    The catalog price, scaled (:func:`hub.plugin.en16931.scaled_price`),
    when it explains the amount (:func:`hub.plugin.en16931.explains`: half
    a minor unit per rounding); when quantity x price rounds to more than
    the amount, the difference is a free allowance and the catalog price
    still shows; otherwise a derived price (:func:`derived_price`)."""
    quantity, amount = line.quantity, line.amount
    if line.unit_price is not None:
        unit_price = line.unit_price
        scaled = scaled_price(unit_price, digits)
        if scaled is not None:
            if explains(quantity, unit_price, amount, digits, line.roundings):
                return scaled[0], scaled[1], None
            gross = (quantity * unit_price).quantize(minor_unit(digits), ROUND_HALF_UP)
            if gross > amount:
                return scaled[0], scaled[1], gross - amount
    return derived_price(quantity, amount, digits)


def derived_price(quantity: Decimal, amount: Decimal, digits: int) -> tuple[Decimal, int, None]:
    """``amount / quantity`` per the smallest power of ten whose price,
    rounded to the minor unit, explains the amount (one rounding)."""
    minor = minor_unit(digits)
    if quantity <= 0:
        return amount, 1, None
    price = amount
    for exponent in range(MAX_BASE_EXPONENT + 1):
        base = 10**exponent
        price = (amount * base / quantity).quantize(minor, ROUND_HALF_UP)
        if explains(quantity, price / base, amount, digits):
            return price, base, None
    return price, 10**MAX_BASE_EXPONENT, None
