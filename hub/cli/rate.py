"""``hub rate`` (the charges of a period per account and product) and
``hub trace`` (the usage records behind one charge)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import click

from hub.app import Charge, WhatIf
from hub.cli.base import EXIT_CONFIG, Workspace, fail, out_console, period_command, plural, table
from hub.config.model import Config
from hub.periods import Period
from hub.plugin.units import unit_label
from hub.pricing import Package, Tiered, to_decimal


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
        _what_if(hub.what_if(period, catalog, accounts, charges), as_json, hub.config)
    elif as_json:
        click.echo(json.dumps([c.to_json(period) for c in charges], indent=2))
    else:
        t = table("account", "product", "resource", "quantity", "unit", "unit price", "amount", "records",
                  right=("quantity", "unit price", "amount", "records"))
        for c in charges:
            d = c.to_json(period)
            label = billed_unit(hub.config, c.product, c.unit)
            t.add_row(c.account, c.product, c.resource_id or "", d["quantity"], label,
                      _unit_price(hub.config, c, label), f"{d['amount']} {c.currency}", str(c.records))
        out_console().print(f"charges for {period} ({period.start} to {period.end}, each account in its time zone)")
        out_console().print(t)


def billed_unit(config: Config, product: str, unit: str) -> str:
    """The unit a line of ``product`` priced per ``unit`` is billed in, as
    the documents label it (:func:`hub.plugin.units.unit_label`):
    ``vCPU-s``, ``GiB-h``, ``GB``; ``period`` for a flat product."""
    found = config.catalog.products.get(product)
    meter = config.meters.get(found.meter) if found is not None and found.meter else None
    if found is not None and found.meter is None:
        return "period"
    return unit_label(unit, meter.unit if meter else None) or unit


def _unit_price(config: Config, charge: Charge, label: str) -> str:
    """What one ``label`` costs (``0.0000115 EUR / vCPU-s``), or the price
    model of a tiered or package price (``graduated: 2 tiers``,
    ``24.00 EUR per 100 GB``)."""
    try:
        price = config.catalog.price_for(charge.account, charge.product)
    except KeyError:  # a manual charge, or a product the catalog no longer has
        price = None
    if isinstance(price, Tiered):
        return f"{price.mode}: {plural(len(price.tiers), 'tier')}"
    if isinstance(price, Package):
        return f"{price.package_price:f} {charge.currency} per {price.size:f}" + (f" {label}" if label != "unit" else "")
    if charge.unit_price is None:
        return f"{plural(len(charge.tiers), 'tier')}"
    return f"{charge.unit_price:f} {charge.currency} / {label}"


def _what_if(result: WhatIf, as_json: bool, config: Config) -> None:
    """``hub rate --catalog``: the same usage under another catalog (units
    labelled by the configuration's meters)."""
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
        old_q = f"{old['quantity']} {billed_unit(config, d.product, old['unit'])}" if old else "-"
        new_q = f"{new['quantity']} {billed_unit(config, d.product, new['unit'])}" if new else "-"
        t.add_row(d.account, d.product, d.resource_id or "", old_q, old["amount"] if old else "-", new_q,
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
        console.print(f"line {c.product}{' ' + c.resource_id if c.resource_id else ''}: {d['quantity']} "
                      f"{billed_unit(ws.config(), c.product, c.unit)} -> {d['amount']} {c.currency}")


def _meter_unit(config: Config, product: str) -> str:
    meter = config.meters[config.catalog.product(product).meter or ""]
    if meter.aggregation == "time_weighted":
        return unit_label("second", meter.unit) or "s"
    return meter.unit or "unit"
