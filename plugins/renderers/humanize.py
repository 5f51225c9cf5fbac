"""How an invoice reads to a person: the one place for human units and
locale formatting, shared by the HTML and PDF renderers.

:class:`Formatter` formats money, prices, numbers, rates, dates and periods
with Babel for the buyer's locale and time zone. :func:`quantity_label` and
:func:`human_quantity` show a line's quantity as the exact figure the hub
billed (``3,456,762 vCPU-s``) and, where it helps, in human units next to it
(``960 h 12 min 42 s``). :func:`present` turns an issued invoice (the JSON of
``hub invoices show NUMBER --json``) into a :class:`Presentation`: every
block, row and total of the document, already formatted, so both renderers
show the same content and neither formats anything itself.

Human units (pinned by tests/test_render_html_pdf.py):

- a time-weighted quantity priced per second, minute or day of something
  counted (vCPU, GPU, an instance) is a duration: 762 vCPU-s is
  ``12 min 42 s`` of vCPU time; durations stop at hours (``960 h 12 min
  42 s``), the unit cloud usage is read in; a fraction of a second stays
  exact (``42.5 s``);
- of a size (GiB, GB, TB...) it is size-hours: 7,200 GiB-s is ``2 GiB-h``,
  shown to 2 decimals with ``≈`` when that is not exact;
- a quantity already per hour, or per unit (42.5 GB), is shown once, as is;
- a flat plan's quantity (the fraction of the period the account was
  active) is also shown as a percentage of the period.

Labels are English; numbers, money, dates and country names follow the
buyer's ``locale``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_interval
from stdnum.iban import format as format_iban
from babel.numbers import (
    format_currency,
    format_decimal,
    format_percent,
    get_currency_precision,
    get_decimal_symbol,
    get_group_symbol,
)

#: seconds in one priced time unit, and the symbol after the meter's unit
TIME_UNITS: Mapping[str, tuple[int, str]] = {
    "second": (1, "s"), "minute": (60, "min"), "hour": (3600, "h"), "day": (86400, "d"),
}

#: meter units that measure a size: their time-weighted quantity reads as size-hours
SIZE_UNITS = frozenset({
    "B", "byte", "bytes", "kB", "KB", "MB", "GB", "TB", "PB", "KiB", "MiB", "GiB", "TiB", "PiB",
})

TAX_CATEGORIES: Mapping[str, str] = {
    "S": "Standard rate", "AE": "Reverse charge", "G": "Export outside the EU", "E": "Exempt",
}
#: what the VAT row of the totals adds to a zero rate
TAX_NOTES: Mapping[str, str] = {"AE": "reverse charge", "G": "export", "E": "exempt"}

#: countries that write the city, the region, then the postal code
CITY_FIRST = frozenset({"US", "CA", "AU"})


@functools.lru_cache(maxsize=64)
def _locale(tag: str) -> Locale:
    try:
        return Locale.parse(tag.replace("-", "_"))
    except (UnknownLocaleError, ValueError) as exc:
        raise ValueError(f"buyer locale {tag!r} is not a locale Babel knows ({exc})") from None


class _Numbers:
    """Babel's number and money formats of one locale and currency, made
    without Babel: formatting a figure through Babel costs about 50 µs, and
    an invoice has hundreds. Only built when probes show it formats exactly
    as Babel does for that locale and currency (groups of three, the sign
    and the currency symbol in a fixed place); otherwise the
    :class:`Formatter` asks Babel every time."""

    def __init__(self, locale: Locale, currency: str) -> None:
        self.group = get_group_symbol(locale)
        self.decimal = get_decimal_symbol(locale)
        self.digits = get_currency_precision(currency)
        self.money_formats = []
        for sign in (1, -1):
            probes = [sign * Decimal(f"1234567.{'8' * self.digits}"), sign * Decimal(f"1234.{'5' * self.digits}")]
            shapes = {format_currency(p, currency, locale=locale).replace(self.fixed(abs(p), self.digits), "{}", 1)
                      for p in probes}
            if len(shapes) != 1 or "{}" not in next(iter(shapes)):
                raise LookupError("the currency format depends on the amount")
            self.money_formats.append(shapes.pop())
        for probe in ("1234567", "1234.5", "0.000010", "42"):
            if format_decimal(Decimal(probe), locale=locale, decimal_quantization=False) != self.exact(Decimal(probe)):
                raise LookupError("the number format is not groups of three")

    def grouped(self, whole: int) -> str:
        return f"{whole:,}".replace(",", self.group)

    def fixed(self, value: Decimal, digits: int) -> str:
        """``value`` (not negative) with exactly ``digits`` decimals."""
        text = f"{value:.{digits}f}"
        whole, _, fraction = text.partition(".")
        return self.grouped(int(whole)) + (self.decimal + fraction if fraction else "")

    def exact(self, value: Decimal) -> str:
        """``value`` (not negative) with the decimals it has, no trailing zeros."""
        digits = max(0, -value.normalize().as_tuple().exponent)  # type: ignore[operator]
        return self.fixed(value, digits)


@functools.lru_cache(maxsize=256)
def _numbers(locale: Locale, currency: str) -> _Numbers | None:
    try:
        return _Numbers(locale, currency)
    except LookupError:
        return None


class Formatter:
    """Formats for one locale, currency and time zone (the buyer's)."""

    def __init__(self, locale: str, currency: str, timezone: str = "UTC") -> None:
        self.locale = _locale(locale or "en")
        self.currency = currency
        self.tz = ZoneInfo(timezone or "UTC")
        self._fast = _numbers(self.locale, currency)

    def money(self, value: str | Decimal, negate: bool = False) -> str:
        """An amount with the currency's minor digits: ``1.234,56 €`` in de."""
        amount = -Decimal(value) if negate else Decimal(value)
        fast = self._fast
        if fast is not None and amount == round(amount, fast.digits):
            return fast.money_formats[amount < 0].format(fast.fixed(abs(amount), fast.digits))
        return format_currency(amount, self.currency, locale=self.locale)

    def price(self, value: str | Decimal) -> str:
        """A unit price at full precision: ``0,0000115 €`` (never rounded)."""
        amount = Decimal(value)
        fast = self._fast
        if fast is not None and amount >= 0:
            digits = max(fast.digits, -amount.normalize().as_tuple().exponent)  # type: ignore[operator]
            return fast.money_formats[0].format(fast.fixed(amount, digits))
        return format_currency(amount, self.currency, locale=self.locale, decimal_quantization=False)

    def number(self, value: str | Decimal) -> str:
        """An exact number with the locale's separators: ``3.456.762``, ``42,5``."""
        number = Decimal(value)
        if self._fast is not None and number >= 0:
            return self._fast.exact(number)
        return format_decimal(number, locale=self.locale, decimal_quantization=False)

    def percent(self, rate: str | Decimal) -> str:
        """A rate given in percent: ``19`` -> ``19 %`` (de), ``19%`` (en)."""
        return format_percent(Decimal(rate) / 100, locale=self.locale, decimal_quantization=False)

    def date(self, iso: str) -> str:
        """An ISO date, long form: ``3. November 2025`` (de)."""
        return format_date(date.fromisoformat(iso), "long", locale=self.locale)

    def period(self, start: str, end: str) -> str:
        """A half-open ``[start, end)`` of instants as the days it covers in
        the buyer's time zone: ``Oct 1 – 31, 2025`` (en)."""
        first = datetime.fromisoformat(start).astimezone(self.tz).date()
        last = (datetime.fromisoformat(end) - timedelta(microseconds=1)).astimezone(self.tz).date()
        if last <= first:
            return format_date(first, "long", locale=self.locale)
        return format_interval(first, last, "yMMMMd", locale=self.locale)

    def country(self, code: str | None) -> str:
        """A country's name in the buyer's language (``DE`` -> ``Deutschland``)."""
        return self.locale.territories.get(code, code) if code else ""


# --------------------------------------------------------------------------
# Quantities


def duration(seconds: Decimal, fmt: Formatter) -> str:
    """Seconds as hours, minutes and seconds: ``762`` -> ``12 min 42 s``,
    ``3605`` -> ``1 h 0 min 5 s``; hours are grouped (``2,688 h``)."""
    whole = int(seconds)
    fraction = seconds - whole
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(Decimal(hours), "h"), (Decimal(minutes), "min"), (secs + fraction, "s")]
    while len(parts) > 1 and not parts[0][0]:
        parts.pop(0)
    while len(parts) > 1 and not parts[-1][0]:
        parts.pop()
    return " ".join(f"{fmt.number(value)} {symbol}" for value, symbol in parts)


