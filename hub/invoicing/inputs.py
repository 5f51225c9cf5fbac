"""The inputs of an invoice's arithmetic: its lines, the account's
discounts and credit grants, each checked when it is built
(docs/billing-rules.md, Lines, Discounts, Credits).

Pure values: no database, no configuration, no clock, and nothing of how
the figures are computed from them (that is :mod:`hub.invoicing.compute`).

Readings where the rules leave room:

- **Validity windows** are half-open ``[valid_from, valid_until)`` instants,
  either end open (None); a window overlaps ``[start, end)`` when
  ``valid_from < end`` and ``start < valid_until``. A discount that covers
  part of a period applies in full, not prorated. A configuration date
  ``valid_until = 2027-06-30`` means "up to and including 30 June", so the
  loader should pass the following midnight in the account's time zone.
- **Lines** have amounts already rounded once (rating does it); no amount
  or quantity may be negative (a correction is a credit note, not a
  negative line). Every instant has a time zone.
- **A grant** holds its balance (``remaining``), between 0 and its amount,
  both with exactly its currency's minor digits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from hub.money import Money, money, money_str
from hub.money import to_number as _decimal

PROMOTIONAL = "promotional"
PREPAID = "prepaid"
CREDIT_KINDS = (PROMOTIONAL, PREPAID)


def number_str(value: Decimal) -> str:
    """A quantity or a unit price in JSON: an exact decimal string."""
    return format(value, "f")


def check_aware(value: datetime | None, what: str) -> None:
    """A ``TypeError`` or ``ValueError`` unless ``value`` is None or a datetime with a time zone."""
    if value is not None:
        if not isinstance(value, datetime):
            raise TypeError(f"{what}: {value!r} is not a datetime")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"{what}: {value} has no time zone")


def overlaps(valid_from: datetime | None, valid_until: datetime | None, start: datetime, end: datetime) -> bool:
    """Whether ``[valid_from, valid_until)`` (either end open) overlaps ``[start, end)``."""
    return (valid_from is None or valid_from < end) and (valid_until is None or start < valid_until)


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
        check_aware(self.period_start, f"line {self.product}: period_start")
        check_aware(self.period_end, f"line {self.product}: period_end")
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
            "quantity": number_str(self.quantity),
            "unit": self.unit,
            "unit_price": None if self.unit_price is None else number_str(self.unit_price),
            "free": number_str(self.free),
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
        check_aware(self.valid_from, f"{name}: valid_from")
        check_aware(self.valid_until, f"{name}: valid_until")
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
        check_aware(self.granted_at, f"credit {self.id}: granted_at")
        check_aware(self.expires, f"credit {self.id}: expires")

    @classmethod
    def of(cls, id: str, amount: Money, kind: str, granted_at: datetime, expires: datetime | None,
           remaining: Decimal | None = None, description: str | None = None) -> CreditGrant:
        """The grant of ``amount`` (its currency is the grant's), with
        ``remaining`` of it left."""
        return cls(id, amount.amount, amount.currency, kind, granted_at, expires, remaining, description)

    @property
    def balance(self) -> Decimal:
        assert self.remaining is not None
        return self.remaining

    @property
    def money(self) -> Money:
        """The amount granted, with its currency."""
        return Money(self.amount, self.currency)

    @property
    def balance_money(self) -> Money:
        """What is left of it, with its currency."""
        return Money(self.balance, self.currency)

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
