"""``hub rate`` (the charges of a period per account and product) and
``hub trace`` (the usage records behind one charge)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import click

from hub.app import WhatIf
from hub.cli.base import EXIT_CONFIG, Workspace, fail, out_console, period_command, plural, table
from hub.config.model import Config
from hub.periods import Period
from hub.pricing import to_decimal


@click.command("rate")
@click.option("--catalog", "catalog", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="What-if: also rate under this catalog (a TOML file of [[products]] and optionally "
                   "[[meters]]) and print old against new.")
@period_command
def rate_cmd(ws: Workspace, period: Period, accounts: list[str] | None, as_json: bool,
             catalog: Path | None) -> None:
    """Rate a period: one charge per account and product (or resource)."""
    hub = ws.hub()
    charges = hub.rate(period, accounts)
    if catalog is not None:
        _what_if(hub.what_if(period, catalog, accounts, charges), as_json)
    elif as_json:
        click.echo(json.dumps([c.to_json(period) for c in charges], indent=2))
    else:
        t = table("account", "product", "resource", "quantity", "unit", "unit price", "amount", "records",
                  right=("quantity", "unit price", "amount", "records"))
        for c in charges:
            d = c.to_json(period)
            unit_price = d["unit_price"] if d["unit_price"] is not None else f"{len(d['tiers'])} tier(s)"
            t.add_row(c.account, c.product, c.resource_id or "", d["quantity"], c.unit, unit_price,
                      f"{d['amount']} {c.currency}", str(c.records))
        out_console().print(f"charges for {period} ({period.start} to {period.end}, each account in its time zone)")
        out_console().print(t)


def _what_if(result: WhatIf, as_json: bool) -> None:
    """``hub rate --catalog``: the same usage under another catalog."""
    period, catalog, differences = result.period, result.catalog, result.differences
    account_totals = [{"account": t.account, "currency": t.currency, "old": _money(t.old), "new": _money(t.new),
                       "change": _money(t.change)} for t in result.accounts]
    if as_json:
        click.echo(json.dumps({"period": str(period), "catalog": str(catalog),
                               "lines": [d.to_json(period) for d in differences], "accounts": account_totals},
                              indent=2))
        return
    t = table("account", "product", "resource", "old quantity", "old amount", "new quantity", "new amount",
              "change", right=("old quantity", "old amount", "new quantity", "new amount", "change"))
    for d in differences:
        old, new = (c.to_json(period) if c else None for c in (d.old, d.new))
        t.add_row(d.account, d.product, d.resource_id or "", f"{old['quantity']} {old['unit']}" if old else "-",
                  old["amount"] if old else "-", f"{new['quantity']} {new['unit']}" if new else "-",
                  new["amount"] if new else "-", f"{_signed(d.change)} {d.currency}")
    console = out_console()
    console.print(f"{period} rated under the configuration's catalog (old) and under {catalog} (new)")
    console.print(t)
    t = table("account", "old", "new", "change", "%", right=("old", "new", "change", "%"))
    for row in account_totals:
        o, n = Decimal(row["old"]), Decimal(row["new"])
        pct = f"{(n - o) * 100 / o:+.2f}" if o else "-"
        t.add_row(row["account"], f"{row['old']} {row['currency']}", f"{row['new']} {row['currency']}",
                  f"{_signed(n - o)} {row['currency']}", pct)
    console.print("\nper account")
    console.print(t)


def _money(value: Decimal) -> str:
    return format(value, "f")


def _signed(value: Decimal) -> str:
    return f"+{value:f}" if value > 0 else format(value, "f")


@click.command("trace")
@click.option("--product", required=True, help="The product of the charge.")
@click.option("--resource", help="Only this resource (an itemized line, or part of a line).")
@period_command
def trace_cmd(ws: Workspace, period: Period, accounts: list[str] | None, as_json: bool, product: str,
              resource: str | None) -> None:
    """The usage records behind one charge of `hub rate`, and what each adds to it.

    Needs one --account. The contributions of the counted records add up to
    the charge's quantity exactly (in the meter's unit, before the price's
    per-minute/hour/day unit and the free allowance).
    """
    if not accounts or len(accounts) != 1:
        fail("hub trace needs exactly one --account", EXIT_CONFIG)
    account = accounts[0]  # type: ignore[index]
    traced = ws.hub().trace(period, account, product, resource)
    records, lines, total = traced.records, traced.charges, traced.quantity
    if as_json:
        click.echo(json.dumps({"account": account, "product": product, "resource_id": resource,
                               "period": str(period), "charges": [c.to_json(period) for c in lines],
                               "records": [r.to_json() for r in records]}, indent=2))
        return
    t = table("source", "record", "resource", "start", "end", "quantity", "seconds", "billed s", "top-up",
              "adds", right=("quantity", "seconds", "billed s", "top-up", "adds"))
    for r in records:
        d = r.to_json()
        t.add_row(r.source, r.record_id, r.resource_id, d["start"], d["end"] or "running", d["quantity"],
                  str(r.seconds), str(r.billed_seconds), str(r.topup), d["contribution"] if r.counted else "-")
    console = out_console()
    console.print(t)
    counted = sum(1 for r in records if r.counted)
    console.print(f"{plural(counted, 'record')} counted of {len(records)}: quantity "
                  f"{format(to_decimal(total), 'f')} in the meter's unit ({_meter_unit(ws.config(), product)})")
    for c in lines:
        d = c.to_json(period)
        console.print(f"line {c.product}{' ' + c.resource_id if c.resource_id else ''}: {d['quantity']} {c.unit} "
                      f"-> {d['amount']} {c.currency}")


def _meter_unit(config: Config, product: str) -> str:
    meter = config.meters[config.catalog.product(product).meter or ""]
    unit = meter.unit or "unit"
    return f"{unit}-seconds" if meter.aggregation == "time_weighted" else unit
