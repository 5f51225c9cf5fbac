"""A typed, read-only view of an issued invoice or credit note, for renderers
and exporters.

The hook hands a plugin the invoice as the JSON mapping that ``hub invoices
show NUMBER --json`` prints (``schemas/invoice.schema.json`` is the
contract), so third-party plugins written against the mapping keep working.
:meth:`Invoice.of` builds this view from that mapping: lines, parties,
totals and the tax breakdown with every amount, quantity, price and rate a
:class:`~decimal.Decimal` (never a float; ``format(value, "f")`` gives back
the JSON's text exactly), instants as aware datetimes, dates as dates. It
also answers what every document needs and none should compute itself:

- :meth:`Invoice.local_period`: the first and last day (inclusive) of the
  invoice's or a line's half-open period in the buyer's time zone, the one
  its periods were cut in;
- :attr:`Invoice.payment_days`: the payment term, in days from the issue
  date to the due date;
- :attr:`Invoice.minor_digits`: the currency's minor digits (EUR 2, JPY 0).

Optional fields the schema allows to be absent read as ``None`` or empty.
The view copies, it never recomputes: an invoice that does not add up gives
a view that does not add up.

This module must not know the store, the stages or any document format: it
reads the published JSON and nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from hub.money import minor_digits

__all__ = [
    "Address", "Allowance", "Credit", "Invoice", "Line", "Party", "Product", "ResourceShare", "Tax", "Tier",
    "local_days",
]


def _dec(value: Any) -> Decimal:
    if isinstance(value, float):
        raise TypeError(f"{value!r} is a float: invoice figures are decimal strings")
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _opt_dec(value: Any) -> Decimal | None:
    return None if value is None else _dec(value)


def _opt_date(value: Any) -> date | None:
    return date.fromisoformat(value) if value else None


def local_days(start: datetime, end: datetime, timezone: ZoneInfo) -> tuple[date, date]:
    """The first and last day (inclusive) of the half-open ``[start, end)``
    in ``timezone``; an empty span is its first day."""
    first, stop = start.astimezone(timezone), end.astimezone(timezone)
    last = (stop - timedelta(microseconds=1)).date() if stop > first else stop.date()
    return first.date(), last


@dataclass(frozen=True)
class Address:
    street: str | None = None
    city: str | None = None
    postal_code: str | None = None
    region: str | None = None


@dataclass(frozen=True)
class Party:
    """A seller or buyer as it was when the invoice was made (the buyer also
    has its account ``id``, ``locale`` and ``timezone``)."""

    name: str | None
    country: str | None = None
    id: str | None = None
    vat_id: str | None = None
    email: str | None = None
    phone: str | None = None
    peppol_id: str | None = None
    iban: str | None = None
    bic: str | None = None
    locale: str | None = None
    timezone: str | None = None
    address: Address = Address()

    @classmethod
    def of(cls, party: Mapping[str, Any] | None) -> Party:
        p = party or {}
        a = p.get("address") or {}
        return cls(p.get("name"), p.get("country"), p.get("id"), p.get("vat_id"), p.get("email"), p.get("phone"),
                   p.get("peppol_id"), p.get("iban"), p.get("bic"), p.get("locale"), p.get("timezone"),
                   Address(a.get("street"), a.get("city"), a.get("postal_code"), a.get("region")))


@dataclass(frozen=True)
class Tier:
    """One part of a tiered or package price: its quantity, price and exact
    (unrounded) amount; ``up_to`` is ``None`` for the last tier."""

    quantity: Decimal
    unit_price: Decimal
    amount: Decimal
    up_to: Decimal | None


@dataclass(frozen=True)
class ResourceShare:
    """One resource's share of a line's quantity and its usage records."""

    resource_id: str
    quantity: Decimal
    records: int


@dataclass(frozen=True)
class Line:
    product: str
    description: str | None
    account: str | None
    resource_id: str | None
    quantity: Decimal
    unit: str
    #: ``None`` for tiered and package prices (see :attr:`tiers`)
    unit_price: Decimal | None
    amount: Decimal
    period_start: datetime
    period_end: datetime
    #: the earlier period of late usage this line bills
    adjustment_for: str | None
    free: Decimal = Decimal(0)
    records: int | None = None
    tiers: tuple[Tier, ...] = ()
    resources: tuple[ResourceShare, ...] = ()

    @property
    def roundings(self) -> int:
        """How many roundings to the minor unit made :attr:`amount`: two for
        a late-usage adjustment (rated again minus billed), else one."""
        return 2 if self.adjustment_for else 1

    @classmethod
    def of(cls, line: Mapping[str, Any]) -> Line:
        return cls(
            product=line["product"], description=line.get("description"), account=line.get("account"),
            resource_id=line.get("resource_id"), quantity=_dec(line["quantity"]), unit=line["unit"],
            unit_price=_opt_dec(line.get("unit_price")), amount=_dec(line["amount"]),
            period_start=datetime.fromisoformat(line["period_start"]),
            period_end=datetime.fromisoformat(line["period_end"]), adjustment_for=line.get("adjustment_for"),
            free=_dec(line.get("free") or 0), records=line.get("records"),
            tiers=tuple(Tier(_dec(t["quantity"]), _dec(t["unit_price"]), _dec(t["amount"]), _opt_dec(t.get("up_to")))
                        for t in line.get("tiers") or ()),
            resources=tuple(ResourceShare(r["resource_id"], _dec(r["quantity"]), r["records"])
                            for r in line.get("resources") or ()),
        )


@dataclass(frozen=True)
class Allowance:
    """A discount behind ``discount_total``; ``line`` is the 1-based position
    of the line it applies to on this document, ``None`` for a fixed one."""

    amount: Decimal
    description: str | None
    line: int | None
    percent: Decimal | None


@dataclass(frozen=True)
class Credit:
    """A credit grant the invoice consumed (``promotional`` or ``prepaid``)."""

    grant: str | None
    kind: str
    amount: Decimal
    remaining: Decimal | None
    description: str | None = None


@dataclass(frozen=True)
class Tax:
    """The VAT breakdown: category (``S``, ``AE``, ``G``, ``E``), rate in
    percent, amount, and the exemption reason and VATEX code of a zero rate."""

    category: str
    rate: Decimal
    amount: Decimal
    exemption_reason: str | None = None
    exemption_code: str | None = None


@dataclass(frozen=True)
class Product:
    """A product on the invoice: its meter, the meter's unit and aggregation."""

    meter: str | None = None
    meter_unit: str | None = None
    aggregation: str | None = None


