"""The receivables: what each billed account owes and holds on a given day,
its statement (``hub statement``) and the book of every account
(``hub receivables``).

Everything is read as of a day D, from the dates on the documents, never
from when a row was written:

- an invoice counts from its issue date; its **open balance** on D is its
  amount due less its payments dated on or before D and what its credit
  notes issued on or before D settled (their ``applied``), never below 0
  (on today's date it is :func:`hub.invoices.open_balances`'s figure);
- its **age** on D is the days past its due date: ``current`` (not yet
  past due), ``1-30``, ``31-60``, ``61-90``, ``over_90``;
- a **credit balance** (what a credit note credited beyond its invoice's
  open balance) counts from the note's issue date, less what invoices
  issued on or before D consumed of it (plus what whole credit notes gave
  back) and the refunds dated on or before D;
- an account's **balance** is its open total less its credit balance
  (negative: the account is owed money).

Amounts are exact Decimals per currency (an account may have billed in
another currency before; a total never adds two currencies). It reads the
store and must not know how invoices are made, paid or credited
(:mod:`hub.closing` writes what is read here).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timezone
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, select

from hub.invoices import CREDIT_NOTE, INVOICE
from hub.money import money_str
from hub.store.tables import credit_entries, credit_grants, invoices, payments, refunds

#: the aging buckets, by days past the due date
BUCKETS = ("current", "1-30", "31-60", "61-90", "over_90")


def bucket_of(days_past_due: int) -> str:
    """The aging bucket of an open amount ``days_past_due`` days past its due date."""
    if days_past_due <= 0:
        return "current"
    if days_past_due <= 30:
        return "1-30"
    if days_past_due <= 60:
        return "31-60"
    if days_past_due <= 90:
        return "61-90"
    return "over_90"


@dataclass(frozen=True)
class OpenItem:
    """An invoice with an open balance on the statement's day."""

    number: str
    account: str
    currency: str
    issue_date: str
    due_date: str | None
    amount_due: Decimal
    paid: Decimal
    credited: Decimal
    open: Decimal
    days_past_due: int

    @property
    def bucket(self) -> str:
        return bucket_of(self.days_past_due)

    def to_json(self) -> dict[str, Any]:
        c = self.currency
        return {"number": self.number, "issue_date": self.issue_date, "due_date": self.due_date, "currency": c,
                "amount_due": money_str(self.amount_due, c), "paid": money_str(self.paid, c),
                "credited": money_str(self.credited, c), "open": money_str(self.open, c),
                "days_past_due": self.days_past_due, "bucket": self.bucket}


@dataclass(frozen=True)
class CreditNoteItem:
    """A credit note issued on or before the day: what it settled of its
    invoice, and the credit balance it left."""

    number: str
    invoice: str | None
    currency: str
    issue_date: str
    total: Decimal
    applied: Decimal
    credit_balance: Decimal

    def to_json(self) -> dict[str, Any]:
        c = self.currency
        return {"number": self.number, "invoice": self.invoice, "issue_date": self.issue_date, "currency": c,
                "total": money_str(self.total, c), "applied": money_str(self.applied, c),
                "credit_balance": money_str(self.credit_balance, c)}


@dataclass(frozen=True)
class Movement:
    """A payment of an invoice (``document``: its number) or a refund of a
    credit balance (``document``: the credit note), dated on or before the day."""

    document: str
    currency: str
    date: str
    amount: Decimal
    reference: str | None

    def to_json(self, key: str) -> dict[str, Any]:
        return {key: self.document, "date": self.date, "currency": self.currency,
                "amount": money_str(self.amount, self.currency), "reference": self.reference}


@dataclass
class Totals:
    """One account's (or the book's) figures in one currency."""

    currency: str
    open: Decimal = Decimal(0)
    buckets: dict[str, Decimal] = field(default_factory=lambda: {b: Decimal(0) for b in BUCKETS})
    credit_balance: Decimal = Decimal(0)

    @property
    def balance(self) -> Decimal:
        """The open total less the credit balance (negative: the account is owed)."""
        return self.open - self.credit_balance

    def add(self, other: Totals) -> None:
        self.open += other.open
        self.credit_balance += other.credit_balance
        for b in BUCKETS:
            self.buckets[b] += other.buckets[b]

    def to_json(self) -> dict[str, Any]:
        c = self.currency
        return {"currency": c, "open": money_str(self.open, c),
                "buckets": {b: money_str(v, c) for b, v in self.buckets.items()},
                "credit_balance": money_str(self.credit_balance, c), "balance": money_str(self.balance, c)}