def quantity_label(quantity: str, unit: str, meter_unit: str | None, fmt: Formatter) -> str:
    """The exact figure billed, with its unit: ``3.456.762 vCPU-s``,
    ``3.840 GiB-h``, ``42,5 GB``."""
    number = fmt.number(quantity)
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


def human_quantity(quantity: str, unit: str, meter_unit: str | None, fmt: Formatter,
                   *, flat: bool = False) -> str | None:
    """The quantity in human units, or ``None`` when the exact figure reads
    well as it is (see the module docstring for the rules)."""
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


@dataclass(frozen=True)
class Party:
    """A seller or buyer block: name, address lines, and labelled ids."""

    name: str
    address: tuple[str, ...]
    ids: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class TierRow:
    """One part of a tiered or package price."""

    label: str
    quantity: str
    unit_price: str
    amount: str


@dataclass(frozen=True)
class ResourceRow:
    """A line's drill-down: one resource's share of the line's quantity
    and the usage records it came from (``label``: "Resource vm-1", or
    "1,234 other resources" for the rest)."""

    label: str
    quantity: str
    human: str | None
    records: str


@dataclass(frozen=True)
class LineRow:
    """An invoice line: ``number`` is its 1-based position (allowances name
    it); ``notes`` are the resource, a period that is not the invoice's, the
    period late usage belongs to."""

    number: int
    description: str
    notes: tuple[str, ...]
    quantity: str
    human: str | None
    unit_price: str
    per: str | None
    amount: str
    tiers: tuple[TierRow, ...]
    resources: tuple[ResourceRow, ...] = ()


