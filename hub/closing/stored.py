"""The stored form of an invoice: its row in ``invoices`` with the frozen
contract JSON (``content``), and its ``invoice_lines``.

:func:`save` writes a built invoice as a draft (no number) or issued,
replacing the draft it finalizes; an issued invoice's content never changes
afterwards (its status and payments live beside it, and the read model,
:mod:`hub.invoices`, puts them together). It must not know how the invoice
was built or numbered, only what a built one holds.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, update

from hub.closing.build import Built
from hub.invoices import INVOICE
from hub.invoicing.compute import Allowance
from hub.money import money_str
from hub.store.tables import invoice_lines, invoices


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
        if origin.adjusts is not None:
            line["adjusts"] = dict(origin.adjusts)
        if origin.carried_from is not None:
            line["carried_from"] = origin.carried_from
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


def save(conn: Connection, built: Built, *, invoice_id: int | None, number: str | None, status: str,
          issue_date: date | None, due_date: date | None, now: datetime, reissue: int = 0,
          reissue_of: int | None = None) -> int:
    """Write ``built`` (a new row, or over the draft ``invoice_id``): the
    period's ``reissue``-th invoice, replacing ``reissue_of`` when a reissue."""
    c = built.computed
    values = dict(kind=INVOICE, number=number, account=built.account.id, currency=c.currency,
                  period=str(built.period), period_start=c.period_start, period_end=c.period_end, status=status,
                  issue_date=issue_date.isoformat() if issue_date else None,
                  due_date=due_date.isoformat() if due_date else None,
                  total=money_str(c.total, c.currency), amount_due=money_str(c.amount_due, c.currency),
                  content=json.dumps(_content(built, number, issue_date, due_date), sort_keys=True),
                  issued_at=now if number else None, reissue=reissue, reissue_of=reissue_of)
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
