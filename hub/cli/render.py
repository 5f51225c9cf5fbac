"""``hub render`` (documents of issued invoices) and ``hub documents``."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from hub.cli.base import EXIT_DOCUMENT_REJECTED, Workspace, err_console, out_console, plural, table, with_workspace
from hub.app import Outcome

#: a progress bar is shown from this many invoices on (on a terminal)
PROGRESS_MIN = 20


def write_documents(outcomes: list[Outcome], out: Path) -> dict[tuple[str, str], Path]:
    """Write the stored documents of ``outcomes`` into ``out``; their paths
    by (number, format)."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for o in outcomes:
        if o.ok and o.document is not None:
            path = out / o.document.file_name
            path.write_bytes(o.document.content)
            paths[o.number, o.format] = path
    return paths


@click.command("render")
@click.argument("numbers", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Every issued invoice and credit note that lacks a document.")
@click.option("--format", "formats", multiple=True, metavar="FORMAT",
              help="Only this format (repeatable): html, pdf, ubl, facturx or a plugin's.")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path),
              help="Also write the documents into this folder.")
@click.option("--force", is_flag=True, help="Render again even where a document is stored.")
@click.option("--jobs", "-j", type=int, metavar="N",
              help="Processes that render (default: one per CPU; 1: in this process).")
@click.option("--json", "as_json", is_flag=True, help="JSON: one object per document.")
@with_workspace
def render_cmd(ws: Workspace, numbers: tuple[str, ...], all_: bool, formats: tuple[str, ...], out: Path | None,
               force: bool, jobs: int | None, as_json: bool) -> None:
    """Render issued invoices (NUMBERS, or --all) into documents, validate
    and store them; exit 6 if one was rejected or its renderer failed."""
    console = err_console()
    bar = Progress(TextColumn("render"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   console=console, transient=True)
    task = bar.add_task("render", total=0)

    def planned(count: int) -> None:
        bar.update(task, total=count)
        if console.is_terminal and count >= PROGRESS_MIN:
            bar.start()

    try:
        outcomes = ws.hub().render(numbers, every=all_, formats=formats, force=force, jobs=jobs,
                                   keep_documents=out is not None, planned=planned,
                                   progress=lambda done, _total: bar.update(task, completed=done))
    finally:
        bar.stop()
    paths = write_documents(outcomes, out) if out else {}
    bad = [o for o in outcomes if not o.ok]
    if as_json:
        click.echo(json.dumps([{"number": o.number, "format": o.format, "status": o.status, "file_name": o.file_name,
                                "sha256": o.sha256, "size": o.size, "path": str(paths[o.number, o.format]) if (o.number, o.format) in paths else None,
                                "failures": [{"rule": f.rule, "message": f.message, "location": f.location}
                                             for f in o.failures]} for o in outcomes], indent=2))
    else:
        t = table("invoice", "format", "status", "file", "sha256", right=())
        for o in outcomes:
            t.add_row(o.number, o.format, o.status, str(paths.get((o.number, o.format), o.file_name or "")),
                      (o.sha256 or "")[:12])
        console = out_console()
        console.print(f"{plural(len(set(o.number for o in outcomes)), 'invoice')}, "
                      f"{plural(len(outcomes) - len(bad), 'document')} stored, {len(bad)} rejected or failed")
        if outcomes:
            console.print(t)
        for o in bad:
            for f in o.failures:
                where = f" (at {f.location})" if f.location else ""
                err_console().print(f"{o.number} {o.format} {o.status}: [{f.rule}] {f.message}{where}")
    if bad:
        raise SystemExit(EXIT_DOCUMENT_REJECTED)


@click.command("documents")
@click.argument("number", required=False)
@click.option("--rejected", "--flagged", "rejected", is_flag=True,
              help="Only rejected and failed documents: the invoices to look at (--flagged: the same).")
@click.option("--json", "as_json", is_flag=True, help="JSON: one object per document.")
@with_workspace
def documents_cmd(ws: Workspace, number: str | None, rejected: bool, as_json: bool) -> None:
    """The stored documents (of NUMBER) and the rejected ones, with their rules."""
    docs = ws.hub().documents(number, rejected=rejected)
    if as_json:
        click.echo(json.dumps([d.to_json() for d in docs], indent=2))
        return
    t = table("invoice", "format", "status", "file", "size", "sha256", "rules", right=("size",))
    for d in docs:
        t.add_row(d.number, d.format, d.status, d.file_name or "", str(d.size or ""), (d.sha256 or "")[:12],
                  ", ".join(f["rule"] for f in d.failures))
    out_console().print(t)
