"""Closing periods into invoices: drafts, issue, adjustments, the credit
ledger, manual charges, payments and credit notes (issue #4).

Every function here is a stage of the pipeline: a function of the
configuration and the store, idempotent, and safe after a crash, because
each account's closing is one transaction.

- **Who is invoiced.** An account without a parent is billed for each
  period of its schedule; a child account's lines go on its root's invoice,
  labelled with the child (its ``account``), and it gets no invoice of its
  own. The root's country, VAT id, currency, time zone and schedule decide.
- **Drafts** have no number and are rebuilt each time they are asked for.
  **Issuing** rebuilds the invoice from the store inside one transaction,
  takes the next number of its series (``UPDATE ... RETURNING`` holds the
  series row until the commit, so numbers are gap-free and in issue order),
  freezes the figures, writes the credit consumptions, binds the manual
  charges it bills and records the period as closed. The unique constraint
  on (kind, account, period) refuses a second invoice for one period, even
  from a second process.
- **A series** restarts each year when the number format holds ``{year}``
  (and each month with ``{month}``); ``year`` and ``month`` are those of the
  issue date.
- **Late usage.** A closed period whose usage changed after it was closed
  (a record received later that touches it) is rated again; what it now
  costs beyond what was billed for it (per product and resource) becomes an
  adjustment line on the next invoice, with the period it belongs to in
  ``adjustment_for``. A period that costs *less* than billed is not lowered
  silently: the operator issues a credit note (``Closing.warnings`` says so).
- **Credits** come from ``[[credits]]``; each is a grant in the ledger,
  identified by its account, kind, amount, currency, dates and description
  (change one of them and it is a new grant). Its balance is its amount
  minus what issued invoices consumed, plus what full credit notes gave
  back; a grant past its expiry (plus the invoicing grace, so a late
  closing may still use it) gets an expiry entry for what is left.
- **Manual charges** (``hub charge add``) land on the account's next issued
  invoice as a line of quantity 1 and can be paid with credits like any line.
- **Payments** move an issued invoice to ``partially_paid`` then ``paid``;
  paying more than is due is refused. A credit note for the whole invoice
  voids it and gives back the credits it consumed; a credit note for some
  lines credits those lines net of their percentage discounts, at the
  invoice's tax rate.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction
from zoneinfo import ZoneInfo
from typing import Any

from sqlalchemy import Connection, Engine, delete, exists, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from hub.config.model import Account, Config
from hub.invoicing.compute import (
    Allowance,
    ComputedInvoice,
    CreditGrant,
    Discount,
    Line,
    compute_invoice,
    money,
    money_str,
)
from hub.invoicing.tax import Buyer, Seller, TaxTreatment, determine_tax
from hub.outbox import ISSUED_EVENT, PAID_EVENT, enqueue
from hub.periods import Period, parse_period
from hub.pricing import exact, round_money
from hub.rating import Charge, ResourceShare, rate, resource_shares
from hub.store.tables import (
    credit_entries,
    credit_grants,
    invoice_lines,
    invoices,
    manual_charges,
    payments,
    period_closings,
    sequences,
    usage_records,
)

INVOICE = "invoice"
CREDIT_NOTE = "credit_note"
STATUSES = ("draft", "issued", "paid", "partially_paid", "void")
#: before any period: a grant without a ``granted`` date
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
#: the product name of a manual charge's line
MANUAL = "manual"


class InvoicingError(Exception):
    """Something the operator must fix before an invoice can be made; the
    message says what and where."""


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


# --------------------------------------------------------------------------
# Accounts: who is invoiced, with whom


def root_of(config: Config, account_id: str) -> str:
    """The account that is invoiced for ``account_id``'s usage."""
    seen = {account_id}
    acc = config.accounts[account_id]
    while acc.parent is not None and acc.parent not in seen:
        seen.add(acc.parent)
        acc = config.accounts[acc.parent]
    return acc.id


@dataclass(frozen=True)
class _Index:
    """What closing looks up per account, built once per configuration
    (closing 10,000 accounts walked every account for each of them)."""

    members: dict[str, list[str]]
    credits: dict[str, list[tuple[str, Any]]]  # account -> (grant id, [[credits]] table)


#: configuration id -> (the configuration, kept alive so its id is not reused; its index)
_INDEXES: dict[int, tuple[Config, _Index]] = {}


def _index(config: Config) -> _Index:
    held = _INDEXES.get(id(config))
    if held is not None and held[0] is config:
        return held[1]
    groups: dict[str, list[str]] = {}
    for a in config.accounts:
        groups.setdefault(root_of(config, a), []).append(a)
    credits: dict[str, list[tuple[str, Any]]] = {}
    for c in config.credits:
        credits.setdefault(c.account, []).append((grant_id(c), c))
    if len(_INDEXES) >= 8:
        _INDEXES.clear()
    index = _Index(groups, credits)
    _INDEXES[id(config)] = (config, index)
    return index


def members(config: Config, root: str) -> list[str]:
    """``root`` and every account billed through it (in configuration order)."""
    return list(_index(config).members.get(root, ()))


