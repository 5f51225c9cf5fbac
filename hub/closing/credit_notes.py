"""Credit notes: the correction of an issued invoice.

A credit note for the whole invoice voids it and gives back the credits it
consumed (reversal entries in the ledger); a credit note for some lines
credits those lines net of their percentage discounts, at the invoice's
tax rate, rounded once. A line is credited at most once. Credit notes have
their own number series, and are issued (and delivered) like invoices.

It reads the credited invoice's frozen JSON, never today's configuration
(beyond the numbering and the rounding mode); it must not know how the
invoice was built.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, insert, select, update

from hub.closing.errors import InvoicingError, utcnow
from hub.closing.ledger import record_entries
from hub.closing.numbering import issue_day, next_number
from hub.config.model import Config
from hub.invoices import CREDIT_NOTE, INVOICE, invoice_json
from hub.money import Money
from hub.outbox.queue import ISSUED_EVENT, enqueue
from hub.pricing import exact
from hub.store.tables import invoices


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
            lines = [doc["lines"][p - 1] for p in chosen]
            zero = Money.zero(currency)
            subtotal = sum((Money.of(ln["amount"], currency) for ln in lines), zero)
            discount = sum((Money.of(a["amount"], currency) for a in doc["allowances"] if a["line"] in chosen), zero)
            taxable = subtotal - discount
            rate_ = Decimal(doc["tax"]["rate"])
            tax = Money.rounded(exact(taxable.amount) * exact(rate_) / 100, currency, config.hub.rounding)
            total = taxable + tax
            cn = {"currency": currency, "period_start": doc["period_start"], "period_end": doc["period_end"],
                  "lines": lines, "subtotal": str(subtotal), "discount_total": str(discount),
                  "promotional_credit": str(zero), "taxable_amount": str(taxable),
                  "tax": {**doc["tax"], "amount": str(tax)},
                  "total": str(total), "prepaid_applied": str(zero), "amount_due": str(total),
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
            record_entries(conn, "reversal", ((k["grant"], k["amount"]) for k in doc["credits"]),
                           at=now, invoice_id=cn_id, dedupe=f"credit_note:{cn_id}")
            conn.execute(update(invoices).where(invoices.c.id == row.id).values(status="void"))
        return invoice_json(conn, conn.execute(select(invoices).where(invoices.c.id == cn_id)).one())
