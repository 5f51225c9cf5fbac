"""Building an invoice: from the rated charges, the late-usage
adjustments and the manual charges to its computed figures, with the
parties and products it keeps.

- **Who is invoiced.** An account without a parent is billed for each
  period of its schedule; a child account's lines go on its root's invoice,
  labelled with the child (its ``account``), and it gets no invoice of its
  own. The root's country, VAT id, currency, time zone and schedule decide
  (the account tree is the configuration's: ``Config.tree``).
- **Tax** is the root's (:func:`hub.invoicing.tax.determine_tax`), discounts
  are the root's, and credits are the root's grants with their balances.
- **A snapshot.** The seller, the buyer and the member accounts' names are
  kept with the invoice, so that its documents never depend on today's
  configuration; ``hub invoice --purchase-order/--buyer-reference``
  replace the account's (:class:`Overrides`).
- **Carried periods.** The charges of deferred periods (their total was
  below ``[invoicing] minimum_amount``) go on the invoice after the period's
  own usage lines, each with its own period and ``carried_from``; the
  invoice lists them in ``carried_periods``.

It reads the configuration and, in the caller's transaction, the store
(late usage, manual charges, credit balances), and hands everything to the
pure arithmetic (:func:`hub.invoicing.compute.compute_invoice`). It must not
know numbers, issuing or how the invoice is stored
(:mod:`hub.closing.close`, :mod:`hub.closing.stored`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection

from hub.closing.adjustments import Rated, _billed, adjustments
from hub.closing.charges import manual_lines
from hub.closing.errors import InvoicingError
from hub.closing.ledger import account_grants, sync_grants
from hub.closing.lines import LineOrigin, bounds, description
from hub.config.model import Account, Config, SellerConfig
from hub.invoicing.compute import ComputedInvoice, compute_invoice
from hub.invoicing.inputs import Discount, Line
from hub.invoicing.tax import Buyer, Seller, TaxTreatment, determine_tax
from hub.periods import Period
from hub.rating import Charge


@dataclass
class Built:
    """An invoice as the store would hold it, before it is saved."""

    account: Account
    period: Period
    computed: ComputedInvoice
    origins: list[LineOrigin]
    warnings: list[str] = field(default_factory=list)
    #: the seller, the buyer and the buyer's member accounts as they were
    #: when the invoice was made: an issued invoice renders the same forever
    parties: dict[str, Any] = field(default_factory=dict)
    #: the total of the period's own lines, without those carried from deferred periods (None: it has
    #: none): what its closing defers when the invoice is below the minimum amount
    own_total: Decimal | None = None


@dataclass(frozen=True)
class Overrides:
    """What ``hub invoice`` gives for the invoices it issues in place of the account's own
    ``purchase_order`` and ``buyer_reference`` (None: the account's; "": none)."""

    purchase_order: str | None = None
    buyer_reference: str | None = None


def _seller(config: Config) -> SellerConfig:
    if config.seller is None:
        raise InvoicingError("no [seller] is configured: the invoices' issuer (name, country, vat_id) is required")
    return config.seller


def _tax(config: Config, account: Account) -> TaxTreatment:
    if account.country is None:
        raise InvoicingError(f"account {account.id!r} has no country: the tax of its invoices depends on it")
    seller = _seller(config)
    try:
        return determine_tax(Seller(seller.country, seller.vat_id),
                             Buyer(account.country, account.vat_id, account.tax_exempt, account.exemption_reason),
                             config.tax_rates)
    except (ValueError, KeyError) as exc:
        raise InvoicingError(f"account {account.id!r}: {exc.args[0] if exc.args else exc}") from None


def _discounts(config: Config, root: str, ids: list[str]) -> list[Discount]:
    out = []
    for d in config.discounts:
        if d.account == root:
            out.append(Discount(d.percent, d.amount, d.product, d.valid_from, d.valid_until, d.currency,
                                d.description or None, f"discounts[{d.index}]"))
        elif d.account in ids:
            raise InvoicingError(f"discounts[{d.index}] names account {d.account!r}, which is invoiced through "
                                 f"{root!r}: give the discount to {root!r}")
    return out


def _member_currencies(config: Config, root: str, ids: list[str]) -> None:
    account = config.accounts[root]
    for member in ids:
        if config.accounts[member].currency != account.currency:
            raise InvoicingError(f"account {member!r} is billed in {config.accounts[member].currency} but invoiced "
                                 f"through {root!r}, which is billed in {account.currency}")


def check_configuration(config: Config, root: str) -> None:
    """The :class:`InvoicingError` ``build`` would raise for ``root``'s
    configuration, whatever its period holds: its members' currency, its
    tax, their discounts (checked in ``build``'s order); None when they pass."""
    ids = config.tree.members(root)
    _member_currencies(config, root, ids)
    _tax(config, config.accounts[root])
    _discounts(config, root, ids)


def build(conn: Connection, config: Config, root: str, period: Period, rated: Rated,
          now: datetime, *, carried: dict[Period, list[Charge]] | None = None,
          overrides: Overrides | None = None, replacing: int | None = None) -> Built | None:
    """The invoice of ``root`` for ``period`` from ``rated`` and what the
    store holds now, or None when it has nothing to bill.

    :param carried: the charges of the deferred periods it bills too.
    :param replacing: the voided invoice a reissue replaces (what it billed
        of earlier periods is not counted as billed).
    """
    account = config.accounts[root]
    ids = config.tree.members(root)
    _member_currencies(config, root, ids)
    p0, p1 = bounds(config, root, period)
    lines: list[Line] = []
    origins: list[LineOrigin] = []
    # A reissue: what later invoices billed of the period (its late usage, as adjustments) stands.
    elsewhere = _billed(conn, root, str(period), replacing) if replacing is not None else {}
    reduced: list[str] = []
    for c in rated.charges:
        c0, c1 = bounds(config, c.account, period)
        q0, a0 = elsewhere.get((c.account, c.product, c.resource_id or ""), (Decimal(0), Decimal(0)))
        if q0 or a0:
            dq, da = c.quantity - q0, c.amount - a0
            reduced.append(f"{c.account} {c.product}{' ' + c.resource_id if c.resource_id else ''}: {q0} "
                           f"({a0} {c.currency}) of {period} were billed as an adjustment on a later invoice; the "
                           f"reissue bills {max(dq, Decimal(0))} ({max(da, Decimal(0))} {c.currency})")
            if dq <= 0 or da <= 0:
                continue
            lines.append(Line(c.product, c.account, dq.normalize(), c.unit, c.unit_price, da, c0, c1, c.resource_id,
                              f"{description(config, c.product)} (less what was billed as an adjustment)"))
            origins.append(LineOrigin("usage", str(period), c.records))
            continue
        lines.append(Line.from_charge(c, c0, c1, description=description(config, c.product)))
        origins.append(LineOrigin("usage", str(period), c.records, tiers=c.tiers,
                                  resources=rated.resources.get((c.account, c.product), ()) if c.resource_id is None else ()))
    adj_lines, adj_origins, warnings = adjustments(conn, config, root, rated, replacing=replacing)
    warnings = reduced + warnings
    man_lines, man_origins = manual_lines(conn, config, ids, period)
    lines += adj_lines + man_lines
    origins += adj_origins + man_origins
    own = [(ln, o) for ln, o in zip(lines, origins, strict=True) if ln.quantity != 0]
    moved = [(ln, o) for ln, o in _carried_lines(config, carried or {}) if ln.quantity != 0]
    usage = sum(1 for _, o in own if o.origin == "usage")
    kept = own[:usage] + moved + own[usage:]
    if not kept:
        return None
    sync_grants(conn, config, now, ids)
    tax, discounts = _tax(config, account), _discounts(config, root, ids)

    def computed_of(chosen: list[tuple[Line, LineOrigin]]) -> ComputedInvoice:
        return compute_invoice(
            [ln for ln, _ in chosen], currency=account.currency, period_start=p0, period_end=p1,
            tax=tax, discounts=discounts, grants=account_grants(conn, config, root), rounding=config.hub.rounding)

    computed = computed_of(kept)
    own_total = computed.total if not moved else computed_of(own).total if own else None
    snapshot = {**parties(config, root, ids, overrides),
                "products": product_units(config, (ln.product for ln, _ in kept))}
    if moved:
        snapshot["carried_periods"] = sorted({o.carried_from for _, o in moved if o.carried_from})
    return Built(account, period, computed, [o for _, o in kept], warnings, snapshot, own_total)


def _carried_lines(config: Config, carried: dict[Period, list[Charge]]) -> list[tuple[Line, LineOrigin]]:
    """The lines of the deferred periods' charges, oldest period first, each in its own period."""
    out = []
    for past, charges in sorted(carried.items()):
        for c in charges:
            c0, c1 = bounds(config, c.account, past)
            out.append((Line.from_charge(c, c0, c1, description=f"{description(config, c.product)} (carried from "
                                                                f"{past})"),
                        LineOrigin("usage", str(past), c.records, tiers=c.tiers, carried_from=str(past))))
    return out


def _address(address: Any) -> dict[str, str]:
    return {k: v for k in ("street", "city", "postal_code", "region") if (v := getattr(address, k)) is not None}


def parties(config: Config, root: str, ids: Sequence[str], overrides: Overrides | None = None) -> dict[str, Any]:
    """The ``seller``, ``buyer`` and ``members`` (child account id -> name)
    blocks an invoice keeps, and the buyer's ``purchase_order`` and
    ``buyer_reference`` when its account sets them (or ``overrides`` gives
    them), so its documents never depend on today's configuration."""
    out: dict[str, Any] = {}
    s = config.seller
    if s is not None:
        out["seller"] = {"name": s.name, "country": s.country, "vat_id": s.vat_id, "email": s.email,
                         "address": _address(s.address), "peppol_id": s.peppol_id,
                         **{k: v for k in ("iban", "bic", "phone", "legal_form", "commercial_register",
                                           "register_court") if (v := getattr(s, k)) is not None}}
        if s.managing_directors:
            out["seller"]["managing_directors"] = list(s.managing_directors)
        if s.share_capital is not None:
            out["seller"]["share_capital"] = {"amount": format(s.share_capital, "f"), "currency": config.hub.currency}
    a = config.accounts[root]
    out["buyer"] = {"id": a.id, "name": a.name, "country": a.country, "vat_id": a.vat_id, "email": a.email,
                    "address": _address(a.address), "peppol_id": a.peppol_id,
                    "locale": a.locale or config.invoicing.locale, "timezone": a.timezone}
    for key in ("purchase_order", "buyer_reference"):  # EN 16931 BT-13 and BT-10; hub invoice may give others
        value = getattr(a, key)
        if overrides is not None and getattr(overrides, key) is not None:
            value = getattr(overrides, key) or None
        if value is not None:
            out[key] = value
    out["members"] = {m: config.accounts[m].name for m in ids if m != root}
    return out


def product_units(config: Config, products: Iterable[str]) -> dict[str, dict[str, str | int | None]]:
    """For each product on an invoice: its meter, the meter's unit and
    aggregation (how a document shows 762 vCPU-seconds as 12 min 42 s), and
    a granularity or minimum (seconds) when it has one."""
    out: dict[str, dict[str, str | int | None]] = {}
    for name in sorted(set(products)):
        product = config.catalog.product(name) if name in config.catalog else None
        meter = config.meters.get(product.meter) if product is not None and product.meter else None
        out[name] = {"meter": meter.name if meter else None, "meter_unit": meter.unit if meter else None,
                     "aggregation": meter.aggregation if meter else None}
        if product is not None and (product.granularity > 1 or product.minimum > 0):  # "billed 20 min (...)"
            out[name] |= {"granularity": product.granularity, "minimum": product.minimum}
    return out
