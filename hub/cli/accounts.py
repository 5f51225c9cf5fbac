"""``hub accounts list`` and ``hub accounts import FILE.csv`` (see :mod:`hub.app.accounts`)."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.text import Text

from hub.app.accounts import ImportRefused, account_json, import_accounts
from hub.cli.base import EXIT_CONFIG, Workspace, err_console, fail, out_console, plural, table, with_workspace


@click.group("accounts")
def accounts_group() -> None:
    """The billed accounts: list them, import them from a CSV file."""


@accounts_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="A JSON list instead of a table.")
@with_workspace
def accounts_list(ws: Workspace, as_json: bool) -> None:
    """List the configured accounts."""
    config = ws.config()
    accounts = sorted(config.accounts.values(), key=lambda a: a.id)
    if as_json:
        click.echo(json.dumps([account_json(a) for a in accounts], indent=2, ensure_ascii=False))
        return
    t = table("id", "name", "country", "currency", "timezone", "schedule", "vat id", "parent", "email")
    for a in accounts:
        vat = a.vat_id or ("exempt" if a.tax_exempt else "")
        t.add_row(a.id, a.name, a.country or "", a.currency, a.timezone, a.schedule, vat, a.parent or "",
                  a.email or "")
    out_console().print(t)
    out_console().print(plural(len(accounts), "account"))


@accounts_group.command("import")
@click.argument("csv_file", metavar="FILE.csv", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--into", "into", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The TOML file to write, which hub.toml must include [default: config/accounts.toml beside "
                   "hub.toml].")
@with_workspace
def accounts_import(ws: Workspace, csv_file: Path, into: Path | None) -> None:
    """Add or update the accounts of FILE.csv (a header of account keys:
    id, name, country, vat_id, email, currency, schedule, timezone, since,
    parent, tax_exempt, exemption_reason, street, city, postal_code, region,
    locale, peppol_id). An empty cell removes its key; columns the file
    does not have are left as they are. Every row is checked first; on any
    error nothing is written (exit 2)."""
    try:
        result = import_accounts(ws.hub(), csv_file, into)
    except ImportRefused as exc:
        for e in exc.errors:
            err_console().print(Text.assemble(("error", "red"), f": {e}"))
        fail(str(exc), EXIT_CONFIG)
        return
    if result.checked is None:
        out_console().print(f"{result.target}: unchanged ({plural(result.rows, 'account')} already as in {csv_file})")
        return
    out_console().print(f"{result.target}: {len(result.added)} added, {len(result.updated)} updated, "
                        f"{result.unchanged} unchanged")
    name, count = result.checked
    out_console().print(f"{name}: ok ({plural(count, 'account')})")