@dataclass(frozen=True)
class LineGroup:
    """Lines of one account; ``title`` is ``None`` when the invoice has
    no members (no grouping), else the member's name and id."""

    title: str | None
    rows: tuple[LineRow, ...]
    subtotal: str | None


@dataclass(frozen=True)
class TotalRow:
    """A row of the totals block; ``kind`` is ``item`` (a discount, a
    credit, the tax), ``sum`` (subtotal, taxable amount), ``total`` or
    ``due``."""

    label: str
    amount: str
    kind: str
    note: str | None = None


@dataclass(frozen=True)
class TaxRow:
    """The VAT breakdown: category, rate, base, amount and the reason a
    zero rate applies."""

    category: str
    code: str
    rate: str
    taxable: str
    amount: str
    reason: str | None


@dataclass(frozen=True)
class Presentation:
    """Everything a document of the invoice shows, formatted."""

    lang: str
    title: str
    number: str
    is_credit_note: bool
    facts: tuple[tuple[str, str], ...]
    seller: Party
    buyer: Party
    groups: tuple[LineGroup, ...]
    totals: tuple[TotalRow, ...]
    tax: TaxRow
    notes: tuple[str, ...]
    footer: tuple[str, ...]

    @property
    def line_count(self) -> int:
        return sum(len(g.rows) for g in self.groups)


def _party(party: Mapping[str, Any], fmt: Formatter, *, customer: bool) -> Party:
    addr = party.get("address") or {}
    city, region, postal = addr.get("city"), addr.get("region"), addr.get("postal_code")
    if party.get("country") in CITY_FIRST:
        place = ", ".join(x for x in (city, " ".join(x for x in (region, postal) if x)) if x)
    else:
        place = ", ".join(x for x in (" ".join(x for x in (postal, city) if x), region) if x)
    lines = [x for x in (addr.get("street"), place, fmt.country(party.get("country"))) if x]
    ids = []
    if customer and party.get("id"):
        ids.append(("Customer ID", party["id"]))
    if party.get("vat_id"):
        ids.append(("VAT ID", party["vat_id"]))
    if party.get("peppol_id"):
        ids.append(("Peppol ID", party["peppol_id"]))
    if party.get("email"):
        ids.append(("Email", party["email"]))
    if party.get("phone"):
        ids.append(("Phone", party["phone"]))
    return Party(party.get("name") or "", tuple(lines), tuple(ids))


