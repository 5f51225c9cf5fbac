"""Closing a period by hand: ``hub invoice``."""

from __future__ import annotations

import json
from collections import Counter

import click

from hub.cli.base import Workspace, out_console, parse_date, period_command, plural, table
from hub.periods import Period


@click.command("invoice")
@click.option("--draft", is_flag=True, help="Make (or rebuild) drafts without issuing; works on open periods too.")
@click.option("--issue-date", "issue_date", help="The issue date (default: today in the hub's time zone); not before the period ends.")
@period_command
def invoice_cmd(ws: Workspace, period: Period, accounts: list[str] | None, as_json: bool, draft: bool,
                issue_date: str | None) -> None:
    """Close a period by hand: an invoice per account whose schedule it is
    (children on their parent's), issued unless --draft."""
    config = ws.config()
    results = ws.hub().close(period, accounts, draft=draft, issue_date=parse_date(issue_date, "--issue-date"))
    if as_json:
        click.echo(json.dumps([{"account": r.account, "period": str(r.period), "outcome": r.outcome,
                                "number": r.number, "total": r.total, "amount_due": r.amount_due,
                                "currency": r.currency, "warnings": list(r.warnings), "note": r.note}
                               for r in results], indent=2))
        return
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
        if r.note:
            console.print(f"{r.account}: {r.note}")