@dataclass(frozen=True)
class Statement:
    """``hub statement ACCOUNT``: the account's open invoices, credit notes,
    payments and refunds on the day ``as_of``, and its totals per currency."""

    account: str
    as_of: date
    open_items: list[OpenItem]
    credit_notes: list[CreditNoteItem]
    payments: list[Movement]
    refunds: list[Movement]
    totals: list[Totals]

    def to_json(self) -> dict[str, Any]:
        return {"account": self.account, "as_of": self.as_of.isoformat(),
                "open_invoices": [i.to_json() for i in self.open_items],
                "credit_notes": [n.to_json() for n in self.credit_notes],
                "payments": [p.to_json("invoice") for p in self.payments],
                "refunds": [r.to_json("credit_note") for r in self.refunds],
                "totals": [t.to_json() for t in self.totals]}


@dataclass(frozen=True)
class BookRow:
    """One billed account's figures in one currency in the book."""

    account: str
    totals: Totals

    def to_json(self) -> dict[str, Any]:
        return {"account": self.account, **self.totals.to_json()}


@dataclass(frozen=True)
class Book:
    """``hub receivables``: every billed account's figures on the day
    ``as_of``, and the book's totals per currency (each the exact sum of
    its rows)."""

    as_of: date
    rows: list[BookRow]
    totals: list[Totals]

    def to_json(self) -> dict[str, Any]:
        return {"as_of": self.as_of.isoformat(), "accounts": [r.to_json() for r in self.rows],
                "totals": [t.to_json() for t in self.totals]}


@dataclass
class _Snapshot:
    """What the store holds on the day, for one account or all of them."""

    open_items: list[OpenItem]
    notes: list[CreditNoteItem]
    paid: list[Movement]
    refunded: list[Movement]
    #: (account, currency) -> credit balance left on the day
    credit: dict[tuple[str, str], Decimal]
    #: (account, currency) of every invoice and credit balance counted
    seen: set[tuple[str, str]]


def _read(conn: Connection, as_of: date, account: str | None) -> _Snapshot:
    day = as_of.isoformat()
    mine = (lambda q, col: q if account is None else q.where(col == account))
    rows = conn.execute(mine(select(invoices.c.id, invoices.c.number, invoices.c.account, invoices.c.currency,
                                    invoices.c.issue_date, invoices.c.due_date, invoices.c.amount_due)
                             .where(invoices.c.kind == INVOICE, invoices.c.number.is_not(None),
                                    invoices.c.issue_date <= day)
                             .order_by(invoices.c.issue_date, invoices.c.id), invoices.c.account)).all()
    by_id = {r.id: r for r in rows}
    paid: dict[int, Decimal] = defaultdict(Decimal)
    movements: list[Movement] = []
    for p in conn.execute(mine(select(payments, invoices.c.account)
                               .join(invoices, invoices.c.id == payments.c.invoice_id)
                               .where(payments.c.paid_on <= day).order_by(payments.c.paid_on, payments.c.id),
                               invoices.c.account)):
        if p.invoice_id in by_id:
            paid[p.invoice_id] += Decimal(p.amount)
            inv = by_id[p.invoice_id]
            movements.append(Movement(inv.number, inv.currency, p.paid_on, Decimal(p.amount), p.reference))
    credited: dict[int, Decimal] = defaultdict(Decimal)
    notes: list[CreditNoteItem] = []
    note_day: dict[int, tuple[str, str]] = {}
    for n in conn.execute(mine(select(invoices.c.id, invoices.c.number, invoices.c.refers_to, invoices.c.currency,
                                      invoices.c.issue_date, invoices.c.total, invoices.c.amount_due,
                                      invoices.c.applied)
                               .where(invoices.c.kind == CREDIT_NOTE, invoices.c.issue_date <= day)
                               .order_by(invoices.c.issue_date, invoices.c.id), invoices.c.account)):
        applied = Decimal(n.applied or 0)
        credited[n.refers_to] += applied
        note_day[n.id] = (n.issue_date, n.number)
        inv = by_id.get(n.refers_to)
        notes.append(CreditNoteItem(n.number, inv.number if inv else None, n.currency, n.issue_date,
                                    Decimal(n.total), applied, Decimal(n.amount_due) - applied))
    items = []
    for r in rows:
        left = max(Decimal(r.amount_due) - paid[r.id] - credited[r.id], Decimal(0))
        if left > 0:
            past = (as_of - date.fromisoformat(r.due_date)).days if r.due_date else 0
            items.append(OpenItem(r.number, r.account, r.currency, r.issue_date, r.due_date, Decimal(r.amount_due),
                                  paid[r.id], credited[r.id], left, past))
    credit, refunded = _credit_balances(conn, as_of, account, note_day)
    seen = {(r.account, r.currency) for r in rows} | set(credit)
    return _Snapshot(items, notes, movements, refunded, credit, seen)


