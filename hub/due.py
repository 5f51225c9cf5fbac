"""Which periods are due, and closing them: the close stage as ``hub run`` drives it.

A root account's period is due once it has ended, plus the grace, for every account invoiced through it
(:func:`~hub.closing.period_ended`); its first period is the one holding its ``since`` or its
earliest usage. :func:`close_due` closes every due period of every root account, oldest first.

This module knows the closing stage and the store's reads; it must not know the scheduler, the CLI or
the plugins.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Engine

from hub.config import Config
from hub.host import describe
from hub.closing import Closing, InvoicingError, close_account, period_ended
from hub.closing.empty import close_empty
from hub.periods import Period, parse_period, period_of
from hub.store.queries import closed_periods, earliest_usage

log = logging.getLogger("hub.run")


def first_period(config: Config, root: str, earliest_start: int | None) -> Period | None:
    """The first period ``root`` needs an invoice for: the one holding its
    ``since``, else the one holding ``earliest_start`` (the earliest usage
    of it and its members), else none; in the root's time zone."""
    account = config.accounts[root]
    since = getattr(account, "since", None)
    if since is not None:
        day = since.astimezone(account.tz).date() if isinstance(since, datetime) else since
    elif earliest_start is not None:
        day = datetime.fromtimestamp(earliest_start, timezone.utc).astimezone(account.tz).date()
    else:
        return None
    return period_of(account.schedule, day)


_UNSET: Any = object()


def due_periods(engine: Engine, config: Config, root: str, now: datetime, *,
                earliest_start: int | None = _UNSET, closed: Iterable[str] | None = None) -> list[Period]:
    """The periods of ``root``'s schedule that :func:`close_due` closes now,
    oldest first: from :func:`first_period` up to the last one that has
    ended plus the grace at ``now``, without those already closed (in
    ``period_closings``).

    A period that overlaps one closed under another schedule (the account
    moved from monthly to weekly, say) is left out: closing it would bill
    those days a second time. The operator closes the seam by hand.

    :param earliest_start: the earliest usage start of ``root`` and its
        members, if the caller knows it already (None: no usage).
    :param closed: the labels of ``root``'s closed periods, if the caller
        read them already (:func:`closed_periods`).
    """
    account = config.accounts[root]
    if earliest_start is _UNSET:
        earliest_start = None
        if getattr(account, "since", None) is None:
            starts = earliest_usage(engine, config.tree.members(root)).values()
            earliest_start = min(starts, default=None)
    period = first_period(config, root, earliest_start)
    if period is None:
        return []
    if closed is None:
        closed = closed_periods(engine, [root]).get(root, ())
    done = {parse_period(label) for label in closed}
    other_kinds = [p for p in done if p.kind != period.kind]
    out = []
    while period_ended(config, root, period, now) is None:
        if period not in done and not any(p.start < period.end and period.start < p.end for p in other_kinds):
            out.append(period)
        period = period.following()
    return out


def close_due(engine: Engine, config: Config, now: datetime | None = None) -> list[Closing]:
    """Close every due period of every root account (:func:`due_periods`),
    oldest first: those with nothing to bill at once (:func:`~hub.closing.empty.close_empty`), the
    others each through :func:`~hub.closing.close_account`.

    Idempotent and safe to run in several processes at once. A failure is
    reported as a :class:`Closing` whose ``outcome`` is ``failed`` (an
    :class:`~hub.closing.InvoicingError`: the operator must fix
    the configuration) or ``error`` (anything else), with the message in
    ``note``; that account's later periods with something to bill wait (invoices keep their order),
    the other accounts go on."""
    now = now or datetime.now(timezone.utc)
    tree = config.tree
    roots = tree.roots()
    need_usage = [r for r in roots if getattr(config.accounts[r], "since", None) is None]
    by_account = earliest_usage(engine, (a for r in need_usage for a in tree.members(r)))
    closed = closed_periods(engine)
    # the due periods with nothing to bill, recorded closed at once; the loop closes the others
    out: list[Closing] = close_empty(engine, config, {
        root: due_periods(engine, config, root, now, closed=closed.get(root, ()), earliest_start=min(
            (by_account[a] for a in tree.members(root) if a in by_account), default=None)) for root in roots})
    for emptied in out:
        closed.setdefault(emptied.account, set()).add(str(emptied.period))
    for root in roots:
        starts = [by_account[a] for a in tree.members(root) if a in by_account]
        for period in due_periods(engine, config, root, now, earliest_start=min(starts, default=None),
                                  closed=closed.get(root, ())):
            try:
                closing = close_account(engine, config, root, period, now=now)
            except InvoicingError as exc:
                # The operator must fix the configuration; the other accounts are closed meanwhile.
                log.warning("close: account %s cannot be invoiced for %s, skipped: %s", root, period, exc)
                out.append(Closing(root, period, "failed", note=str(exc)))
                break
            except Exception as exc:  # noqa: BLE001 - one account's failure stops that account only
                log.warning("close: closing account %s for %s failed, skipped: %s", root, period,
                            describe(exc, one_line=True))
                log.debug("closing %s %s failed", root, period, exc_info=True)
                out.append(Closing(root, period, "error", note=describe(exc, one_line=True)))
                break
            out.append(closing)
    order = {root: i for i, root in enumerate(roots)}
    return sorted(out, key=lambda c: (order[c.account], c.period))  # per root, oldest first


def open_periods(config: Config, now: datetime) -> list[Period]:
    """The periods of the accounts' schedules that hold ``now``, each
    account in its own time zone."""
    return sorted({period_of(a.schedule, now.astimezone(a.tz).date()) for a in config.accounts.values()})
