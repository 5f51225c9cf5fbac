"""``hub dunning``: the reminders of overdue invoices, by hand (``hub run`` has a job for it)."""

from __future__ import annotations

import json

import click

from hub.cli.base import Workspace, out_console, parse_date, plural, table, with_workspace
from hub.money import money_str


@click.command("dunning")
@click.option("--as-of", "as_of", help="The day to remind on (default: today in the hub's time zone); not in the future.")
@click.option("--json", "as_json", is_flag=True, help="JSON: one object per reminder recorded.")
@with_workspace
def dunning_cmd(ws: Workspace, as_of: str | None, as_json: bool) -> None:
    """Remind of overdue invoices: each issued invoice with an open balance
    whose due date plus a [dunning] after_days step has come gets one
    invoice.overdue event per step (the latest step only when several are
    due), queued for its exporters; never twice for a step, so it is safe
    to run again. hub deliver (or hub run) sends them."""
    hub = ws.hub()
    reminders = hub.dunning(parse_date(as_of, "--as-of"))
    if as_json:
        click.echo(json.dumps([r.as_dict() for r in reminders], indent=2))
        return
    console = out_console()
    if not hub.config.dunning.after_days:
        console.print("no reminder steps: set [dunning] after_days = [7, 14, 30] in hub.toml", markup=False,
                      highlight=False)
        return
    if not reminders:
        console.print("dunning: nothing due", markup=False, highlight=False)
        return
    t = table("invoice", "account", "step", "due date", "days overdue", "open balance", "deliveries",
              right=("step", "days overdue", "open balance", "deliveries"))
    for r in reminders:
        t.add_row(r.number, r.account, f"{r.step} days", r.due_date.isoformat(), str(r.days_overdue),
                  f"{money_str(r.open_balance, r.currency)} {r.currency}", str(r.deliveries))
    queued = sum(r.deliveries for r in reminders)
    console.print(f"{reminders[0].as_of.isoformat()}: {plural(len(reminders), 'reminder')} recorded, {queued} "
                  f"{'delivery' if queued == 1 else 'deliveries'} queued", markup=False, highlight=False)
    console.print(t)
    for r in reminders:
        if r.passed:
            steps = ("step " if len(r.passed) == 1 else "steps ") + ", ".join(map(str, r.passed))
            console.print(f"{r.number}: {steps} passed over (only the latest step due is sent)", markup=False,
                          highlight=False)
    console.print("hub deliver (or hub run) sends them", markup=False, highlight=False)


__all__ = ["dunning_cmd"]
