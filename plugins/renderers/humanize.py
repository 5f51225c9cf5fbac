"""How an invoice reads to a person: human units, display precision and the
presentation of an invoice, shared by the HTML and PDF renderers.

:func:`quantity_label` and :func:`human_quantity` show a line's quantity as
the figure the hub billed (``3,456,762 vCPU-s``) and, where it helps, in
human units next to it (``960 h 12 min 42 s``). :func:`present` turns an
issued invoice (the JSON of ``hub invoices show NUMBER --json``, read
through :class:`hub.plugin.invoice.Invoice`) into a
:class:`~hub_plugins.renderers.presentation.Presentation`: every block, row
and total of the document, already formatted (with
:class:`~hub_plugins.renderers.formatting.Formatter`), so both renderers
show the same content and neither formats anything itself.

Display precision (the figures themselves stay exact in the invoice JSON
and in the UBL and CII documents):

- a quantity shows at most :data:`QUANTITY_PLACES` (3) decimals, rounded
  half up, trailing zeros dropped: 31,683.059166666667 GiB-h reads
  ``31,683.059 GiB-h``, a count stays an integer (``2``); a quantity that
  is not zero but would show as 0 keeps three significant digits
  (``0.000417``), so usage never reads as none;
- a part of a tiered or package price is money: its exact amount
  (``138.07376625``) is shown rounded half up to the currency's minor unit
  (``€138.07``); its unit price keeps its full precision (``€0.0045``).

Human units (pinned by tests/test_render_html_pdf.py):

- a time-weighted quantity priced per second, minute or day of something
  counted (vCPU, GPU, an instance) is a duration: 762 vCPU-s is
  ``12 min 42 s`` of vCPU time; durations stop at hours (``960 h 12 min
  42 s``), the unit cloud usage is read in; a fraction of a second shows
  to the same 3 decimals (``42.5 s``);
- of a size (GiB, GB, TB...) it is size-hours: 7,200 GiB-s is ``2 GiB-h``,
  shown to 2 decimals with ``≈`` when that is not exact;
- a quantity already per hour, or per unit (42.5 GB), is shown once;
- a flat plan's quantity (the fraction of the period the account was
  active) is also shown as a percentage of the period.

Labels are English; numbers, money, dates and country names follow the
buyer's ``locale``.

This module must not know how a document is drawn (HTML, PDF) nor the
e-invoice formats, the store or the hub's stages.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from babel.numbers import format_decimal
from stdnum.iban import format as format_iban

from hub.plugin.en16931 import VAT_CATEGORIES, minor_unit
from hub.plugin.invoice import Credit, Invoice, Line, Party as InvoiceParty
from hub_plugins.renderers.formatting import Formatter
from hub_plugins.renderers.presentation import (
    LineGroup,
    LineRow,
    Party,
    Presentation,
    ResourceRow,
    TaxRow,
    TierRow,
    TotalRow,
)

__all__ = [
    "CITY_FIRST", "QUANTITY_PLACES", "RESOURCE_ROWS", "SIZE_UNITS", "TAX_CATEGORIES", "TAX_NOTES", "TIME_UNITS",
    "Formatter", "LineGroup", "LineRow", "Party", "Presentation", "ResourceRow", "TaxRow", "TierRow", "TotalRow",
    "duration", "human_quantity", "present", "quantity_label", "shown_quantity", "unit_label",
]

#: seconds in one priced time unit, and the symbol after the meter's unit
TIME_UNITS: Mapping[str, tuple[int, str]] = {
    "second": (1, "s"), "minute": (60, "min"), "hour": (3600, "h"), "day": (86400, "d"),
}

#: meter units that measure a size: their time-weighted quantity reads as size-hours
SIZE_UNITS = frozenset({
    "B", "byte", "bytes", "kB", "KB", "MB", "GB", "TB", "PB", "KiB", "MiB", "GiB", "TiB", "PiB",
})

TAX_CATEGORIES: Mapping[str, str] = VAT_CATEGORIES
#: what the VAT row of the totals adds to a zero rate
TAX_NOTES: Mapping[str, str] = {"AE": "reverse charge", "G": "export", "E": "exempt"}

#: countries that write the city, the region, then the postal code
CITY_FIRST = frozenset({"US", "CA", "AU"})

#: decimals a quantity is shown with: a thousandth of a GiB-h is 3.6 GiB-s,
#: of a day 86 seconds; more digits are noise to a reader, not precision
QUANTITY_PLACES = 3
_QUANTUM = Decimal(1).scaleb(-QUANTITY_PLACES)

#: resources listed under a line in a document; the others are summed in one
#: row (the invoice JSON has every one)
RESOURCE_ROWS = 10


# --------------------------------------------------------------------------
# Quantities


def shown_quantity(quantity: Decimal | str) -> Decimal:
    """``quantity`` as a document shows it (see the module docstring):
    ``6082.626527777778`` -> ``6082.627``, ``3840.000`` -> ``3840``,
    ``0.000416666667`` -> ``0.000417``."""
    q = Decimal(quantity)
    shown = q.quantize(_QUANTUM, ROUND_HALF_UP)
    if shown == 0 and q != 0:
        shown = q.quantize(Decimal(1).scaleb(q.adjusted() - 2), ROUND_HALF_UP)
    return shown.quantize(Decimal(1)) if shown == shown.to_integral_value() else shown.normalize()


def duration(seconds: Decimal, fmt: Formatter) -> str:
    """Seconds as hours, minutes and seconds: ``762`` -> ``12 min 42 s``,
    ``3605`` -> ``1 h 0 min 5 s``; hours are grouped (``2,688 h``)."""
    whole = int(seconds)
    fraction = seconds - whole
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(Decimal(hours), "h"), (Decimal(minutes), "min"), (shown_quantity(secs + fraction), "s")]
    while len(parts) > 1 and not parts[0][0]:
        parts.pop(0)
    while len(parts) > 1 and not parts[-1][0]:
        parts.pop()
    return " ".join(f"{fmt.number(value)} {symbol}" for value, symbol in parts)


def quantity_label(quantity: str | Decimal, unit: str, meter_unit: str | None, fmt: Formatter) -> str:
    """The figure billed (:func:`shown_quantity`), with its unit:
    ``3.456.762 vCPU-s``, ``3.840 GiB-h``, ``42,5 GB``."""
    number = fmt.number(shown_quantity(quantity))
    if unit in TIME_UNITS:
        symbol = TIME_UNITS[unit][1]
        return f"{number} {meter_unit}-{symbol}" if meter_unit else f"{number} {symbol}"
    return f"{number} {meter_unit}" if meter_unit else number


def unit_label(unit: str, meter_unit: str | None) -> str | None:
    """What one unit price buys: ``vCPU-s``, ``GiB-h``, ``GB``; ``None`` for
    a bare unit."""
    if unit in TIME_UNITS:
        symbol = TIME_UNITS[unit][1]
        return f"{meter_unit}-{symbol}" if meter_unit else symbol
    return meter_unit


def human_quantity(quantity: str | Decimal, unit: str, meter_unit: str | None, fmt: Formatter,
                   *, flat: bool = False) -> str | None:
    """The quantity in human units, or ``None`` when the figure reads well
    as it is (see the module docstring for the rules)."""
    q = Decimal(quantity)
    if flat:
        if q == 1:
            return None
        share = (q * 100).quantize(Decimal("0.01"))
        sign = "" if share == q * 100 else "≈ "
        return f"{sign}{fmt.percent(share)} of the period"
    if unit not in TIME_UNITS or unit == "hour":
        return None
    seconds = q * TIME_UNITS[unit][0]
    if meter_unit in SIZE_UNITS:
        hours = seconds / 3600
        shown = hours.quantize(Decimal("0.01"))
        if shown == hours:
            return f"{fmt.number(hours.normalize())} {meter_unit}-h"
        return f"≈ {format_decimal(shown, '#,##0.00', locale=fmt.locale)} {meter_unit}-h"
    text = duration(seconds, fmt)
    return f"{text} of {meter_unit} time" if meter_unit else text


# --------------------------------------------------------------------------
# The presentation of an invoice


def _party(party: InvoiceParty, fmt: Formatter, *, customer: bool) -> Party:
    addr = party.address
    city, region, postal = addr.city, addr.region, addr.postal_code
    if party.country in CITY_FIRST:
        place = ", ".join(x for x in (city, " ".join(x for x in (region, postal) if x)) if x)
    else:
        place = ", ".join(x for x in (" ".join(x for x in (postal, city) if x), region) if x)
    lines = [x for x in (addr.street, place, fmt.country(party.country)) if x]
    ids = []
    if customer and party.id:
        ids.append(("Customer ID", party.id))
    if party.vat_id:
        ids.append(("VAT ID", party.vat_id))
    if party.peppol_id:
        ids.append(("Peppol ID", party.peppol_id))
    if party.email:
        ids.append(("Email", party.email))
    if party.phone:
        ids.append(("Phone", party.phone))
    return Party(party.name or "", tuple(lines), tuple(ids))


def _tier_rows(line: Line, per: str | None, digits: int, fmt: Formatter) -> tuple[TierRow, ...]:
    # The JSON does not name the price model: several parts are graduated
    # tiers; one part is a volume tier, a package price (its quantity
    # counts packages, so it gets no unit unless it is the line's quantity)
    # or the first graduated tier.
    parts = line.tiers
    suffix = f" {per}" if per else ""
    rows = []
    for i, t in enumerate(parts, 1):
        quantity = fmt.number(shown_quantity(t.quantity)) + suffix
        if len(parts) == 1:
            label = f"Up to {fmt.number(t.up_to)}{suffix}" if t.up_to is not None else ""
            if t.quantity != line.quantity:
                quantity = fmt.number(shown_quantity(t.quantity))
        elif t.up_to is not None:
            label = f"Tier {i}: up to {fmt.number(t.up_to)}{suffix}"
        else:
            up_to = parts[i - 2].up_to
            label = f"Tier {i}: above {fmt.number(up_to if up_to is not None else Decimal(0))}{suffix}"
        amount = t.amount.quantize(minor_unit(digits), ROUND_HALF_UP)  # for display: the line is exact
        rows.append(TierRow(label, quantity, fmt.price(t.unit_price), fmt.money(amount)))
    return tuple(rows)


def _row(number: int, line: Line, invoice: Invoice, fmt: Formatter) -> LineRow:
    product = invoice.product(line.product)
    meter_unit = product.meter_unit
    flat = product.meter is None and line.product != "manual" and not line.records
    notes = []
    if line.resource_id:
        notes.append(f"Resource {line.resource_id}")
    if (line.period_start, line.period_end) != (invoice.period_start, invoice.period_end):
        notes.append(f"Period {fmt.period(line.period_start.isoformat(), line.period_end.isoformat())}")
    if line.adjustment_for:
        notes.append(f"Late usage of {line.adjustment_for}")
    per = unit_label(line.unit, meter_unit)
    return LineRow(
        number=number, description=line.description or "", notes=tuple(notes),
        quantity=quantity_label(line.quantity, line.unit, meter_unit, fmt),
        human=human_quantity(line.quantity, line.unit, meter_unit, fmt, flat=flat),
        unit_price=fmt.price(line.unit_price) if line.unit_price is not None else "tiered",
        per=per, amount=fmt.money(line.amount), tiers=_tier_rows(line, per, invoice.minor_digits, fmt),
        resources=_resource_rows(line, meter_unit, fmt),
    )


def _resource_rows(line: Line, meter_unit: str | None, fmt: Formatter) -> tuple[ResourceRow, ...]:
    """A line's drill-down as a document shows it: its largest
    :data:`RESOURCE_ROWS` resources by quantity, then the rest in one row
    ("1,234 other resources"), so a line of thousands of short-lived pods
    stays one table row and ten, and the rows still add up to the line."""
    shares = sorted(line.resources, key=lambda r: (-r.quantity, r.resource_id))

    def row(label: str, quantity: Decimal, records: int) -> ResourceRow:
        return ResourceRow(label, quantity_label(quantity, line.unit, meter_unit, fmt),
                           human_quantity(quantity, line.unit, meter_unit, fmt),
                           f"{fmt.number(str(records))} usage record{'' if records == 1 else 's'}")

    rows = [row(f"Resource {r.resource_id}", r.quantity, r.records) for r in shares[:RESOURCE_ROWS]]
    rest = shares[RESOURCE_ROWS:]
    if rest:
        rows.append(row(f"{fmt.number(str(len(rest)))} other resources",
                        sum((r.quantity for r in rest), Decimal(0)), sum(r.records for r in rest)))
    return tuple(rows)


def _groups(invoice: Invoice, fmt: Formatter) -> tuple[LineGroup, ...]:
    rows = [(line.account, _row(i, line, invoice, fmt)) for i, line in enumerate(invoice.lines, 1)]
    members = invoice.members or {}
    if not members:
        return (LineGroup(None, tuple(r for _, r in rows), None),)
    order: dict[str | None, list[tuple[LineRow, Decimal]]] = {}
    for (account, row), line in zip(rows, invoice.lines):
        order.setdefault(account, []).append((row, line.amount))
    buyer = invoice.buyer
    groups = []
    for account, items in order.items():
        name = members.get(account or "") or (buyer.name if account == buyer.id else account)
        groups.append(LineGroup(f"{name} ({account})", tuple(r for r, _ in items),
                                fmt.money(sum((a for _, a in items), Decimal(0)))))
    return tuple(groups)


def _totals(invoice: Invoice, fmt: Formatter, tax_label: str) -> tuple[TotalRow, ...]:
    credit_note = invoice.is_credit_note
    out = [TotalRow("Subtotal", fmt.money(invoice.subtotal), "sum")]
    for a in invoice.allowances:
        note = None
        if a.percent is not None:
            note = f"{fmt.percent(a.percent)} of line {a.line}" if a.line else fmt.percent(a.percent)
        out.append(TotalRow(a.description or "Discount", fmt.money(a.amount, negate=True), "item", note))
    promotional = [c for c in invoice.credits if c.kind == "promotional"]
    prepaid = [c for c in invoice.credits if c.kind == "prepaid"]

    def credit_rows(items: list[Credit], label: str, total: Decimal) -> None:
        if items:
            for c in items:
                left = f"balance left {fmt.money(c.remaining)}" if c.remaining is not None else None
                out.append(TotalRow(label, fmt.money(c.amount, negate=True), "item", left))
        elif total:
            out.append(TotalRow(label, fmt.money(total, negate=True), "item"))

    credit_rows(promotional, "Promotional credit", invoice.promotional_credit)
    if len(out) > 1:
        out.append(TotalRow("Taxable amount", fmt.money(invoice.taxable_amount), "sum"))
    out.append(TotalRow(tax_label, fmt.money(invoice.tax.amount), "item"))
    out.append(TotalRow("Total credited" if credit_note else "Total", fmt.money(invoice.total), "total"))
    credit_rows(prepaid, "Prepaid credit", invoice.prepaid_applied)
    if not credit_note:
        out.append(TotalRow("Amount due", fmt.money(invoice.amount_due), "due"))
    return tuple(out)


def formatter(invoice: Invoice) -> Formatter:
    """The :class:`Formatter` of the buyer's locale, the invoice's currency
    and the buyer's time zone."""
    return Formatter(invoice.buyer.locale or "en", invoice.currency, invoice.buyer.timezone or "UTC")


