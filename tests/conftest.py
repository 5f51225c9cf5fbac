"""Shared fixtures: a throwaway hub workspace on SQLite or PostgreSQL.

Tests that take the ``db_url`` fixture (directly or through ``workspace``)
run once on SQLite and once on PostgreSQL. PostgreSQL runs use a fresh
schema of the server at ``HUB_TEST_POSTGRES`` (default: the local server's
``test`` database) and are skipped, never failed, when it is not reachable.
"""

from __future__ import annotations

import json
import logging
import os
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

POSTGRES = os.environ.get("HUB_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

_pg_state: dict[str, Any] = {}


@pytest.fixture(autouse=True)
def _loggers_as_they_were() -> Iterator[None]:
    """``hub run`` in this process gives the ``hub`` and ``apscheduler``
    loggers a stderr handler and stops their propagation; put them back
    after each test, so that a later test's ``caplog`` sees the hub's logs
    whatever ran before it."""
    saved = [(lg, lg.propagate, lg.level, list(lg.handlers))
             for lg in (logging.getLogger("hub"), logging.getLogger("apscheduler"))]
    yield
    for logger, propagate, level, handlers in saved:
        logger.propagate, logger.handlers = propagate, handlers
        logger.setLevel(level)  # clears the loggers' cached levels too


def postgres_available() -> bool:
    """Whether the test PostgreSQL server answers (checked once)."""
    if "ok" not in _pg_state:
        try:
            import psycopg

            from sqlalchemy.engine import make_url

            url = make_url(POSTGRES)
            with psycopg.connect(host=url.host, port=url.port or 5432, user=url.username, dbname=url.database,
                                 password=url.password, connect_timeout=3):
                _pg_state["ok"] = True
        except Exception as exc:  # noqa: BLE001 - any failure means "not here"
            _pg_state["ok"] = False
            _pg_state["why"] = str(exc)
    return bool(_pg_state["ok"])


@pytest.fixture
def pg_schema_url() -> Iterator[str]:
    """A URL whose connections live in a fresh PostgreSQL schema, dropped after."""
    if not postgres_available():
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES}: {_pg_state.get('why')}")
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(POSTGRES)
    schema = f"hub_t_{uuid.uuid4().hex[:12]}"
    params = dict(host=url.host, port=url.port or 5432, user=url.username, dbname=url.database, password=url.password)
    with psycopg.connect(**params, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(**params, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL: SQLite in the test's directory, or a PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'hub.db'}"
    return request.getfixturevalue("pg_schema_url")


class Workspace:
    """A hub.toml in a temporary directory, and a way to run ``hub`` on it."""

    def __init__(self, root: Path, db_url: str) -> None:
        self.root = root
        self.db_url = db_url
        self.config_path = root / "hub.toml"

    def write(self, rel: str, text: str, *, dedent: bool = True, encoding: str = "utf-8") -> Path:
        """Write a file under the workspace; returns its path."""
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes((textwrap.dedent(text) if dedent else text).encode(encoding))
        return path

    def append(self, rel: str, text: str) -> None:
        with open(self.root / rel, "ab") as fh:
            fh.write(text.encode("utf-8"))

    def config(self, body: str) -> Path:
        """Write hub.toml: a ``[hub]`` table on this workspace's database, then ``body``."""
        head = f'[hub]\ndatabase = "{self.db_url}"\n'
        return self.write("hub.toml", head + textwrap.dedent(body), dedent=False)

    def hub(self, *args: str, env: dict[str, str] | None = None) -> Result:
        """Run ``hub --config <this hub.toml> ARGS`` in-process."""
        from hub.cli.main import register_commands

        return CliRunner().invoke(register_commands(), ["--config", str(self.config_path), *args], env=env, catch_exceptions=False)

    def json(self, *args: str) -> Any:
        result = self.hub(*args, "--json")
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)


METERS_AND_ACCOUNTS = """
[[meters]]
name = "compute.vcpu"
aggregation = "time_weighted"
unit = "vCPU"

[[meters]]
name = "network.egress"
aggregation = "sum"
unit = "GB"

[[accounts]]
id = "acme"
name = "ACME GmbH"
country = "DE"

[[accounts]]
id = "globex"
name = "Globex SARL"
country = "FR"
timezone = "Europe/Paris"
"""

STANDARD_CONFIG = METERS_AND_ACCOUNTS + """
[[sources]]
name = "files"
type = "csv"
path = "usage/*.csv"
"""

HEADER = "record_id,account,resource_id,meter,start,end,quantity\n"


@pytest.fixture
def workspace(tmp_path: Path, db_url: str) -> Workspace:
    """A workspace with two meters, two accounts and a ``files`` CSV source."""
    ws = Workspace(tmp_path, db_url)
    ws.config(STANDARD_CONFIG)
    return ws
