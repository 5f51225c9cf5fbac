"""``hub reconcile``: where every second of a period's usage went."""

from __future__ import annotations

import json
import sys

import click
from rich.text import Text

from hub.cli.base import EXIT_UNACCOUNTED, Workspace, err_console, out_console, period_command, plural, table
from hub.periods import Period


@click.command("reconcile")
@period_command
def reconcile_cmd(ws: Workspace, period: Period, accounts: list[str] | None, as_json: bool) -> None:
    """Follow every usage record of a period to the charges of `hub rate`.

    Per source, meter and product: the seconds that came in, those outside
    the period, those billed (with what granularity and minimums add) and the
    quantity; per account and product: the records' quantity against the
    lines' (free and charged); how each billed account's period was invoiced
    (a period deferred below the minimum amount: the invoice its charges
    were carried to); and the quarantine. Exits 5 when anything is
    unaccounted for.
    """
    result = ws.hub().reconcile(period, accounts)
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2))
    else:
        console = out_console()
        console.print(f"reconciliation of {period} ({period.start} to {period.end}, each account in its time zone)")
        console.print("\nusage per source, meter and product (seconds; quantity in the meter's unit)")
        t = table("source", "meter", "product", "records", "counted", "in", "before", "inside", "after",
                  "+granularity", "+top-up", "billed", "quantity",
                  right=("records", "counted", "in", "before", "inside", "after", "+granularity", "+top-up",
                         "billed", "quantity"))
        for r in result.sources:
            d = r.to_json()
            t.add_row(r.source, r.meter, r.product, str(r.records), str(r.counted), str(r.seconds_in),
                      str(r.before), str(r.inside), str(r.after), str(d.get("granularity", "-")),
                      str(d.get("topup", "-")), str(d.get("billed_seconds", "-")), d["quantity"])
        console.print(t)
        console.print("\nlines per account and product (in the priced unit)")
        t = table("account", "product", "unit", "from records", "on lines", "free", "charged", "amount",
                  right=("from records", "on lines", "free", "charged", "amount"))
        for p in result.products:
            d = p.to_json()
            t.add_row(p.account, p.product, p.unit, d["from_records"], d["on_lines"], d["free"], d["charged"],
                      f"{d['amount']} {d['currency'] or ''}".strip())
        console.print(t)
        if result.closings:
            console.print("\ninvoicing of the period per billed account (deferred: below [invoicing] minimum_amount)")
            t = table("account", "closed", "invoice", "deferred", "carried to", right=("deferred",))
            for c in result.closings:
                t.add_row(c.account, c.state.replace("_", " "),
                          f"{c.invoice}{' (' + c.status + ')' if c.status else ''}" if c.invoice else "",
                          f"{c.deferred} {c.currency or ''}".strip() if c.deferred is not None else "",
                          c.carried_to or ("the next invoice" if c.state == "deferred" else ""))
            console.print(t)
        if result.quarantined:
            console.print("\nquarantined (open rows, never billed until fixed; see hub quarantine list): "
                          + ", ".join(f"{s} {plural(n, 'row')}" for s, n in sorted(result.quarantined.items())))
        if result.balanced:
            console.print("\nbalanced: every record is accounted for")
    for problem in result.problems:
        err_console().print(Text.assemble(("unaccounted", "red"), f": {problem}"))
    if not result.balanced:
        err_console().print(Text.assemble(("hub:", "bold red"), f" {plural(len(result.problems), 'problem')}: "
                                                                "the period does not reconcile"))
        sys.exit(EXIT_UNACCOUNTED)
