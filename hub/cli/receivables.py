"""The receivables: ``hub statement ACCOUNT``, ``hub receivables`` and
``hub refunds add|list``.

A statement and the book are read as of a day (``--as-of``, default today
in the hub's time zone): open invoices with their days past due and aging
bucket (current, 1-30, 31-60, 61-90, over 90), credit notes with what they
settled and the credit balance they left, payments, refunds, and totals per
currency. ``--json`` prints the ``to_json()`` of :mod:`hub.receivables`'s
read model.

It knows the application layer and click (and :mod:`hub.money` for showing
money, :mod:`hub.receivables` for its value types); it must not know the
stages or the store.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING

import click
from rich.table import Table

from hub.cli.base import Workspace, out_console, parse_date, parse_decimal, table, with_workspace
from hub.money import money_str

if TYPE_CHECKING:
    from hub.receivables import Totals

#: the aging buckets (the keys of ``Totals.buckets``, in their order) as columns
BUCKET_LABELS = {"current": "current", "1-30": "1-30", "31-60": "31-60", "61-90": "61-90", "over_90": "over 90"}
BUCKETS = tuple(BUCKET_LABELS)


def _m(amount: Decimal, currency: str) -> str:
    return f"{money_str(amount, currency)} {currency}"


#: the figures of a Totals, as columns
COLUMNS = ("open", *BUCKET_LABELS.values(), "credit balance", "balance")


def _cells(tot: Totals) -> tuple[str, ...]:
    """A Totals' currency and figures, one cell per column of :data:`COLUMNS` after it."""
    c = tot.currency
    return (c, _m(tot.open, c), *(_m(tot.buckets[b], c) for b in BUCKETS), _m(tot.credit_balance, c),
            _m(tot.balance, c))


def _totals_table(totals: Sequence[Totals]) -> Table:
    t = table("currency", *COLUMNS, right=COLUMNS)
    for tot in totals:
        t.add_row(*_cells(tot))
    return t


@click.command("statement")
@click.argument("account")
@click.option("--as-of", "as_of", help="The statement's day (default: today in the hub's time zone).")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of tables.")
@with_workspace
def statement_cmd(ws: Workspace, account: str, as_of: str | None, as_json: bool) -> None:
    """An account's open invoices (with their aging), credit notes, payments, refunds and balance."""
    st = ws.hub().statement(account, parse_date(as_of, "--as-of"))
    if as_json:
        click.echo(json.dumps(st.to_json(), indent=2, ensure_ascii=False))
        return
    console = out_console()
    console.print(f"statement of {st.account} as of {st.as_of.isoformat()}")
    console.print("\nopen invoices:")
    if st.open_items:
        t = table("number", "issued", "due", "amount due", "paid", "credited", "open", "days past due", "bucket",
                  right=("amount due", "paid", "credited", "open", "days past due"))
        for i in st.open_items:
            c = i.currency
            t.add_row(i.number, i.issue_date, i.due_date or "", _m(i.amount_due, c), _m(i.paid, c),
                      _m(i.credited, c), _m(i.open, c), str(max(i.days_past_due, 0)), BUCKET_LABELS[i.bucket])
        console.print(t)
    else:
        console.print("  none")
    if st.credit_notes:
        console.print("\ncredit notes:")
        # what each note settled of its invoice and what it left to the credit balance when issued
        t = table("number", "invoice", "issued", "total", "settled", "to credit balance",
                  right=("total", "settled", "to credit balance"))
        for n in st.credit_notes:
            c = n.currency
            t.add_row(n.number, n.invoice or "", n.issue_date, _m(n.total, c), _m(n.applied, c),
                      _m(n.credit_balance, c))
        console.print(t)
    for title, moves, key in (("payments", st.payments, "invoice"), ("refunds", st.refunds, "credit note")):
        if not moves:
            continue
        console.print(f"\n{title}:")
        t = table("date", key, "amount", "reference", right=("amount",))
        for m in moves:
            t.add_row(m.date, m.document, _m(m.amount, m.currency), m.reference or "")
        console.print(t)
    console.print("\ntotals:")
    if st.totals:
        console.print(_totals_table(st.totals))
    else:
        console.print("  nothing billed")


@click.command("receivables")
@click.option("--as-of", "as_of", help="The day (default: today in the hub's time zone).")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of a table.")
@with_workspace
def receivables_cmd(ws: Workspace, as_of: str | None, as_json: bool) -> None:
    """Every billed account's open total, aging and credit balance, and the book's total per currency."""
    book = ws.hub().receivables(parse_date(as_of, "--as-of"))
    if as_json:
        click.echo(json.dumps(book.to_json(), indent=2, ensure_ascii=False))
        return
    console = out_console()
    console.print(f"receivables as of {book.as_of.isoformat()}")
    t = table("account", "currency", *COLUMNS, right=COLUMNS)
    for row in book.rows:
        t.add_row(row.account, *_cells(row.totals))
    for tot in book.totals:
        t.add_row("total", *_cells(tot))
    console.print(t)


@click.group("refunds")
def refunds_group() -> None:
    """Refunds: paying a credit note's credit balance out to the customer."""


@refunds_group.command("add")
@click.argument("credit_note")
@click.option("--amount", required=True, help="In the credit note's currency, e.g. 20.00; at most what is left.")
@click.option("--date", "paid_on", required=True, help="The day it was paid out (not after today).")
@click.option("--reference", help="The bank transfer's reference.")
@with_workspace
def refunds_add_cmd(ws: Workspace, credit_note: str, amount: str, paid_on: str, reference: str | None) -> None:
    """Record a refund of (part of) the credit balance CREDIT_NOTE left."""
    day = parse_date(paid_on, "--date")
    assert day is not None
    r = ws.hub().refund(credit_note, parse_decimal(amount, "--amount"), day, reference)
    c = r.amount.currency
    out_console().print(f"refund {r.id}: {_m(r.amount.amount, c)} of {r.credit_note}'s credit balance to "
                        f"{r.account} on {r.paid_on.isoformat()}; {_m(r.balance.amount, c)} left")


@refunds_group.command("list")
@click.option("--account", help="Only this account's refunds.")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of a table.")
@with_workspace
def refunds_list_cmd(ws: Workspace, account: str | None, as_json: bool) -> None:
    """Every refund, in the order they were recorded, with what is left of its credit balance."""
    refunds = ws.hub().refunds(account)
    if as_json:
        click.echo(json.dumps([r.to_json() for r in refunds], indent=2, ensure_ascii=False))
        return
    t = table("id", "account", "credit note", "date", "amount", "left", "reference", right=("id", "amount", "left"))
    for r in refunds:
        c = r.amount.currency
        t.add_row(str(r.id), r.account, r.credit_note, r.paid_on.isoformat(), _m(r.amount.amount, c),
                  _m(r.balance.amount, c), r.reference or "")
    out_console().print(t)
