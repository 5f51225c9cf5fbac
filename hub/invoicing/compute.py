"""The arithmetic of one invoice (../shared/BILLING_RULES.md, Lines,
Discounts, Tax, Credits).

Pure: no database, no configuration, no clock. The caller hands over the
invoice's lines (rated charges, adjustment lines, one-off manual charges),
the account's discounts and credit grants, the tax treatment
(:func:`hub.invoicing.tax.determine_tax`) and the rounding mode, and gets a
:class:`ComputedInvoice`: every figure, the allowances behind
``discount_total``, and the credit consumptions to write to the ledger.

The figures, in order, each rounded at most once to the currency's minor
unit with :func:`hub.pricing.round_money` and never with a float::

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
- **Validity windows** are half-open ``[valid_from, valid_until)`` instants,
  either end open (None); a window overlaps ``[start, end)`` when
  ``valid_from < end`` and ``start < valid_until``. A discount that covers
  part of a period applies in full, not prorated. A configuration date
  ``valid_until = 2027-06-30`` means "up to and including 30 June", so the
  loader should pass the following midnight in the account's time zone.
- **Credits.** A grant can pay the invoice when ``granted_at < period
  end`` and ``expires > period end``: it exists before the period's end
  and expires after it (BILLING_RULES, to the letter). A grant that
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
- **Lines** have amounts already rounded once (rating does it); an amount
  with more digits than the currency has is refused, never re-rounded. A
  line of quantity zero is left out; no amount may be negative (a
  correction is a credit note, not a negative line). An invoice without
  lines is refused: an account with no charges gets no invoice.
- **JSON**: money is a decimal string with exactly the currency's minor
  digits (``"12.30"``, JPY ``"1230"``); a quantity, a unit price and a rate
  are exact decimal strings (a rate as ``"19"``, ``"8.1"``, ``"0"``);
  instants are ISO 8601 as given.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from hub.invoicing.tax import TaxTreatment
from hub.pricing import exact, minor_digits, round_money

PROMOTIONAL = "promotional"
PREPAID = "prepaid"
CREDIT_KINDS = (PROMOTIONAL, PREPAID)


# --------------------------------------------------------------------------
# Money


def _decimal(value: Decimal | str | int, what: str) -> Decimal:
    if isinstance(value, (float, bool)):
        raise TypeError(f"{what}: {value!r} is a {type(value).__name__}; money is a Decimal or a string, never a float")
    try:
        d = Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise ValueError(f"{what}: {value!r} is not a number") from None
    if not d.is_finite():
        raise ValueError(f"{what}: {value} is not a finite number")
    return d


def money(value: Decimal | str | int, currency: str, what: str = "amount") -> Decimal:
    """``value`` with exactly ``currency``'s minor digits (``12.3`` ->
    ``12.30``); a ``ValueError`` when it has more (money is never
    re-rounded here)."""
    d = _decimal(value, what)
    digits = minor_digits(currency)
    quantum = Decimal(1).scaleb(-digits)
    if d != d.quantize(quantum, rounding="ROUND_DOWN"):
        raise ValueError(f"{what}: {value} has more decimals than {currency}'s minor unit ({digits})")
    return d.quantize(quantum)


def money_str(value: Decimal, currency: str) -> str:
    """``value`` as a JSON string with exactly ``currency``'s minor digits."""
    return format(money(value, currency), "f")


def _number_str(value: Decimal) -> str:
    return format(value, "f")


def _rate_str(rate: Decimal) -> str:
    return format(rate.normalize(), "f") if rate else "0"


def _aware(value: datetime | None, what: str) -> None:
    if value is not None:
        if not isinstance(value, datetime):
            raise TypeError(f"{what}: {value!r} is not a datetime")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"{what}: {value} has no time zone")


def overlaps(valid_from: datetime | None, valid_until: datetime | None, start: datetime, end: datetime) -> bool:
    """Whether ``[valid_from, valid_until)`` (either end open) overlaps ``[start, end)``."""
    return (valid_from is None or valid_from < end) and (valid_until is None or start < valid_until)


# --------------------------------------------------------------------------
# Inputs