def billed_accounts(config: Config, period: Period, only: Sequence[str] | None = None) -> list[str]:
    """The accounts invoiced for ``period``: roots whose schedule is the
    period's kind (``only``: the roots of these accounts, whatever their
    schedule, which the caller checked)."""
    if only is not None:
        return sorted({root_of(config, a) for a in only})
    return [a.id for a in config.accounts.values() if a.parent is None and a.schedule == period.kind]


# --------------------------------------------------------------------------
# Invoice numbers


def series_of(kind: str, fmt: str, issue_date: date) -> str:
    """The sequence a number is taken from: per kind, and per year (month)
    when the format shows the year (month)."""
    key = kind
    if "{year" in fmt:
        key += f":{issue_date.year}"
    if "{month" in fmt:
        key += f"-{issue_date.month:02d}"
    return key


def issue_day(config: Config, now: datetime) -> date:
    """The default issue date: today in the hub's time zone (``[hub]
    timezone``), the one calendar every invoice's date is read in, so that
    dates follow the numbers whatever the accounts' time zones."""
    return now.astimezone(ZoneInfo(config.hub.timezone)).date()


def next_number(conn: Connection, kind: str, fmt: str, issue_date: date) -> str:
    """The next number of the series, taken inside the caller's transaction
    (the series row stays locked until it commits or rolls back)."""
    series = series_of(kind, fmt, issue_date)
    seq = conn.execute(
        update(sequences).where(sequences.c.series == series).values(last=sequences.c.last + 1)
        .returning(sequences.c.last)
    ).scalar()
    if seq is None:
        conn.execute(insert(sequences).values(series=series, last=1))
        seq = 1
    return fmt.format(year=issue_date.year, month=issue_date.month, seq=seq)


# --------------------------------------------------------------------------
# The credit ledger


def grant_id(credit: Any) -> str:
    """A [[credits]] table's stable key in the ledger."""
    parts = [credit.account, credit.kind, format(credit.amount, "f"), credit.currency,
             credit.granted.isoformat() if credit.granted else "", credit.expires.isoformat() if credit.expires else "",
             credit.description or ""]
    return "g-" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:20]


def sync_grants(conn: Connection, config: Config, now: datetime, accounts: Sequence[str] | None = None) -> None:
    """Record the configured grants (of ``accounts``, default all) in the
    ledger (once each)."""
    if accounts is None:
        wanted = [(grant_id(c), c) for c in config.credits]
    else:
        credits = _index(config).credits
        wanted = [pair for a in accounts for pair in credits.get(a, ())]
    if not wanted:
        return
    known = set(conn.scalars(select(credit_grants.c.id).where(credit_grants.c.id.in_([g for g, _ in wanted]))))
    for gid, credit in wanted:
        if gid in known:
            continue
        known.add(gid)
        conn.execute(insert(credit_grants).values(
            id=gid, account=credit.account, kind=credit.kind, currency=credit.currency,
            amount=format(credit.amount, "f"), granted_at=credit.granted, expires=credit.expires,
            description=credit.description or "", recorded_at=now))
        conn.execute(insert(credit_entries).values(
            grant_id=gid, entry="grant", amount=format(credit.amount, "f"), at=credit.granted or now,
            invoice_id=None, dedupe="grant"))


def _balances(conn: Connection, grant_ids: Iterable[str]) -> dict[str, Decimal]:
    ids = list(grant_ids)
    out: dict[str, Decimal] = defaultdict(Decimal)
    if not ids:
        return out
    sign = {"grant": 1, "consumption": -1, "expiry": -1, "reversal": 1}
    for gid, entry, amount in conn.execute(
            select(credit_entries.c.grant_id, credit_entries.c.entry, credit_entries.c.amount)
            .where(credit_entries.c.grant_id.in_(ids))):
        out[gid] += sign[entry] * Decimal(amount)
    return out


def expire_grants(conn: Connection, config: Config, now: datetime) -> None:
    """An expiry entry for what is left of each grant past its expiry plus
    the invoicing grace."""
    limit = now - timedelta(seconds=config.invoicing.grace)
    rows = conn.execute(select(credit_grants.c.id).where(credit_grants.c.expires.is_not(None),
                                                        credit_grants.c.expires <= limit)).scalars().all()
    balances = _balances(conn, rows)
    for gid in rows:
        left = balances[gid]
        if left > 0:
            conn.execute(insert(credit_entries).values(
                grant_id=gid, entry="expiry", amount=format(left, "f"), at=now, invoice_id=None, dedupe="expiry"))


def account_grants(conn: Connection, config: Config, account: str) -> list[CreditGrant]:
    """The configured grants of ``account`` with their balances."""
    ids = dict(_index(config).credits.get(account, ()))
    balances = _balances(conn, ids)
    out = []
    for gid, c in ids.items():
        remaining = min(max(balances.get(gid, c.amount), Decimal(0)), c.amount)
        out.append(CreditGrant(gid, c.amount, c.currency, c.kind, c.granted or _EPOCH, c.expires,
                               remaining, c.description or None))
    return out


@dataclass(frozen=True)
class LedgerEntry:
    grant_id: str
    kind: str
    entry: str
    amount: Decimal
    at: datetime
    invoice: str | None
    description: str