def _row(number: int, line: Mapping[str, Any], invoice: Mapping[str, Any], fmt: Formatter) -> LineRow:
    product = (invoice.get("products") or {}).get(line["product"]) or {}
    meter_unit = product.get("meter_unit")
    flat = product.get("meter") is None and line["product"] != "manual" and not line.get("records")
    notes = []
    if line.get("resource_id"):
        notes.append(f"Resource {line['resource_id']}")
    if (line["period_start"], line["period_end"]) != (invoice["period_start"], invoice["period_end"]):
        notes.append(f"Period {fmt.period(line['period_start'], line['period_end'])}")
    if line.get("adjustment_for"):
        notes.append(f"Late usage of {line['adjustment_for']}")
    per = unit_label(line["unit"], meter_unit)
    tiers = []
    parts = line.get("tiers") or ()
    # The JSON does not name the price model: several parts are graduated
    # tiers; one part is a volume tier, a package price (its quantity
    # counts packages, so it gets no unit unless it is the line's quantity)
    # or the first graduated tier.
    suffix = f" {per}" if per else ""
    for i, t in enumerate(parts, 1):
        quantity = fmt.number(t["quantity"]) + suffix
        if len(parts) == 1:
            label = f"Up to {fmt.number(t['up_to'])}{suffix}" if t.get("up_to") is not None else ""
            if Decimal(t["quantity"]) != Decimal(line["quantity"]):
                quantity = fmt.number(t["quantity"])
        elif t.get("up_to") is not None:
            label = f"Tier {i}: up to {fmt.number(t['up_to'])}{suffix}"
        else:
            label = f"Tier {i}: above {fmt.number(parts[i - 2]['up_to'])}{suffix}"
        tiers.append(TierRow(label, quantity, fmt.price(t["unit_price"]), fmt.price(t["amount"])))
    return LineRow(
        number=number, description=line["description"], notes=tuple(notes),
        quantity=quantity_label(line["quantity"], line["unit"], meter_unit, fmt),
        human=human_quantity(line["quantity"], line["unit"], meter_unit, fmt, flat=flat),
        unit_price=fmt.price(line["unit_price"]) if line["unit_price"] is not None else "tiered",
        per=per, amount=fmt.money(line["amount"]), tiers=tuple(tiers),
        resources=_resource_rows(line, meter_unit, fmt),
    )


#: resources listed under a line in a document; the others are summed in one
#: row (the invoice JSON has every one)
RESOURCE_ROWS = 10


def _resource_rows(line: Mapping[str, Any], meter_unit: str | None, fmt: Formatter) -> tuple[ResourceRow, ...]:
    """A line's drill-down as a document shows it: its largest
    :data:`RESOURCE_ROWS` resources by quantity, then the rest in one row
    ("1,234 other resources"), so a line of thousands of short-lived pods
    stays one table row and ten, and the rows still add up to the line."""
    shares = sorted(line.get("resources") or (), key=lambda r: (-Decimal(r["quantity"]), r["resource_id"]))

    def row(label: str, quantity: Decimal | str, records: int) -> ResourceRow:
        text = format(quantity, "f") if isinstance(quantity, Decimal) else quantity
        return ResourceRow(label, quantity_label(text, line["unit"], meter_unit, fmt),
                           human_quantity(text, line["unit"], meter_unit, fmt),
                           f"{fmt.number(str(records))} usage record{'' if records == 1 else 's'}")

    rows = [row(f"Resource {r['resource_id']}", r["quantity"], r["records"]) for r in shares[:RESOURCE_ROWS]]
    rest = shares[RESOURCE_ROWS:]
    if rest:
        rows.append(row(f"{fmt.number(str(len(rest)))} other resources",
                        sum((Decimal(r["quantity"]) for r in rest), Decimal(0)), sum(r["records"] for r in rest)))
    return tuple(rows)


def _groups(invoice: Mapping[str, Any], fmt: Formatter) -> tuple[LineGroup, ...]:
    rows = [(line["account"], _row(i, line, invoice, fmt)) for i, line in enumerate(invoice["lines"], 1)]
    members = invoice.get("members") or {}
    if not members:
        return (LineGroup(None, tuple(r for _, r in rows), None),)
    order: dict[str, list[tuple[LineRow, Decimal]]] = {}
    for (account, row), line in zip(rows, invoice["lines"]):
        order.setdefault(account, []).append((row, Decimal(line["amount"])))
    buyer = invoice.get("buyer") or {}
    groups = []
    for account, items in order.items():
        name = members.get(account) or (buyer.get("name") if account == buyer.get("id") else account)
        groups.append(LineGroup(f"{name} ({account})", tuple(r for r, _ in items),
                                fmt.money(sum((a for _, a in items), Decimal(0)))))
    return tuple(groups)


