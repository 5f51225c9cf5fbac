"""Subcommands: init, check, plugins, db, pull, quarantine, usage."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import click
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from rich.text import Text

from hub.cli.base import (
    EXIT_CONFIG,
    EXIT_QUARANTINED,
    EXIT_SOURCE_FAILED,
    Workspace,
    err_console,
    fail,
    out_console,
    period_command,
    plural,
    shown_usage,
    table,
    with_workspace,
)
from hub.app import HubError, PullResult
from hub.app.starter import write_starter
from hub.periods import Period

#: a progress bar is shown when a pull has at least this many bytes to read
PROGRESS_MIN_BYTES = 4 << 20


@click.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path), default=Path("."))
@click.option("--force", is_flag=True, help="Overwrite existing files.")
def init(directory: Path, force: bool) -> None:
    """Write a commented starter hub.toml and config/ files into DIRECTORY."""
    try:
        written = write_starter(directory, force=force)
    except HubError as exc:
        fail(str(exc), EXIT_CONFIG)
        return
    out_console().print("wrote " + ", ".join(map(str, written)))
    out_console().print(f"next: hub --config {directory / 'hub.toml'} check")


@click.command()
@with_workspace
def check(ws: Workspace) -> None:
    """Validate hub.toml and every plugin instance, and that every account
    can be invoiced; list all errors (exit 2)."""
    config = ws.config(check_secrets=True)
    for failure in ws.host.failures:
        err_console().print(f"warning: plugin {failure.plugin!r} failed in {failure.hook}: {failure.message}")
    for warning in config.warnings:
        err_console().print(f"warning: {warning}", markup=False, highlight=False)
    hub = ws.hub()
    # a rating-only configuration (no [seller], [invoicing] or [tax]) is not checked for invoicing
    problems = hub.invoicing_problems() if hub.issues_invoices() else []
    if problems:
        for problem in problems:
            err_console().print(Text.assemble(("error", "red"), f": {problem}"))
        fail(plural(len(problems), "configuration error"), EXIT_CONFIG)
    out_console().print(
        f"{config.path.name}: ok ({plural(len(config.meters), 'meter')}, {plural(len(config.accounts), 'account')}, "
        f"{plural(len(config.sources), 'source')}, {plural(len(config.exporters), 'exporter')}, "
        f"{plural(len(config.renderers), 'renderer')})"
    )


@click.command()
@with_workspace
def plugins(ws: Workspace) -> None:
    """List the installed plugin types: type, kind, distribution, version."""
    t = table("type", "kind", "plugin", "distribution", "version", "description")
    for (kind, name), reg in sorted(ws.host.types.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        t.add_row(name, kind, reg.plugin.name, reg.plugin.distribution, reg.plugin.version, reg.type.description)
    out_console().print(t)
    for failure in ws.host.failures:
        err_console().print(f"failed: plugin {failure.plugin!r} in {failure.hook}: {failure.message}")


@click.group()
def db() -> None:
    """The store's schema."""


@db.command("upgrade")
@with_workspace
def db_upgrade(ws: Workspace) -> None:
    """Run pending migrations (they also run on every start)."""
    out_console().print(f"schema at revision {ws.hub().upgrade()}")


@click.command("pull")
@click.argument("sources", nargs=-1)
@click.option("--full", is_flag=True, help="Ignore checkpoints and read everything again (idempotent).")
@with_workspace
def pull_cmd(ws: Workspace, sources: tuple[str, ...], full: bool) -> None:
    """Pull usage from SOURCES (default: all); exit 3 if rows were quarantined."""
    hub = ws.hub()
    console = err_console()
    bar = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeRemainingColumn(),
                   console=console, transient=True)
    tasks: dict[str, int] = {}

    def progress(source: str, done: int, total: int) -> None:
        if not console.is_terminal or total < PROGRESS_MIN_BYTES:
            return
        if source not in tasks:
            bar.start()
            tasks[source] = bar.add_task(f"pull {source}", total=total)
        bar.update(tasks[source], completed=done)

    try:
        results = hub.pull(sources, full=full, progress=progress)
    finally:
        if tasks:
            bar.stop()
    code = 0
    for r in results:
        out_console().print(_summary(r))
        if r.failure:
            code = EXIT_SOURCE_FAILED
        elif r.counts.quarantined and code == 0:
            code = EXIT_QUARANTINED
    if code == EXIT_QUARANTINED:
        err_console().print("see them with: hub quarantine list")
    raise SystemExit(code)


