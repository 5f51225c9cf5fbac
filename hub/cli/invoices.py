"""Invoices after they are issued: ``hub invoices list|show|pay``, ``hub
credits``, ``hub charge add`` and ``hub credit-note``.

It knows the application layer and click (and the pure value modules for
showing money and local days); it must not know the stages or the store."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import click

from hub.cli.base import (
    EXIT_CONFIG,
    Workspace,
    err_console,
    fail,
    out_console,
    parse_date,
    parse_decimal,
    table,
    with_workspace,
)
from hub.app import INVOICE_STATUSES as STATUSES
from hub.money import money_str
from hub.plugin.invoice import local_days
from hub.plugin.units import unit_label


@click.group("invoices")
def invoices_group() -> None:
    """Issued invoices, credit notes and drafts."""


@invoices_group.command("list")
@click.option("--account", help="Only this account's.")
@click.option("--status", type=click.Choice(STATUSES), help="Only those in this state.")
@click.option("--json", "as_json", is_flag=True, help="JSON: the full contract of each.")
@with_workspace
def list_cmd(ws: Workspace, account: str | None, status: str | None, as_json: bool) -> None:
    """List invoices and credit notes, in issue order (drafts last)."""
    docs = ws.hub().invoices(account, status)
    if as_json:
        click.echo(json.dumps(docs, indent=2, ensure_ascii=False))
        return
    t = table("number", "kind", "account", "period", "status", "issued", "due", "total", "amount due", "open",
              right=("total", "amount due", "open"))
    for d in docs:
        c = d["currency"]
        t.add_row(d["number"] or f"draft:{d['draft_id']}", d["kind"].replace("_", " "), d["account"],
                  d.get("period") or "", d["status"], d["issue_date"] or "", d["due_date"] or "",
                  f"{d['total']} {c}", f"{d['amount_due']} {c}",
                  f"{d['open_balance']} {c}" if "open_balance" in d else "")
    out_console().print(t)


def _period_days(ws: Workspace, doc: dict) -> str:
    """The invoice's period as the account's local days, the end inclusive: ``2026-11-01 to 2026-11-30``."""
    zone = (doc.get("buyer") or {}).get("timezone")
    if zone is None:
        account = ws.config().accounts.get(doc["account"])
        zone = account.timezone if account is not None else ws.config().hub.timezone
    first, last = local_days(datetime.fromisoformat(doc["period_start"]), datetime.fromisoformat(doc["period_end"]),
                             ZoneInfo(zone))
    return f"{first} to {last}"


@invoices_group.command("show")
@click.argument("number")
@click.option("--json", "as_json", is_flag=True, help="JSON under the invoice contract.")
@with_workspace
def show_cmd(ws: Workspace, number: str, as_json: bool) -> None:
    """Show one invoice or credit note (a draft as draft:ID)."""
    doc = ws.hub().invoice(number)
    if as_json:
        click.echo(json.dumps(doc, indent=2, ensure_ascii=False))
        return
    c = doc["currency"]
    console = out_console()
    kind = "credit note" if doc["kind"] == "credit_note" else "invoice"
    console.print(f"{kind} {doc['number'] or 'draft:' + str(doc['draft_id'])}  account {doc['account']}  "
                  f"status {doc['status']}")
    console.print(f"period {_period_days(ws, doc)}  issued {doc['issue_date'] or '-'}  due {doc['due_date'] or '-'}")
    if doc.get("refers_to"):
        console.print(f"credits invoice {doc['refers_to']}: {doc['reason']}")
    if doc.get("reissue_of"):
        console.print(f"reissue of {doc['reissue_of']} (voided by {doc.get('replaces_credit_note') or '-'})")
    if doc.get("reissued_as"):
        console.print(f"reissued as {doc['reissued_as']}")
    t = table("#", "account", "description", "resource", "quantity", "unit", "unit price", "amount",
              right=("#", "quantity", "unit price", "amount"))
    products = doc.get("products") or {}
    for i, ln in enumerate(doc["lines"], start=1):
        # the unit as the documents label it (vCPU-s, GiB-h), not the priced unit (second, hour)
        unit = unit_label(ln["unit"], (products.get(ln["product"]) or {}).get("meter_unit")) or ln["unit"]
        t.add_row(str(i), ln["account"], ln["description"], ln["resource_id"] or "", ln["quantity"], unit,
                  ln["unit_price"] or "", f"{ln['amount']} {c}")
    console.print(t)
    tax = doc["tax"]
    for label, key in (("subtotal", "subtotal"), ("discounts", "discount_total"),
                       ("promotional credit", "promotional_credit"), ("taxable", "taxable_amount")):
        console.print(f"{label:>20}: {doc[key]} {c}")
    reason = f" ({tax['exemption_reason']})" if tax["exemption_reason"] else ""
    console.print(f"{'tax ' + tax['category'] + ' ' + tax['rate'] + '%':>20}: {tax['amount']} {c}{reason}")
    due_label = "credited" if doc["kind"] == "credit_note" else "amount due"
    for label, key in (("total", "total"), ("prepaid credit", "prepaid_applied"), (due_label, "amount_due")):
        console.print(f"{label:>20}: {doc[key]} {c}")
    if doc["kind"] == "credit_note":
        console.print(f"{'settled ' + (doc['refers_to'] or ''):>20}: {doc['applied']} {c}")
        console.print(f"{'credit balance':>20}: {doc['credit_balance']} {c}")
        return
    for p in doc["payments"]:
        console.print(f"{'paid ' + p['date']:>20}: {p['amount']} {c} {p['reference'] or ''}".rstrip())
    for n in doc.get("credit_notes", ()):
        console.print(f"{'credit note ' + n['issue_date']:>20}: {n['applied']} {c} settled by {n['number']} "
                      f"({n['total']} {c})")
    for r in doc.get("refunds", ()):
        console.print(f"{'refunded ' + r['date']:>20}: {r['amount']} {c} of {r['credit_note']}'s credit balance "
                      f"{r['reference'] or ''}".rstrip())
    if "open_balance" in doc:
        console.print(f"{'open balance':>20}: {doc['open_balance']} {c}")


@invoices_group.command("pay")
@click.argument("number")
@click.option("--amount", required=True, help="The amount paid, in the invoice's currency.")
@click.option("--date", "paid_on", required=True, help="The payment date, 2026-11-20.")
@click.option("--reference", help="The bank or processor reference.")
@with_workspace
def pay_cmd(ws: Workspace, number: str, amount: str, paid_on: str, reference: str | None) -> None:
    """Record a payment; the invoice becomes partially_paid or paid."""
    day = parse_date(paid_on, "--date")
    assert day is not None
    doc = ws.hub().pay(number, parse_decimal(amount, "--amount"), day, reference,
                       warn=lambda message: err_console().print(f"warning: {message}"))
    c = doc["currency"]
    paid = money_str(sum((Decimal(p["amount"]) for p in doc["payments"]), Decimal(0)), c)
    credited = sum((Decimal(n["applied"]) for n in doc.get("credit_notes", ())), Decimal(0))
    settled = f", {money_str(credited, c)} credited" if credited else ""
    out_console().print(f"{number}: {doc['status']} ({paid} of {doc['amount_due']} {c} paid{settled}; "
                        f"{doc['open_balance']} {c} open)")


@click.command("credits")
@click.argument("account")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of tables.")
@with_workspace
def credits_cmd(ws: Workspace, account: str, as_json: bool) -> None:
    """An account's credit grants, their balances and their history."""
    credits = ws.hub().credits(account)
    grants, history = credits.grants, credits.history
    if as_json:
        click.echo(json.dumps({
            "account": account,
            "grants": [{"id": g.id, "kind": g.kind, "currency": g.currency, "amount": format(g.amount, "f"),
                        "balance": format(g.balance, "f"), "granted": g.granted_at.isoformat(),
                        "expires": g.expires.isoformat() if g.expires else None, "description": g.description}
                       for g in grants],
            "history": [{"grant": e.grant_id, "kind": e.kind, "entry": e.entry, "amount": format(e.amount, "f"),
                         "at": e.at.isoformat(), "invoice": e.invoice, "description": e.description}
                        for e in history],
        }, indent=2))
        return
    console = out_console()
    zone = ZoneInfo(ws.config().accounts[account].timezone)
    t = table("grant", "kind", "amount", "balance", "expires", "description", right=("amount", "balance"))
    for g in grants:
        # the last day it pays, in the account's time zone, as [[credits]] expires is written
        last = (g.expires.astimezone(zone) - timedelta(microseconds=1)).date().isoformat() if g.expires else "never"
        t.add_row(g.id, g.kind, f"{g.amount} {g.currency}", f"{g.balance} {g.currency}", last, g.description or "")
    console.print(t)
    h = table("at", "grant", "entry", "amount", "invoice", right=("amount",))
    for e in history:
        h.add_row(e.at.isoformat(), e.grant_id, e.entry, format(e.amount, "f"), e.invoice or "")
    console.print("\nhistory:")
    console.print(h)