@dataclass(frozen=True)
class Invoice:
    """The view (see the module docstring); :attr:`mapping` is the JSON it
    was built from."""

    mapping: Mapping[str, Any]
    number: str | None
    kind: str
    account: str | None
    currency: str
    period_start: datetime
    period_end: datetime
    issue_date: date | None
    due_date: date | None
    lines: tuple[Line, ...]
    subtotal: Decimal
    discount_total: Decimal
    promotional_credit: Decimal
    taxable_amount: Decimal
    tax: Tax
    total: Decimal
    prepaid_applied: Decimal
    amount_due: Decimal
    seller: Party
    buyer: Party
    allowances: tuple[Allowance, ...] = ()
    credits: tuple[Credit, ...] = ()
    members: Mapping[str, str] | None = None
    products: Mapping[str, Product] | None = None
    refers_to: str | None = None
    reason: str | None = None
    credited_lines: tuple[int, ...] = ()
    #: a draft's reference (``hub invoices show draft:ID``)
    draft_id: int | None = None

    @classmethod
    def of(cls, invoice: Mapping[str, Any]) -> Invoice:
        """The view of ``invoice``, a mapping as ``hub invoices show --json``
        prints it (or the view itself, returned as is)."""
        if isinstance(invoice, Invoice):
            return invoice
        tax = invoice["tax"]
        return cls(
            mapping=invoice, number=invoice.get("number"), kind=invoice["kind"], account=invoice.get("account"),
            currency=str(invoice["currency"]),
            period_start=datetime.fromisoformat(invoice["period_start"]),
            period_end=datetime.fromisoformat(invoice["period_end"]),
            issue_date=_opt_date(invoice.get("issue_date")), due_date=_opt_date(invoice.get("due_date")),
            lines=tuple(Line.of(line) for line in invoice["lines"]),
            subtotal=_dec(invoice["subtotal"]), discount_total=_dec(invoice["discount_total"]),
            promotional_credit=_dec(invoice["promotional_credit"]), taxable_amount=_dec(invoice["taxable_amount"]),
            tax=Tax(tax["category"], _dec(tax["rate"]), _dec(tax["amount"]), tax.get("exemption_reason"),
                    tax.get("exemption_code")),
            total=_dec(invoice["total"]), prepaid_applied=_dec(invoice["prepaid_applied"]),
            amount_due=_dec(invoice["amount_due"]),
            seller=Party.of(invoice.get("seller")), buyer=Party.of(invoice.get("buyer")),
            allowances=tuple(Allowance(_dec(a["amount"]), a.get("description"), a.get("line"),
                                       _opt_dec(a.get("percent"))) for a in invoice.get("allowances") or ()),
            credits=tuple(Credit(c.get("grant"), c["kind"], _dec(c["amount"]), _opt_dec(c.get("remaining")),
                                 c.get("description")) for c in invoice.get("credits") or ()),
            members=dict(invoice.get("members") or {}),
            products={name: Product(p.get("meter"), p.get("meter_unit"), p.get("aggregation"))
                      for name, p in (invoice.get("products") or {}).items()},
            refers_to=invoice.get("refers_to"), reason=invoice.get("reason"),
            credited_lines=tuple(invoice.get("credited_lines") or ()), draft_id=invoice.get("draft_id"),
        )

    @property
    def is_credit_note(self) -> bool:
        return self.kind == "credit_note"

    @property
    def minor_digits(self) -> int:
        """Decimal places of the currency's minor unit (ISO 4217)."""
        return minor_digits(self.currency)

    @property
    def timezone(self) -> ZoneInfo:
        """The buyer's time zone (UTC when it has none): the one its
        periods were cut in."""
        return ZoneInfo(self.buyer.timezone or "UTC")

    def local_day(self, instant: datetime) -> date:
        """The day ``instant`` falls on in the buyer's time zone."""
        return instant.astimezone(self.timezone).date()

    def local_period(self, line: Line | None = None) -> tuple[date, date]:
        """The first and last day (inclusive) of the invoice's (or
        ``line``'s) period ``[period_start, period_end)`` in the buyer's
        time zone; an empty period is its first day."""
        src = line if line is not None else self
        return local_days(src.period_start, src.period_end, self.timezone)

    @property
    def payment_days(self) -> int | None:
        """Days from the issue date to the due date (the payment term), or
        ``None`` without both."""
        if self.issue_date is None or self.due_date is None:
            return None
        return (self.due_date - self.issue_date).days

    def product(self, name: str) -> Product:
        """The meter of product ``name`` (an empty :class:`Product` when the
        invoice does not describe it)."""
        return (self.products or {}).get(name) or Product()

    def member_name(self, account: str | None) -> str | None:
        """The name of a member account on an enterprise parent's invoice."""
        return (self.members or {}).get(account or "")
