"""The invoice's read model: an issued invoice, credit note or draft as its
contract JSON (``hub invoices show --json``), and finding and listing them.

Beyond its frozen figures, an issued invoice's JSON shows where it stands:
its payments, its credit notes (what each settled: ``applied``), the
refunds of the credit balances they left, its ``open_balance`` (amount due
less payments and what its credit notes settled) and, for a reissue, the
void invoice and the credit note it replaces (``reissue_of``,
``replaces_credit_note``). A credit note's JSON shows what it settled
(``applied``), what became a credit balance (``credit_balance``) and the
invoice that was issued in place of the one it voided (``reissued_as``).

Every stage after the close reads invoices through here: the documents
(:mod:`hub.documents`), the outbox (:mod:`hub.outbox`) and the event hooks
get the same JSON the CLI prints. It owns the invoice kinds and statuses.

It reads the store and must not know how an invoice is made, numbered,
paid or credited (:mod:`hub.closing` writes what is read here), nor who
reads it: it imports no stage, so every stage may import it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, select

from hub.money import money_str
from hub.store.tables import credit_grants, invoices, payments, refunds

INVOICE = "invoice"
CREDIT_NOTE = "credit_note"
STATUSES = ("draft", "issued", "paid", "partially_paid", "void")


def invoice_json(conn: Connection, row: Any) -> dict[str, Any]:
    """The contract JSON of a stored invoice or credit note (a row of
    ``invoices``): its frozen content, with its status, payments and where
    it stands (see the module's docstring)."""
    doc = json.loads(row.content)
    doc["status"] = row.status
    doc["number"] = row.number
    doc["kind"] = row.kind
    currency = row.currency
    if row.kind == CREDIT_NOTE:
        doc["refers_to"] = conn.execute(select(invoices.c.number).where(invoices.c.id == row.refers_to)).scalar()
        doc["reason"] = row.reason
        applied = Decimal(row.applied or 0)
        doc["applied"] = money_str(applied, currency)
        doc["credit_balance"] = money_str(Decimal(row.amount_due) - applied, currency)
        reissue = _reissued_as(conn, row)
        if reissue is not None:
            doc["reissued_as"] = reissue
    paid = [{"amount": p.amount, "date": p.paid_on, "reference": p.reference}
            for p in conn.execute(select(payments).where(payments.c.invoice_id == row.id).order_by(payments.c.id))]
    doc["payments"] = paid
    if row.kind == INVOICE and row.number is not None:
        notes = conn.execute(select(invoices.c.id, invoices.c.number, invoices.c.issue_date, invoices.c.total,
                                    invoices.c.applied)
                             .where(invoices.c.kind == CREDIT_NOTE, invoices.c.refers_to == row.id)
                             .order_by(invoices.c.id)).all()
        doc["credit_notes"] = [{"number": n.number, "issue_date": n.issue_date, "total": n.total,
                                "applied": money_str(Decimal(n.applied or 0), currency)} for n in notes]
        doc["refunds"] = _refunds_of(conn, [n.id for n in notes])
        # from what is read above: the payments and the credit notes' applied
        doc["open_balance"] = money_str(_open(row.amount_due, [*(p["amount"] for p in paid),
                                                               *(n.applied for n in notes if n.applied is not None)]),
                                        currency)
        if row.reissue_of is not None:
            doc["reissue_of"] = conn.execute(select(invoices.c.number).where(invoices.c.id == row.reissue_of)).scalar()
            doc["replaces_credit_note"] = _voiding_note(conn, row.reissue_of)
        if row.status == "void":
            reissue = conn.execute(select(invoices.c.number).where(invoices.c.reissue_of == row.id,
                                                                   invoices.c.number.is_not(None))).scalar()
            if reissue is not None:
                doc["reissued_as"] = reissue
    if row.number is None:
        doc["draft_id"] = row.id
    return doc


def _voiding_note(conn: Connection, invoice_id: int) -> str | None:
    """The number of the credit note that voided invoice ``invoice_id``: its
    latest (a whole note, or the one that credited its last lines)."""
    return conn.execute(select(invoices.c.number).where(invoices.c.kind == CREDIT_NOTE,
                                                        invoices.c.refers_to == invoice_id)
                        .order_by(invoices.c.id.desc()).limit(1)).scalar()


def _reissued_as(conn: Connection, note: Any) -> str | None:
    """The invoice issued in place of the one credit note ``note`` voided,
    when it is the note that voided it."""
    reissue = conn.execute(select(invoices.c.number).where(invoices.c.kind == INVOICE,
                                                           invoices.c.reissue_of == note.refers_to,
                                                           invoices.c.number.is_not(None))).scalar()
    if reissue is None or _voiding_note(conn, note.refers_to) != note.number:
        return None
    return reissue


def _refunds_of(conn: Connection, note_ids: list[int]) -> list[dict[str, Any]]:
    """The refunds of the credit balances the credit notes ``note_ids`` left."""
    if not note_ids:
        return []
    rows = conn.execute(select(refunds, invoices.c.number)
                        .join(credit_grants, credit_grants.c.id == refunds.c.grant_id)
                        .join(invoices, invoices.c.id == credit_grants.c.invoice_id)
                        .where(credit_grants.c.invoice_id.in_(note_ids)).order_by(refunds.c.id))
    return [{"credit_note": r.number, "amount": r.amount, "date": r.paid_on, "reference": r.reference} for r in rows]


def open_balances(conn: Connection, invoice_ids: Iterable[int]) -> dict[int, Decimal]:
    """What is still owed on each issued invoice of ``invoice_ids``: its
    amount due, less its payments and what its credit notes settled
    (``applied``); never below 0. Exact decimals in the invoice's currency."""
    ids = list(invoice_ids)
    out: dict[int, Decimal] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        due = dict(conn.execute(select(invoices.c.id, invoices.c.amount_due).where(invoices.c.id.in_(chunk))).all())
        settled: dict[int, Decimal] = {i: Decimal(0) for i in due}
        for invoice_id, amount in conn.execute(select(payments.c.invoice_id, payments.c.amount)
                                               .where(payments.c.invoice_id.in_(chunk))):
            settled[invoice_id] += Decimal(amount)
        for invoice_id, amount in conn.execute(select(invoices.c.refers_to, invoices.c.applied)
                                               .where(invoices.c.kind == CREDIT_NOTE, invoices.c.refers_to.in_(chunk),
                                                      invoices.c.applied.is_not(None))):
            settled[invoice_id] += Decimal(amount)
        out.update({i: _open(a, [settled[i]]) for i, a in due.items()})
    return out


def _open(amount_due: str, settled: Iterable[str | Decimal]) -> Decimal:
    """An invoice's open balance: its amount due less what payments and credit notes settled, never below 0."""
    return max(Decimal(amount_due) - sum((Decimal(x) for x in settled), Decimal(0)), Decimal(0))


def find(conn: Connection, ref: str) -> Any:
    """An invoice by number, or a draft by ``draft:ID``; None when there is none."""
    if ref.startswith("draft:") and ref[6:].isdigit():
        return conn.execute(select(invoices).where(invoices.c.id == int(ref[6:]), invoices.c.number.is_(None))).first()
    return conn.execute(select(invoices).where(invoices.c.number == ref)).first()


def list_invoices(engine: Engine, account: str | None = None, status: str | None = None,
                  kind: str | None = None) -> list[dict[str, Any]]:
    """Invoices, credit notes and drafts (of ``account``, in ``status``, of
    ``kind``) as contract JSON: issued ones in issue order, drafts last."""
    with engine.connect() as conn:
        query = select(invoices).order_by(invoices.c.issued_at.is_(None), invoices.c.issued_at, invoices.c.id)
        if account is not None:
            query = query.where(invoices.c.account == account)
        if status is not None:
            query = query.where(invoices.c.status == status)
        if kind is not None:
            query = query.where(invoices.c.kind == kind)
        return [invoice_json(conn, r) for r in conn.execute(query)]


__all__ = ["CREDIT_NOTE", "INVOICE", "STATUSES", "find", "invoice_json", "list_invoices", "open_balances"]