@click.group("charge")
def charge_group() -> None:
    """One-off manual charges."""


@charge_group.command("add")
@click.argument("account")
@click.option("--amount", required=True, help="In the account's currency, e.g. 150.00.")
@click.option("--description", required=True, help="What the charge is for, as the invoice shows it.")
@with_workspace
def charge_add_cmd(ws: Workspace, account: str, amount: str, description: str) -> None:
    """Add a one-off charge to the account's next invoice."""
    hub = ws.hub()
    value = parse_decimal(amount, "--amount")
    charge_id = hub.add_charge(account, value, description)
    currency = hub.config.accounts[account].currency
    out_console().print(f"charge {charge_id}: {money_str(value, currency)} {currency} for {account}, "
                        f"on its next invoice")


@click.command("credit-note")
@click.argument("number")
@click.option("--lines", "lines", help="Only these lines, by their number on the invoice: 1,3.")
@click.option("--reason", required=True, help="Why the invoice is credited.")
@click.option("--issue-date", "issue_date", help="The issue date (default: today in the hub's time zone); not before the invoice's own date.")
@click.option("--json", "as_json", is_flag=True, help="JSON under the invoice contract.")
@with_workspace
def credit_note_cmd(ws: Workspace, number: str, lines: str | None, reason: str, issue_date: str | None,
                    as_json: bool) -> None:
    """Issue a credit note for an invoice (all its lines, or --lines)."""
    positions = None
    if lines:
        try:
            positions = [int(p) for p in lines.split(",") if p.strip()]
        except ValueError:
            fail(f"--lines: {lines!r} is not a list of line numbers such as 1,3", EXIT_CONFIG)
    doc = ws.hub().credit_note(number, reason, positions, issue_date=parse_date(issue_date, "--issue-date"))
    if as_json:
        click.echo(json.dumps(doc, indent=2, ensure_ascii=False))
    else:
        c = doc["currency"]
        balance = f", {doc['credit_balance']} {c} to the account's credit balance" \
            if Decimal(doc["credit_balance"]) else ""
        out_console().print(f"credit note {doc['number']} for {number}: {doc['total']} {c} "
                            f"({doc['applied']} {c} settled{balance})")
