"""The ``hub`` command.

Exit codes: 0 done; 1 an unexpected error; 2 a configuration or usage
error (all of them listed); 3 rows were quarantined; 4 a source failed;
5 a reconciliation found usage that is not accounted for; 6 a document was
rejected by its validation or its renderer failed; 7 a delivery is dead or
blocked.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text
from sqlalchemy import Engine

from hub import __version__
from hub.config import Config, ConfigErrors, load_config
from hub.host import Host, PluginConflict, build_host
from hub.periods import parse_period
from hub.store.db import open_store

EXIT_CONFIG = 2
EXIT_QUARANTINED = 3
EXIT_SOURCE_FAILED = 4
EXIT_UNACCOUNTED = 5
EXIT_DOCUMENT_REJECTED = 6
EXIT_DELIVERY_FAILED = 7

F = TypeVar("F", bound=Callable[..., Any])


class Workspace:
    """What a command works on: the config path, and lazily the plugin host,
    the validated configuration and the store."""

    def __init__(self, config_path: Path) -> None:
        self.config_path = config_path
        self._host: Host | None = None
        self._config: Config | None = None
        self._engine: Engine | None = None

    @property
    def host(self) -> Host:
        if self._host is None:
            try:
                self._host = build_host()
            except PluginConflict as exc:
                fail(str(exc), EXIT_CONFIG)
        return self._host  # type: ignore[return-value]

    def config(self, *, check_secrets: bool = False) -> Config:
        if self._config is None:
            self._config = self._load(check_secrets=check_secrets)
        return self._config

    def what_if(self, catalog: Path) -> Config:
        """The configuration with the products (and meters) of ``catalog``."""
        return self._load(catalog=catalog)

    def _load(self, **options: Any) -> Config:
        try:
            return load_config(self.config_path, self.host, **options)
        except ConfigErrors as exc:
            for error in exc.errors:
                err_console().print(Text.assemble(("error", "red"), f": {error}"))
            fail(plural(len(exc.errors), "configuration error"), EXIT_CONFIG)
            raise  # not reached: fail() exits

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            cfg = self.config()
            self._engine = open_store(cfg.hub.database, cfg.base_dir)
        return self._engine


# Consoles never interpret markup: what they print often comes from plugins,
# configs and data ("[beta]", "[/]"), and must show verbatim.
def out_console() -> Console:
    # Piped output is not cut to 80 columns: tables keep one line per row.
    width = None if sys.stdout.isatty() else 200
    return Console(highlight=False, soft_wrap=True, markup=False, width=width)


def err_console() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True, markup=False)


def fail(message: str, code: int = 1) -> None:
    """Print ``message`` on stderr and exit with ``code``."""
    err_console().print(Text.assemble(("hub:", "bold red"), " ", message))
    sys.exit(code)


def plural(n: int, word: str) -> str:
    """``1 meter``, ``2 meters``."""
    return f"{n} {word}{'' if n == 1 else 's'}"


def table(*columns: str, right: tuple[str, ...] = ()) -> Table:
    """A plain table for people; ``right`` columns are right-aligned."""
    t = Table(box=None, pad_edge=False, header_style="bold")
    for c in columns:
        t.add_column(c, justify="right" if c in right else "left", overflow="fold")
    return t


def with_workspace(fn: F) -> F:
    """Pass the :class:`Workspace` as the first argument."""

    @click.pass_obj
    @functools.wraps(fn)
    def wrapper(ws: Workspace, *args: Any, **kwargs: Any) -> Any:
        return fn(ws, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


def period_command(fn: F) -> F:
    """The options of a command about one period: ``--period`` (checked),
    ``--account`` (repeatable, checked against the configuration) and
    ``--json``. ``fn`` gets ``(ws, period, accounts or None, as_json)``
    and the command's own options as keywords."""

    @click.option("--period", "period_text", required=True, help="2026-10, 2026-W43 or 2026-10-15.")
    @click.option("--account", "accounts", multiple=True, help="Only this account (repeatable).")
    @click.option("--json", "as_json", is_flag=True, help="JSON instead of a table.")
    @with_workspace
    @functools.wraps(fn)
    def wrapper(ws: Workspace, period_text: str, accounts: tuple[str, ...], as_json: bool, **options: Any) -> Any:
        try:
            period = parse_period(period_text)
        except ValueError as exc:
            fail(str(exc), EXIT_CONFIG)
        config = ws.config()
        unknown = [a for a in accounts if a not in config.accounts]
        if unknown:
            fail(f"unknown account {', '.join(map(repr, unknown))}", EXIT_CONFIG)
        return fn(ws, period, list(accounts) or None, as_json, **options)

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), default=Path("hub.toml"),
              show_default=True, envvar="HUB_CONFIG", help="The hub.toml to use.")
@click.version_option(__version__, prog_name="hub")
@click.pass_context
def cli(ctx: click.Context, config_path: Path) -> None:
    """The billing hub: pull usage, rate it per second, invoice, deliver."""
    ctx.obj = Workspace(config_path)


def register_commands() -> click.Group:
    """Import every module that adds a subcommand; returns :func:`cli`."""
    from hub.cli import accounts, commands, deliver, demo, invoices, rate, reconcile, render, run  # noqa: F401 - registers the subcommands

    return cli


def main() -> None:
    """Entry point of the ``hub`` console command."""
    register_commands()(prog_name="hub")
