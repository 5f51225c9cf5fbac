"""What a finance team reads on an invoice or credit note besides the
lines' figures, worded in the buyer's language (a gettext callable of
:func:`hub_plugins.renderers.i18n.translator`) and formatted with the
buyer's :class:`~hub_plugins.renderers.formatting.Formatter`: the
document's headings, facts (numbers, dates, the buyer's purchase order and
reference: EN 16931 BT-13, BT-10), the VAT breakdown with the legal wording
of a zero rate (never its VATEX code), the totals (a credit note says what
it credited, what it settled of its invoice and what became a credit
balance, never an amount due), the notices (what a credit note credits,
what a reissue replaces, the periods carried below the minimum invoice
amount), the payment notes, the footer and the seller's legal details
(legal form, commercial register and court, managing directors, share
capital), and under a line what explains it (:func:`line_explains`).

Line explanations:

- a product with a granularity or a minimum (``products[p].granularity``,
  ``.minimum`` in seconds) says what it billed: "used 12 min 42 s, billed
  20 min (granularity 10 min)" when the line or its drill-down
  (``resources[].used``) has the quantity used, else "billed 20 min
  (granularity 10 min)";
- an adjustment (``adjusts``: quantity and amount billed before, and now)
  "billed before: Q (A) · now: Q (A)";
- a carried line (``carried_from``) "carried from <period> (below the
  minimum invoice amount)".

This module must not know how a document is drawn nor the e-invoice
formats: it words what the invoice's JSON says.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from babel.dates import format_skeleton
from stdnum.iban import format as format_iban

from hub.plugin.en16931 import VAT_CATEGORIES
from hub.plugin.invoice import Credit, Invoice, Line
from hub.plugin.units import TIME_UNITS
from hub_plugins.renderers.formatting import Formatter
from hub_plugins.renderers.i18n import exemption_reason
from hub_plugins.renderers.presentation import TaxRow, TotalRow

Gettext = Callable[[str], str]

#: the names of the VAT categories (translated through the catalogs)
TAX_CATEGORIES: Mapping[str, str] = VAT_CATEGORIES
#: what the VAT row of the totals adds to a zero rate
TAX_NOTES: Mapping[str, str] = {"AE": "reverse charge", "G": "export", "E": "exempt"}


def english(message: str) -> str:
    """The identity gettext: the English message."""
    return message


def labels(_: Gettext, credit_note: bool, number: str, reason: str | None) -> tuple[tuple[str, str], ...]:
    """The document's headings (see :class:`Presentation`); ``exemption``
    is the sentence giving a zero rate's ``reason`` ("" without)."""
    title = _("Credit note") if credit_note else _("Invoice")
    return (
        ("from", _("From")), ("bill_to", _("Bill to")), ("no", "#"), ("description", _("Description")),
        ("quantity", _("Quantity")), ("unit_price", _("Unit price")), ("amount", _("Amount")),
        ("vat_breakdown", _("VAT breakdown")), ("category", _("Category")), ("rate", _("Rate")),
        ("taxable", _("Taxable amount")), ("vat", _("VAT")), ("exemption_reason", _("Exemption reason")),
        ("continued", _("%(title)s %(number)s (continued)") % {"title": title, "number": number}),
        ("page", _("Page %(page)s of %(pages)s")), ("subtotal", _("Subtotal")),
        ("exemption", _("Exemption reason: %(reason)s") % {"reason": reason} if reason else ""),
    )


def facts(inv: Invoice, number: str, fmt: Formatter, _: Gettext) -> tuple[tuple[str, str], ...]:
    """The facts band: number, dates, period, the buyer's references."""
    credit_note = inv.is_credit_note
    out = [(_("Credit note number") if credit_note else _("Invoice number"), number)]
    if inv.issue_date:
        out.append((_("Issue date"), fmt.date(inv.issue_date.isoformat())))
    if credit_note and inv.refers_to:
        out.append((_("Credits invoice"), inv.refers_to))
    if inv.due_date and not credit_note:
        out.append((_("Due date"), fmt.date(inv.due_date.isoformat())))
    out.append((_("Billing period"), fmt.period(inv.period_start.isoformat(), inv.period_end.isoformat())))
    raw = inv.mapping
    if raw.get("purchase_order"):
        out.append((_("Purchase order"), str(raw["purchase_order"])))
    if raw.get("buyer_reference"):
        out.append((_("Buyer reference"), str(raw["buyer_reference"])))
    return tuple(out)


def tax_wording(inv: Invoice, fmt: Formatter, _: Gettext) -> tuple[TaxRow, str]:
    """The VAT breakdown row and the label of the totals' VAT row; a zero
    rate's reason is its legal wording in the buyer's language."""
    tax = inv.tax
    category = _(TAX_CATEGORIES.get(tax.category, tax.category))
    reason = None
    if tax.category != "S":
        reason = exemption_reason(tax.category, tax.exemption_reason or tax.exemption_code,
                                  inv.buyer.locale or "en") or None
    row = TaxRow(category, tax.category, fmt.percent(tax.rate), fmt.money(inv.taxable_amount),
                 fmt.money(tax.amount), reason)
    note = TAX_NOTES.get(tax.category)
    label = _("VAT %(rate)s (%(note)s)") % {"rate": row.rate, "note": _(note)} if note \
        else _("VAT %(rate)s") % {"rate": row.rate}
    return row, label