def _summary(r: PullResult) -> str:
    c = r.counts
    line = f"{r.source}: {c.imported} imported, {c.updated} updated, {c.quarantined} quarantined"
    if c.resolved:
        line += f" ({c.resolved} earlier quarantined rows resolved)"
    if r.skipped:
        line = f"{r.source}: skipped, {r.skipped}"
    if r.failure:
        line += f"; FAILED in {r.failure.hook}: {r.failure.message}"
    return line


@click.group("quarantine")
def quarantine_group() -> None:
    """Rows that could not be imported."""


#: entries ``hub quarantine list`` shows unless told otherwise (--limit N, --all)
QUARANTINE_PAGE = 50


@quarantine_group.command("list")
@click.option("--source", help="Only this source.")
@click.option("--resolved", is_flag=True, help="Resolved entries too.")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help=f"Show at most N entries (default {QUARANTINE_PAGE}; --json: all).", metavar="N")
@click.option("--all", "show_all", is_flag=True, help="Every entry, resolved ones too, without a limit.")
@click.option("--json", "as_json", is_flag=True, help="A JSON list instead of a table.")
@with_workspace
def quarantine_list(ws: Workspace, source: str | None, resolved: bool, limit: int | None, show_all: bool,
                    as_json: bool) -> None:
    """List quarantined rows in file order: where they are, their text and
    every error; the first 50 unless --limit N or --all."""
    if show_all and limit is not None:
        raise click.UsageError("--all and --limit exclude each other")
    resolved = resolved or show_all
    if limit is None and not show_all and not as_json:
        limit = QUARANTINE_PAGE
    page = ws.hub().quarantine_page(source, resolved=resolved, limit=limit)
    if as_json:
        click.echo(json.dumps([e.to_json() for e in page.entries], indent=2, ensure_ascii=False))
        return
    which = "entry" if resolved else "open entry"
    whiches = "entries" if resolved else "open entries"
    if not page.entries:
        out_console().print(f"no {whiches}")
        return
    t = table("id", "source", "where", "errors", "raw", right=("id",))
    for e in page.entries:
        where = f"{e.location}:{e.line}" if e.line is not None else e.location
        t.add_row(str(e.id), e.source, where, "; ".join(e.errors), (e.raw or "")[:120])
    out_console().print(t)
    if len(page.entries) < page.total:
        out_console().print(f"{len(page.entries)} of {page.total} {whiches} shown, in file order")
        out_console().print("more with: hub quarantine list --limit N (or --all: every entry, resolved ones too)")
    else:
        out_console().print(f"{page.total} {which if page.total == 1 else whiches}")


def _fmt_quantity(q: Decimal) -> str:
    return format(q, "f")


@click.command()
@period_command
def usage(ws: Workspace, period: Period, accounts: list[str] | None, as_json: bool) -> None:
    """Raw usage of a period per account and meter (before any pricing):
    time-weighted meters in unit-hours (GiB-h, vCPU-h), --json in exact
    unit-seconds."""
    lines = ws.hub().usage(period, accounts)
    if as_json:
        click.echo(json.dumps([
            {"account": u.account, "meter": u.meter, "aggregation": u.aggregation, "unit": u.unit,
             "period": str(period), "records": u.records, "seconds": u.seconds, "quantity": _fmt_quantity(u.quantity)}
            for u in lines
        ], indent=2))
        return
    t = table("account", "meter", "aggregation", "records", "seconds", "quantity", "unit",
              right=("records", "seconds", "quantity"))
    for u in lines:
        t.add_row(u.account, u.meter, u.aggregation, str(u.records), str(u.seconds),
                  *shown_usage(u.aggregation, u.unit, u.quantity))
    out_console().print(f"usage for {period} ({period.start} to {period.end}, each account in its time zone)")
    out_console().print(t)
