"""Closing a period: an account's draft or issued invoice, once.

Every function here is a stage of the pipeline: a function of the
configuration and the store, idempotent, and safe after a crash, because
each account's closing is one transaction.

- **Drafts** have no number and are rebuilt each time they are asked for.
- **Issuing** rebuilds the invoice from the store inside one transaction,
  takes the next number of its series (:mod:`hub.closing.numbering`),
  freezes the figures, writes the credit consumptions, binds the manual
  charges it bills, records the period as closed and writes the outbox's
  deliveries (:func:`hub.outbox.queue.enqueue`): all of it or none. The
  unique constraint on (kind, account, period) refuses a second invoice
  for one period, even from a second process.
- **When.** A period can be issued once it has ended, plus the invoicing
  grace, for the root and every account invoiced through it (a member in a
  zone further west ends later: its late usage is waited for too).

It owns the ``period_closings`` table and the order of the issuing
transaction; what goes on an invoice is :mod:`hub.closing.build`'s. It
must not know the outbox beyond its write side, nor the documents.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import Connection, Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from hub.closing.adjustments import rate_for_invoice
from hub.closing.build import build
from hub.closing.errors import InvoicingError, utcnow
from hub.closing.ledger import record_entries
from hub.closing.lines import bounds
from hub.closing.numbering import issue_day, next_number
from hub.closing.stored import save
from hub.config.model import Config
from hub.invoices import INVOICE
from hub.money import Money
from hub.outbox.queue import ISSUED_EVENT, enqueue
from hub.periods import Period, parse_period
from hub.store.tables import invoice_lines, invoices, manual_charges, period_closings


def billed_accounts(config: Config, period: Period, only: Sequence[str] | None = None) -> list[str]:
    """The accounts invoiced for ``period``: roots whose schedule is the
    period's kind (``only``: the roots of these accounts, whatever their
    schedule, which the caller checked)."""
    tree = config.tree
    if only is not None:
        return sorted({tree.root_of(a) for a in only})
    return [a for a in tree.roots() if config.accounts[a].schedule == period.kind]


@dataclass(frozen=True)
class Closing:
    """What closing one account's period did: ``total`` and ``amount_due``
    as the invoice JSON shows them, in ``currency`` (as one value:
    :attr:`total_money`, :attr:`amount_due_money`)."""

    account: str
    period: Period
    outcome: str  # issued | draft | already_issued | no_charges | not_ended | overlaps
    number: str | None = None
    total: str | None = None
    amount_due: str | None = None
    currency: str | None = None
    warnings: tuple[str, ...] = ()
    note: str = ""

    @property
    def total_money(self) -> Money | None:
        """``total`` with its currency (None when nothing was invoiced)."""
        return None if self.total is None or self.currency is None else Money.of(self.total, self.currency)

    @property
    def amount_due_money(self) -> Money | None:
        """``amount_due`` with its currency (None when nothing was invoiced)."""
        return None if self.amount_due is None or self.currency is None else Money.of(self.amount_due, self.currency)


def _members_end(config: Config, account: str, period: Period) -> datetime:
    """When ``period`` ends for ``account`` and every account invoiced
    through it: the latest of their time zones' ends (a child further west
    ends its period later: its running records are billed to that end)."""
    zones = {config.accounts[a].timezone: a for a in config.tree.members(account)} or {None: account}
    return max(bounds(config, a, period)[1] for a in zones.values())


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
    so usage arriving later is billed as an adjustment). A second process
    closing the same account at once gets ``already_issued``, never a
    second invoice."""
    try:
        return _close_once(engine, config, root, period, draft=draft, now=now, issue_date=issue_date)
    except IntegrityError:
        # Another process issued it between our check and our insert:
        # asking again reports its invoice.
        return _close_once(engine, config, root, period, draft=draft, now=now, issue_date=issue_date)


def _close_once(engine: Engine, config: Config, root: str, period: Period, *, draft: bool,
                now: datetime | None, issue_date: date | None) -> Closing:
    # Usage received from here on is late for this period: rating below
    # may or may not see it, and the next invoice's adjustments compare
    # what the period costs then with what was billed, so it counts once.
    closed_at = utcnow()
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
            save(conn, built, invoice_id=row.id if row else None, number=None, status="draft",
                  issue_date=None, due_date=None, now=now)
            return Closing(root, period, "draft", None, str(c.total_money), str(c.amount_due_money), c.currency,
                           tuple(built.warnings))
        issued_on = issue_date or issue_day(config, now)
        due = issued_on + timedelta(days=config.invoicing.payment_terms_days)
        ends_on = issue_day(config, _members_end(config, root, period))
        if issued_on < ends_on:  # an earlier date given by hand is taken as given: numbers follow issue order
            raise InvoicingError(f"issue date {issued_on} is before the invoiced period ends ({ends_on} in the "
                                 f"hub's time zone, {config.hub.timezone})")
        number = next_number(conn, INVOICE, config.invoicing.number_format, issued_on)
        invoice_id = save(conn, built, invoice_id=row.id if row else None, number=number, status="issued",
                           issue_date=issued_on, due_date=due, now=now)
        record_entries(conn, "consumption", ((k.grant_id, format(k.amount, "f")) for k in c.consumptions),
                       at=now, invoice_id=invoice_id, dedupe=f"invoice:{invoice_id}")
        charge_ids = [o.manual_charge_id for o in built.origins if o.manual_charge_id is not None]
        if charge_ids:
            conn.execute(update(manual_charges).where(manual_charges.c.id.in_(charge_ids)).values(invoice_id=invoice_id))
        conn.execute(insert(period_closings).values(account=root, period=str(period), closed_at=closed_at,
                                                    invoice_id=invoice_id))
        enqueue(conn, config, invoice_id, number, root, ISSUED_EVENT[INVOICE], now)
        return Closing(root, period, "issued", number, str(c.total_money), str(c.amount_due_money), c.currency,
                       tuple(built.warnings))


def close_period(engine: Engine, config: Config, period: Period, accounts: Sequence[str] | None = None, *,
                 draft: bool = False, now: datetime | None = None, issue_date: date | None = None) -> list[Closing]:
    """Close ``period`` for every billed account (or those of ``accounts``).
    A second process closing the same account at once gets
    ``already_issued``, never a second invoice."""
    return [close_account(engine, config, root, period, draft=draft, now=now, issue_date=issue_date)
            for root in billed_accounts(config, period, accounts)]
