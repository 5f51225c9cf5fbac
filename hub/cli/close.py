"""Closing a period by hand: ``hub invoice``."""

from __future__ import annotations

import json
import sys
from collections import Counter

import click

from hub.cli.base import EXIT_CONFIG, Workspace, err_console, out_console, parse_date, period_command, plural, table
from hub.periods import Period

#: the outcomes that make ``hub invoice`` exit 2 once the other accounts are closed
_REFUSED = ("failed", "refused")


@click.command("invoice")
@click.option("--draft", is_flag=True, help="Make (or rebuild) drafts without issuing; works on open periods too.")
@click.option("--issue-date", "issue_date", help="The issue date (default: today in the hub's time zone); not before the period ends.")
@click.option("--reissue", is_flag=True,
              help="Issue a new invoice (a new number) for a period whose invoice was credited in full (void); "
                   "needs --account.")
@click.option("--purchase-order", "purchase_order",
              help="The buyer's purchase order number (BT-13) on the invoices issued, in place of the account's; "
                   "needs --account.")
@click.option("--buyer-reference", "buyer_reference",
              help="The buyer's reference (BT-10) on the invoices issued, in place of the account's; needs --account.")
@period_command
def invoice_cmd(ws: Workspace, period: Period, accounts: list[str] | None, as_json: bool, draft: bool,
                issue_date: str | None, reissue: bool, purchase_order: str | None,
                buyer_reference: str | None) -> None:
    """Close a period by hand: an invoice per account whose schedule it is
    (children on their parent's), issued unless --draft.

    An account that cannot be invoiced (no country, a tax that cannot be
    determined, ...) is reported and skipped: the others are issued, and the
    command exits 2."""
    config = ws.config()
    results = ws.hub().close(period, accounts, draft=draft, issue_date=parse_date(issue_date, "--issue-date"),
                             reissue=reissue, purchase_order=purchase_order, buyer_reference=buyer_reference)
    skipped = [r for r in results if r.outcome in _REFUSED]
    if as_json:
        click.echo(json.dumps([{"account": r.account, "period": str(r.period), "outcome": r.outcome,
                                "number": r.number, "total": r.total, "amount_due": r.amount_due,
                                "currency": r.currency, "warnings": list(r.warnings), "note": r.note}
                               for r in results], indent=2))
    else:
        t = table("account", "outcome", "number", "total", "amount due", right=("total", "amount due"))
        for r in results:
            money = (lambda v: f"{v} {r.currency}" if v is not None else "")
            t.add_row(r.account, r.outcome.replace("_", " "), r.number or "", money(r.total), money(r.amount_due))
        console = out_console()
        console.print(f"{period}: {plural(len(results), 'account')}")
        if not results and not accounts:
            schedules = Counter(a.schedule for a in config.accounts.values() if a.parent is None)
            console.print(f"no account is invoiced {period.kind}: "
                          + ", ".join(f"{n} {kind}" for kind, n in sorted(schedules.items())) + " (schedule)",
                          markup=False, highlight=False)
            return
        console.print(t)
        for r in results:
            for w in r.warnings:
                console.print(f"warning: {r.account}: {w}")
            if r.note and r.outcome not in _REFUSED:
                console.print(f"{r.account}: {r.note}")
    for r in skipped:
        err_console().print(f"error: {r.account}: {'not invoiced' if r.outcome == 'failed' else 'not reissued'}: "
                            f"{r.note}")
    if skipped:
        err_console().print(f"hub: {plural(len(skipped), 'account')} not invoiced"
                            + (f", {len(results) - len(skipped)} closed" if len(results) > len(skipped) else ""))
        sys.exit(EXIT_CONFIG)