def _dec(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def totals(inv: Invoice, fmt: Formatter, _: Gettext, tax_label: str) -> tuple[TotalRow, ...]:
    """The totals block: an invoice ends with its amount due; a credit note
    with what it credited, what it settled of its invoice (``applied``) and
    what became a credit balance (``credit_balance``)."""
    credit_note = inv.is_credit_note
    out = [TotalRow(_("Subtotal"), fmt.money(inv.subtotal), "sum")]
    for a in inv.allowances:
        note = None
        if a.percent is not None:
            note = _("%(percent)s of line %(line)s") % {"percent": fmt.percent(a.percent), "line": a.line} \
                if a.line else fmt.percent(a.percent)
        out.append(TotalRow(a.description or _("Discount"), fmt.money(a.amount, negate=True), "item", note))
    promotional = [c for c in inv.credits if c.kind == "promotional"]
    prepaid = [c for c in inv.credits if c.kind == "prepaid"]

    def credit_rows(items: list[Credit], label: str, total: Decimal) -> None:
        if items:
            for c in items:
                left = _("balance left %(amount)s") % {"amount": fmt.money(c.remaining)} \
                    if c.remaining is not None else None
                out.append(TotalRow(label, fmt.money(c.amount, negate=True), "item", left))
        elif total:
            out.append(TotalRow(label, fmt.money(total, negate=True), "item"))

    credit_rows(promotional, _("Promotional credit"), inv.promotional_credit)
    if len(out) > 1:
        out.append(TotalRow(_("Taxable amount"), fmt.money(inv.taxable_amount), "sum"))
    out.append(TotalRow(tax_label, fmt.money(inv.tax.amount), "item"))
    if not credit_note:
        out.append(TotalRow(_("Total"), fmt.money(inv.total), "total"))
        credit_rows(prepaid, _("Prepaid credit"), inv.prepaid_applied)
        out.append(TotalRow(_("Amount due"), fmt.money(inv.amount_due), "due"))
        return tuple(out)
    credit_rows(prepaid, _("Prepaid credit"), inv.prepaid_applied)
    out.append(TotalRow(_("Credited"), fmt.money(inv.total), "total"))
    applied, balance = _dec(inv.mapping.get("applied")), _dec(inv.mapping.get("credit_balance"))
    if applied is not None and inv.refers_to:
        out.append(TotalRow(_("Settles invoice %(invoice)s") % {"invoice": inv.refers_to},
                            fmt.money(applied), "item"))
    if balance:
        out.append(TotalRow(_("Credit balance"), fmt.money(balance), "item",
                            _("kept as credit for the next invoices")))
    return tuple(out)


def _periods(values: Any, fmt: Formatter) -> str:
    """Period names as the buyer reads them: a month ``2025-09`` is
    "September 2025" ("septembre 2025"); another period keeps its name."""
    items = values if isinstance(values, Sequence) and not isinstance(values, str) else [values]
    out = []
    for v in items:
        if isinstance(v, Mapping):
            v = v.get("period") or v.get("name") or ""
        text = str(v)
        if re.fullmatch(r"\d{4}-\d{2}", text):
            text = format_skeleton("yMMMM", date(int(text[:4]), int(text[5:]), 1), locale=fmt.locale)
        if text:
            out.append(text)
    return ", ".join(out)


def document_notes(inv: Invoice, number: str, fmt: Formatter, _: Gettext) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The notices said above the lines, and the payment notes below them."""
    raw = inv.mapping
    seller = inv.seller
    notices: list[str] = []
    notes: list[str] = []
    if inv.is_credit_note:
        if inv.reason:
            notices.append(_("Reason: %(reason)s") % {"reason": inv.reason})
        if inv.refers_to:
            notices.append(_("This credit note credits %(amount)s of invoice %(invoice)s.")
                           % {"invoice": inv.refers_to, "amount": fmt.money(inv.total)})
            applied, balance = _dec(raw.get("applied")), _dec(raw.get("credit_balance"))
            if applied:
                notices.append(_("It settles %(applied)s of invoice %(invoice)s.")
                               % {"applied": fmt.money(applied), "invoice": inv.refers_to})
            if balance:
                notices.append(_("%(amount)s becomes a credit balance that pays your next invoices.")
                               % {"amount": fmt.money(balance)})
        return tuple(notices), ()
    if raw.get("reissue_of"):
        if raw.get("replaces_credit_note"):
            notices.append(_("Replaces invoice %(invoice)s (cancelled by credit note %(credit_note)s).")
                           % {"invoice": raw["reissue_of"], "credit_note": raw["replaces_credit_note"]})
        else:
            notices.append(_("Replaces invoice %(invoice)s.") % {"invoice": raw["reissue_of"]})
    if raw.get("carried_periods"):
        notices.append(_("Includes charges carried from %(periods)s (below the minimum invoice amount).")
                       % {"periods": _periods(raw["carried_periods"], fmt)})
    if inv.due_date:
        if inv.amount_due:
            notes.append(_("Please pay %(amount)s by %(date)s (%(days)s days net), quoting %(number)s as the "
                           "payment reference.") % {"amount": fmt.money(inv.amount_due),
                                                    "date": fmt.date(inv.due_date.isoformat()),
                                                    "days": inv.payment_days, "number": number})
            if seller.iban:
                bank = f"IBAN {format_iban(seller.iban)}" + (f", BIC {seller.bic}" if seller.bic else "")
                notes.append(_("Bank transfer to %(name)s: %(bank)s.") % {"name": seller.name or _("us"),
                                                                          "bank": bank})
        else:
            notes.append(_("Nothing to pay: this invoice is settled by credit."))
    return tuple(notices), tuple(notes)


def footer(inv: Invoice, _: Gettext) -> tuple[str, ...]:
    """The footer's first line: the seller's name (with its legal form),
    VAT id, email and phone."""
    seller = inv.seller
    name = seller.name or ""
    form = inv.mapping.get("seller", {}).get("legal_form")
    if form and not name.endswith(str(form)):
        name = f"{name} {form}".strip()
    return tuple(x for x in (name, seller.vat_id and _("VAT ID %(vat_id)s") % {"vat_id": seller.vat_id},
                             seller.email, seller.phone and _("Tel. %(phone)s") % {"phone": seller.phone}) if x)


def legal_details(inv: Invoice, fmt: Formatter, _: Gettext) -> tuple[str, ...]:
    """The seller's register, register court, managing directors and share
    capital, as set (the footer's second line)."""
    seller = inv.mapping.get("seller") or {}
    out = []
    if seller.get("register_court"):
        out.append(_("Register court: %(court)s") % {"court": seller["register_court"]})
    if seller.get("commercial_register"):
        out.append(_("Register: %(register)s") % {"register": seller["commercial_register"]})
    directors = seller.get("managing_directors")
    if directors:
        names = directors if isinstance(directors, str) else ", ".join(directors)
        out.append(_("Managing directors: %(names)s") % {"names": names})
    capital = seller.get("share_capital")
    if capital:
        if isinstance(capital, Mapping):
            amount = Decimal(str(capital["amount"]))
            currency = capital.get("currency") or inv.currency
            text = fmt.money(amount) if currency == inv.currency else f"{fmt.number(amount)} {currency}"
        else:
            text = fmt.money(Decimal(str(capital)))
        out.append(_("Share capital: %(amount)s") % {"amount": text})
    return tuple(out)


def line_explains(line: Line, raw: Mapping[str, Any], product: Mapping[str, Any], fmt: Formatter, _: Gettext,
                  *, quantity: Callable[[Decimal], str], time: Callable[[Decimal], str] | None) -> tuple[str, ...]:
    """What explains ``line`` (see the module docstring). ``quantity``
    formats a quantity of the line's unit with its unit, ``time`` as a
    duration (``None``: the line is not time)."""
    out = []
    granularity = int(product.get("granularity") or 1)
    minimum = int(product.get("minimum") or 0)
    if time is not None and (granularity > 1 or minimum > 0):
        seconds_per_unit = TIME_UNITS[line.unit][0]
        rules = []
        if granularity > 1:
            rules.append(_("granularity %(step)s") % {"step": time(Decimal(granularity) / seconds_per_unit)})
        if minimum > 0:
            rules.append(_("minimum %(minimum)s") % {"minimum": time(Decimal(minimum) / seconds_per_unit)})
        billed = time(line.quantity)
        used = raw.get("used")
        shares = raw.get("resources") or ()
        if used is None and shares and all("used" in r for r in shares):
            used = sum((Decimal(str(r["used"])) for r in shares), Decimal(0))  # the drill-down's: hub.rating.shares
        if used is not None and Decimal(str(used)) != line.quantity:
            out.append(_("used %(used)s, billed %(billed)s (%(rules)s)")
                       % {"used": time(Decimal(str(used))), "billed": billed, "rules": ", ".join(rules)})
        elif used is None:
            out.append(_("billed %(billed)s (%(rules)s)") % {"billed": billed, "rules": ", ".join(rules)})
    adjusts = raw.get("adjusts")
    if isinstance(adjusts, Mapping):
        out.append(_("billed before: %(quantity_billed)s (%(amount_billed)s) · now: %(quantity)s (%(amount)s)") % {
            "quantity_billed": quantity(Decimal(str(adjusts["quantity_billed"]))),
            "amount_billed": fmt.money(Decimal(str(adjusts["amount_billed"]))),
            "quantity": quantity(Decimal(str(adjusts["quantity"]))),
            "amount": fmt.money(Decimal(str(adjusts["amount"])))})
    if raw.get("carried_from"):
        period = fmt.period(line.period_start.isoformat(), line.period_end.isoformat())
        out.append(_("carried from %(period)s (below the minimum invoice amount)") % {"period": period})
    return tuple(out)
