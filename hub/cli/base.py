"""What every ``hub`` command shares: the workspace it works on, consoles, exit codes, common options.

Exit codes: 0 done; 1 an unexpected error; 2 a configuration or usage
error (all of them listed); 3 rows were quarantined; 4 a source failed;
5 a reconciliation found usage that is not accounted for; 6 a document was
rejected by its validation or its renderer failed; 7 a delivery is dead or
blocked; 8 the store cannot be opened (its server is down, its database does
not exist, the login is refused).

This module knows the application layer (:mod:`hub.app`) and click; it must
not know the stages, the store or SQL.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from hub.app import Hub, HubError
from hub.app.errors import StoreUnavailable
from hub.config import Config, ConfigErrors
from hub.host import Host, PluginConflict, build_host
from hub.periods import Period
from hub.timestamps import impossible_date

EXIT_CONFIG = 2
EXIT_QUARANTINED = 3
EXIT_SOURCE_FAILED = 4
EXIT_UNACCOUNTED = 5
EXIT_DOCUMENT_REJECTED = 6
EXIT_DELIVERY_FAILED = 7
EXIT_STORE = 8

F = TypeVar("F", bound=Callable[..., Any])

#: the first day a period may start on: no usage is earlier (hub.timestamps)
EARLIEST_PERIOD = date(1970, 1, 1)


class Workspace:
    """What a command works on: the hub.toml path, and lazily the plugin host
    and the :class:`~hub.app.Hub` opened from it. A configuration that does
    not load is printed (every error) and ends the command with exit 2."""

    def __init__(self, config_path: Path) -> None:
        self.config_path = config_path
        self._host: Host | None = None
        self._hub: Hub | None = None

    @property
    def host(self) -> Host:
        if self._host is None:
            try:
                self._host = build_host()
            except PluginConflict as exc:
                fail(str(exc), EXIT_CONFIG)
        return self._host  # type: ignore[return-value]

    def hub(self, *, check_secrets: bool = False) -> Hub:
        """The hub of this workspace's hub.toml."""
        if self._hub is None:
            try:
                self._hub = Hub.open(self.config_path, host=self.host, check_secrets=check_secrets)
            except ConfigErrors as exc:
                print_config_errors(exc)
        return self._hub  # type: ignore[return-value]

    def config(self, *, check_secrets: bool = False) -> Config:
        return self.hub(check_secrets=check_secrets).config

    @property
    def engine(self) -> Any:
        """The store's engine (for tests and tools that look into the store)."""
        return self.hub().engine


def print_config_errors(exc: ConfigErrors) -> None:
    """Print every configuration error and exit 2."""
    for error in exc.errors:
        err_console().print(Text.assemble(("error", "red"), f": {error}"))
    fail(plural(len(exc.errors), "configuration error"), EXIT_CONFIG)


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


#: decimals of a time-weighted quantity shown in unit-hours (a GiB-h to 3.6 GiB-s)
HOUR_DECIMALS = 3


def shown_usage(aggregation: str, unit: str | None, quantity: Decimal) -> tuple[str, str]:
    """A meter's quantity as people read it, and its unit: a time-weighted one
    in unit-hours (``8875.604``, ``GiB-h``) rounded half-up to
    :data:`HOUR_DECIMALS` decimals, trailing zeros dropped; the other meters'
    as they are (``--json`` keeps the exact unit-seconds)."""
    if aggregation != "time_weighted":
        return format(quantity, "f"), unit or ""
    hours = (quantity / 3600).quantize(Decimal(1).scaleb(-HOUR_DECIMALS), ROUND_HALF_UP)
    text = format(hours, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text, f"{unit or 'unit'}-h"


def with_workspace(fn: F) -> F:
    """Pass the :class:`Workspace` as the first argument; a :class:`~hub.app.HubError`
    the command lets through is printed and ends it with exit 2, a store that
    cannot be opened with exit 8."""

    @click.pass_obj
    @functools.wraps(fn)
    def wrapper(ws: Workspace, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(ws, *args, **kwargs)
        except HubError as exc:
            fail(str(exc), EXIT_CONFIG)
        except ConfigErrors as exc:
            print_config_errors(exc)
        except StoreUnavailable as exc:
            fail(str(exc), EXIT_STORE)

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
        period: Period = ws.hub().period(period_text)
        if period.start < EARLIEST_PERIOD:
            fail(f"--period: {period_text!r} is before 1970, before any usage the hub accepts "
                 "(usage timestamps start at 1970-01-01T00:00:00Z)", EXIT_CONFIG)
        return fn(ws, period, ws.hub().accounts(accounts), as_json, **options)

    return wrapper  # type: ignore[return-value]


def parse_date(text: str | None, option: str) -> date | None:
    """``text`` as an ISO date, for ``option``; exits 2 naming the option when it is none (None stays None)."""
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        fail(f"{option}: {impossible_date(text) or f'{text!r} is not a date such as 2026-11-05'}", EXIT_CONFIG)
        raise


def parse_decimal(text: str, option: str) -> Decimal:
    """``text`` as a finite decimal, for ``option``; exits 2 naming the option otherwise."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite():
        fail(f"{option}: {text!r} is not a decimal amount such as 120.50", EXIT_CONFIG)
    return value
