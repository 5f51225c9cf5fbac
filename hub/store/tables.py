"""The hub's tables (SQLAlchemy Core).

Money and quantities are never floats here: SQLite's NUMERIC is a float in
disguise, so exact values are stored as canonical decimal text plus scaled
integers that SQL can sum exactly. Instants of usage are whole UTC epoch
seconds (BIGINT), which is what per-second rating computes with; other
instants are timezone-aware UTC datetimes (:class:`UTCDateTime`).
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import DateTime, TypeDecorator

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
    }
)

#: an auto-incrementing 64-bit key on PostgreSQL, SQLite's ROWID alias there
Id = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend; naive values are refused."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the hub stores aware UTC times only")
        return value.astimezone(timezone.utc)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


usage_records = Table(
    "usage_records",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("source", String(200), nullable=False),
    Column("record_id", String(500), nullable=False),
    Column("account", String(200), nullable=False),
    Column("resource_id", String(500), nullable=False),
    Column("meter", String(200), nullable=False),
    Column("start_s", BigInteger, nullable=False, comment="UTC epoch seconds, inclusive"),
    Column("end_s", BigInteger, nullable=True, comment="UTC epoch seconds, exclusive; NULL while running"),
    Column("quantity", String(64), nullable=False, comment="canonical exact decimal"),
    Column("qty_units", BigInteger, nullable=False, comment="integer part of quantity"),
    Column("qty_nanos", BigInteger, nullable=False, comment="fractional part of quantity, in 1e-9"),
    Column("unit", String(100), nullable=True),
    Column("labels", Text, nullable=False, comment="JSON object, sorted keys"),
    Column("origin", Text, nullable=True, comment="where the current version came from"),
    Column("version", Integer, nullable=False, comment="1, then +1 at each change"),
    Column("received_s", BigInteger, nullable=False, comment="when the current version was stored"),
    UniqueConstraint("source", "record_id"),
    # Usage is read by time (a period); an (account, ...) index costs 40% of
    # the import speed on SQLite, and per-account reads will use rollups.
    Index(None, "start_s"),
)

checkpoints = Table(
    "checkpoints",
    metadata,
    Column("source", String(200), primary_key=True),
    Column("state", Text, nullable=False, comment="JSON, the source's own resume state"),
    Column("updated_at", UTCDateTime, nullable=False),
)

quarantine = Table(
    "quarantine",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("source", String(200), nullable=False),
    Column("location", Text, nullable=False),
    Column("line", Integer, nullable=True),
    Column("raw", Text, nullable=True),
    Column("errors", Text, nullable=False, comment="JSON list of messages"),
    Column("record_id", String(500), nullable=True),
    Column("status", String(20), nullable=False, comment="open | resolved"),
    Column("resolution", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("resolved_at", UTCDateTime, nullable=True),
    Index(None, "source", "status"),
    Index(None, "source", "record_id"),
)

pull_runs = Table(
    "pull_runs",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("source", String(200), nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=True),
    Column("status", String(20), nullable=False, comment="running | ok | failed"),
    Column("imported", Integer, nullable=False, default=0),
    Column("updated", Integer, nullable=False, default=0),
    Column("quarantined", Integer, nullable=False, default=0),
    Column("error", Text, nullable=True),
    Index(None, "source", "started_at"),
)
