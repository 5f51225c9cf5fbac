"""``hub demo``: a workspace of bundled demo data, pulled and summarised."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import click

from hub.app import Hub, HubError
from hub.cli.base import EXIT_CONFIG, Workspace, fail, out_console, shown_usage, table
from hub.cli.render import write_documents
from hub.demo import build_workspace, last_month
from hub.periods import parse_period


@click.command()
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path), default=Path("hub-demo"),
              show_default=True, help="Where to build the demo workspace.")
@click.option("--period", "period_text", help="The month to generate (default: last month).")
def demo(directory: Path, period_text: str | None) -> None:
    """Build a demo workspace (a small cloud), pull its usage, invoice last
    month and show the invoices."""
    try:
        period = parse_period(period_text) if period_text else last_month(date.today())
    except ValueError as exc:
        fail(str(exc), EXIT_CONFIG)
    if period.kind != "monthly":
        fail("the demo generates a month: write --period 2026-10", EXIT_CONFIG)
    config_path = build_workspace(directory, period)
    hub = Workspace(config_path).hub()
    console = out_console()
    console.print(f"demo workspace: {directory}/ (hub.toml, config/, usage/{period}.csv)")
    for r in hub.pull():
        c = r.counts
        console.print(f"pulled {r.source}: {c.imported} imported, {c.updated} updated, {c.quarantined} quarantined")
        if r.failure:
            fail(f"source {r.source} failed: {r.failure.message}")
    t = table("account", "meter", "records", "seconds", "quantity", "unit", right=("records", "seconds", "quantity"))
    for u in hub.usage(period):
        t.add_row(u.account, u.meter, str(u.records), str(u.seconds), *shown_usage(u.aggregation, u.unit, u.quantity))
    console.print(f"\nusage for {period}:")
    console.print(t)
    try:
        closings = hub.close(period)
    except HubError as exc:
        fail(str(exc))
        raise
    docs = {d["number"]: d for d in hub.invoices()}
    inv = table("invoice", "account", "lines", "subtotal", "discounts", "credits", "tax", "total", "amount due",
                right=("lines", "subtotal", "discounts", "credits", "tax", "total", "amount due"))
    for c in closings:
        d = docs.get(c.number)
        if d is None:
            continue
        cur = d["currency"]
        credits = Decimal(d["promotional_credit"]) + Decimal(d["prepaid_applied"])
        tax = f"{d['tax']['amount']} ({d['tax']['category']} {d['tax']['rate']}%)"
        inv.add_row(d["number"], d["account"], str(len(d["lines"])), d["subtotal"], d["discount_total"],
                    str(credits), tax, d["total"], f"{d['amount_due']} {cur}")
    console.print(f"\ninvoices for {period}:")
    console.print(inv)
    numbers = [c.number for c in closings if c.number]
    _documents(hub, numbers, directory / "documents")
    _deliver(hub, directory)
    first = next(iter(numbers), None)
    console.print(f"\nnext: hub --config {config_path} invoices show {first or 'NUMBER'}")
    console.print(f"      hub --config {config_path} rate --period {period} --account acme")


def _documents(hub: Hub, numbers: list[str], out: Path) -> None:
    """Render every document of ``numbers`` into ``out`` and list them."""
    console = out_console()
    try:
        formats = hub.renderer_formats()
    except HubError as exc:
        console.print(f"\nno documents: {exc}")
        return
    if not formats:
        console.print("\nno documents: no renderer plugin is installed (see hub plugins)")
        return
    outcomes = hub.render(numbers, jobs=1, keep_documents=True) if numbers else []
    paths = write_documents(outcomes, out)
    console.print(f"\ndocuments ({', '.join(formats)}) in {out}/:")
    for number in numbers:
        names = [paths[o.number, o.format].name for o in outcomes if o.number == number and (o.number, o.format) in paths]
        console.print(f"  {number}: {'  '.join(names)}")
    for o in outcomes:
        if not o.ok:
            rules = ", ".join(f"[{f.rule}] {f.message}" for f in o.failures)
            console.print(f"  {o.number} {o.format} {o.status}: {rules}")


def _deliver(hub: Hub, directory: Path) -> None:
    """Work through the outbox once and say where the invoices went."""
    console = out_console()
    attempts = hub.deliver()
    sent = [a for a in attempts if a.outcome == "delivered"]
    for a in attempts:
        if a.outcome != "delivered":
            console.print(f"  {a.number} to {a.exporter}: {a.outcome}: {a.error}")
    if sent:
        console.print(f"\n{len(sent)} invoice e-mail{'s' if len(sent) != 1 else ''} delivered into "
                      f"{directory}/mail/new/ (a Maildir: mutt -f {directory}/mail)")
