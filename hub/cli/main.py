"""The ``hub`` command: its group, and every subcommand registered in one place.

Each module of :mod:`hub.cli` defines its commands on its own (they import
:mod:`hub.cli.base`, never this module); :data:`COMMANDS` lists them in the
order ``hub --help`` shows them.
"""

from __future__ import annotations

from pathlib import Path

import click

from hub import __version__
from hub.cli import accounts, close, commands, deliver, demo, invoices, rate, reconcile, render, run
from hub.cli import dunning
from hub.cli import receivables
from hub.cli.base import (  # noqa: F401 - the names tests and tools import from here
    EXIT_CONFIG,
    EXIT_DELIVERY_FAILED,
    EXIT_DOCUMENT_REJECTED,
    EXIT_QUARANTINED,
    EXIT_SOURCE_FAILED,
    EXIT_UNACCOUNTED,
    Workspace,
)

#: every subcommand of ``hub``
COMMANDS: tuple[click.Command, ...] = (
    commands.init, commands.check, commands.plugins, commands.db, commands.pull_cmd, commands.quarantine_group,
    commands.usage, rate.rate_cmd, rate.trace_cmd, reconcile.reconcile_cmd, close.invoice_cmd,
    invoices.invoices_group, invoices.credits_cmd, invoices.charge_group, invoices.credit_note_cmd,
    render.render_cmd, render.documents_cmd, deliver.deliver_cmd, deliver.deliveries_group, dunning.dunning_cmd,
    run.run_cmd,
    demo.demo, accounts.accounts_group,
    receivables.statement_cmd, receivables.receivables_cmd, receivables.refunds_group,
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), default=Path("hub.toml"),
              show_default=True, envvar="HUB_CONFIG", help="The hub.toml to use.")
@click.version_option(__version__, prog_name="hub")
@click.pass_context
def cli(ctx: click.Context, config_path: Path) -> None:
    """The billing hub: pull usage, rate it per second, invoice, deliver."""
    ctx.obj = Workspace(config_path)


for _command in COMMANDS:
    cli.add_command(_command)


def register_commands() -> click.Group:
    """The ``hub`` group with every subcommand (they are registered when this module is imported)."""
    return cli


def main() -> None:
    """Entry point of the ``hub`` console command."""
    cli(prog_name="hub")
