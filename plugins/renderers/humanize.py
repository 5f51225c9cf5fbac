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
- a quantity already per hour, or per unit (42.5 GB), is shown once, but
  a fraction of an hour of something counted is also a duration: a GPU
  run billed as 0.333333333333 GPU-h reads ``20 min of GPU time``;
- a line with a free allowance gets a row for it before its tiers (or,
  priced per unit, a row for what was charged), so the rows add up to the
  line's quantity; a line gets its drill-down to resources only when it
  has two or more;
- a flat plan's quantity (the fraction of the period the account was
  active) is also shown as a percentage of the period.

Words are in the buyer's language (:mod:`hub_plugins.renderers.i18n`'s
catalogs); numbers, money, dates and country names follow the buyer's
``locale``. What explains the figures to a finance team (the free
allowance as a row, the time a granularity or minimum billed, what an
adjustment billed before, the legal wording of a zero VAT rate, what a
credit note settled, the seller's legal details) is
:mod:`hub_plugins.renderers.explain`'s.

This module must not know how a document is drawn (HTML, PDF) nor the
e-invoice formats, the store or the hub's stages.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from babel.numbers import format_decimal

from hub.plugin.en16931 import minor_unit
from hub.plugin.invoice import Invoice, Line, Party as InvoiceParty
from hub.plugin.units import TIME_UNITS, unit_label
from hub_plugins.renderers.explain import (
    TAX_CATEGORIES,
    TAX_NOTES,
    Gettext,
    document_notes,
    english as _english,
    facts,
    footer,
    labels,
    legal_details,
    line_explains,
    tax_wording,
    totals,
)
from hub_plugins.renderers.formatting import Formatter
from hub_plugins.renderers.i18n import translator
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

#: meter units that measure a size: their time-weighted quantity reads as size-hours
SIZE_UNITS = frozenset({
    "B", "byte", "bytes", "kB", "KB", "MB", "GB", "TB", "PB", "KiB", "MiB", "GiB", "TiB", "PiB",
})

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


def human_quantity(quantity: str | Decimal, unit: str, meter_unit: str | None, fmt: Formatter,
                   *, flat: bool = False, _: Gettext = _english) -> str | None:
    """The quantity in human units, or ``None`` when the figure reads well
    as it is (see the module docstring for the rules); ``_`` translates
    its words."""
    q = Decimal(quantity)
    if flat:
        if q == 1:
            return None
        share = (q * 100).quantize(Decimal("0.01"))
        sign = "" if share == q * 100 else "≈ "
        return sign + _("%(share)s of the period") % {"share": fmt.percent(share)}
    if unit not in TIME_UNITS or (unit == "hour" and (meter_unit in SIZE_UNITS or q == q.to_integral_value())):
        return None
    seconds = q * TIME_UNITS[unit][0]
    if meter_unit in SIZE_UNITS:
        hours = seconds / 3600
        shown = hours.quantize(Decimal("0.01"))
        if shown == hours:
            return f"{fmt.number(hours.normalize())} {meter_unit}-h"
        return f"≈ {format_decimal(shown, '#,##0.00', locale=fmt.locale)} {meter_unit}-h"
    text = duration(seconds.quantize(Decimal(1)) if unit == "hour" else seconds, fmt)
    return _("%(time)s of %(unit)s time") % {"time": text, "unit": meter_unit} if meter_unit else text


# --------------------------------------------------------------------------
# The presentation of an invoice


def _party(party: InvoiceParty, fmt: Formatter, _: Gettext, *, customer: bool) -> Party:
    addr = party.address
    city, region, postal = addr.city, addr.region, addr.postal_code
    if party.country in CITY_FIRST:
        place = ", ".join(x for x in (city, " ".join(x for x in (region, postal) if x)) if x)
    else:
        place = ", ".join(x for x in (" ".join(x for x in (postal, city) if x), region) if x)
    lines = [x for x in (addr.street, place, fmt.country(party.country)) if x]
    ids = []
    if customer and party.id:
        ids.append((_("Customer ID"), party.id))
    if party.vat_id:
        ids.append((_("VAT ID"), party.vat_id))
    if party.peppol_id:
        ids.append((_("Peppol ID"), party.peppol_id))
    if party.email:
        ids.append((_("Email"), party.email))
    if party.phone:
        ids.append((_("Phone"), party.phone))
    return Party(party.name or "", tuple(lines), tuple(ids))


def _tier_rows(line: Line, per: str | None, digits: int, fmt: Formatter, _: Gettext) -> tuple[TierRow, ...]:
    # The JSON does not name the price model: several parts are graduated
    # tiers; one part is a volume tier, a package price (its quantity
    # counts packages, so it gets no unit unless it is the line's quantity)
    # or the first graduated tier. The parts price what is left after the
    # free allowance, which gets a row of its own first, so the rows add up
    # to the line's quantity.
    parts = line.tiers
    suffix = f" {per}" if per else ""
    zero = fmt.money(Decimal(0))
    rows = [TierRow(_("Free allowance"), fmt.number(shown_quantity(line.free)) + suffix, zero, zero)] \
        if line.free and (parts or line.unit_price is not None) else []
    if not parts and rows and line.unit_price is not None:
        charged = line.quantity - line.free
        rows.append(TierRow(_("Charged"), fmt.number(shown_quantity(charged)) + suffix,
                            fmt.price(line.unit_price), fmt.money(line.amount)))
    for i, t in enumerate(parts, 1):
        quantity = fmt.number(shown_quantity(t.quantity)) + suffix
        if len(parts) == 1:
            label = _("Up to %(quantity)s") % {"quantity": fmt.number(t.up_to) + suffix} if t.up_to is not None else ""
            if t.quantity not in (line.quantity, line.quantity - line.free):
                quantity = fmt.number(shown_quantity(t.quantity))
        elif t.up_to is not None:
            label = _("Tier %(tier)s: up to %(quantity)s") % {"tier": i, "quantity": fmt.number(t.up_to) + suffix}
        else:
            up_to = parts[i - 2].up_to
            label = _("Tier %(tier)s: above %(quantity)s") % {
                "tier": i, "quantity": fmt.number(up_to if up_to is not None else Decimal(0)) + suffix}
        amount = t.amount.quantize(minor_unit(digits), ROUND_HALF_UP)  # for display: the line is exact
        rows.append(TierRow(label, quantity, fmt.price(t.unit_price), fmt.money(amount)))
    return tuple(rows)


def _row(number: int, line: Line, raw: Mapping[str, Any], invoice: Invoice, fmt: Formatter, _: Gettext) -> LineRow:
    product = invoice.product(line.product)
    meter_unit = product.meter_unit
    flat = product.meter is None and line.product != "manual" and not line.records
    notes = []
    if line.resource_id:
        notes.append(_("Resource %(resource)s") % {"resource": line.resource_id})
    if (line.period_start, line.period_end) != (invoice.period_start, invoice.period_end) \
            and not raw.get("carried_from"):  # a carried line names its period in its explanation
        notes.append(_("Period %(period)s") % {
            "period": fmt.period(line.period_start.isoformat(), line.period_end.isoformat())})
    if line.adjustment_for:
        notes.append(_("Late usage of %(period)s") % {"period": line.adjustment_for})
    per = unit_label(line.unit, meter_unit)
    explains = line_explains(
        line, raw, (invoice.mapping.get("products") or {}).get(line.product) or {}, fmt, _,
        quantity=lambda q: quantity_label(q, line.unit, meter_unit, fmt),
        time=(lambda q: duration((Decimal(q) * TIME_UNITS[line.unit][0]).quantize(Decimal(1)), fmt))
        if line.unit in TIME_UNITS and meter_unit not in SIZE_UNITS else None)
    return LineRow(
        number=number, description=line.description or "", notes=tuple(notes),
        quantity=quantity_label(line.quantity, line.unit, meter_unit, fmt),
        human=human_quantity(line.quantity, line.unit, meter_unit, fmt, flat=flat, _=_),
        unit_price=fmt.price(line.unit_price) if line.unit_price is not None else _("tiered"),
        per=_("per %(unit)s") % {"unit": per} if per else None, amount=fmt.money(line.amount),
        tiers=_tier_rows(line, per, invoice.minor_digits, fmt, _),
        resources=_resource_rows(line, meter_unit, fmt, _), explains=explains,
    )


def _resource_rows(line: Line, meter_unit: str | None, fmt: Formatter, _: Gettext) -> tuple[ResourceRow, ...]:
    """A line's drill-down as a document shows it, when it has two
    resources or more (one resource is the line itself): its largest
    :data:`RESOURCE_ROWS` resources by quantity, then the rest in one row
    ("1,234 other resources"), so a line of thousands of short-lived pods
    stays one table row and ten, and the rows still add up to the line."""
    if len(line.resources) < 2:
        return ()
    shares = sorted(line.resources, key=lambda r: (-r.quantity, r.resource_id))

    def row(label: str, quantity: Decimal, records: int) -> ResourceRow:
        text = _("%(count)s usage record") if records == 1 else _("%(count)s usage records")
        return ResourceRow(label, quantity_label(quantity, line.unit, meter_unit, fmt),
                           human_quantity(quantity, line.unit, meter_unit, fmt, _=_),
                           text % {"count": fmt.number(str(records))})

    rows = [row(_("Resource %(resource)s") % {"resource": r.resource_id}, r.quantity, r.records)
            for r in shares[:RESOURCE_ROWS]]
    rest = shares[RESOURCE_ROWS:]
    if rest:
        rows.append(row(_("%(count)s other resources") % {"count": fmt.number(str(len(rest)))},
                        sum((r.quantity for r in rest), Decimal(0)), sum(r.records for r in rest)))
    return tuple(rows)


def _groups(invoice: Invoice, fmt: Formatter, _: Gettext) -> tuple[LineGroup, ...]:
    raws = list(invoice.mapping.get("lines") or ()) + [{}] * len(invoice.lines)
    rows = [(line.account, _row(i, line, raws[i - 1], invoice, fmt, _)) for i, line in enumerate(invoice.lines, 1)]
    members = invoice.members or {}
    if not members:
        return (LineGroup(None, tuple(r for _a, r in rows), None),)
    order: dict[str | None, list[tuple[LineRow, Decimal]]] = {}
    for (account, row), line in zip(rows, invoice.lines):
        order.setdefault(account, []).append((row, line.amount))
    buyer = invoice.buyer
    groups = []
    for account, items in order.items():
        name = members.get(account or "") or (buyer.name if account == buyer.id else account)
        groups.append(LineGroup(f"{name} ({account})", tuple(r for r, _a in items),
                                fmt.money(sum((a for _r, a in items), Decimal(0)))))
    return tuple(groups)


def formatter(invoice: Invoice) -> Formatter:
    """The :class:`Formatter` of the buyer's locale, the invoice's currency
    and the buyer's time zone."""
    return Formatter(invoice.buyer.locale or "en", invoice.currency, invoice.buyer.timezone or "UTC")


def present(invoice: Mapping[str, Any] | Invoice) -> Presentation:
    """The :class:`Presentation` of an issued invoice or credit note (its
    JSON mapping or its view), its words in the buyer's language."""
    inv = Invoice.of(invoice)
    fmt = formatter(inv)
    _ = translator(inv.buyer.locale)
    credit_note = inv.is_credit_note
    number = inv.number or f"draft:{inv.draft_id if inv.draft_id is not None else ''}"
    tax_row, tax_label = tax_wording(inv, fmt, _)
    notices, notes = document_notes(inv, number, fmt, _)
    return Presentation(
        lang=str(fmt.locale).replace("_", "-"),
        title=_("Credit note") if credit_note else _("Invoice"),
        number=number, is_credit_note=credit_note, facts=facts(inv, number, fmt, _),
        seller=_party(inv.seller, fmt, _, customer=False), buyer=_party(inv.buyer, fmt, _, customer=True),
        groups=_groups(inv, fmt, _), totals=totals(inv, fmt, _, tax_label), tax=tax_row,
        notes=notes, footer=footer(inv, _), labels=labels(_, credit_note, number, tax_row.reason), notices=notices,
        legal=legal_details(inv, fmt, _),
    )