def ledger(engine: Engine, config: Config, account: str, now: datetime | None = None) -> tuple[list[CreditGrant], list[LedgerEntry]]:
    """``hub credits``: the account's grants with balances, and the history."""
    now = now or _utcnow()
    with engine.begin() as conn:
        sync_grants(conn, config, now)
        expire_grants(conn, config, now)
        grants = account_grants(conn, config, account)
        rows = conn.execute(
            select(credit_entries, credit_grants.c.kind, credit_grants.c.description, invoices.c.number)
            .join(credit_grants, credit_grants.c.id == credit_entries.c.grant_id)
            .outerjoin(invoices, invoices.c.id == credit_entries.c.invoice_id)
            .where(credit_grants.c.account == account)
            .order_by(credit_entries.c.at, credit_entries.c.id)).all()
    history = [LedgerEntry(r.grant_id, r.kind, r.entry, Decimal(r.amount), r.at, r.number, r.description) for r in rows]
    return grants, history


# --------------------------------------------------------------------------
# Building an invoice


@dataclass
class LineOrigin:
    """Where a line came from, parallel to the computed lines."""

    origin: str  # usage | adjustment | manual
    period: str
    records: int = 0
    manual_charge_id: int | None = None
    tiers: tuple[dict[str, Any], ...] = ()
    #: a product line's drill-down to its resources (:func:`hub.rating.resource_shares`)
    resources: tuple[ResourceShare, ...] = ()


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


def _bounds(config: Config, account: str, period: Period) -> tuple[datetime, datetime]:
    return period.bounds(config.accounts[account].tz)


def _description(config: Config, product: str) -> str:
    if product in config.catalog:
        return config.catalog.product(product).description or product
    return product


def _billed(conn: Connection, root: str, period: str) -> dict[tuple[str, str, str], tuple[Decimal, Decimal]]:
    """What issued invoices of ``root`` billed for ``period``: (account,
    product, resource) -> (quantity, amount)."""
    rows = conn.execute(
        select(invoice_lines.c.account, invoice_lines.c.product, invoice_lines.c.resource_id,
               invoice_lines.c.quantity, invoice_lines.c.amount)
        .join(invoices, invoices.c.id == invoice_lines.c.invoice_id)
        .where(invoices.c.kind == INVOICE, invoices.c.account == root, invoices.c.number.is_not(None),
               invoice_lines.c.period == period, invoice_lines.c.origin != "manual"))
    out: dict[tuple[str, str, str], tuple[Decimal, Decimal]] = defaultdict(lambda: (Decimal(0), Decimal(0)))
    for acc, product, res, q, amount in rows:
        key = (acc, product, res or "")
        old = out[key]
        out[key] = (old[0] + Decimal(q), old[1] + Decimal(amount))
    return out


def _late_periods(conn: Connection, config: Config, root: str, ids: list[str], period: Period) -> list[Period]:
    """Closed periods of ``root`` before ``period`` whose usage changed
    after they were closed."""
    out = []
    for label, closed_at in conn.execute(select(period_closings.c.period, period_closings.c.closed_at)
                                         .where(period_closings.c.account == root, period_closings.c.period != str(period))):
        past = parse_period(label)
        if past.start >= period.start:
            continue
        p0, p1 = past.epoch_bounds(config.accounts[root].tz)
        late = conn.execute(select(exists().where(
            usage_records.c.account.in_(ids), # received_s is whole seconds: a record of the closing's own second may
            # be late too (adjustments compare totals, so it never counts twice)
            usage_records.c.received_s >= int(closed_at.timestamp()),
            usage_records.c.start_s < p1 + 86400 * 2,  # members in other zones: a margin, rating clips exactly
            or_(usage_records.c.end_s.is_(None), usage_records.c.end_s > p0 - 86400 * 2)))).scalar()
        if late:
            out.append(past)
    return sorted(out)


@dataclass
class Rated:
    """The charges an invoice is built from, rated before its transaction
    (rating reads through its own connection): the period's, and those of
    each closed period whose usage changed since it was closed."""

    charges: list[Charge]
    late: dict[Period, list[Charge]]
    #: the period's product lines' resources, per (account, product)
    resources: dict[tuple[str, str], tuple[ResourceShare, ...]] = field(default_factory=dict)


def rate_for_invoice(engine: Engine, config: Config, root: str, period: Period, now: datetime) -> Rated:
    ids = members(config, root)
    with engine.connect() as conn:
        late = _late_periods(conn, config, root, ids, period)
    return Rated(rate(engine, config, period, accounts=ids, now=now),
                 {past: rate(engine, config, past, accounts=ids, now=now) for past in late},
                 resource_shares(engine, config, period, accounts=ids, now=now))


def _adjustments(conn: Connection, config: Config, root: str, rated: Rated) -> tuple[list[Line], list[LineOrigin], list[str]]:
    lines: list[Line] = []
    origins: list[LineOrigin] = []
    warnings: list[str] = []
    for past, charges in sorted(rated.late.items()):
        billed = _billed(conn, root, str(past))
        for c in _as_billed(charges, billed):
            q0, a0 = billed.get((c.account, c.product, c.resource_id or ""), (Decimal(0), Decimal(0)))
            dq, da = c.quantity - q0, c.amount - a0
            if da < 0 or dq < 0:
                if da < 0:
                    warnings.append(f"{c.account} {c.product}{' ' + c.resource_id if c.resource_id else ''} in {past} "
                                    f"now costs {c.amount}, {-da} less than billed: issue a credit note")
                continue
            if dq == 0 and da == 0:
                continue
            p0, p1 = _bounds(config, c.account, past)
            dq = dq.normalize() if dq else Decimal(0)  # 37.5 - 12.5 is 25, not 25.0
            lines.append(Line(c.product, c.account, dq, c.unit, c.unit_price, da, p0, p1, c.resource_id,
                              f"{_description(config, c.product)} (adjustment for {past})", str(past)))
            origins.append(LineOrigin("adjustment", str(past), c.records))
    return lines, origins, warnings