def present(invoice: Mapping[str, Any] | Invoice) -> Presentation:
    """The :class:`Presentation` of an issued invoice or credit note (its
    JSON mapping or its view)."""
    inv = Invoice.of(invoice)
    fmt = formatter(inv)
    credit_note = inv.is_credit_note
    number = inv.number or f"draft:{inv.draft_id if inv.draft_id is not None else ''}"
    facts = [("Credit note number" if credit_note else "Invoice number", number)]
    if inv.issue_date:
        facts.append(("Issue date", fmt.date(inv.issue_date.isoformat())))
    if credit_note and inv.refers_to:
        facts.append(("Credits invoice", inv.refers_to))
    if inv.due_date and not credit_note:
        facts.append(("Due date", fmt.date(inv.due_date.isoformat())))
    facts.append(("Billing period", fmt.period(inv.period_start.isoformat(), inv.period_end.isoformat())))

    tax = inv.tax
    category = TAX_CATEGORIES.get(tax.category, tax.category)
    reason = tax.exemption_reason
    if reason and tax.exemption_code:
        reason = f"{reason} ({tax.exemption_code})"
    tax_row = TaxRow(category, tax.category, fmt.percent(tax.rate), fmt.money(inv.taxable_amount),
                     fmt.money(tax.amount), reason)
    note = TAX_NOTES.get(tax.category)
    tax_label = f"VAT {tax_row.rate} ({note})" if note else f"VAT {tax_row.rate}"

    seller = inv.seller
    notes = []
    if credit_note:
        if inv.reason:
            notes.append(f"Reason: {inv.reason}")
        if inv.refers_to:
            notes.append(f"This credit note reduces invoice {inv.refers_to} by {fmt.money(inv.total)}.")
    elif inv.due_date:
        if inv.amount_due:
            notes.append(f"Please pay {fmt.money(inv.amount_due)} by {fmt.date(inv.due_date.isoformat())} "
                         f"({inv.payment_days} days net), quoting {number} as the payment reference.")
            if seller.iban:
                bank = f"IBAN {format_iban(seller.iban)}" + (f", BIC {seller.bic}" if seller.bic else "")
                notes.append(f"Bank transfer to {seller.name or 'us'}: {bank}.")
        else:
            notes.append("Nothing to pay: this invoice is settled by credit.")

    footer = tuple(x for x in (seller.name, seller.vat_id and f"VAT ID {seller.vat_id}",
                               seller.email, seller.phone and f"Tel. {seller.phone}") if x)
    return Presentation(
        lang=str(fmt.locale).replace("_", "-"),
        title="Credit note" if credit_note else "Invoice",
        number=number, is_credit_note=credit_note, facts=tuple(facts),
        seller=_party(seller, fmt, customer=False), buyer=_party(inv.buyer, fmt, customer=True),
        groups=_groups(inv, fmt), totals=_totals(inv, fmt, tax_label), tax=tax_row,
        notes=tuple(notes), footer=footer,
    )
