"""The arithmetic of one invoice (docs/billing-rules.md, Lines, Discounts,
Tax, Credits).

Pure: no database, no configuration, no clock; it must not know where
the lines, discounts and grants come from (the close stage,
:mod:`hub.closing`, gathers them). The inputs are the values of
:mod:`hub.invoicing.inputs`; money and its rounding are :mod:`hub.money`'s.
The caller hands over the
invoice's lines (rated charges, adjustment lines, one-off manual charges),
the account's discounts and credit grants, the tax treatment
(:func:`hub.invoicing.tax.determine_tax`) and the rounding mode, and gets a
:class:`ComputedInvoice`: every figure, the allowances behind
``discount_total``, and the credit consumptions to write to the ledger.

The figures, in order, each rounded at most once to the currency's minor
unit with :func:`hub.money.round_money` and never with a float::

    subtotal           = sum of the line amounts (each already rounded once)
    discount_total     = percentage allowances + fixed discounts
    promotional_credit = promotional grants, up to subtotal - discount_total
    taxable_amount     = subtotal - discount_total - promotional_credit
    tax.amount         = round(taxable_amount * rate / 100)
    total              = taxable_amount + tax.amount
    prepaid_applied    = prepaid grants, up to total
    amount_due         = total - prepaid_applied

so the totals are exact sums of rounded parts (EN 16931 BR-CO-10, -11,
-13, -15, -16); :class:`ComputedInvoice` checks them whenever it is built.

Readings where the rules leave room (what a finance team expects):

- **Percentage discounts** are allowances per line: ``round(line amount *
  pct / 100)`` on each line of the discount's product, or of every product
  when the discount names none. Several percentages on one line are added,
  not compounded, each computed on the line amount, and together never
  more than the line. A percentage applies to a line when its validity
  window overlaps *the line's* period, so an adjustment line for September
  gets September's discount on the October invoice.
- **Fixed discounts** come after all percentages and apply when their
  window overlaps *the invoice's* period: each is ``min(amount, what is
  left)``, where what is left is the subtotal after percentage discounts
  and the fixed discounts before it. A fixed discount that names a product
  is capped at that product's lines after their percentages instead;
  product fixed discounts are taken before invoice-wide ones, each group in
  the order given. A fixed amount must be in the invoice's currency (when
  it names one) and have no more digits than its minor unit.
- **Validity windows** and the checks on lines, discounts and grants are
  :mod:`hub.invoicing.inputs`'s.
- **Credits.** A grant can pay the invoice when ``granted_at < period
  end`` and ``expires > period end``: it exists before the period's end
  and expires after it (docs/billing-rules.md, to the letter). A grant that
  expires exactly at the period's end, the midnight after "expires 31
  October", does not pay October: the invoice is issued after that end,
  when the grant is gone (``hub run`` writes its expiry first); one
  "expiring 1 November" does.
  ``expires = None`` never expires and is used after every dated grant.
  Grants are consumed earliest expiry first (then earliest grant, then id),
  promotional ones before tax and prepaid ones after; a grant in another
  currency or with nothing left is not used. The consumptions say how much
  each grant gave and what it has left; :func:`carry_over` gives the grants
  with those balances for the next invoice.
- **Lines**: an amount with more digits than the currency has is refused,
  never re-rounded. A line of quantity zero is left out. An invoice
  without lines is refused: an account with no charges gets no invoice.
- **JSON**: money is a decimal string with exactly the currency's minor
  digits (``"12.30"``, JPY ``"1230"``); a quantity, a unit price and a rate
  are exact decimal strings (a rate as ``"19"``, ``"8.1"``, ``"0"``);
  instants are ISO 8601 as given.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from hub.invoicing.inputs import (
    PREPAID,
    PROMOTIONAL,
    CreditGrant,
    Discount,
    Line,
    check_aware,
)
from hub.invoicing.tax import TaxTreatment
from hub.money import Money, minor_digits, money, money_str, round_money
from hub.pricing import exact


def _rate_str(rate: Decimal) -> str:
    return format(rate.normalize(), "f") if rate else "0"


# --------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class Allowance:
    """What one discount took off: on one line (``line``: its index in
    :attr:`ComputedInvoice.lines`) for a percentage, on the invoice (or a
    product's lines) for a fixed amount (``line`` None)."""

    discount: Discount
    amount: Decimal
    line: int | None = None


@dataclass(frozen=True)
class CreditConsumption:
    """What one grant paid on this invoice, and its balance after it."""

    grant_id: str
    kind: str
    amount: Decimal
    remaining: Decimal
    description: str | None = None


@dataclass(frozen=True)
class Tax:
    """The invoice's tax: one category and rate, rounded once."""

    category: str
    rate: Decimal
    amount: Decimal
    exemption_reason: str | None = None
    exemption_code: str | None = None

    def to_json(self, currency: str) -> dict[str, Any]:
        return {
            "category": self.category,
            "rate": _rate_str(self.rate),
            "amount": money_str(self.amount, currency),
            "exemption_reason": self.exemption_reason,
            "exemption_code": self.exemption_code,
        }


@dataclass(frozen=True)
class ComputedInvoice:
    """Every figure of an invoice; building one checks that they add up."""

    currency: str
    period_start: datetime
    period_end: datetime
    rounding: str
    lines: tuple[Line, ...]
    allowances: tuple[Allowance, ...]
    subtotal: Decimal
    discount_total: Decimal
    promotional_credit: Decimal
    taxable_amount: Decimal
    tax: Tax
    total: Decimal
    prepaid_applied: Decimal
    amount_due: Decimal
    consumptions: tuple[CreditConsumption, ...] = field(default=())

    def __post_init__(self) -> None:
        c = self.currency
        for name in ("subtotal", "discount_total", "promotional_credit", "taxable_amount", "total",
                     "prepaid_applied", "amount_due"):
            money(getattr(self, name), c, name)
            if getattr(self, name) < 0:
                raise ValueError(f"{name} cannot be negative ({getattr(self, name)})")
        checks = [
            ("BR-CO-10: subtotal = sum of the lines", self.subtotal == sum((ln.amount for ln in self.lines), Decimal(0))),
            ("BR-CO-11: discount_total = sum of the allowances",
             self.discount_total == sum((a.amount for a in self.allowances), Decimal(0))),
            ("promotional_credit = sum of the promotional consumptions",
             self.promotional_credit == sum((k.amount for k in self.consumptions if k.kind == PROMOTIONAL), Decimal(0))),
            ("prepaid_applied = sum of the prepaid consumptions",
             self.prepaid_applied == sum((k.amount for k in self.consumptions if k.kind == PREPAID), Decimal(0))),
            ("BR-CO-13: taxable_amount = subtotal - discount_total - promotional_credit",
             self.taxable_amount == self.subtotal - self.discount_total - self.promotional_credit),
            ("BR-CO-15: total = taxable_amount + tax", self.total == self.taxable_amount + self.tax.amount),
            ("BR-CO-16: amount_due = total - prepaid_applied", self.amount_due == self.total - self.prepaid_applied),
        ]
        for rule, ok in checks:
            if not ok:
                raise ValueError(f"the invoice does not add up: {rule}")

    @property
    def total_money(self) -> Money:
        """``total`` with the invoice's currency."""
        return Money(self.total, self.currency)

    @property
    def amount_due_money(self) -> Money:
        """``amount_due`` with the invoice's currency."""
        return Money(self.amount_due, self.currency)

    def remaining_balances(self) -> dict[str, Decimal]:
        """The balance after this invoice of each grant it used."""
        return {k.grant_id: k.remaining for k in self.consumptions}

    def to_json(self) -> dict[str, Any]:
        """The figures under the keys of the invoice JSON contract;
        number, account, status and dates are the caller's to add."""
        c = self.currency
        return {
            "currency": c,
            "period_start": self.period_start.isoformat(),
            "period_end": self.period_end.isoformat(),
            "lines": [line.to_json(c) for line in self.lines],
            "subtotal": money_str(self.subtotal, c),
            "discount_total": money_str(self.discount_total, c),
            "promotional_credit": money_str(self.promotional_credit, c),
            "taxable_amount": money_str(self.taxable_amount, c),
            "tax": self.tax.to_json(c),
            "total": money_str(self.total, c),
            "prepaid_applied": money_str(self.prepaid_applied, c),
            "amount_due": money_str(self.amount_due, c),
        }


# --------------------------------------------------------------------------
# The computation


def compute_invoice(
    lines: Iterable[Line],
    *,
    currency: str,
    period_start: datetime,
    period_end: datetime,
    tax: TaxTreatment,
    discounts: Iterable[Discount] = (),
    grants: Iterable[CreditGrant] = (),
    rounding: str = "half_up",
) -> ComputedInvoice:
    """The figures of the invoice of ``lines`` for ``[period_start,
    period_end)`` in ``currency``: discounts, credits, tax and totals, per
    the module's docstring. ``grants`` are the account's grants with their
    current balances (unusable ones are skipped); ``rounding`` is the hub's
    mode (``half_up`` or ``half_even``)."""
    minor_digits(currency)  # an unknown currency fails here
    round_money(0, currency, rounding)  # an unknown rounding mode fails here
    check_aware(period_start, "period_start")
    check_aware(period_end, "period_end")
    if not period_start < period_end:
        raise ValueError(f"the period ends ({period_end}) before it starts ({period_start})")

    kept: list[Line] = []
    for line in lines:
        money(line.amount, currency, f"line {line.product}: amount")
        if line.quantity == 0:
            if line.amount != 0:
                raise ValueError(f"line {line.product}: a quantity of zero cannot cost {line.amount}")
            continue  # "Lines whose quantity is zero are left out."
        kept.append(replace(line, amount=money(line.amount, currency)))
    if not kept:
        raise ValueError("the invoice has no lines: an account with no charges in a period gets no invoice")
    subtotal = sum((ln.amount for ln in kept), Decimal(0))

    allowances = _discounts(kept, list(discounts), currency, rounding, period_start, period_end)
    discount_total = sum((a.amount for a in allowances), Decimal(0))

    grants = list(grants)
    ids = [g.id for g in grants]
    if len(set(ids)) != len(ids):
        raise ValueError(f"two credit grants have the same id: {sorted({i for i in ids if ids.count(i) > 1})}")
    usable = sorted((g for g in grants if g.usable(period_end, currency)), key=CreditGrant.order)

    promotional, promo_used = _consume([g for g in usable if g.kind == PROMOTIONAL], subtotal - discount_total)
    taxable = subtotal - discount_total - promotional
    tax_amount = round_money(exact(taxable) * exact(tax.rate) / 100, currency, rounding)
    total = taxable + tax_amount
    prepaid, prepaid_used = _consume([g for g in usable if g.kind == PREPAID], total)

    return ComputedInvoice(
        currency=currency,
        period_start=period_start,
        period_end=period_end,
        rounding=rounding,
        lines=tuple(kept),
        allowances=tuple(allowances),
        subtotal=money(subtotal, currency),
        discount_total=money(discount_total, currency),
        promotional_credit=money(promotional, currency),
        taxable_amount=money(taxable, currency),
        tax=Tax(tax.category, tax.rate, tax_amount, tax.exemption_reason, tax.exemption_code),
        total=money(total, currency),
        prepaid_applied=money(prepaid, currency),
        amount_due=money(total - prepaid, currency),
        consumptions=tuple(promo_used + prepaid_used),
    )


def _discounts(
    lines: list[Line], discounts: list[Discount], currency: str, rounding: str, start: datetime, end: datetime
) -> list[Allowance]:
    allowances: list[Allowance] = []
    left = [ln.amount for ln in lines]  # each line after the allowances so far
    for d in discounts:
        if d.percent is None:
            continue
        for i, ln in enumerate(lines):
            if (d.product is None or d.product == ln.product) and d.applies(ln.period_start, ln.period_end):
                amount = min(round_money(exact(ln.amount) * exact(d.percent) / 100, currency, rounding), left[i])
                if amount > 0:
                    left[i] -= amount
                    allowances.append(Allowance(d, amount, i))

    fixed = [d for d in discounts if d.amount is not None and d.applies(start, end)]
    remaining = sum(left, Decimal(0))
    by_product: dict[str, Decimal] = {}
    for ln, rest in zip(lines, left):
        by_product[ln.product] = by_product.get(ln.product, Decimal(0)) + rest
    for d in sorted(fixed, key=lambda d: d.product is None):  # stable: product ones first, in order
        name = d.id or d.description or "discount"
        if d.currency is not None and d.currency != currency:
            raise ValueError(f"{name}: its amount is in {d.currency}, the invoice in {currency}")
        assert d.amount is not None
        cap = remaining if d.product is None else min(remaining, by_product.get(d.product, Decimal(0)))
        amount = min(money(d.amount, currency, f"{name}: amount"), cap)
        if amount > 0:
            remaining -= amount
            if d.product is not None:
                by_product[d.product] -= amount
            allowances.append(Allowance(d, amount))
    return allowances


def _consume(grants: list[CreditGrant], limit: Decimal) -> tuple[Decimal, list[CreditConsumption]]:
    used: list[CreditConsumption] = []
    applied = Decimal(0)
    for g in grants:
        if applied >= limit:
            break
        take = min(g.balance, limit - applied)
        applied += take
        used.append(CreditConsumption(g.id, g.kind, take, g.balance - take, g.description))
    return applied, used


def carry_over(grants: Iterable[CreditGrant], invoice: ComputedInvoice) -> tuple[CreditGrant, ...]:
    """``grants`` with the balances ``invoice`` left them: what the next
    invoice may still use."""
    left = invoice.remaining_balances()
    return tuple(replace(g, remaining=left[g.id]) if g.id in left else g for g in grants)
