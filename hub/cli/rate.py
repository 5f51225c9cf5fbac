"""``hub rate``: the charges of a period per account and product."""

from __future__ import annotations

import json

import click

from hub.cli.main import Workspace, cli, out_console, period_command, table
from hub.periods import Period
from hub.rating import rate


@cli.command("rate")
@period_command
def rate_cmd(ws: Workspace, period: Period, accounts: list[str] | None, as_json: bool) -> None:
    """Rate a period: one charge per account and product (or resource)."""
    config = ws.config()
    charges = rate(ws.engine, config, period, accounts)
    if as_json:
        click.echo(json.dumps([c.to_json(period) for c in charges], indent=2))
        return
    t = table("account", "product", "resource", "quantity", "unit", "unit price", "amount",
              right=("quantity", "unit price", "amount"))
    for c in charges:
        d = c.to_json(period)
        unit_price = d["unit_price"] if d["unit_price"] is not None else f"{len(d['tiers'])} tier(s)"
        t.add_row(c.account, c.product, c.resource_id or "", d["quantity"], c.unit, unit_price,
                  f"{d['amount']} {c.currency}")
    out_console().print(f"charges for {period} ({period.start} to {period.end}, each account in its time zone)")
    out_console().print(t)
