"""The typed configuration the rest of the hub reads (never raw TOML):
frozen values, one per table of hub.toml, and :class:`Config`, the whole.

It must not know how the values were read or checked (the loader's
modules), nor how any stage uses them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from hub.config.catalog import Catalog
from hub.config.tree import AccountTree
from hub.money import Money
from hub.plugin.types import InstanceConfig

AGGREGATIONS = ("time_weighted", "sum", "max", "unique", "latest")


@dataclass(frozen=True)
class HubSettings:
    """``[hub]``: where the store is and the hub-wide defaults."""

    database: str
    currency: str = "EUR"
    timezone: str = "UTC"
    rounding: str = "half_up"


@dataclass(frozen=True)
class Meter:
    """``[[meters]]``: what is measured and how it aggregates over a period."""

    name: str
    aggregation: str
    unit: str | None = None
    description: str = ""


@dataclass(frozen=True)
class Address:
    """A postal address (``address = { street = ..., city = ... }``)."""

    street: str | None = None
    city: str | None = None
    postal_code: str | None = None
    region: str | None = None

    @classmethod
    def of(cls, table: Mapping[str, Any] | None) -> Address:
        """An ``address`` table typed (an absent one is empty)."""
        table = table or {}
        return cls(street=table.get("street"), city=table.get("city"), postal_code=table.get("postal_code"),
                   region=table.get("region"))


@dataclass(frozen=True)
class Account:
    """``[[accounts]]``: a billed customer.

    - ``extra``: every key of the table except id, name, country, currency,
      timezone and parent, as written (rating reads ``plans`` and ``since``
      there); the invoicing keys are also typed below.
    - ``vat_id``: as written (stripped), checked with python-stdnum when the
      account's country is in the EU.
    - ``schedule``: the account's ``schedule``, else ``[invoicing]``'s, else
      ``"monthly"``.
    - ``since``: aware UTC; a date is midnight in the account's time zone.
    """

    id: str
    name: str
    country: str | None = None
    currency: str = "EUR"
    timezone: str = "UTC"
    parent: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    vat_id: str | None = None
    email: str | None = None
    schedule: str = "monthly"
    since: datetime | None = None
    tax_exempt: bool = False
    exemption_reason: str | None = None
    address: Address = field(default_factory=Address)
    locale: str | None = None
    peppol_id: str | None = None
    tags: tuple[str, ...] = ()
    #: EN 16931 BT-13 and BT-10 on each of its invoices (``hub invoice`` may give others)
    purchase_order: str | None = None
    buyer_reference: str | None = None

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True)
class SellerConfig:
    """``[seller]``: the operator that issues the invoices."""

    name: str
    country: str
    vat_id: str | None = None
    email: str | None = None
    address: Address = field(default_factory=Address)
    peppol_id: str | None = None
    #: compact (no spaces), checked; the account customers pay into
    iban: str | None = None
    bic: str | None = None
    phone: str | None = None
    #: the legal details many countries require on an invoice
    legal_form: str | None = None
    commercial_register: str | None = None
    register_court: str | None = None
    managing_directors: tuple[str, ...] = ()
    #: in the hub's currency, as written (exact)
    share_capital: Decimal | None = None


@dataclass(frozen=True)
class InvoicingSettings:
    """``[invoicing]``: ``grace`` is in seconds; the number formats are
    ``str.format`` patterns with ``year``, ``month`` and ``seq``."""

    schedule: str = "monthly"
    grace: int = 0
    payment_terms_days: int = 30
    number_format: str = "INV-{year}-{seq:06d}"
    credit_note_format: str = "CN-{year}-{seq:06d}"
    locale: str = "en"
    #: a period whose invoice total is below it is not issued (its charges
    #: move to the next invoice); None: every invoice is issued
    minimum_amount: Decimal | None = None


@dataclass(frozen=True)
class DunningSettings:
    """``[dunning]``: ``after_days``, the days past the due date at which an
    unpaid invoice gets an ``invoice.overdue`` event, increasing."""

    after_days: tuple[int, ...] = ()


@dataclass(frozen=True)
class CreditConfig:
    """One ``[[credits]]`` table.

    - ``index``: its position in the merged ``[[credits]]`` array (0-based).
    - ``currency``: always the account's (another one is a config error).
    - ``granted``: aware UTC, None = granted before any period; a date is
      midnight starting that day in the account's time zone.
    - ``expires``: aware UTC, exclusive; a date is inclusive: it expires at
      the following midnight in the account's time zone. None = never.
    """

    index: int
    account: str
    amount: Decimal
    currency: str
    kind: str  # "prepaid" | "promotional"
    granted: datetime | None = None
    expires: datetime | None = None
    description: str = ""

    @property
    def money(self) -> Money:
        """The amount granted, with its currency."""
        return Money.of(self.amount, self.currency)


@dataclass(frozen=True)
class DiscountConfig:
    """One ``[[discounts]]`` table: exactly one of ``percent`` and ``amount``.

    - ``index``: its position in the merged ``[[discounts]]`` array (0-based).
    - ``currency``: the account's currency for a fixed ``amount``; None for
      a percentage.
    - ``valid_from``: a date is midnight starting that day; ``valid_until``
      is exclusive: a date is inclusive, so it ends at the following
      midnight; both in the account's time zone. An RFC 3339 time is taken
      as given.
    """

    index: int
    account: str
    product: str | None = None
    percent: Decimal | None = None
    amount: Decimal | None = None
    currency: str | None = None
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    description: str = ""

    @property
    def money(self) -> Money | None:
        """A fixed ``amount`` with its currency; None for a percentage."""
        return Money.of(self.amount, self.currency) if self.amount is not None and self.currency else None


@dataclass(frozen=True)
class SourceInstance(InstanceConfig):
    """A ``[[sources]]`` table: a source plugin instance and its pull interval
    (seconds, ``None`` = the scheduler's default)."""

    interval: int | None = None


@dataclass(frozen=True)
class ExporterInstance(InstanceConfig):
    """An ``[[exporters]]`` table: an exporter plugin instance, and what the
    hub's outbox does for it.

    - ``accounts`` / ``tags``: only invoices of these accounts / of accounts
      with one of these tags (empty: every account).
    - ``events``: the events it receives (default: every event its type can
      deliver).
    - ``max_attempts``: a delivery is dead after this many failed attempts.
    """

    accounts: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    events: tuple[str, ...] = ()
    max_attempts: int = 10


@dataclass(frozen=True)
class Config:
    """The whole validated configuration.

    - ``path``: the hub.toml it was read from; ``base_dir`` its directory.
    - ``raw``: the merged document, for stages not yet typed here.
    - ``catalog``: the products and the accounts' price overrides.
    - ``seller``: ``[seller]``, None when not set.
    - ``tax_rates``: ``[tax.rates]``, country code -> standard rate in percent.
    - ``invoicing``: ``[invoicing]``, with its defaults.
    - ``dunning``: ``[dunning]``, the reminder steps (none by default).
    - ``credits``, ``discounts``: ``[[credits]]`` and ``[[discounts]]`` in
      the order of the merged arrays.
    - ``warnings``: what ``hub check`` warns of (a product priced in another
      currency than an account billed for it, an ``include`` glob that
      matches nothing, a file under config/ that no ``include`` reads).
    """

    path: Path
    hub: HubSettings
    meters: Mapping[str, Meter]
    accounts: Mapping[str, Account]
    sources: tuple[SourceInstance, ...]
    exporters: tuple[ExporterInstance, ...]
    renderers: tuple[InstanceConfig, ...]
    raw: Mapping[str, Any]
    catalog: Catalog = field(default_factory=Catalog)
    seller: SellerConfig | None = None
    tax_rates: Mapping[str, Decimal] = field(default_factory=dict)
    invoicing: InvoicingSettings = field(default_factory=InvoicingSettings)
    dunning: DunningSettings = field(default_factory=DunningSettings)
    credits: tuple[CreditConfig, ...] = ()
    discounts: tuple[DiscountConfig, ...] = ()
    #: what ``hub check`` prints as warnings (the configuration loads all the same)
    warnings: tuple[str, ...] = ()
    #: where each table was written, as errors name it: ``("accounts", id)``,
    #: ``("credits", index)``, ``("discounts", index)`` or ``(table, None)``
    #: (``("seller", None)``) -> (file, table); see :meth:`place`
    places: Mapping[tuple[str, str | int | None], tuple[str, str]] = field(default_factory=dict)

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    @cached_property
    def tree(self) -> AccountTree:
        """The account tree (roots, members, ancestors), built once."""
        return AccountTree({a.id: a.parent for a in self.accounts.values()})

    def place(self, array: str, key: str | int | None = None) -> tuple[str, str]:
        """(file, table) of an account (``place("accounts", "acme")``), a
        credit or discount by index, or a table (``place("seller")``), as a
        :class:`~hub.config.ConfigError` names them: for reporting a problem
        found after loading (``hub check``'s invoicing checks)."""
        found = self.places.get((array, key))
        if found is not None:
            return found
        if key is None:
            return self.path.name, f"[{array}]"
        return self.path.name, f"{array}[{key + 1}]" if isinstance(key, int) else f'{array} "{key}"'

    def source(self, name: str) -> SourceInstance:
        """The source instance called ``name``; ``KeyError`` if none."""
        for s in self.sources:
            if s.name == name:
                return s
        raise KeyError(name)
