"""``hub deliver`` (work through the outbox) and ``hub deliveries``."""

from __future__ import annotations

import json

import click

from hub import scheduler as sched
from hub.app import DELIVERY_STATUSES as STATUSES
from hub.cli.base import EXIT_DELIVERY_FAILED, Workspace, out_console, table, with_workspace


@click.command("deliver")
@click.option("--json", "as_json", is_flag=True, help="JSON: one object per attempt.")
@with_workspace
def deliver_cmd(ws: Workspace, as_json: bool) -> None:
    """Attempt every due delivery of the outbox once (hub run does it on its
    own); exit 7 if one is now dead or blocked."""
    attempts = ws.hub().deliver()
    if as_json:
        click.echo(json.dumps([{"id": a.delivery_id, "number": a.number, "exporter": a.exporter, "event": a.event,
                                "attempt": a.attempt, "outcome": a.outcome, "error": a.error,
                                "external_id": a.external_id,
                                "next_attempt_at": a.next_attempt_at.isoformat() if a.next_attempt_at else None}
                               for a in attempts], indent=2))
    else:
        out_console().print(sched.deliver_line(attempts))
    if any(a.outcome in ("dead", "blocked") for a in attempts):
        raise SystemExit(EXIT_DELIVERY_FAILED)


@click.group("deliveries", invoke_without_command=True)
@click.option("--status", type=click.Choice(STATUSES), help="Only those in this state.")
@click.option("--invoice", "number", help="Only this invoice's.")
@click.option("--json", "as_json", is_flag=True, help="JSON: one object per delivery.")
@click.pass_context
def deliveries_group(ctx: click.Context, status: str | None, number: str | None, as_json: bool) -> None:
    """The outbox: one delivery per invoice, exporter and event (and per
    reminder step and resend: its occasion, shown after the event)."""
    if ctx.invoked_subcommand is not None:
        return
    ws: Workspace = ctx.obj
    rows = ws.hub().deliveries(status, number)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    t = table("id", "invoice", "exporter", "event", "status", "attempts", "next attempt", "external id", "last error",
              right=("id", "attempts"))
    for d in rows:
        event = f'{d["event"]} ({d["occasion"]})' if d.get("occasion") else d["event"]
        t.add_row(str(d["id"]), d["number"], d["exporter"], event, d["status"], str(d["attempts"]),
                  d["next_attempt_at"] or "", d["external_id"] or "", d["last_error"] or "")
    out_console().print(t)


@deliveries_group.command("show")
@click.argument("delivery_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="JSON: the delivery with its attempts.")
@with_workspace
def show_cmd(ws: Workspace, delivery_id: int, as_json: bool) -> None:
    """One delivery and every attempt of it."""
    d, attempts = ws.hub().delivery(delivery_id)
    if as_json:
        click.echo(json.dumps({**d, "history": attempts}, indent=2))
        return
    console = out_console()
    event = f"{d['event']}, {d['occasion']}" if d.get("occasion") else d["event"]
    console.print(f"delivery {d['id']}: {d['number']} to {d['exporter']} ({event}), {d['status']}, key {d['key']}")
    t = table("attempt", "started", "finished", "outcome", "external id", "error", right=("attempt",))
    for a in attempts:
        t.add_row(str(a["attempt"]), a["started_at"], a["finished_at"] or "(never: the worker died)",
                  a["outcome"] or "", a["external_id"] or "", a["error"] or "")
    console.print(t)


@deliveries_group.command("retry")
@click.argument("ids", type=int, nargs=-1, required=True)
@with_workspace
def retry_cmd(ws: Workspace, ids: tuple[int, ...]) -> None:
    """Queue dead or blocked deliveries again (same idempotency key), due now."""
    for delivery_id in ids:
        d = ws.hub().retry(delivery_id)
        out_console().print(f"delivery {d['id']} ({d['number']} to {d['exporter']}) queued again")
    out_console().print("hub deliver (or hub run) sends them")


@deliveries_group.command("resend")
@click.argument("number")
@click.option("--exporter", help="Only to this [[exporters]] instance (one added since, say); default: every "
                                 "exporter that takes the event.")
@click.option("--json", "as_json", is_flag=True, help="JSON: one object per delivery queued.")
@with_workspace
def resend_cmd(ws: Workspace, number: str, exporter: str | None, as_json: bool) -> None:
    """Queue a new delivery of an issued invoice or credit note (its
    invoice.issued or credit_note.issued event) to every exporter that takes
    it, or to --exporter alone: for an exporter added since, or a customer
    who lost the mail. Each resend is a new message (occasion resend:N, a
    key of its own); hub deliver (or hub run) sends it."""
    queued = ws.hub().resend(number, exporter)
    if as_json:
        click.echo(json.dumps([{"id": r.delivery_id, "number": r.number, "exporter": r.exporter, "event": r.event,
                                "occasion": r.occasion, "key": r.key} for r in queued], indent=2))
        return
    console = out_console()
    for r in queued:
        console.print(f"delivery {r.delivery_id}: {r.number} to {r.exporter} ({r.event}, {r.occasion}) queued",
                      markup=False, highlight=False)
    console.print("hub deliver (or hub run) sends it" if len(queued) == 1 else "hub deliver (or hub run) sends them",
                  markup=False, highlight=False)
