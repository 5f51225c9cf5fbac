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
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
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
    # One account's records, for its current charges (migration 0005).
    # Partial on a condition that always holds (account is NOT NULL): SQLite
    # uses a partial index only in queries that state its condition, so only
    # the reads that say ``account IS NOT NULL`` (:mod:`hub.rating`, for a
    # few accounts) use it, and the scans that group every account by
    # account keep scanning (walking the whole index to avoid a sort made
    # them twice as slow). With each record's start (migration 0008): the
    # earliest usage of each account (the close job's, every minute) is one
    # search per account; new records still go to the end of their
    # account's entries (the latest starts), cheaper for an import to keep
    # up than (account, end_s) (bench/README.md). No index on time alone: a
    # period's query matches most rows with start_s < period end, so a scan
    # beats an index (migration 0002).
    Index("ix_usage_records_account", "account", "start_s",
          sqlite_where=text("account IS NOT NULL"), postgresql_where=text("account IS NOT NULL")),
    # The running records (no end yet), which a rating from rollups bills on
    # top of them (migration 0007): a few per resource alive, however large
    # the store. Covering (every column the rating reads): read without the
    # table, three times faster at 100,000 running records.
    Index("ix_usage_records_running", "meter", "account", "resource_id", "start_s", "qty_units", "qty_nanos", "end_s",
          sqlite_where=text("end_s IS NULL"), postgresql_where=text("end_s IS NULL")),
)

# --------------------------------------------------------------------------
# Rating rollups (migrations 0006 and 0007). A rating of
# a period by every account stores its quantities here, stamped with the
# store's usage generation; a later rating of the same product spec and
# period reads them instead of scanning every record, as long as no usage
# that can count in the period changed since, or the writer that changed it
# added its changes to them (hub/store/rollups.py).

usage_generation = Table(
    "usage_generation",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False, comment="always 1: one row"),
    Column("n", BigInteger, nullable=False,
           comment="+1 at each change of usage_records (triggers of migration 0006), in the changing transaction"),
    Column("batch", Integer, nullable=False,
           comment="1 only inside a transaction of the SQLite pipelined writer, which stamps its batch itself"),
)

usage_change_days = Table(
    "usage_change_days",
    metadata,
    Column("day", BigInteger, primary_key=True, autoincrement=False,
           comment="start_s / 86400 of changed records (integer division)"),
    Column("generation", BigInteger, nullable=False, comment="usage_generation.n of the latest change"),
)

rating_rollups = Table(
    "rating_rollups",
    metadata,
    Column("key", String(64), primary_key=True, comment="rating_rollup_keys.key"),
    Column("account", String(200), primary_key=True),
    Column("rkey", String(500), primary_key=True, comment="the resource of an itemized product, '' otherwise"),
    Column("n", BigInteger, nullable=False, comment="usage records it came from"),
    # the exact quantity in the meter's unit, as the split sums of
    # hub.quantities.combine_split_sums (time-weighted and sum meters: the
    # writers add their changes to them); NUMERIC: no 64-bit overflow on
    # PostgreSQL, integers in SQLite
    Column("s1", Numeric(40, 0), nullable=True, comment="sum of qty_units / 10^6 x billed seconds"),
    Column("s2", Numeric(40, 0), nullable=True, comment="sum of qty_units % 10^6 x billed seconds"),
    Column("s3", Numeric(40, 0), nullable=True, comment="sum of qty_nanos / 10^5 x billed seconds"),
    Column("s4", Numeric(40, 0), nullable=True, comment="sum of qty_nanos % 10^5 x billed seconds"),
    Column("q", Text, nullable=True, comment="the exact quantity (integer or num/den) of the other meters"),
)

