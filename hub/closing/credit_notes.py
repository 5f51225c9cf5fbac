"""Credit notes: the correction of an issued invoice, and what it settles.

A credit note for the whole invoice gives back the credits it consumed
(reversal entries in the ledger); a credit note for some lines credits
those lines net of their percentage discounts, at the invoice's tax rate,
rounded once. A line is credited at most once. Credit notes have their own
number series, and are issued (and delivered) like invoices.

What a note credits (its value V: its amount due, which for a whole note is
the invoice's own amount due) settles its invoice's open balance first:
``applied = min(V, open balance)`` is kept on the note (``invoices.applied``)
and lowers what is owed (:func:`hub.invoices.open_balances`). The rest
becomes a credit balance of the billed account
(:func:`hub.closing.ledger.record_credit_balance`, granted at the start
of the credited invoice's period) that pays the invoices issued after the
note (the next periods', a reissue of the credited one), or is refunded. The invoice's status follows: ``void`` once every
line is credited; ``paid`` when the note settled what was still open (its
``invoice.paid`` deliveries are written with the note); otherwise it keeps
its status.

It reads the credited invoice's frozen JSON, never today's configuration
(beyond the numbering and the rounding mode); it must not know how the
invoice was built.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, insert, select, update

from hub.closing.errors import InvoicingError, utcnow
from hub.closing.ledger import record_credit_balance, record_entries
from hub.closing.numbering import issue_day, next_number
from hub.config.model import Config
from hub.invoices import CREDIT_NOTE, INVOICE, invoice_json, open_balances
from hub.money import Money
from hub.outbox.queue import ISSUED_EVENT, PAID_EVENT, enqueue
from hub.pricing import exact
from hub.store.tables import invoices


_FIGURES = ("subtotal", "discount_total", "promotional_credit", "taxable_amount", "total")


def _lines_note(config: Config, doc: dict[str, Any], chosen: list[int], earlier: list[dict[str, Any]], *,
                final: bool, number: str) -> dict[str, Any]:
    """The figures of a credit note for the lines ``chosen`` (1-based) of
    the invoice ``doc``, after the notes ``earlier``: its lines net of their
    percentage discounts at the invoice's tax rate, rounded once; the note
    that credits the last lines (``final``) credits exactly what is left of
    the invoice's figures, so the notes add up to the invoice (its fixed
    discounts and promotional credit, and the rounding of its tax, included),
    and a note that would credit more than is left is refused."""
    currency = doc["currency"]
    zero = Money.zero(currency)
    lines = [doc["lines"][p - 1] for p in chosen]
    # numbered by the credit note's own lines, as its lines are; the final note takes the invoice's own
    # (document-level) allowances too
    allowances = [{**a, "line": chosen.index(a["line"]) + 1} for a in doc["allowances"] if a["line"] in chosen]
    if final:
        allowances += [a for a in doc["allowances"] if a["line"] is None]

        def left(get: Callable[[dict[str, Any]], str]) -> Money:
            return Money.of(get(doc), currency) - sum((Money.of(get(n), currency) for n in earlier), zero)

        figures = {k: left(lambda d, k=k: d[k]) for k in _FIGURES}  # type: ignore[misc]
        tax = left(lambda d: d["tax"]["amount"])
    else:
        subtotal = sum((Money.of(ln["amount"], currency) for ln in lines), zero)
        discount = sum((Money.of(a["amount"], currency) for a in allowances), zero)
        taxable = subtotal - discount
        tax = Money.rounded(exact(taxable.amount) * exact(Decimal(doc["tax"]["rate"])) / 100, currency,
                            config.hub.rounding)
        figures = {"subtotal": subtotal, "discount_total": discount, "promotional_credit": zero,
                   "taxable_amount": taxable, "total": taxable + tax}
        rest = Money.of(doc["total"], currency) - sum((Money.of(n["total"], currency) for n in earlier), zero)
        if figures["total"] > rest:
            raise InvoicingError(
                f"{number}: line {', '.join(map(str, chosen))} would credit {figures['total']} {currency}, more than "
                f"the {rest} {currency} left to credit of the invoice (its fixed discounts or promotional credit "
                f"are not any one line's): credit the remaining lines together, or the whole invoice")
    total = figures["total"]
    return {"currency": currency, "period_start": doc["period_start"], "period_end": doc["period_end"],
            "lines": lines, **{k: str(v) for k, v in figures.items()}, "tax": {**doc["tax"], "amount": str(tax)},
            "prepaid_applied": str(zero), "amount_due": str(total), "allowances": allowances, "credits": []}


def credit_note(engine: Engine, config: Config, number: str, reason: str, positions: Sequence[int] | None = None,
                now: datetime | None = None, issue_date: date | None = None) -> dict[str, Any]:
    """Issue a credit note for invoice ``number``: all its lines, or those
    at ``positions`` (1-based, as on the invoice)."""
    now = now or utcnow()
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
            cn = _lines_note(config, doc, chosen, [json.loads(c) for c in done], final=credited | set(chosen) ==
                             set(range(1, count + 1)), number=number)
        issued_on = issue_date or issue_day(config, now)
        if issued_on.isoformat() < row.issue_date:
            raise InvoicingError(f"issue date {issued_on} is before the credited invoice's own ({row.issue_date})")
        cn_number = next_number(conn, CREDIT_NOTE, config.invoicing.credit_note_format, issued_on)
        # the parties and the buyer's references (BT-13, BT-10) are the credited invoice's
        cn.update({k: doc[k] for k in ("seller", "buyer", "members", "products", "purchase_order",
                                       "buyer_reference") if k in doc})
        cn.update(number=cn_number, account=row.account, period=row.period, issue_date=issued_on.isoformat(),
                  due_date=None, credited_lines=chosen)
        owed = Money.of(open_balances(conn, [row.id])[row.id], currency)
        value = Money.of(cn["amount_due"], currency)
        applied = min(value, owed)
        cn_id = conn.execute(insert(invoices).values(
            kind=CREDIT_NOTE, number=cn_number, account=row.account, currency=currency, period=None,
            period_start=row.period_start, period_end=row.period_end, status="issued",
            issue_date=issued_on.isoformat(), due_date=None, total=cn["total"], amount_due=cn["amount_due"],
            content=json.dumps(cn, sort_keys=True), refers_to=row.id, reason=reason.strip(), created_at=now,
            issued_at=now, applied=str(applied)).returning(invoices.c.id)).scalar_one()
        enqueue(conn, config, cn_id, cn_number, row.account, ISSUED_EVENT[CREDIT_NOTE], now)
        if whole:
            record_entries(conn, "reversal", ((k["grant"], k["amount"]) for k in doc["credits"]),
                           at=now, invoice_id=cn_id, dedupe=f"credit_note:{cn_id}")
        rest = value - applied
        if rest.amount > 0:
            # granted at the start of the credited period: the next closing pays with it even when the note
            # is dated the day that closing's period ended (a note of 1 December pays November), and so does
            # the reissue of a voided period
            record_credit_balance(conn, row.account, rest, note_id=cn_id, note_number=cn_number, invoice_number=number,
                                  granted=row.period_start, now=now)
        if credited | set(chosen) == set(range(1, count + 1)):
            conn.execute(update(invoices).where(invoices.c.id == row.id).values(status="void"))
        elif owed.amount > 0 and owed == applied:
            conn.execute(update(invoices).where(invoices.c.id == row.id).values(status="paid"))
            enqueue(conn, config, row.id, number, row.account, PAID_EVENT, now)
        return invoice_json(conn, conn.execute(select(invoices).where(invoices.c.id == cn_id)).one())

