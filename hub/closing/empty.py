"""Closing the due periods that have nothing to bill, many at once.

An operator who configures customers with their real contract start
(``since = 2020-01-01``) has years of due periods at the first ``hub run``,
most with nothing to bill; closing each would be a full rating that finds
nothing (the figures: docs/benchmarks.md). :func:`close_empty` finds, with a few
set-based statements, the periods of the due ones that the normal closing
(:func:`hub.closing.close_account`) would close with nothing to bill, and
records them closed (``period_closings``, ``invoice_id`` NULL) in one
transaction per batch; what is left is only periods with something to
bill, closed one by one.

A root account's period has nothing to bill when none of these holds:

- **usage**: a usage record of the root or a member (in the member's own
  time zone) that can count in the period, as the rating reads them
  (:data:`hub.billable.IN_PERIOD`): it starts in the period, or started
  before and ends after the period's start or still runs (a running record
  bills to the end of an ended period), whatever its meter; a record of a
  ``latest`` meter counts in every period after its start (the rating takes
  the latest value before the period's end);
- **a flat fee**: a member lists a flat product in its ``plans`` and its
  ``since`` is before the period's end (:func:`hub.rating.rate` prorates it
  from there);
- **something waiting for the next invoice**, for the whole root: a manual
  charge not billed yet, a period deferred below ``[invoicing]
  minimum_amount`` and not carried yet, or late usage of a closed period
  (an adjustment line); such a root is left to the normal closing;
- **an invoice row** of the period (a draft the normal closing deletes).

Discounts and credits only apply to lines, so they never make an invoice
of their own.

Closing a period with something to bill can decide about the next ones,
and then only the periods before a root's first due period with something
to bill are closed here, that one and the ones after it the normal way, in
order: with ``[invoicing] minimum_amount`` set (a total deferred below it
moves to the next period), and for a root whose invoice the close stage
would refuse (no country, no ``[seller]``...: its later periods wait, as
:func:`hub.due.close_due` reports). Otherwise every due period with nothing
to bill is closed here, before or after one with something to bill (an
invoice changes nothing of the next periods but their late usage, which
the normal closing of the next one finds, as after any closing).

It is a conservative test: a period it keeps (a record of a meter no
product prices, a zero quantity) is closed by the normal path, which finds
nothing and closes it all the same. It never closes a period the normal
closing would invoice.

Idempotent and crash safe: the closing instant is taken before anything is
read (usage received from then on is late for the period, billed as an
adjustment on the next invoice, as after any closing), each batch is one
transaction, and a period another process closed meanwhile is skipped by
the insert itself (``ON CONFLICT DO NOTHING`` on SQLite and PostgreSQL).
It owns no table: it writes the closing records of :mod:`hub.closing.close`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, select, text

from hub.closing.adjustments import late_periods
from hub.closing.build import check_configuration
from hub.closing.close import Closing
from hub.closing.errors import InvoicingError, utcnow
from hub.config.model import Config
from hub.invoices import INVOICE
from hub.periods import Period
from hub.store.queries import earliest_usage
from hub.store.rows import rows_param, rows_sql
from hub.store.tables import UTCDateTime, invoices, manual_charges, period_closings

#: (account, period) pairs checked per statement, and closing records
#: written per transaction
BATCH = 5000

#: which of the (member account, period bounds) pairs ``c`` have a usage
#: record that can count in the period (the module's docstring): one that
#: starts in it (a range of ``ix_usage_records_account``), or one that
#: started before and ends after its start, still runs or is of a
#: ``latest`` meter
_TOUCHED = """
SELECT c.i FROM {pairs} AS c
WHERE EXISTS (SELECT 1 FROM usage_records u
              WHERE u.account = c.account AND u.account IS NOT NULL AND u.start_s >= c.p0 AND u.start_s < c.p1)
   OR EXISTS (SELECT 1 FROM usage_records u
              WHERE u.account = c.account AND u.account IS NOT NULL AND u.start_s < c.p0
                AND (u.end_s IS NULL OR u.end_s > c.p0{latest}))