rating_rollup_keys = Table(
    "rating_rollup_keys",
    metadata,
    Column("key", String(64), primary_key=True,
           comment="sha256 of the product spec, period bounds and rating revision"),
    Column("generation", BigInteger, nullable=False, comment="usage_generation.n the quantities are up to date with"),
    Column("period_end_s", BigInteger, nullable=False, comment="the end of the period rated (UTC epoch seconds)"),
    Column("stored_at", UTCDateTime, nullable=False),
    Column("spec", Text, nullable=True,
           comment="JSON: how the writers keep the rollups up to date (time-weighted and sum meters), or NULL"),
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
    # hub quarantine list's order (migration 0010); SQLite only: see there
    Index("ix_quarantine_open", "status", "source", "location", "line", "id").ddl_if(dialect="sqlite"),
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


# --------------------------------------------------------------------------
# Invoicing. Money is canonical decimal text with the currency's
# minor digits; an issued document's figures are frozen in ``content``.

invoices = Table(
    "invoices",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("kind", String(20), nullable=False, comment="invoice | credit_note"),
    Column("number", String(100), nullable=True, unique=True, comment="NULL while a draft"),
    Column("account", String(200), nullable=False, comment="the billed account (a parent for its children)"),
    Column("currency", String(3), nullable=False),
    Column("period", String(20), nullable=True, comment="2026-10, 2026-W43, 2026-10-15; NULL on credit notes"),
    Column("period_start", UTCDateTime, nullable=False),
    Column("period_end", UTCDateTime, nullable=False),
    Column("status", String(20), nullable=False, comment="draft | issued | paid | partially_paid | void"),
    Column("issue_date", String(10), nullable=True, comment="ISO date, in the account's time zone"),
    Column("due_date", String(10), nullable=True),
    Column("total", String(64), nullable=False),
    Column("amount_due", String(64), nullable=False),
    Column("content", Text, nullable=False, comment="JSON: the figures and lines under the invoice contract"),
    Column("refers_to", BigInteger, nullable=True, comment="a credit note's invoice"),
    Column("reason", Text, nullable=True, comment="a credit note's reason"),
    Column("created_at", UTCDateTime, nullable=False),
    Column("issued_at", UTCDateTime, nullable=True),
    # migration 0009
    Column("reissue", Integer, nullable=False, server_default=text("0"),
           comment="0: the period's first invoice; n: its n-th reissue (after a full credit note)"),
    Column("reissue_of", BigInteger, nullable=True, comment="the voided invoice a reissue replaces"),
    Column("applied", String(64), nullable=True,
           comment="a credit note's amount that settled its invoice's open balance (the rest is a credit balance)"),
    # One invoice per account, period and reissue, whoever closes it (two
    # schedulers, a crash and a rerun): the database refuses the second.
    UniqueConstraint("kind", "account", "period", "reissue"),
)

invoice_lines = Table(
    "invoice_lines",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("invoice_id", BigInteger, nullable=False),
    Column("position", Integer, nullable=False, comment="1, 2, ... as on the document"),
    Column("origin", String(20), nullable=False, comment="usage | adjustment | manual"),
    Column("account", String(200), nullable=False, comment="whose usage (a child on a parent's invoice)"),
    Column("product", String(200), nullable=False),
    Column("resource_id", String(500), nullable=True),
    Column("period", String(20), nullable=False, comment="the period the line bills"),
    Column("quantity", String(64), nullable=False),
    Column("amount", String(64), nullable=False),
    Column("records", Integer, nullable=False, default=0, comment="usage records behind the line"),
    Column("manual_charge_id", BigInteger, nullable=True),
    UniqueConstraint("invoice_id", "position"),
    Index(None, "account", "period"),
)

sequences = Table(
    "sequences",
    metadata,
    Column("series", String(100), primary_key=True, comment="invoice:2026, credit_note:2026, ..."),
    Column("last", Integer, nullable=False),
)

credit_grants = Table(
    "credit_grants",
    metadata,
    Column("id", String(64), primary_key=True, comment="stable key of the [[credits]] table"),
    Column("account", String(200), nullable=False),
    Column("kind", String(20), nullable=False, comment="prepaid | promotional"),
    Column("currency", String(3), nullable=False),
    Column("amount", String(64), nullable=False),
    Column("granted_at", UTCDateTime, nullable=True),
    Column("expires", UTCDateTime, nullable=True),
    Column("description", Text, nullable=False),
    Column("recorded_at", UTCDateTime, nullable=False),
    # migration 0009
    Column("source", String(20), nullable=False, server_default=text("'config'"),
           comment="config ([[credits]]) | credit_note (what a credit note credited beyond its invoice's balance)"),
    Column("invoice_id", BigInteger, nullable=True, comment="the credit note of a credit_note grant"),
)

credit_entries = Table(
    "credit_entries",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("grant_id", String(64), nullable=False),
    Column("entry", String(20), nullable=False, comment="grant | consumption | expiry | reversal | refund"),
    Column("amount", String(64), nullable=False, comment="positive; the entry says which way"),
    Column("at", UTCDateTime, nullable=False),
    Column("invoice_id", BigInteger, nullable=True),
    Column("dedupe", String(100), nullable=False, comment="grant, expiry, or the invoice: one entry each"),
    UniqueConstraint("grant_id", "dedupe"),
)

manual_charges = Table(
    "manual_charges",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account", String(200), nullable=False),
    Column("amount", String(64), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("description", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("invoice_id", BigInteger, nullable=True, comment="the issued invoice that billed it"),
)

payments = Table(
    "payments",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("invoice_id", BigInteger, nullable=False),
    Column("amount", String(64), nullable=False),
    Column("paid_on", String(10), nullable=False, comment="ISO date"),
    Column("reference", Text, nullable=True),
    Column("recorded_at", UTCDateTime, nullable=False),
)

refunds = Table(
    "refunds",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account", String(200), nullable=False),
    Column("grant_id", String(64), nullable=False, comment="the credit balance paid out (credit_grants.id)"),
    Column("amount", String(64), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("paid_on", String(10), nullable=False, comment="ISO date"),
    Column("reference", Text, nullable=True),
    Column("recorded_at", UTCDateTime, nullable=False),
    Index(None, "account"),
)

period_closings = Table(
    "period_closings",
    metadata,
    Column("account", String(200), primary_key=True, comment="the billed account"),
    Column("period", String(20), primary_key=True),
    Column("closed_at", UTCDateTime, nullable=False, comment="usage received later is an adjustment"),
    Column("invoice_id", BigInteger, nullable=True, comment="NULL when the period had no charges"),
    # migration 0009
    Column("deferred", String(64), nullable=True,
           comment="the total left uninvoiced below [invoicing] minimum_amount; NULL otherwise"),
    Column("carried_to", BigInteger, nullable=True, comment="the invoice that billed a deferred period's charges"),
)

reminders = Table(
    "reminders",
    metadata,
    Column("invoice_id", BigInteger, primary_key=True, autoincrement=False),
    Column("step", Integer, primary_key=True, autoincrement=False, comment="days past due ([dunning] after_days)"),
    Column("as_of", String(10), nullable=False, comment="the ISO date it was due at"),
    Column("created_at", UTCDateTime, nullable=False),
)

documents = Table(
    "documents",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("invoice_id", BigInteger, nullable=False, comment="the issued invoice or credit note"),
    Column("format", String(40), nullable=False, comment="html | pdf | ubl | facturx | a plugin's"),
    Column("renderer", String(200), nullable=False, comment="the [[renderers]] instance that made it"),
    Column("status", String(20), nullable=False, comment="stored | rejected | failed"),
    Column("file_name", String(300), nullable=True),
    Column("media_type", String(200), nullable=True),
    Column("sha256", String(64), nullable=True, comment="of content"),
    Column("size", BigInteger, nullable=True),
    Column("content", LargeBinary, nullable=True, comment="NULL unless stored"),
    Column("failures", Text, nullable=True, comment="JSON [{rule, message, location}] of a rejected or failed one"),
    Column("rendered_at", UTCDateTime, nullable=False),
    # One document per invoice and format: rendering again replaces it.
    UniqueConstraint("invoice_id", "format"),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("invoice_id", BigInteger, nullable=False),
    Column("exporter", String(200), nullable=False, comment="the [[exporters]] instance"),
    Column("event", String(40), nullable=False, comment="invoice.issued | credit_note.issued | invoice.paid"),
    Column("key", String(100), nullable=False, unique=True, comment="the idempotency key, the same on every attempt"),
    Column("status", String(20), nullable=False, comment="pending | sending | delivered | dead | blocked"),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("lease_until", UTCDateTime, nullable=True, comment="while sending: a crashed worker's row is retried after"),
    Column("last_error", Text, nullable=True),
    Column("external_id", Text, nullable=True, comment="the target's id for it"),
    Column("created_at", UTCDateTime, nullable=False),
    Column("delivered_at", UTCDateTime, nullable=True),
    # migration 0009
    Column("occasion", String(40), nullable=False, server_default=text("''"),
           comment="'' for the event itself; resend:N for the n-th resend, overdue:D for a reminder step"),
    # Written in the transaction that issues (or pays) the invoice: once.
    UniqueConstraint("invoice_id", "exporter", "event", "occasion"),
    Index(None, "status", "next_attempt_at"),
)

delivery_attempts = Table(
    "delivery_attempts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("delivery_id", BigInteger, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=True, comment="NULL: the worker died while sending"),
    Column("outcome", String(20), nullable=True, comment="delivered | retry | dead | blocked"),
    Column("error", Text, nullable=True),
    Column("external_id", Text, nullable=True),
    UniqueConstraint("delivery_id", "attempt"),
)


#: APScheduler's table in the store's database (``hub run``'s jobs): not one
#: of the hub's own tables, so migrations must leave it alone
JOBS_TABLE = "apscheduler_jobs"


def alembic_include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """For Alembic's ``include_name``: autogenerate ignores APScheduler's
    table (it is not in the hub's metadata and must not be dropped)."""
    return not (type_ == "table" and name == JOBS_TABLE)
