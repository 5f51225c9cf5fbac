"""Where a traceback used to be, one line naming the problem and a
documented exit code (issue 24, item 8; docs/operator-guide.md): a store
whose server is down, whose database does not exist or whose URL names no
database (exit 8, or 2 from hub check), a hub.toml nested 5,000 arrays
deep (exit 2), a period before 1970 (exit 2).
"""

from __future__ import annotations

import socket

import pytest
from sqlalchemy.engine import make_url

from tests.conftest import POSTGRES, STANDARD_CONFIG, Workspace, postgres_available

EXIT_CONFIG, EXIT_STORE = 2, 8


def closed_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def on(tmp_path, url: str, body: str = STANDARD_CONFIG) -> Workspace:
    ws = Workspace(tmp_path, url)
    ws.config(body)
    return ws


def one_line(result, code: int) -> str:
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    [line] = result.stderr.splitlines()
    return line


def test_a_pull_against_a_postgresql_server_that_is_down_is_one_line_and_exit_8(tmp_path):
    port = closed_port()
    ws = on(tmp_path, f"postgresql://postgres@127.0.0.1:{port}/test")
    assert one_line(ws.hub("pull"), EXIT_STORE) == (
        f"hub: the store postgresql://postgres@127.0.0.1:{port}/test cannot be opened: connection to server at "
        f"\"127.0.0.1\", port {port} failed: Connection refused")


def test_the_password_of_a_store_that_cannot_be_opened_is_not_shown(tmp_path):
    port = closed_port()
    ws = on(tmp_path, f"postgresql://postgres:s3cret@127.0.0.1:{port}/test")
    line = one_line(ws.hub("invoices", "list"), EXIT_STORE)
    assert line.startswith(f"hub: the store postgresql://postgres:***@127.0.0.1:{port}/test cannot be opened: ")
    assert "s3cret" not in line


@pytest.mark.postgresql
def test_a_pull_against_a_database_that_does_not_exist_is_one_line_and_exit_8(tmp_path):
    if not postgres_available():
        pytest.skip("PostgreSQL not reachable")
    url = make_url(POSTGRES).set(database="hub_no_such_database_24")
    shown = url.render_as_string(hide_password=True)
    ws = on(tmp_path, url.render_as_string(hide_password=False))
    assert one_line(ws.hub("pull"), EXIT_STORE) == (
        f"hub: the store {shown} cannot be opened: connection to server at \"{url.host}\", port {url.port or 5432} "
        "failed: FATAL: database \"hub_no_such_database_24\" does not exist")


def test_a_sqlite_store_in_a_missing_directory_is_one_line_and_exit_8(tmp_path):
    path = tmp_path / "no" / "such" / "hub.db"
    ws = on(tmp_path, f"sqlite:///{path}")
    assert one_line(ws.hub("pull"), EXIT_STORE) == (
        f"hub: the store sqlite:///{path} cannot be opened: unable to open database file")


@pytest.mark.parametrize("url", ["nosuch://x", "postgres://u@h/db", "hub.db", "mysql://u@h/db"])
def test_hub_check_refuses_a_database_url_the_hub_cannot_use(tmp_path, url):
    ws = on(tmp_path, url)
    result = ws.hub("check")
    assert result.exit_code == EXIT_CONFIG, result.output
    assert result.stderr.splitlines() == [
        f"error: hub.toml: [hub]: database: {url!r} is not a database URL the hub can use: sqlite:///hub.db (a file "
        "beside hub.toml) or postgresql://user@host:5432/billing",
        "hub: 1 configuration error",
    ]


def test_a_command_on_a_database_url_the_hub_cannot_use_is_a_configuration_error(tmp_path):
    ws = on(tmp_path, "nosuch://x")
    result = ws.hub("pull")
    assert result.exit_code == EXIT_CONFIG, result.output
    assert result.stderr.splitlines()[0].startswith("error: hub.toml: [hub]: database: 'nosuch://x' is not a database")


