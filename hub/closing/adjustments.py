"""Late usage: what a closed period costs now beyond what was billed for it.

A closed period whose usage changed after it was closed (a record received
later that touches it) is rated again; what it now costs beyond what was
billed for it (per product and resource) becomes an adjustment line on the
next invoice, with the period it belongs to in ``adjustment_for``. A period
that costs *less* than billed is not lowered silently: the operator issues
a credit note (the closing's warnings say so).

An adjustment line bills the difference of two totals, each rounded once
(docs/billing-rules.md): 7,200 vCPU-s at 0.0000115 are 0.0828, but the
period's 43,200 vCPU-s cost 0.50 now where 36,000 were billed 0.41, so the
line says 0.09. Its ``adjusts`` (:func:`adjusts`) shows both totals, so the
line adds up: ``quantity = adjusts.quantity - adjusts.quantity_billed`` and
``amount = adjusts.amount - adjusts.amount_billed``, exactly.

It owns rating an invoice's periods before its transaction
(:func:`rate_for_invoice`: the invoiced period and the late ones) and the
comparison with the issued lines; it must not know how the invoice is then
computed, numbered or stored.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from fractions import Fraction

from sqlalchemy import Connection, Engine, bindparam, select, text

from hub.closing.lines import LineOrigin, bounds, description
from hub.config.model import Config
from hub.invoices import INVOICE
from hub.invoicing.inputs import Line, number_str
from hub.money import money_str
from hub.periods import Period, parse_period
from hub.rating import Charge, ResourceShare, rate, resource_shares
from hub.store.rows import rows_param, rows_sql
from hub.store.tables import invoice_lines, invoices, period_closings


def _billed(conn: Connection, root: str, period: str,
            replacing: int | None = None) -> dict[tuple[str, str, str], tuple[Decimal, Decimal]]:
    """What issued invoices of ``root`` billed for ``period``: (account,
    product, resource) -> (quantity, amount). A voided invoice that was
    reissued (or is being reissued: ``replacing``) bills nothing: its
    reissue bills in its place."""
    replaced = select(invoices.c.reissue_of).where(invoices.c.reissue_of.is_not(None),
                                                   invoices.c.number.is_not(None))
    rows = conn.execute(
        select(invoice_lines.c.account, invoice_lines.c.product, invoice_lines.c.resource_id,
               invoice_lines.c.quantity, invoice_lines.c.amount)
        .join(invoices, invoices.c.id == invoice_lines.c.invoice_id)
        .where(invoices.c.kind == INVOICE, invoices.c.account == root, invoices.c.number.is_not(None),
               invoice_lines.c.period == period, invoice_lines.c.origin != "manual",
               invoices.c.id.not_in(replaced), invoices.c.id != (replacing if replacing is not None else -1)))
    out: dict[tuple[str, str, str], tuple[Decimal, Decimal]] = defaultdict(lambda: (Decimal(0), Decimal(0)))
    for acc, product, res, q, amount in rows:
        key = (acc, product, res or "")
        old = out[key]
        out[key] = (old[0] + Decimal(q), old[1] + Decimal(amount))
    return out


#: a margin around a closed period's bounds in the root's time zone: the
#: members in other zones (rating clips exactly; adjustments compare totals)
_ZONE_MARGIN = 86400 * 2

#: which of the closed periods (``c``: ``label``, closed at ``closed_s``,
#: bounds ``lo``..``hi`` with the margin) got usage received since they were
#: closed; ``received_s`` is whole seconds: a record of the closing's own
#: second may be late too (adjustments compare totals, so it never counts twice)
_LATE = """
SELECT c.label FROM {closings} AS c
WHERE EXISTS (SELECT 1 FROM usage_records u
              WHERE u.account IN :ids AND u.account IS NOT NULL AND u.received_s >= c.closed_s
                AND u.start_s < c.hi AND (u.end_s IS NULL OR u.end_s > c.lo))
"""


def late_periods(conn: Connection, config: Config, root: str, ids: list[str], period: Period) -> list[Period]:
    """Closed periods of ``root`` before ``period`` whose usage changed
    after they were closed: one statement, however many periods are closed
    (an account closed since 2020 has 80 of them)."""
    tz = config.accounts[root].tz
    closings = []
    for label, closed_at in conn.execute(select(period_closings.c.period, period_closings.c.closed_at)
                                         .where(period_closings.c.account == root, period_closings.c.period != str(period))):
        past = parse_period(label)
        if past.start >= period.start:
            continue
        p0, p1 = past.epoch_bounds(tz)
        closings.append({"label": label, "closed_s": int(closed_at.timestamp()), "lo": p0 - _ZONE_MARGIN,
                         "hi": p1 + _ZONE_MARGIN})
    if not closings:
        return []
    sql = text(_LATE.format(closings=rows_sql(conn.dialect.name, {"label": str, "closed_s": int, "lo": int,
                                                                   "hi": int}))).bindparams(
        bindparam("ids", expanding=True))
    return sorted(parse_period(label) for label in conn.scalars(sql, {"rows": rows_param(closings), "ids": ids}))


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
    """Rate ``root``'s ``period`` and each of its late periods, for the
    accounts invoiced through it, outside the issuing transaction."""
    ids = config.tree.members(root)
    with engine.connect() as conn:
        late = late_periods(conn, config, root, ids, period)
    return Rated(rate(engine, config, period, accounts=ids, now=now),
                 {past: rate(engine, config, past, accounts=ids, now=now) for past in late},
                 resource_shares(engine, config, period, accounts=ids, now=now))


def adjustments(conn: Connection, config: Config, root: str, rated: Rated,
                replacing: int | None = None) -> tuple[list[Line], list[LineOrigin], list[str]]:
    """The adjustment lines of ``rated``'s late periods, their origins, and
    the warnings of periods that now cost less than billed (``replacing``:
    the voided invoice a reissue replaces, whose lines count as unbilled)."""
    lines: list[Line] = []
    origins: list[LineOrigin] = []
    warnings: list[str] = []
    for past, charges in sorted(rated.late.items()):
        billed = _billed(conn, root, str(past), replacing)
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
            p0, p1 = bounds(config, c.account, past)
            dq = dq.normalize() if dq else Decimal(0)  # 37.5 - 12.5 is 25, not 25.0
            lines.append(Line(c.product, c.account, dq, c.unit, c.unit_price, da, p0, p1, c.resource_id,
                              f"{description(config, c.product)} (adjustment for {past})", str(past)))
            origins.append(LineOrigin("adjustment", str(past), c.records,
                                      adjusts=adjusts(q0, a0, c.quantity, c.amount, c.currency)))
    return lines, origins, warnings


def adjusts(quantity_billed: Decimal, amount_billed: Decimal, quantity: Decimal, amount: Decimal,
            currency: str) -> dict[str, str]:
    """An adjustment line's ``adjusts`` in the invoice JSON: what was billed
    before for the line's key (account, product, resource) in its period,
    and what the period's quantity and amount are now, as exact decimal
    strings; the line's quantity and amount are the differences."""
    return {"quantity_billed": number_str(quantity_billed), "amount_billed": money_str(amount_billed, currency),
            "quantity": number_str(quantity), "amount": money_str(amount, currency)}


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