@dataclass(frozen=True)
class Line:
    """One invoice line.

    - ``account``: the account the usage belongs to (on a parent's invoice,
      the child account).
    - ``amount``: rounded once to the currency's minor unit (rating's
      ``Charge.amount``, or a manual charge's amount).
    - ``period_start``, ``period_end``: the period the line bills (an
      adjustment line's own, earlier, period).
    - ``adjustment_for``: for a line of late usage, the period it belongs
      to (``"2026-09"``); None otherwise.
    - ``description``: shown on the invoice; the product when None.
    """

    product: str
    account: str
    quantity: Decimal
    unit: str
    unit_price: Decimal | None
    amount: Decimal
    period_start: datetime
    period_end: datetime
    resource_id: str | None = None
    description: str | None = None
    adjustment_for: str | None = None
    #: the free allowance (in ``unit``) taken off ``quantity`` before pricing
    free: Decimal = Decimal(0)

    def __post_init__(self) -> None:
        object.__setattr__(self, "quantity", _decimal(self.quantity, f"line {self.product}: quantity"))
        if self.unit_price is not None:
            object.__setattr__(self, "unit_price", _decimal(self.unit_price, f"line {self.product}: unit_price"))
        object.__setattr__(self, "amount", _decimal(self.amount, f"line {self.product}: amount"))
        _aware(self.period_start, f"line {self.product}: period_start")
        _aware(self.period_end, f"line {self.product}: period_end")
        if not self.period_start < self.period_end:
            raise ValueError(f"line {self.product}: its period ends ({self.period_end}) before it starts ({self.period_start})")
        if self.quantity < 0 or self.amount < 0:
            raise ValueError(f"line {self.product}: quantity and amount cannot be negative (a correction is a credit note)")

    @classmethod
    def from_charge(
        cls,
        charge: Any,
        period_start: datetime,
        period_end: datetime,
        *,
        description: str | None = None,
        adjustment_for: str | None = None,
    ) -> Line:
        """The line of a rated :class:`hub.rating.Charge` for its period's
        instants (:meth:`hub.periods.Period.bounds`)."""
        return cls(
            product=charge.product, account=charge.account, quantity=charge.quantity, unit=charge.unit,
            unit_price=charge.unit_price, amount=charge.amount, period_start=period_start,
            period_end=period_end, resource_id=charge.resource_id, description=description,
            adjustment_for=adjustment_for, free=getattr(charge, "free", Decimal(0)),
        )

    def to_json(self, currency: str) -> dict[str, Any]:
        return {
            "product": self.product,
            "description": self.description if self.description is not None else self.product,
            "account": self.account,
            "resource_id": self.resource_id,
            "quantity": _number_str(self.quantity),
            "unit": self.unit,
            "unit_price": None if self.unit_price is None else _number_str(self.unit_price),
            "free": _number_str(self.free),
            "amount": money_str(self.amount, currency),
            "period_start": self.period_start.isoformat(),
            "period_end": self.period_end.isoformat(),
            "adjustment_for": self.adjustment_for,
        }


@dataclass(frozen=True)
class Discount:
    """A percentage discount (``percent``, on ``product``'s lines, or on
    every line) or a fixed one (``amount``, on the invoice, or capped at
    ``product``'s lines), valid in ``[valid_from, valid_until)``."""

    percent: Decimal | None = None
    amount: Decimal | None = None
    product: str | None = None
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    currency: str | None = None
    description: str | None = None
    id: str | None = None

    def __post_init__(self) -> None:
        name = self.id or self.description or "discount"
        if (self.percent is None) == (self.amount is None):
            raise ValueError(f"{name}: give either percent or amount")
        if self.percent is not None:
            pct = _decimal(self.percent, f"{name}: percent")
            if not 0 <= pct <= 100:
                raise ValueError(f"{name}: percent must be between 0 and 100, not {pct}")
            object.__setattr__(self, "percent", pct)
        if self.amount is not None:
            amount = _decimal(self.amount, f"{name}: amount")
            if amount < 0:
                raise ValueError(f"{name}: amount cannot be negative")
            object.__setattr__(self, "amount", amount)
        _aware(self.valid_from, f"{name}: valid_from")
        _aware(self.valid_until, f"{name}: valid_until")
        if self.valid_from is not None and self.valid_until is not None and not self.valid_from < self.valid_until:
            raise ValueError(f"{name}: valid_until must be after valid_from")

    def applies(self, start: datetime, end: datetime) -> bool:
        """Whether the validity window overlaps ``[start, end)``."""
        return overlaps(self.valid_from, self.valid_until, start, end)


@dataclass(frozen=True)
class CreditGrant:
    """A credit grant and its balance: ``remaining`` (the whole ``amount``
    when None) is what earlier invoices left of it."""

    id: str
    amount: Decimal
    currency: str
    kind: str
    granted_at: datetime
    expires: datetime | None
    remaining: Decimal | None = None
    description: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in CREDIT_KINDS:
            raise ValueError(f"credit {self.id}: kind must be one of {', '.join(CREDIT_KINDS)}, not {self.kind!r}")
        amount = money(self.amount, self.currency, f"credit {self.id}: amount")
        remaining = amount if self.remaining is None else money(self.remaining, self.currency, f"credit {self.id}: remaining")
        if amount < 0 or not 0 <= remaining <= amount:
            raise ValueError(f"credit {self.id}: its balance must be between 0 and its amount ({amount}), not {remaining}")
        object.__setattr__(self, "amount", amount)
        object.__setattr__(self, "remaining", remaining)
        _aware(self.granted_at, f"credit {self.id}: granted_at")
        _aware(self.expires, f"credit {self.id}: expires")

    @property
    def balance(self) -> Decimal:
        assert self.remaining is not None
        return self.remaining

    def usable(self, period_end: datetime, currency: str) -> bool:
        """Whether it can pay an invoice in ``currency`` for a period ending
        at ``period_end``: same currency, something left, granted before the
        period's end and expiring after it."""
        return (
            self.currency == currency
            and self.balance > 0
            and self.granted_at < period_end
            and (self.expires is None or self.expires > period_end)
        )

    def order(self) -> tuple[Any, ...]:
        """Consumption order: earliest expiry first (never-expiring last),
        then earliest grant, then id."""
        return (self.expires is None, self.expires or self.granted_at, self.granted_at, self.id)


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

    def remaining_balances(self) -> dict[str, Decimal]:
        """The balance after this invoice of each grant it used."""
        return {k.grant_id: k.remaining for k in self.consumptions}

    def to_json(self) -> dict[str, Any]:
        """The figures under the keys of the invoice JSON contract (issue #4);
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
    _aware(period_start, "period_start")
    _aware(period_end, "period_end")
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