def test_a_database_url_in_the_environment_is_checked_as_well(tmp_path, monkeypatch):
    monkeypatch.setenv("HUB_DB_24", "nosuch://x")
    ws = Workspace(tmp_path, "")
    ws.write("hub.toml", '[hub]\ndatabase_env = "HUB_DB_24"\n')
    result = ws.hub("check")
    assert result.exit_code == EXIT_CONFIG, result.output
    assert result.stderr.splitlines()[0] == (
        "error: hub.toml: [hub]: database_env: the URL in HUB_DB_24 is not a database URL the hub can use: "
        "sqlite:///hub.db (a file beside hub.toml) or postgresql://user@host:5432/billing")


@pytest.mark.parametrize("depth", [33, 5000])
def test_a_hub_toml_of_deeply_nested_arrays_is_a_configuration_error(tmp_path, depth):
    ws = Workspace(tmp_path, f"sqlite:///{tmp_path / 'hub.db'}")
    ws.config(f"x = {'[' * depth}{']' * depth}\n")
    result = ws.hub("check")
    assert result.exit_code == EXIT_CONFIG, result.output
    assert result.stderr.splitlines() == [
        "error: hub.toml: nests arrays or tables more than 32 deep, more than any hub.toml needs",
        "hub: 1 configuration error",
    ]


def test_thirty_two_levels_are_read_and_judged_by_the_schema(tmp_path):
    ws = Workspace(tmp_path, f"sqlite:///{tmp_path / 'hub.db'}")
    ws.config(f"x = {'[' * 30}{']' * 30}\n")  # the document, [hub] and 30 arrays: 32 levels
    result = ws.hub("check")
    assert result.exit_code == EXIT_CONFIG, result.output
    assert result.stderr.splitlines()[0].startswith("error: hub.toml: [hub]: x: unknown key")


@pytest.mark.parametrize("command", [("rate",), ("usage",), ("invoice",), ("reconcile",),
                                     ("trace", "--account", "globex", "--product", "vcpu")])
@pytest.mark.parametrize("period", ["0001-01", "1969-12", "0001-W01", "1969-12-31"])
def test_a_period_before_1970_is_refused_in_one_line(tmp_path, command, period):
    ws = on(tmp_path, f"sqlite:///{tmp_path / 'hub.db'}", STANDARD_CONFIG + """
        [[products]]
        name = "vcpu"
        meter = "compute.vcpu"
        price = { model = "per_unit", unit_price = "0.05" }
    """)
    result = ws.hub(command[0], "--period", period, *command[1:])
    assert one_line(result, EXIT_CONFIG) == (
        f"hub: --period: '{period}' is before 1970, before any usage the hub accepts "
        "(usage timestamps start at 1970-01-01T00:00:00Z)")


def test_a_period_of_1970_in_a_zone_ahead_of_utc_is_rated(tmp_path):
    ws = on(tmp_path, f"sqlite:///{tmp_path / 'hub.db'}", STANDARD_CONFIG + """
        [[products]]
        name = "vcpu"
        meter = "compute.vcpu"
        price = { model = "per_unit", unit_price = "0.05" }
    """)
    assert ws.json("rate", "--period", "1970-01") == []


@pytest.mark.parametrize(("option", "value"), [("--close-every", "99999999999d"), ("--deliver-every", "367d"),
                                              ("--dunning-every", "9000h")])
def test_a_run_interval_longer_than_any_duration_the_hub_accepts_is_a_usage_error(tmp_path, option, value):
    ws = on(tmp_path, f"sqlite:///{tmp_path / 'hub.db'}")
    result = ws.hub("run", option, value)
    assert result.exit_code == 2, result.output
    assert (f"Invalid value for '{option}': '{value}' is longer than 366d, the longest duration the hub accepts"
            in " ".join(result.stderr.split()))