def _credit_balances(conn: Connection, as_of: date, account: str | None,
                     note_day: dict[int, tuple[str, str]]) -> tuple[dict[tuple[str, str], Decimal], list[Movement]]:
    """The credit balances of credit notes issued on or before ``as_of``
    (``note_day``: their ids -> issue dates and numbers) on that day, and
    their refunds."""
    day = as_of.isoformat()
    query = select(credit_grants).where(credit_grants.c.source == "credit_note")
    if account is not None:
        query = query.where(credit_grants.c.account == account)
    grants = {g.id: g for g in conn.execute(query) if g.invoice_id in note_day}
    out: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    left = {gid: Decimal(g.amount) for gid, g in grants.items()}
    entries = _entries(conn, grants)
    dated = _issue_days(conn, {e.invoice_id for e in entries if e.invoice_id is not None})
    for e in entries:
        if e.entry in ("grant", "refund"):
            continue  # the grant's amount above, refunds below by their date
        when = dated.get(e.invoice_id) if e.invoice_id is not None else e.at.astimezone(timezone.utc).date().isoformat()
        if when is not None and when <= day:
            left[e.grant_id] += Decimal(e.amount) if e.entry == "reversal" else -Decimal(e.amount)
    moves = []
    names = {gid: note_day[g.invoice_id][1] for gid, g in grants.items()}
    query = select(refunds).where(refunds.c.paid_on <= day).order_by(refunds.c.paid_on, refunds.c.id)
    for r in conn.execute(query if account is None else query.where(refunds.c.account == account)):
        if r.grant_id in grants:
            left[r.grant_id] -= Decimal(r.amount)
            moves.append(Movement(names[r.grant_id], r.currency, r.paid_on, Decimal(r.amount), r.reference))
    for gid, g in grants.items():
        out[(g.account, g.currency)] += max(left[gid], Decimal(0))
    return dict(out), moves


def _entries(conn: Connection, grants: dict[str, Any]) -> list[Any]:
    ids = list(grants)
    out: list[Any] = []
    for start in range(0, len(ids), 500):
        out += conn.execute(select(credit_entries).where(credit_entries.c.grant_id.in_(ids[start:start + 500]))).all()
    return out


def _issue_days(conn: Connection, ids: Iterable[int]) -> dict[int, str]:
    wanted = list(ids)
    out: dict[int, str] = {}
    for start in range(0, len(wanted), 500):
        out.update(conn.execute(select(invoices.c.id, invoices.c.issue_date)
                                .where(invoices.c.id.in_(wanted[start:start + 500]))).all())
    return out


def _totals(snap: _Snapshot) -> dict[tuple[str, str], Totals]:
    out = {key: Totals(key[1]) for key in sorted(snap.seen)}
    for item in snap.open_items:
        t = out[(item.account, item.currency)]
        t.open += item.open
        t.buckets[item.bucket] += item.open
    for key, amount in snap.credit.items():
        out[key].credit_balance += amount
    return out


def _sum(rows: Iterable[Totals]) -> list[Totals]:
    by_currency: dict[str, Totals] = {}
    for t in rows:
        by_currency.setdefault(t.currency, Totals(t.currency)).add(t)
    return [by_currency[c] for c in sorted(by_currency)]


def statement(engine: Engine, account: str, as_of: date) -> Statement:
    """``account``'s statement on the day ``as_of`` (the billed account: a
    root of the account tree)."""
    with engine.connect() as conn:
        snap = _read(conn, as_of, account)
    return Statement(account, as_of, snap.open_items, snap.notes, snap.paid, snap.refunded,
                     _sum(_totals(snap).values()))


def book(engine: Engine, as_of: date) -> Book:
    """Every billed account's figures on the day ``as_of``, and the totals."""
    with engine.connect() as conn:
        snap = _read(conn, as_of, None)
    per = _totals(snap)
    rows = [BookRow(account, t) for (account, _), t in per.items()]
    return Book(as_of, rows, _sum(per.values()))


__all__ = ["BUCKETS", "Book", "BookRow", "CreditNoteItem", "Movement", "OpenItem", "Statement", "Totals", "book",
           "bucket_of", "statement"]