def _as_billed(charges: list[Charge], billed: dict[tuple[str, str, str], tuple[Decimal, Decimal]]) -> list[Charge]:
    """A past period's charges, rated again, split as its issued lines
    were: an account's lines of a product that were billed itemized
    otherwise (the account's or the product's ``itemize`` changed since)
    are compared as one line, and ``billed`` holds that line's sums, so
    that no usage billed already is billed again."""
    by_product: dict[tuple[str, str], list[Charge]] = defaultdict(list)
    for c in charges:
        by_product[(c.account, c.product)].append(c)
    split: dict[tuple[str, str], set[bool]] = defaultdict(set)
    for acc, product, res in list(billed):
        split[(acc, product)].add(res != "")
    out: list[Charge] = []
    for (acc, product), group in by_product.items():
        was = split.get((acc, product))
        if not was or was == {any(c.resource_id for c in group)}:
            out.extend(group)
            continue
        q0 = a0 = Decimal(0)
        for key in [k for k in billed if k[:2] == (acc, product)]:
            q, a = billed.pop(key)
            q0, a0 = q0 + q, a0 + a
        billed[(acc, product, "")] = (q0, a0)
        out.append(replace(group[0], resource_id=None, quantity=sum((c.quantity for c in group), Decimal(0)),
                           exact_amount=sum((c.exact_amount for c in group), Fraction(0)),
                           amount=sum((c.amount for c in group), Decimal(0)),
                           records=sum(c.records for c in group)))
    return out


def _manual(conn: Connection, config: Config, ids: list[str], period: Period) -> tuple[list[Line], list[LineOrigin]]:
    lines, origins = [], []
    for row in conn.execute(select(manual_charges).where(manual_charges.c.account.in_(ids),
                                                          manual_charges.c.invoice_id.is_(None))
                            .order_by(manual_charges.c.id)):
        p0, p1 = _bounds(config, row.account, period)
        amount = Decimal(row.amount)
        lines.append(Line(MANUAL, row.account, Decimal(1), "unit", amount, amount, p0, p1, None, row.description))
        origins.append(LineOrigin("manual", str(period), 0, row.id))
    return lines, origins


