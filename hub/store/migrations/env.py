"""Alembic environment: always run on a connection the hub hands in."""

from alembic import context

from hub.store.tables import alembic_include_name, metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - the hub always passes one
    raise RuntimeError("run migrations through `hub db upgrade`, which passes the hub's connection")

if connection.dialect.name == "postgresql":
    # Two hub processes starting together migrate one after the other.
    connection.exec_driver_sql("SELECT pg_advisory_xact_lock(726193)")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=True,
    compare_type=True,
    include_name=alembic_include_name,  # APScheduler's job table is not ours to drop
)
with context.begin_transaction():
    context.run_migrations()
