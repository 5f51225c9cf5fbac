"""Opening the store: engine, SQLite settings and migrations on start."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, InterfaceError, OperationalError

from hub.store.migrations import HEAD


class StoreUnavailable(Exception):
    """The store cannot be opened: its server is down or refuses the login,
    its database does not exist, its URL names no database the hub can
    use. The message names the store (password hidden) and the reason, on
    one line."""


def _reason(exc: BaseException) -> str:
    """The first line of what the driver said (psycopg adds hints and
    SQLAlchemy a link on lines of their own)."""
    orig = getattr(exc, "orig", None) or exc
    text = " ".join(str(orig).split("\n")[0].split())
    return text.removeprefix("connection failed: ") or type(orig).__name__


def database_url(url: str, base_dir: Path) -> str:
    """The URL with a relative SQLite path made relative to ``base_dir``
    (the directory of hub.toml), not to the current directory."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        path = Path(parsed.database).expanduser()
        if not path.is_absolute():
            parsed = parsed.set(database=str(base_dir / path))
    return parsed.render_as_string(hide_password=False)


def shown_url(url: str) -> str:
    """``url`` as it may be shown or logged: any password hidden."""
    return make_url(url).render_as_string(hide_password=True)


def sqlite_file(engine: Engine) -> str | None:
    """The path of ``engine``'s SQLite store when it is a plain file that
    another connection can open (None on other databases, in memory, or
    named by a ``file:`` URI)."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:" or database.startswith("file:"):
        return None
    return database


def create_hub_engine(url: str, base_dir: Path) -> Engine:
    """An engine for the hub's store.

    On SQLite every transaction starts with ``BEGIN IMMEDIATE`` (one writer
    at a time, waiting up to 30 s for the lock instead of failing on a lock
    upgrade), in WAL mode with foreign keys on.
    """
    url = database_url(url, base_dir)
    # uri=True: a plain path is still a path, and ATTACH may then name a
    # file read-only (file:...?mode=ro), which the pipelined writer does.
    engine = create_engine(url, connect_args={"uri": True} if make_url(url).get_backend_name() == "sqlite" else {})
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA cache_size=-65536")
            cur.execute("PRAGMA temp_store=MEMORY")  # 64 MiB: index updates of big imports stay in memory
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn):  # type: ignore[no-untyped-def]
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _alembic_config():  # type: ignore[no-untyped-def]
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(resources.files("hub.store") / "migrations"))
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the store's schema to ``revision`` (idempotent)."""
    from alembic import command

    cfg = _alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def current_revision(engine: Engine) -> str | None:
    """The store's schema revision, or ``None`` for an empty database."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def open_store(url: str, base_dir: Path, *, migrate: bool = True) -> Engine:
    """Open the store and, by default, run pending migrations.

    A store already at :data:`hub.store.migrations.HEAD` is recognised with one
    query, without loading Alembic (which costs a quarter of a second).
    """
    try:
        shown = shown_url(database_url(url, base_dir))
    except ArgumentError:
        raise StoreUnavailable(f"the store cannot be opened: {url!r} is not a database URL") from None
    try:
        engine = create_hub_engine(url, base_dir)
        if migrate and _stored_revision(engine) != HEAD:
            upgrade(engine)
        elif not migrate:
            with engine.connect():
                pass
    except (ArgumentError, ImportError, OperationalError, InterfaceError) as exc:  # no such dialect or driver; down
        raise StoreUnavailable(f"the store {shown} cannot be opened: {_reason(exc)}") from None
    return engine


def _stored_revision(engine: Engine) -> str | None:
    try:
        with engine.connect() as conn:
            return conn.scalar(text("SELECT version_num FROM alembic_version"))
    except DBAPIError:
        return None
