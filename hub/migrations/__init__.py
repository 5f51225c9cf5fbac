"""Alembic migrations of the hub's store (run on start, or by `hub db upgrade`)."""
