"""The credit ledger: the grants, their entries and balances.

Grants come from two places:

- ``[[credits]]`` (source ``config``): each is a grant identified by its
  account, kind, amount, currency, dates and description (change one of
  them and it is a new grant: :func:`grant_id`);
- credit balances (source ``credit_note``): what a credit note credits
  beyond its invoice's open balance (:func:`record_credit_balance`), a
  prepaid grant ``cn-<note number>`` of the billed account that never
  expires and pays its next invoices like any prepaid grant, or is paid
  out by a refund (:mod:`hub.closing.refunds`).

A grant's balance is its amount minus what issued invoices consumed and
refunds paid out, plus what full credit notes gave back; a grant past its
expiry (plus the invoicing grace, so a late closing may still use it) gets
an expiry entry for what is left.

It owns the ``credit_grants`` and ``credit_entries`` tables: recording the
grants, expiring them, reading balances and the history (``hub credits``).
Consumptions, reversals and refunds are written by the invoice, credit note
or refund that makes them (:mod:`hub.closing.close`,
:mod:`hub.closing.credit_notes`, :mod:`hub.closing.refunds`) through
:func:`record_entries`; this module must not know how an invoice is
computed.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, insert, select

from hub.closing.errors import utcnow
from hub.config.model import Config
from hub.invoicing.inputs import PREPAID, CreditGrant
from hub.money import Money
from hub.store.tables import credit_entries, credit_grants, invoices

#: before any period: a grant without a ``granted`` date
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_SIGN = {"grant": 1, "consumption": -1, "expiry": -1, "reversal": 1, "refund": -1}
#: ``credit_grants.source`` of a [[credits]] grant and of a credit balance
CONFIG, CREDIT_NOTE = "config", "credit_note"


def credit_balance_id(note_number: str) -> str:
    """The grant id of the credit balance credit note ``note_number`` left."""
    return f"cn-{note_number}"


def grant_id(credit: Any) -> str:
    """A [[credits]] table's stable key in the ledger."""
    parts = [credit.account, credit.kind, format(credit.amount, "f"), credit.currency,
             credit.granted.isoformat() if credit.granted else "", credit.expires.isoformat() if credit.expires else "",
             credit.description or ""]
    return "g-" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:20]


#: configuration id -> (the configuration, kept alive so its id is not reused; its grants by account)
_BY_ACCOUNT: dict[int, tuple[Config, dict[str, list[tuple[str, Any]]]]] = {}


def _grants_by_account(config: Config) -> dict[str, list[tuple[str, Any]]]:
    """account -> (grant id, [[credits]] table), built once per
    configuration (closing 10,000 accounts must not walk every grant for
    each of them)."""
    held = _BY_ACCOUNT.get(id(config))
    if held is not None and held[0] is config:
        return held[1]
    credits: dict[str, list[tuple[str, Any]]] = {}
    for c in config.credits:
        credits.setdefault(c.account, []).append((grant_id(c), c))
    if len(_BY_ACCOUNT) >= 8:
        _BY_ACCOUNT.clear()
    _BY_ACCOUNT[id(config)] = (config, credits)
    return credits


def sync_grants(conn: Connection, config: Config, now: datetime, accounts: Sequence[str] | None = None) -> None:
    """Record the configured grants (of ``accounts``, default all) in the
    ledger (once each)."""
    if accounts is None:
        wanted = [(grant_id(c), c) for c in config.credits]
    else:
        credits = _grants_by_account(config)
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
            description=credit.description or "", recorded_at=now, source=CONFIG))
        conn.execute(insert(credit_entries).values(
            grant_id=gid, entry="grant", amount=format(credit.amount, "f"), at=credit.granted or now,
            invoice_id=None, dedupe="grant"))