"""


def close_empty(engine: Engine, config: Config, due: Mapping[str, Sequence[Period]]) -> list[Closing]:
    """Record closed, with nothing to bill, those of the ``due`` periods
    (root account -> its due periods, oldest first) that have nothing to
    bill (each root's before its first one with something to bill only,
    when the order of the closings requires it: the module's docstring);
    their :class:`Closing`\\ s (``no_charges``), per root oldest first. A
    period another process closed meanwhile is left out."""
    closed_at = utcnow()  # before reading: what is received from now on is late for these periods
    wanted = {root: list(periods) for root, periods in due.items() if periods}
    if not wanted:
        return []
    # each account's earliest usage first: on SQLite a connection holds the write lock from its start
    earliest = earliest_usage(engine, (m for root in wanted for m in config.tree.members(root)))
    empty: dict[str, list[Period]] = {}
    with engine.connect() as conn:
        for root in _waiting(conn, config, wanted):
            del wanted[root]
        if not wanted:
            return []
        billable = _billable(conn, config, wanted, earliest)
        deferring = bool(config.invoicing.minimum_amount)
        for root, periods in wanted.items():
            prefix = deferring or not _invoiceable(config, root)
            out = []
            for period in periods:
                if (root, period) in billable:
                    if prefix:  # up to the first one with something to bill only
                        break
                    continue
                out.append(period)
            if out:
                empty[root] = out
        # last, as it costs a statement per root: only those with a period to close here
        for root in _late(conn, config, {root: wanted[root] for root in empty}):
            del empty[root]
    return _record(engine, empty, closed_at)


def _invoiceable(config: Config, root: str) -> bool:
    """Whether ``root``'s invoice passes the close stage's checks of the
    configuration (its tax, its members' currency, their discounts), those
    :mod:`hub.closing.readiness` reports: a period of a root that fails them
    keeps its later periods waiting."""
    try:
        check_configuration(config, root)
    except InvoicingError:
        return False
    return True


def _waiting(conn: Connection, config: Config, wanted: Mapping[str, Sequence[Period]]) -> set[str]:
    """The roots of ``wanted`` with a manual charge not billed yet or a
    deferred period not carried yet: their next invoice bills them."""
    tree = config.tree
    out: set[str] = set()
    for account in conn.scalars(select(manual_charges.c.account).where(manual_charges.c.invoice_id.is_(None))
                                .distinct()):
        if account in tree:
            out.add(tree.root_of(account))
    out.update(conn.scalars(select(period_closings.c.account).distinct().where(
        period_closings.c.deferred.is_not(None), period_closings.c.carried_to.is_(None))))
    return out & set(wanted)


def _late(conn: Connection, config: Config, wanted: Mapping[str, Sequence[Period]]) -> set[str]:
    """The roots of ``wanted`` with late usage of a closed period before
    their last due one (:func:`hub.closing.adjustments.late_periods`): their
    next invoice bills it as an adjustment."""
    if not wanted:
        return set()
    closed = set(conn.scalars(select(period_closings.c.account).distinct()))
    return {root for root in wanted if root in closed
            and late_periods(conn, config, root, config.tree.members(root), wanted[root][-1])}


def _billable(conn: Connection, config: Config, wanted: Mapping[str, Sequence[Period]],
              earliest: Mapping[str, int]) -> set[tuple[str, Period]]:
    """The (root, period) pairs of ``wanted`` with something to bill of
    their own: an invoice row, a flat fee or usage of a member (whose
    earliest usage starts are ``earliest``)."""
    tree = config.tree
    out: set[tuple[str, Period]] = set()
    labels = sorted({str(p) for periods in wanted.values() for p in periods})
    rows = conn.execute(select(invoices.c.account, invoices.c.period).where(
        invoices.c.kind == INVOICE, invoices.c.period.in_(labels)))
    invoiced = {(account, label) for account, label in rows if account in wanted}
    members = {root: tree.members(root) for root in wanted}
    pairs: list[tuple[str, Period, str, int, int]] = []
    for root, periods in wanted.items():
        for period in periods:
            if (root, str(period)) in invoiced or any(_flat_fee(config, m, period) for m in members[root]):
                out.add((root, period))
                continue
            for m in members[root]:
                p0, p1 = period.epoch_bounds(config.accounts[m].tz)
                if m in earliest and earliest[m] < p1:  # no record starts before the period's end: none counts
                    pairs.append((root, period, m, p0, p1))
    latest = sorted({m.name for m in config.meters.values() if m.aggregation == "latest"})
    sql = text(_TOUCHED.format(pairs=rows_sql(conn.dialect.name, {"i": int, "account": str, "p0": int, "p1": int}),
                               latest=" OR u.meter IN :latest" if latest else ""))
    if latest:
        sql = sql.bindparams(bindparam("latest", expanding=True))
    for start in range(0, len(pairs), BATCH):
        batch = pairs[start:start + BATCH]
        params: dict[str, Any] = {"rows": rows_param({"i": i, "account": m, "p0": p0, "p1": p1}
                                                     for i, (_r, _p, m, p0, p1) in enumerate(batch))}
        if latest:
            params["latest"] = latest
        for i in conn.scalars(sql, params):
            out.add((batch[int(i)][0], batch[int(i)][1]))
    return out


def _flat_fee(config: Config, account_id: str, period: Period) -> bool:
    """Whether ``account_id`` pays a flat fee in ``period``: a flat product
    in its ``plans``, and its ``since`` (when set) before the period's end,
    as :func:`hub.rating.rate` prorates it."""
    account = config.accounts[account_id]
    plans = account.extra.get("plans") or ()
    if not any(name in config.catalog and config.catalog.product(name).is_flat for name in plans):
        return False
    since = account.extra.get("since")
    if since is None:
        return True
    from hub.config.values import parse_date_or_time

    tz = account.tz
    return int(parse_date_or_time(str(since), tz).timestamp()) < period.epoch_bounds(tz)[1]


def _batches(empty: Mapping[str, Sequence[Period]]) -> Iterator[list[tuple[str, Period, str]]]:
    """``empty``'s (root, period, its label) in lists of :data:`BATCH`."""
    batch: list[tuple[str, Period, str]] = []
    for root, periods in empty.items():
        for period in periods:
            batch.append((root, period, str(period)))
            if len(batch) == BATCH:
                yield batch
                batch = []
    if batch:
        yield batch


#: closing records of the rows ``r`` (account, period), those another
#: process wrote skipped; ``WHERE`` keeps SQLite from reading ``ON
#: CONFLICT`` as a join's ``ON``
_RECORD = """
INSERT INTO period_closings (account, period, closed_at, invoice_id)
SELECT r.account, r.period, :closed_at, NULL FROM {rows} AS r WHERE 1 = 1
ON CONFLICT (account, period) DO NOTHING
RETURNING account, period
"""


def _record(engine: Engine, empty: Mapping[str, Sequence[Period]], closed_at: datetime) -> list[Closing]:
    """Insert the closing records of ``empty``, each batch in one
    transaction (one statement), skipping those another process wrote; the
    closings of those written."""
    sql = text(_RECORD.format(rows=rows_sql(engine.dialect.name, {"account": str, "period": str}))).bindparams(
        bindparam("closed_at", type_=UTCDateTime()))
    out: list[Closing] = []
    for batch in _batches(empty):
        with engine.begin() as conn:
            written = {(account, label) for account, label in conn.execute(sql, {
                "rows": rows_param({"account": root, "period": label} for root, _p, label in batch),
                "closed_at": closed_at})}
        out += [Closing(root, period, "no_charges") for root, period, label in batch if (root, label) in written]
    return out
