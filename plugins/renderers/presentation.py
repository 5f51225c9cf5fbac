"""What a human-readable document of an invoice shows, already formatted:
the records :func:`hub_plugins.renderers.humanize.present` fills and the
HTML template and the PDF layout read (:class:`Presentation` and its
blocks, rows and totals).

This module must not know how the figures are formatted or drawn: it is
the contract between the presentation and the two renderers.
"""

from __future__ import annotations

from dataclasses import dataclass, field


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
    #: what explains the line's figures: the billed time against the time
    #: used, what an adjustment billed before and now, a carried period
    explains: tuple[str, ...] = ()


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
    """Everything a document of the invoice shows, formatted. ``labels``
    are the document's headings in the buyer's language (keys: ``from``,
    ``bill_to``, ``no``, ``description``, ``quantity``, ``unit_price``,
    ``amount``, ``vat_breakdown``, ``category``, ``rate``, ``taxable``,
    ``vat``, ``exemption_reason``, ``continued``, ``page`` (with
    ``%(page)s`` and ``%(pages)s``), ``subtotal``); ``notices`` are said
    above the lines (what a credit note credits, what a reissue replaces,
    carried charges)."""

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
    labels: tuple[tuple[str, str], ...] = ()
    notices: tuple[str, ...] = ()
    #: the seller's legal details (register, directors, capital), a footer line of their own
    legal: tuple[str, ...] = field(default=())

    def label(self, key: str) -> str:
        return dict(self.labels)[key]

    @property
    def line_count(self) -> int:
        return sum(len(g.rows) for g in self.groups)