def _totals(invoice: Mapping[str, Any], fmt: Formatter, tax_label: str) -> tuple[TotalRow, ...]:
    credit_note = invoice["kind"] == "credit_note"
    out = [TotalRow("Subtotal", fmt.money(invoice["subtotal"]), "sum")]
    for a in invoice.get("allowances") or ():
        note = None
        if a.get("percent") is not None:
            note = f"{fmt.percent(a['percent'])} of line {a['line']}" if a.get("line") else fmt.percent(a["percent"])
        out.append(TotalRow(a.get("description") or "Discount", fmt.money(a["amount"], negate=True), "item", note))
    credits = invoice.get("credits") or ()
    promotional = [c for c in credits if c.get("kind") == "promotional"]
    prepaid = [c for c in credits if c.get("kind") == "prepaid"]

    def credit_rows(items: list[Mapping[str, Any]], label: str, total: str) -> None:
        if items:
            for c in items:
                left = f"balance left {fmt.money(c['remaining'])}" if c.get("remaining") is not None else None
                out.append(TotalRow(label, fmt.money(c["amount"], negate=True), "item", left))
        elif Decimal(total):
            out.append(TotalRow(label, fmt.money(total, negate=True), "item"))

    credit_rows(promotional, "Promotional credit", invoice["promotional_credit"])
    if len(out) > 1:
        out.append(TotalRow("Taxable amount", fmt.money(invoice["taxable_amount"]), "sum"))
    out.append(TotalRow(tax_label, fmt.money(invoice["tax"]["amount"]), "item"))
    out.append(TotalRow("Total credited" if credit_note else "Total", fmt.money(invoice["total"]), "total"))
    credit_rows(prepaid, "Prepaid credit", invoice["prepaid_applied"])
    if not credit_note:
        out.append(TotalRow("Amount due", fmt.money(invoice["amount_due"]), "due"))
    return tuple(out)


def present(invoice: Mapping[str, Any]) -> Presentation:
    """The :class:`Presentation` of an issued invoice or credit note."""
    buyer = invoice.get("buyer") or {}
    fmt = Formatter(buyer.get("locale") or "en", invoice["currency"], buyer.get("timezone") or "UTC")
    credit_note = invoice["kind"] == "credit_note"
    number = invoice.get("number") or f"draft:{invoice.get('draft_id', '')}"
    facts = [("Credit note number" if credit_note else "Invoice number", number)]
    if invoice.get("issue_date"):
        facts.append(("Issue date", fmt.date(invoice["issue_date"])))
    if credit_note and invoice.get("refers_to"):
        facts.append(("Credits invoice", invoice["refers_to"]))
    if invoice.get("due_date") and not credit_note:
        facts.append(("Due date", fmt.date(invoice["due_date"])))
    facts.append(("Billing period", fmt.period(invoice["period_start"], invoice["period_end"])))

    tax = invoice["tax"]
    category = TAX_CATEGORIES.get(tax["category"], tax["category"])
    reason = tax.get("exemption_reason")
    if reason and tax.get("exemption_code"):
        reason = f"{reason} ({tax['exemption_code']})"
    tax_row = TaxRow(category, tax["category"], fmt.percent(tax["rate"]), fmt.money(invoice["taxable_amount"]),
                     fmt.money(tax["amount"]), reason)
    note = TAX_NOTES.get(tax["category"])
    tax_label = f"VAT {tax_row.rate} ({note})" if note else f"VAT {tax_row.rate}"

    seller = invoice.get("seller") or {}
    notes = []
    if credit_note:
        if invoice.get("reason"):
            notes.append(f"Reason: {invoice['reason']}")
        if invoice.get("refers_to"):
            notes.append(f"This credit note reduces invoice {invoice['refers_to']} by "
                         f"{fmt.money(invoice['total'])}.")
    elif invoice.get("due_date"):
        if Decimal(invoice["amount_due"]):
            days = (date.fromisoformat(invoice["due_date"]) - date.fromisoformat(invoice["issue_date"])).days
            notes.append(f"Please pay {fmt.money(invoice['amount_due'])} by {fmt.date(invoice['due_date'])} "
                         f"({days} days net), quoting {number} as the payment reference.")
            if seller.get("iban"):
                bank = f"IBAN {format_iban(seller['iban'])}" + (f", BIC {seller['bic']}" if seller.get("bic") else "")
                notes.append(f"Bank transfer to {seller.get('name') or 'us'}: {bank}.")
        else:
            notes.append("Nothing to pay: this invoice is settled by credit.")

    footer = tuple(x for x in (seller.get("name"), seller.get("vat_id") and f"VAT ID {seller['vat_id']}",
                               seller.get("email"), seller.get("phone") and f"Tel. {seller['phone']}") if x)
    return Presentation(
        lang=str(fmt.locale).replace("_", "-"),
        title="Credit note" if credit_note else "Invoice",
        number=number, is_credit_note=credit_note, facts=tuple(facts),
        seller=_party(seller, fmt, customer=False), buyer=_party(buyer, fmt, customer=True),
        groups=_groups(invoice, fmt), totals=_totals(invoice, fmt, tax_label), tax=tax_row,
        notes=tuple(notes), footer=footer,
    )
