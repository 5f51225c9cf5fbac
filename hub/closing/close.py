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
  unique constraint on (kind, account, period, reissue) refuses a second
  invoice for one period, even from a second process.
- **A reissue** (``reissue=True``) issues a new invoice, with a new number,
  for a period whose invoice was credited in full (status ``void``): it
  bills what the period holds now (its usage and flat fees rated again,
  the late usage of earlier periods, the pending manual charges, the
  credits' balances now, the deferred periods the voided invoice carried),
  its ``reissue`` is the voided one's + 1 and ``reissue_of`` the voided
  one's id; the period's closing then names it. A period whose invoice is
  not void is refused; running a reissue twice issues it once.
- **A minimum amount** (``[invoicing] minimum_amount``): a period whose
  invoice total would be below it is not issued: its closing keeps the
  total as ``deferred`` and no invoice. The next invoice of the account
  bills the deferred periods' charges again (rated as they are then), each
  line keeping its own period and naming it in ``carried_from``, and
  their closings name that invoice in ``carried_to``. A carried total that
  with the new period is still below the minimum is deferred again.
- **A failing account** (:class:`InvoicingError`: no country, tax that
  cannot be determined, ...) is reported by :func:`close_period` as a
  :class:`Closing` whose outcome is ``failed``; the other accounts are
  closed.
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
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from hub.closing.adjustments import Rated, rate_for_invoice
from hub.closing.build import Overrides, build
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
from hub.rating import Charge, rate
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
    #: issued | draft | already_issued | no_charges | not_ended | overlaps | deferred (below the minimum
    #: amount: ``total`` is what it would have been) | refused (a reissue of a period whose invoice is not
    #: void) | failed (the account cannot be invoiced: ``note`` says why)
    outcome: str
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


def _latest(conn: Connection, root: str, period: Period) -> Any:
    """The period's latest issued invoice (its highest ``reissue``), or None."""
    return conn.execute(select(invoices.c.id, invoices.c.number, invoices.c.total, invoices.c.amount_due,
                               invoices.c.status, invoices.c.reissue, invoices.c.reissue_of)
                        .where(invoices.c.kind == INVOICE, invoices.c.account == root,
                               invoices.c.period == str(period), invoices.c.number.is_not(None))
                        .order_by(invoices.c.reissue.desc()).limit(1)).first()


def _number_of(conn: Connection, invoice_id: int | None) -> str | None:
    if invoice_id is None:
        return None
    return conn.execute(select(invoices.c.number).where(invoices.c.id == invoice_id)).scalar()


def _reissue_state(conn: Connection, config: Config, root: str, period: Period, closed: Any,
                   latest: Any) -> Closing | None:
    """The outcome of a reissue that has nothing to do (refused, or issued already), else None."""
    currency = config.accounts[root].currency
    if latest is None:
        why = ("it was closed with nothing to bill" if closed is not None and closed.deferred is None
               else f"its total {closed.deferred} {currency} was below the minimum amount and was deferred"
               if closed is not None else "it is not closed yet")
        return Closing(root, period, "refused", note=f"{period} has no invoice to reissue ({why}): hub invoice "
                                                     "without --reissue closes a period")
    if latest.status == "void":
        return None
    if latest.reissue_of is not None:
        return Closing(root, period, "already_issued", latest.number, latest.total, latest.amount_due, currency,
                       note=f"{latest.number} reissued {_number_of(conn, latest.reissue_of)} already; it is "
                            f"{latest.status}, not void: a period is reissued once its invoice is credited in full")
    return Closing(root, period, "refused", note=f"{latest.number} is {latest.status}, not void: only a period "
                                                 "whose invoice was credited in full (hub credit-note "
                                                 f"{latest.number} --reason ...) can be reissued")


def _state(conn: Connection, config: Config, root: str, period: Period, draft: bool,
           now: datetime, reissue: bool = False) -> Closing | None:
    """The outcome when ``root``'s ``period`` needs no work (issued already,
    closed with nothing to bill, deferred, not ended; a reissue refused),
    else None."""
    account = config.accounts[root]
    # The closing record first: it is written in the same transaction as the
    # issued invoice, so reading it before the invoice never mistakes a
    # period another process has just issued for one with nothing to bill.
    closed = conn.execute(select(period_closings.c.invoice_id, period_closings.c.deferred,
                                 period_closings.c.carried_to).where(
        period_closings.c.account == root, period_closings.c.period == str(period))).first()
    latest = _latest(conn, root, period)
    if reissue:
        return _reissue_state(conn, config, root, period, closed, latest)
    if closed is not None and closed.invoice_id is None:
        if closed.deferred is not None:
            carried = _number_of(conn, closed.carried_to)
            return Closing(root, period, "deferred", carried, closed.deferred, None, account.currency,
                           note=f"its total {closed.deferred} {account.currency} was below the minimum amount: "
                                + (f"billed on {carried}" if carried else "its charges go on the next invoice"))
        return Closing(root, period, "no_charges", note="closed before with nothing to bill; later usage is "
                                                        "billed as an adjustment on the next invoice")
    if latest is not None:
        note = ""
        if latest.status == "void":
            note = (f"{latest.number} is void (credited in full): hub invoice --period {period} --account {root} "
                    "--reissue issues a new invoice for the period")
        return Closing(root, period, "already_issued", latest.number, latest.total, latest.amount_due,
                       account.currency, note=note)
    # the other schedules' periods only: each kind's labels have a length of their own
    # (2026-10, 2026-W43, 2026-10-15), so its own closings are not read
    for label in conn.scalars(select(period_closings.c.period).where(
            period_closings.c.account == root, func.length(period_closings.c.period) != len(str(period)))):
        other = parse_period(label)
        if other.kind != period.kind and other.start < period.end and period.start < other.end:
            return Closing(root, period, "overlaps", note=f"{period} overlaps {other}, closed under the {other.kind} "
                                                          "schedule: its days are invoiced already")
    waiting = period_ended(config, root, period, now)
    if waiting is not None and not draft:
        return Closing(root, period, "not_ended", note=f"the period ends (with the grace) at {waiting.isoformat()}")
    return None


class _Stale(Exception):
    """What was read before the issuing transaction changed meanwhile (another process carried the
    deferred periods, or reissued the period): the transaction is rolled back and the closing asked again."""


def _carried(conn: Connection, root: str, period: Period, replaced: int | None) -> list[Period]:
    """The deferred periods ``root``'s invoice for ``period`` bills: those before it not carried yet, and
    those the invoice a reissue replaces had carried (``replaced``), oldest first."""
    rows = conn.execute(select(period_closings.c.period, period_closings.c.carried_to)
                        .where(period_closings.c.account == root, period_closings.c.deferred.is_not(None),
                               period_closings.c.invoice_id.is_(None), period_closings.c.period != str(period)))
    out = []
    for label, carried_to in rows:
        past = parse_period(label)
        if (carried_to is None and past.start < period.start) or (replaced is not None and carried_to == replaced):
            out.append(past)
    return sorted(out)


def close_account(engine: Engine, config: Config, root: str, period: Period, *, draft: bool = False,
                  now: datetime | None = None, issue_date: date | None = None, reissue: bool = False,
                  overrides: Overrides | None = None) -> Closing:
    """Close ``root``'s ``period``: a draft (``draft``) or the issued invoice;
    with ``reissue``, a new invoice for a period whose invoice is void.

    Idempotent: an issued invoice is never touched again; an account with
    nothing to bill gets no invoice (the period is still recorded as closed,
    so usage arriving later is billed as an adjustment), nor one whose total
    is below the minimum amount (deferred). A second process closing the
    same account at once gets ``already_issued``, never a second invoice.
    ``overrides`` replaces the account's purchase order or buyer reference
    on the invoice."""
    try:
        return _close_once(engine, config, root, period, draft=draft, now=now, issue_date=issue_date,
                           reissue=reissue, overrides=overrides)
    except (IntegrityError, _Stale):
        # Another process issued it between our check and our insert:
        # asking again reports its invoice.
        return _close_once(engine, config, root, period, draft=draft, now=now, issue_date=issue_date,
                           reissue=reissue, overrides=overrides)


def _rate_carried(engine: Engine, config: Config, root: str, period: Period, reissue: bool,
                  now: datetime) -> tuple[Rated, dict[Period, list[Charge]]]:
    """The invoice's charges rated outside its transaction: the period's and its late periods'
    (:func:`rate_for_invoice`), and the deferred periods' it carries (rated now, so a deferred period is
    never an adjustment too)."""
    with engine.connect() as conn:
        replaced = _latest(conn, root, period) if reissue else None
        periods = _carried(conn, root, period, replaced.id if replaced is not None else None)
    rated = rate_for_invoice(engine, config, root, period, now)
    ids = config.tree.members(root)
    carried = {past: rate(engine, config, past, accounts=ids, now=now) for past in periods}
    for past in periods:
        rated.late.pop(past, None)
    return rated, carried


def _close_once(engine: Engine, config: Config, root: str, period: Period, *, draft: bool,
                now: datetime | None, issue_date: date | None, reissue: bool = False,
                overrides: Overrides | None = None) -> Closing:
    # Usage received from here on is late for this period: rating below
    # may or may not see it, and the next invoice's adjustments compare
    # what the period costs then with what was billed, so it counts once.
    closed_at = utcnow()
    now = now or closed_at
    with engine.connect() as conn:
        early = _state(conn, config, root, period, draft, now, reissue)
    if early is not None:
        return early
    rated, carried = _rate_carried(engine, config, root, period, reissue, now)
    with engine.begin() as conn:
        if reissue:
            # Reissues of one period one at a time: a second waits here for the first to commit, then finds it.
            conn.execute(select(invoices.c.id).where(invoices.c.kind == INVOICE, invoices.c.account == root,
                                                     invoices.c.period == str(period)).with_for_update()).all()
        early = _state(conn, config, root, period, draft, now, reissue)  # another process may have issued it meanwhile
        if early is not None:
            return early
        replaced = _latest(conn, root, period) if reissue else None
        if replaced is not None and replaced.status != "void":
            # Another process reissued it between the check and this read (each statement sees the
            # latest commits): asking again reports that reissue.
            raise _Stale(f"{root} {period} was reissued meanwhile")
        if _carried(conn, root, period, replaced.id if replaced is not None else None) != sorted(carried):
            raise _Stale(f"the deferred periods of {root} changed while {period} was rated")
        serial = replaced.reissue + 1 if replaced is not None else 0
        row = conn.execute(select(invoices.c.id).where(invoices.c.kind == INVOICE, invoices.c.account == root,
                                                       invoices.c.period == str(period),
                                                       invoices.c.reissue == serial)).first()
        built = build(conn, config, root, period, rated, now, carried=carried, overrides=overrides,
                      replacing=replaced.id if replaced is not None else None)
        if built is None:
            if row is not None:
                conn.execute(delete(invoice_lines).where(invoice_lines.c.invoice_id == row.id))
                conn.execute(delete(invoices).where(invoices.c.id == row.id))
            if reissue:
                latest = _latest(conn, root, period)
                if latest is not None and latest.id != replaced.id:
                    # another process's reissue committed while this one built: what it billed is why
                    # nothing is left; asking again reports that reissue
                    raise _Stale(f"{root} {period} was reissued meanwhile")
                return Closing(root, period, "no_charges", note=f"the period holds nothing to bill now: "
                                                                f"{replaced.number} stays void, nothing reissued")
            if not draft:
                conn.execute(insert(period_closings).values(account=root, period=str(period), closed_at=closed_at,
                                                            invoice_id=None))
            return Closing(root, period, "no_charges")
        c = built.computed
        minimum = config.invoicing.minimum_amount
        below = not reissue and minimum is not None and c.total < minimum
        if draft:
            save(conn, built, invoice_id=row.id if row else None, number=None, status="draft",
                  issue_date=None, due_date=None, now=now, reissue=serial,
                  reissue_of=replaced.id if replaced is not None else None)
            warnings = list(built.warnings)
            if below:
                warnings.append(f"the total {c.total_money} {c.currency} is below the minimum amount {minimum} "
                                f"{c.currency}: issuing defers it to the next invoice")
            return Closing(root, period, "draft", None, str(c.total_money), str(c.amount_due_money), c.currency,
                           tuple(warnings))
        if below:
            if row is not None:  # its draft
                conn.execute(delete(invoice_lines).where(invoice_lines.c.invoice_id == row.id))
                conn.execute(delete(invoices).where(invoices.c.id == row.id))
            conn.execute(insert(period_closings).values(
                account=root, period=str(period), closed_at=closed_at, invoice_id=None,
                deferred=None if built.own_total is None else format(built.own_total, "f")))
            with_ = f" (with {', '.join(map(str, sorted(carried)))})" if carried else ""
            return Closing(root, period, "deferred", None, str(c.total_money), None, c.currency, tuple(built.warnings),
                           note=f"the total {c.total_money} {c.currency}{with_} is below the minimum amount "
                                f"{minimum} {c.currency}: its charges go on the next invoice")
        issued_on = issue_date or issue_day(config, now)
        due = issued_on + timedelta(days=config.invoicing.payment_terms_days)
        ends_on = issue_day(config, _members_end(config, root, period))
        if issued_on < ends_on:  # an earlier date given by hand is taken as given: numbers follow issue order
            raise InvoicingError(f"issue date {issued_on} is before the invoiced period ends ({ends_on} in the "
                                 f"hub's time zone, {config.hub.timezone})")
        number = next_number(conn, INVOICE, config.invoicing.number_format, issued_on)
        invoice_id = save(conn, built, invoice_id=row.id if row else None, number=number, status="issued",
                           issue_date=issued_on, due_date=due, now=now, reissue=serial,
                           reissue_of=replaced.id if replaced is not None else None)
        record_entries(conn, "consumption", ((k.grant_id, format(k.amount, "f")) for k in c.consumptions),
                       at=now, invoice_id=invoice_id, dedupe=f"invoice:{invoice_id}")
        charge_ids = [o.manual_charge_id for o in built.origins if o.manual_charge_id is not None]
        if charge_ids:
            conn.execute(update(manual_charges).where(manual_charges.c.id.in_(charge_ids)).values(invoice_id=invoice_id))
        if carried:
            # Only periods nobody carried meanwhile (a process closing another period of the account at
            # once): the row locks make the second wait and find them carried, and it starts over.
            still = period_closings.c.carried_to.is_(None)
            if replaced is not None:
                still = or_(still, period_closings.c.carried_to == replaced.id)
            moved = conn.execute(update(period_closings).where(
                period_closings.c.account == root, period_closings.c.period.in_([str(p) for p in carried]), still)
                .values(carried_to=invoice_id)).rowcount
            if moved != len(carried):
                raise _Stale(f"the deferred periods of {root} were carried by another invoice meanwhile")
        if replaced is not None:
            conn.execute(update(period_closings).where(period_closings.c.account == root,
                                                       period_closings.c.period == str(period))
                         .values(invoice_id=invoice_id, closed_at=closed_at))
        else:
            conn.execute(insert(period_closings).values(account=root, period=str(period), closed_at=closed_at,
                                                        invoice_id=invoice_id))
        enqueue(conn, config, invoice_id, number, root, ISSUED_EVENT[INVOICE], now)
        note = ""
        if replaced is not None:
            note = f"reissues {replaced.number}"
            kept = conn.execute(select(manual_charges.c.description, manual_charges.c.amount)
                                .where(manual_charges.c.invoice_id == replaced.id)
                                .order_by(manual_charges.c.id)).all()
            if kept:
                note += ("; the manual charges of " + replaced.number + " ("
                         + ", ".join(f"{d} {a}" for d, a in kept) + ") were credited with it and are not billed "
                         "again: hub charge add bills one that is still owed")
        return Closing(root, period, "issued", number, str(c.total_money), str(c.amount_due_money), c.currency,
                       tuple(built.warnings), note)


def close_period(engine: Engine, config: Config, period: Period, accounts: Sequence[str] | None = None, *,
                 draft: bool = False, now: datetime | None = None, issue_date: date | None = None,
                 reissue: bool = False, overrides: Overrides | None = None) -> list[Closing]:
    """Close ``period`` for every billed account (or those of ``accounts``).
    A second process closing the same account at once gets
    ``already_issued``, never a second invoice. An account that cannot be
    invoiced (an :class:`InvoicingError`: no country, a tax that cannot be
    determined, ...) is a ``failed`` closing naming why, and the others
    are closed."""
    out = []
    for root in billed_accounts(config, period, accounts):
        try:
            out.append(close_account(engine, config, root, period, draft=draft, now=now, issue_date=issue_date,
                                     reissue=reissue, overrides=overrides))
        except InvoicingError as exc:
            out.append(Closing(root, period, "failed", note=str(exc)))
    return out