def _tax(config: Config, account: Account) -> TaxTreatment:
    if config.seller is None:
        raise InvoicingError("no [seller] is configured: the invoices' issuer (name, country, vat_id) is required")
    if account.country is None:
        raise InvoicingError(f"account {account.id!r} has no country: the tax of its invoices depends on it")
    try:
        return determine_tax(Seller(config.seller.country, config.seller.vat_id),
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


def build(conn: Connection, config: Config, root: str, period: Period, rated: Rated,
          now: datetime) -> Built | None:
    """The invoice of ``root`` for ``period`` from ``rated`` and what the
    store holds now, or None when it has nothing to bill."""
    account = config.accounts[root]
    ids = members(config, root)
    for member in ids:
        if config.accounts[member].currency != account.currency:
            raise InvoicingError(f"account {member!r} is billed in {config.accounts[member].currency} but invoiced "
                                 f"through {root!r}, which is billed in {account.currency}")
    p0, p1 = _bounds(config, root, period)
    lines: list[Line] = []
    origins: list[LineOrigin] = []
    for c in rated.charges:
        c0, c1 = _bounds(config, c.account, period)
        lines.append(Line.from_charge(c, c0, c1, description=_description(config, c.product)))
        origins.append(LineOrigin("usage", str(period), c.records, tiers=c.tiers,
                                  resources=rated.resources.get((c.account, c.product), ()) if c.resource_id is None else ()))
    adj_lines, adj_origins, warnings = _adjustments(conn, config, root, rated)
    man_lines, man_origins = _manual(conn, config, ids, period)
    lines += adj_lines + man_lines
    origins += adj_origins + man_origins
    kept = [(ln, o) for ln, o in zip(lines, origins, strict=True) if ln.quantity != 0]
    if not kept:
        return None
    sync_grants(conn, config, now, ids)
    computed = compute_invoice(
        [ln for ln, _ in kept], currency=account.currency, period_start=p0, period_end=p1,
        tax=_tax(config, account), discounts=_discounts(config, root, ids),
        grants=account_grants(conn, config, root), rounding=config.hub.rounding)
    snapshot = {**parties(config, root, ids), "products": product_units(config, (ln.product for ln, _ in kept))}
    return Built(account, period, computed, [o for _, o in kept], warnings, snapshot)


def _address(address: Any) -> dict[str, str]:
    return {k: v for k in ("street", "city", "postal_code", "region") if (v := getattr(address, k)) is not None}


def parties(config: Config, root: str, ids: Sequence[str]) -> dict[str, Any]:
    """The ``seller``, ``buyer`` and ``members`` (child account id -> name)
    blocks an invoice keeps, so its documents never depend on today's
    configuration."""
    out: dict[str, Any] = {}
    s = config.seller
    if s is not None:
        out["seller"] = {"name": s.name, "country": s.country, "vat_id": s.vat_id, "email": s.email,
                         "address": _address(s.address), "peppol_id": s.peppol_id,
                         **{k: v for k in ("iban", "bic", "phone") if (v := getattr(s, k)) is not None}}
    a = config.accounts[root]
    out["buyer"] = {"id": a.id, "name": a.name, "country": a.country, "vat_id": a.vat_id, "email": a.email,
                    "address": _address(a.address), "peppol_id": a.peppol_id,
                    "locale": a.locale or config.invoicing.locale, "timezone": a.timezone}
    out["members"] = {m: config.accounts[m].name for m in ids if m != root}
    return out


def product_units(config: Config, products: Iterable[str]) -> dict[str, dict[str, str | None]]:
    """For each product on an invoice: its meter, the meter's unit and
    aggregation (how a document shows 762 vCPU-seconds as 12 min 42 s)."""
    out: dict[str, dict[str, str | None]] = {}
    for name in sorted(set(products)):
        product = config.catalog.product(name) if name in config.catalog else None
        meter = config.meters.get(product.meter) if product is not None and product.meter else None
        out[name] = {"meter": meter.name if meter else None, "meter_unit": meter.unit if meter else None,
                     "aggregation": meter.aggregation if meter else None}
    return out


# --------------------------------------------------------------------------
# The stored form


def _content(built: Built, number: str | None, issue_date: date | None, due_date: date | None) -> dict[str, Any]:
    c = built.computed
    doc = {"number": number, "account": built.account.id, "period": str(built.period), **c.to_json(),
           "issue_date": issue_date.isoformat() if issue_date else None,
           "due_date": due_date.isoformat() if due_date else None}
    for line, origin in zip(doc["lines"], built.origins, strict=True):
        line["records"] = origin.records
        if origin.tiers:
            line["tiers"] = [dict(t) for t in origin.tiers]
        if origin.resources:
            line["resources"] = [r.to_json() for r in origin.resources]
    doc["allowances"] = [_allowance_json(a, c.currency) for a in c.allowances]
    doc.update(built.parties)
    doc["credits"] = [{"grant": k.grant_id, "kind": k.kind, "description": k.description or None,
                       "amount": money_str(k.amount, c.currency), "remaining": money_str(k.remaining, c.currency)}
                      for k in c.consumptions]
    return doc


def _allowance_json(a: Allowance, currency: str) -> dict[str, Any]:
    d = a.discount
    return {"discount": d.id, "description": d.description, "percent": None if d.percent is None else format(d.percent, "f"),
            "amount": money_str(a.amount, currency), "line": None if a.line is None else a.line + 1}


def _save(conn: Connection, built: Built, *, invoice_id: int | None, number: str | None, status: str,
          issue_date: date | None, due_date: date | None, now: datetime) -> int:
    c = built.computed
    values = dict(kind=INVOICE, number=number, account=built.account.id, currency=c.currency,
                  period=str(built.period), period_start=c.period_start, period_end=c.period_end, status=status,
                  issue_date=issue_date.isoformat() if issue_date else None,
                  due_date=due_date.isoformat() if due_date else None,
                  total=money_str(c.total, c.currency), amount_due=money_str(c.amount_due, c.currency),
                  content=json.dumps(_content(built, number, issue_date, due_date), sort_keys=True),
                  issued_at=now if number else None)
    if invoice_id is None:
        invoice_id = conn.execute(insert(invoices).values(**values, created_at=now).returning(invoices.c.id)).scalar_one()
    else:
        conn.execute(update(invoices).where(invoices.c.id == invoice_id).values(**values))
        conn.execute(delete(invoice_lines).where(invoice_lines.c.invoice_id == invoice_id))
    conn.execute(insert(invoice_lines), [
        dict(invoice_id=invoice_id, position=i, origin=o.origin, account=ln.account, product=ln.product,
             resource_id=ln.resource_id, period=o.period, quantity=format(ln.quantity, "f"),
             amount=money_str(ln.amount, c.currency), records=o.records, manual_charge_id=o.manual_charge_id)
        for i, (ln, o) in enumerate(zip(c.lines, built.origins, strict=True), start=1)])
    return invoice_id


@dataclass(frozen=True)
class Closing:
    """What closing one account's period did."""

    account: str
    period: Period
    outcome: str  # issued | draft | already_issued | no_charges | not_ended | overlaps
    number: str | None = None
    total: str | None = None
    amount_due: str | None = None
    currency: str | None = None
    warnings: tuple[str, ...] = ()
    note: str = ""


def _members_end(config: Config, account: str, period: Period) -> datetime:
    """When ``period`` ends for ``account`` and every account invoiced
    through it: the latest of their time zones' ends (a child further west
    ends its period later: its running records are billed to that end)."""
    zones = {config.accounts[a].timezone: a for a in members(config, account)} or {None: account}
    return max(_bounds(config, a, period)[1] for a in zones.values())


def period_ended(config: Config, account: str, period: Period, now: datetime) -> datetime | None:
    """None when ``period`` has ended plus the grace for ``account`` and
    every account invoiced through it (:func:`_members_end`: their late
    usage is waited for too); else when it will have."""
    end = _members_end(config, account, period) + timedelta(seconds=config.invoicing.grace)
    return None if now >= end else end


def _state(conn: Connection, config: Config, root: str, period: Period, draft: bool,
           now: datetime) -> Closing | None:
    """The outcome when ``root``'s ``period`` needs no work (issued already,
    closed with nothing to bill, or not ended), else None."""
    account = config.accounts[root]
    # The closing record first: it is written in the same transaction as the
    # issued invoice, so reading it before the invoice never mistakes a
    # period another process has just issued for one with nothing to bill.
    closed = conn.execute(select(period_closings.c.invoice_id).where(
        period_closings.c.account == root, period_closings.c.period == str(period))).first()
    if closed is not None and closed.invoice_id is None:
        return Closing(root, period, "no_charges", note="closed before with nothing to bill; later usage is "
                                                        "billed as an adjustment on the next invoice")
    row = conn.execute(select(invoices.c.number, invoices.c.total, invoices.c.amount_due)
                       .where(invoices.c.kind == INVOICE, invoices.c.account == root,
                              invoices.c.period == str(period))).first()
    if row is not None and row.number is not None:
        return Closing(root, period, "already_issued", row.number, row.total, row.amount_due, account.currency)
    for label in conn.scalars(select(period_closings.c.period).where(period_closings.c.account == root)):
        other = parse_period(label)
        if other.kind != period.kind and other.start < period.end and period.start < other.end:
            return Closing(root, period, "overlaps", note=f"{period} overlaps {other}, closed under the {other.kind} "
                                                          "schedule: its days are invoiced already")
    waiting = period_ended(config, root, period, now)
    if waiting is not None and not draft:
        return Closing(root, period, "not_ended", note=f"the period ends (with the grace) at {waiting.isoformat()}")
    return None


def close_account(engine: Engine, config: Config, root: str, period: Period, *, draft: bool = False,
                  now: datetime | None = None, issue_date: date | None = None) -> Closing:
    """Close ``root``'s ``period``: a draft (``draft``) or the issued invoice.

    Idempotent: an issued invoice is never touched again; an account with
    nothing to bill gets no invoice (the period is still recorded as closed,
    so usage arriving later is billed as an adjustment)."""
    # Usage received from here on is late for this period: rating below
    # may or may not see it, and the next invoice's adjustments compare
    # what the period costs then with what was billed, so it counts once.
    closed_at = _utcnow()
    now = now or closed_at
    with engine.connect() as conn:
        early = _state(conn, config, root, period, draft, now)
    if early is not None:
        return early
    rated = rate_for_invoice(engine, config, root, period, now)
    with engine.begin() as conn:
        early = _state(conn, config, root, period, draft, now)  # another process may have issued it meanwhile
        if early is not None:
            return early
        row = conn.execute(select(invoices.c.id).where(invoices.c.kind == INVOICE, invoices.c.account == root,
                                                       invoices.c.period == str(period))).first()
        built = build(conn, config, root, period, rated, now)
        if built is None:
            if row is not None:
                conn.execute(delete(invoice_lines).where(invoice_lines.c.invoice_id == row.id))
                conn.execute(delete(invoices).where(invoices.c.id == row.id))
            if not draft:
                conn.execute(insert(period_closings).values(account=root, period=str(period), closed_at=closed_at,
                                                            invoice_id=None))
            return Closing(root, period, "no_charges")
        c = built.computed
        if draft:
            _save(conn, built, invoice_id=row.id if row else None, number=None, status="draft",
                  issue_date=None, due_date=None, now=now)
            return Closing(root, period, "draft", None, money_str(c.total, c.currency),
                           money_str(c.amount_due, c.currency), c.currency, tuple(built.warnings))
        issued_on = issue_date or issue_day(config, now)
        due = issued_on + timedelta(days=config.invoicing.payment_terms_days)
        ends_on = issue_day(config, _members_end(config, root, period))
        if issued_on < ends_on:  # an earlier date given by hand is taken as given: numbers follow issue order
            raise InvoicingError(f"issue date {issued_on} is before the invoiced period ends ({ends_on} in the "
                                 f"hub's time zone, {config.hub.timezone})")
        number = next_number(conn, INVOICE, config.invoicing.number_format, issued_on)
        invoice_id = _save(conn, built, invoice_id=row.id if row else None, number=number, status="issued",
                           issue_date=issued_on, due_date=due, now=now)
        for k in c.consumptions:
            conn.execute(insert(credit_entries).values(grant_id=k.grant_id, entry="consumption",
                                                       amount=format(k.amount, "f"), at=now, invoice_id=invoice_id,
                                                       dedupe=f"invoice:{invoice_id}"))
        charge_ids = [o.manual_charge_id for o in built.origins if o.manual_charge_id is not None]
        if charge_ids:
            conn.execute(update(manual_charges).where(manual_charges.c.id.in_(charge_ids)).values(invoice_id=invoice_id))
        conn.execute(insert(period_closings).values(account=root, period=str(period), closed_at=closed_at,
                                                    invoice_id=invoice_id))
        enqueue(conn, config, invoice_id, number, root, ISSUED_EVENT[INVOICE], now)
        return Closing(root, period, "issued", number, money_str(c.total, c.currency),
                       money_str(c.amount_due, c.currency), c.currency, tuple(built.warnings))


def close_period(engine: Engine, config: Config, period: Period, accounts: Sequence[str] | None = None, *,
                 draft: bool = False, now: datetime | None = None, issue_date: date | None = None) -> list[Closing]:
    """Close ``period`` for every billed account (or those of ``accounts``).
    A second process closing the same account at once gets
    ``already_issued``, never a second invoice."""
    out = []
    for root in billed_accounts(config, period, accounts):
        try:
            out.append(close_account(engine, config, root, period, draft=draft, now=now, issue_date=issue_date))
        except IntegrityError:
            # Another process issued it between our check and our insert.
            out.append(close_account(engine, config, root, period, draft=draft, now=now, issue_date=issue_date))
    return out


# --------------------------------------------------------------------------
# Reading, payments, manual charges, credit notes


def invoice_json(conn: Connection, row: Any) -> dict[str, Any]:
    """The contract JSON of a stored invoice or credit note."""
    doc = json.loads(row.content)
    doc["status"] = row.status
    doc["number"] = row.number
    doc["kind"] = row.kind
    if row.kind == CREDIT_NOTE:
        doc["refers_to"] = conn.execute(select(invoices.c.number).where(invoices.c.id == row.refers_to)).scalar()
        doc["reason"] = row.reason
    paid = [{"amount": p.amount, "date": p.paid_on, "reference": p.reference}
            for p in conn.execute(select(payments).where(payments.c.invoice_id == row.id).order_by(payments.c.id))]
    doc["payments"] = paid
    if row.number is None:
        doc["draft_id"] = row.id
    return doc


def find(conn: Connection, ref: str) -> Any:
    """An invoice by number, or a draft by ``draft:ID``."""
    if ref.startswith("draft:") and ref[6:].isdigit():
        return conn.execute(select(invoices).where(invoices.c.id == int(ref[6:]), invoices.c.number.is_(None))).first()
    return conn.execute(select(invoices).where(invoices.c.number == ref)).first()


def list_invoices(engine: Engine, account: str | None = None, status: str | None = None,
                  kind: str | None = None) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        query = select(invoices).order_by(invoices.c.issued_at.is_(None), invoices.c.issued_at, invoices.c.id)
        if account is not None:
            query = query.where(invoices.c.account == account)
        if status is not None:
            query = query.where(invoices.c.status == status)
        if kind is not None:
            query = query.where(invoices.c.kind == kind)
        return [invoice_json(conn, r) for r in conn.execute(query)]


def pay(engine: Engine, config: Config, number: str, amount: Decimal, paid_on: date, reference: str | None = None,
        now: datetime | None = None) -> dict[str, Any]:
    """Record a payment of an issued invoice; its status follows (and once
    it is paid, the ``invoice.paid`` deliveries are written with it)."""
    now = now or _utcnow()
    with engine.begin() as conn:
        row = conn.execute(select(invoices).where(invoices.c.number == number).with_for_update()).first()
        if row is None:
            raise InvoicingError(f"no invoice numbered {number!r}")
        if row.kind != INVOICE:
            raise InvoicingError(f"{number} is a credit note, not an invoice")
        if row.status not in ("issued", "partially_paid"):
            raise InvoicingError(f"{number} is {row.status}: only an issued or partially paid invoice can be paid")
        try:
            amount = money(amount, row.currency, "--amount")
        except ValueError as exc:
            raise InvoicingError(str(exc)) from None
        if amount <= 0:
            raise InvoicingError(f"--amount must be more than 0, not {amount}")
        paid = sum((Decimal(p) for p in conn.scalars(select(payments.c.amount).where(payments.c.invoice_id == row.id))),
                   Decimal(0))
        due = Decimal(row.amount_due)
        if paid + amount > due:
            raise InvoicingError(f"{number}: {money_str(amount, row.currency)} {row.currency} is more than the "
                                 f"{money_str(due - paid, row.currency)} still due")
        conn.execute(insert(payments).values(invoice_id=row.id, amount=money_str(amount, row.currency),
                                             paid_on=paid_on.isoformat(), reference=reference, recorded_at=now))
        status = "paid" if paid + amount == due else "partially_paid"
        conn.execute(update(invoices).where(invoices.c.id == row.id).values(status=status))
        if status == "paid":
            enqueue(conn, config, row.id, number, row.account, PAID_EVENT, now)
        return invoice_json(conn, conn.execute(select(invoices).where(invoices.c.id == row.id)).one())


def add_manual_charge(engine: Engine, config: Config, account: str, amount: Decimal, description: str,
                      now: datetime | None = None) -> int:
    """A one-off charge for ``account``'s next invoice."""
    now = now or _utcnow()
    currency = config.accounts[account].currency
    try:
        amount = money(amount, currency, "--amount")
    except ValueError as exc:
        raise InvoicingError(str(exc)) from None
    if amount <= 0:
        raise InvoicingError(f"--amount must be more than 0, not {amount} (a refund is a credit note)")
    if not description.strip():
        raise InvoicingError("--description must say what the charge is for")
    with engine.begin() as conn:
        return conn.execute(insert(manual_charges).values(
            account=account, amount=money_str(amount, currency), currency=currency, description=description.strip(),
            created_at=now).returning(manual_charges.c.id)).scalar_one()


def credit_note(engine: Engine, config: Config, number: str, reason: str, positions: Sequence[int] | None = None,
                now: datetime | None = None, issue_date: date | None = None) -> dict[str, Any]:
    """Issue a credit note for invoice ``number``: all its lines, or those
    at ``positions`` (1-based, as on the invoice)."""
    now = now or _utcnow()
    if not reason.strip():
        raise InvoicingError("--reason must say why the invoice is credited")
    with engine.begin() as conn:
        row = conn.execute(select(invoices).where(invoices.c.number == number).with_for_update()).first()
        if row is None or row.kind != INVOICE:
            raise InvoicingError(f"no invoice numbered {number!r}")
        if row.status == "void":
            raise InvoicingError(f"{number} is void: it was credited in full already")
        doc = json.loads(row.content)
        currency = row.currency
        count = len(doc["lines"])
        chosen = sorted(set(positions)) if positions else list(range(1, count + 1))
        bad = [p for p in chosen if not 1 <= p <= count]
        if bad:
            raise InvoicingError(f"{number} has lines 1 to {count}; no line {', '.join(map(str, bad))}")
        done = conn.execute(select(invoices.c.content).where(invoices.c.kind == CREDIT_NOTE,
                                                            invoices.c.refers_to == row.id)).scalars().all()
        credited = {p for c in done for p in json.loads(c).get("credited_lines", [])}
        again = [p for p in chosen if p in credited]
        if again:
            raise InvoicingError(f"{number}: line {', '.join(map(str, again))} was credited already")
        whole = not credited and len(chosen) == count
        if whole:
            cn = {k: doc[k] for k in ("currency", "period_start", "period_end", "lines", "subtotal", "discount_total",
                                      "promotional_credit", "taxable_amount", "tax", "total", "prepaid_applied",
                                      "amount_due", "allowances", "credits")}
        else:
            lines = [doc["lines"][p - 1] for p in chosen]
            subtotal = sum((Decimal(ln["amount"]) for ln in lines), Decimal(0))
            discount = sum((Decimal(a["amount"]) for a in doc["allowances"] if a["line"] in chosen), Decimal(0))
            taxable = subtotal - discount
            rate_ = Decimal(doc["tax"]["rate"])
            tax = round_money(exact(taxable) * exact(rate_) / 100, currency, config.hub.rounding)
            cn = {"currency": currency, "period_start": doc["period_start"], "period_end": doc["period_end"],
                  "lines": lines, "subtotal": money_str(subtotal, currency), "discount_total": money_str(discount, currency),
                  "promotional_credit": money_str(Decimal(0), currency), "taxable_amount": money_str(taxable, currency),
                  "tax": {**doc["tax"], "amount": money_str(tax, currency)},
                  "total": money_str(taxable + tax, currency), "prepaid_applied": money_str(Decimal(0), currency),
                  "amount_due": money_str(taxable + tax, currency),
                  # numbered by the credit note's own lines, as its lines are
                  "allowances": [{**a, "line": chosen.index(a["line"]) + 1}
                                 for a in doc["allowances"] if a["line"] in chosen], "credits": []}
        issued_on = issue_date or issue_day(config, now)
        if issued_on.isoformat() < row.issue_date:
            raise InvoicingError(f"issue date {issued_on} is before the credited invoice's own ({row.issue_date})")
        cn_number = next_number(conn, CREDIT_NOTE, config.invoicing.credit_note_format, issued_on)
        cn.update({k: doc[k] for k in ("seller", "buyer", "members", "products") if k in doc})
        cn.update(number=cn_number, account=row.account, period=row.period, issue_date=issued_on.isoformat(),
                  due_date=None, credited_lines=chosen)
        cn_id = conn.execute(insert(invoices).values(
            kind=CREDIT_NOTE, number=cn_number, account=row.account, currency=currency, period=None,
            period_start=row.period_start, period_end=row.period_end, status="issued",
            issue_date=issued_on.isoformat(), due_date=None, total=cn["total"], amount_due=cn["amount_due"],
            content=json.dumps(cn, sort_keys=True), refers_to=row.id, reason=reason.strip(), created_at=now,
            issued_at=now).returning(invoices.c.id)).scalar_one()
        enqueue(conn, config, cn_id, cn_number, row.account, ISSUED_EVENT[CREDIT_NOTE], now)
        if whole:
            for k in doc["credits"]:
                conn.execute(insert(credit_entries).values(grant_id=k["grant"], entry="reversal", amount=k["amount"],
                                                           at=now, invoice_id=cn_id, dedupe=f"credit_note:{cn_id}"))
            conn.execute(update(invoices).where(invoices.c.id == row.id).values(status="void"))
        return invoice_json(conn, conn.execute(select(invoices).where(invoices.c.id == cn_id)).one())


__all__ = [
    "CREDIT_NOTE", "INVOICE", "MANUAL", "STATUSES", "Closing", "InvoicingError", "LedgerEntry",
    "add_manual_charge", "billed_accounts", "close_account", "close_period", "credit_note", "find",
    "invoice_json", "ledger", "list_invoices", "members", "next_number", "pay", "period_ended", "root_of",
    "series_of",
]