def record_credit_balance(conn: Connection, account: str, amount: Money, *, note_id: int, note_number: str,
                          invoice_number: str, granted: datetime, now: datetime) -> str:
    """Record what credit note ``note_number`` credits beyond its invoice's
    open balance as a credit balance of ``account`` (a prepaid grant that
    never expires, granted at ``granted``: the start of the credited
    invoice's period, so it pays the invoices issued after it for that
    period (a reissue) and the next ones), with its
    ``grant`` entry, in the caller's transaction (the note's); the grant's
    id."""
    gid = credit_balance_id(note_number)
    conn.execute(insert(credit_grants).values(
        id=gid, account=account, kind=PREPAID, currency=amount.currency, amount=str(amount), granted_at=granted,
        expires=None, description=f"credit balance of {note_number} ({invoice_number})", recorded_at=now,
        source=CREDIT_NOTE, invoice_id=note_id))
    conn.execute(insert(credit_entries).values(grant_id=gid, entry="grant", amount=str(amount), at=now,
                                               invoice_id=note_id, dedupe="grant"))
    return gid


def balance_of(conn: Connection, grant_id: str) -> Decimal:
    """What is left of grant ``grant_id`` (0 for none)."""
    return _balances(conn, [grant_id]).get(grant_id, Decimal(0))


def _balances(conn: Connection, grant_ids: Iterable[str]) -> dict[str, Decimal]:
    ids = list(grant_ids)
    out: dict[str, Decimal] = defaultdict(Decimal)
    if not ids:
        return out
    for gid, entry, amount in conn.execute(
            select(credit_entries.c.grant_id, credit_entries.c.entry, credit_entries.c.amount)
            .where(credit_entries.c.grant_id.in_(ids))):
        out[gid] += _SIGN[entry] * Decimal(amount)
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
    """The grants of ``account`` with their balances: the configured ones
    and the credit balances its credit notes left (whose rows stay locked
    until the caller's transaction ends)."""
    ids = dict(_grants_by_account(config).get(account, ()))
    # the credit balances are locked until the caller's transaction ends: a closing that consumes them and a
    # refund that pays them out (which locks its grant too) see each other's entries, never the same balance
    stored = conn.execute(select(credit_grants).where(credit_grants.c.account == account,
                                                      credit_grants.c.source == CREDIT_NOTE)
                          .order_by(credit_grants.c.id).with_for_update()).all()
    balances = _balances(conn, [*ids, *(r.id for r in stored)])
    out = []
    for gid, c in ids.items():
        remaining = min(max(balances.get(gid, c.amount), Decimal(0)), c.amount)
        out.append(CreditGrant.of(gid, c.money, c.kind, c.granted or _EPOCH, c.expires, remaining,
                                  c.description or None))
    for r in stored:
        granted = Money.of(r.amount, r.currency)
        remaining = min(max(balances.get(r.id, Decimal(0)), Decimal(0)), granted.amount)
        out.append(CreditGrant.of(r.id, granted, r.kind, r.granted_at or _EPOCH, r.expires, remaining,
                                  r.description or None))
    return out


def record_entries(conn: Connection, entry: str, amounts: Iterable[tuple[str, str]], *, at: datetime,
                   invoice_id: int | None, dedupe: str) -> None:
    """Write a ``consumption``, ``reversal`` or ``refund`` entry of each
    (grant id, amount) for the invoice or credit note ``invoice_id`` (None
    for a refund), in the caller's transaction (the one that issues it or
    records the refund)."""
    for gid, amount in amounts:
        conn.execute(insert(credit_entries).values(grant_id=gid, entry=entry, amount=amount, at=at,
                                                   invoice_id=invoice_id, dedupe=dedupe))


@dataclass(frozen=True)
class LedgerEntry:
    """One entry of a grant's history: ``entry`` is grant, consumption,
    expiry, reversal or refund; ``invoice`` the number that made it, if any
    (a credit balance's grant: its credit note)."""

    grant_id: str
    kind: str
    entry: str
    amount: Decimal
    at: datetime
    invoice: str | None
    description: str


def ledger(engine: Engine, config: Config, account: str,
           now: datetime | None = None) -> tuple[list[CreditGrant], list[LedgerEntry]]:
    """``hub credits``: the account's grants with balances, and the history."""
    now = now or utcnow()
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
