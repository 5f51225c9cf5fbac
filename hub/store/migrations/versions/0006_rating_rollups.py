"""rating rollups: the quantities of a closed period, kept until its usage changes

A rating of a closed period by every account stores its quantities per
(product spec and period, account, resource) in ``rating_rollups``, stamped
with ``usage_generation.n``; a later rating reads them while no usage that
can count in that period changed since (hub/store/rollups.py).

Triggers on ``usage_records``, in the very transaction that inserts,
updates or deletes a record, whatever wrote it: add 1 to
``usage_generation.n``, and stamp the UTC day of the record's start (both
versions' on an update) in ``usage_change_days`` with the new ``n``. A
record counts in no period that ends before it starts (BILLING_RULES: the
minimum top-up goes to the period that holds its start), so a period whose
days up to its end have no stamp above a rollup's generation has the same
usage as when the rollup was computed. On PostgreSQL the triggers run once
per statement, and only when it changed a row; on SQLite, which has no
statement triggers, once per row changed, except the rows the pipelined
writer inserts: it bumps ``n`` and stamps the days of its whole batch once,
in the batch's transaction, with ``usage_generation.batch`` set to 1 for
that transaction only (the insert trigger runs when it is 0: for any other
writer), which spares the import two statements a row.

A migration that rebuilds ``usage_records`` on SQLite (``batch_alter_table``
with a copy) drops its triggers: create them again there
(:func:`create_triggers`).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

_EVENTS = ("insert", "update", "delete")

#: PostgreSQL: the days of the changed rows' starts, per event, from its transition tables
_PG_DAYS = {
    "insert": "SELECT start_s / 86400 FROM new_rows",
    "update": "SELECT start_s / 86400 FROM new_rows UNION SELECT start_s / 86400 FROM old_rows",
    "delete": "SELECT start_s / 86400 FROM old_rows",
}
_PG_TABLES = {"insert": "NEW TABLE AS new_rows", "update": "OLD TABLE AS old_rows NEW TABLE AS new_rows",
              "delete": "OLD TABLE AS old_rows"}
#: SQLite: the row's days, per event
_SQLITE_DAYS = {"insert": ("NEW",), "update": ("OLD", "NEW"), "delete": ("OLD",)}

_STAMP = ("INSERT INTO usage_change_days (day, generation) {days} "
          "ON CONFLICT (day) DO UPDATE SET generation = excluded.generation")


def create_triggers() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for event in _EVENTS:
            days = f"SELECT DISTINCT day, g FROM ({_PG_DAYS[event]}) AS changed (day)"
            op.execute(f"""
CREATE FUNCTION hub_usage_{event}d() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE g bigint;
BEGIN
    IF EXISTS (SELECT 1 FROM {'old_rows' if event == 'delete' else 'new_rows'}) THEN
        UPDATE usage_generation SET n = n + 1 WHERE id = 1 RETURNING n INTO g;
        {_STAMP.format(days=days)};
    END IF;
    RETURN NULL;
END $$""")
            op.execute(f"CREATE TRIGGER usage_records_{event}_generation AFTER {event.upper()} ON usage_records "
                       f"REFERENCING {_PG_TABLES[event]} FOR EACH STATEMENT EXECUTE FUNCTION hub_usage_{event}d()")
        # TRUNCATE fires no delete trigger: it drops every rollup instead
        op.execute("""
CREATE FUNCTION hub_usage_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE usage_generation SET n = n + 1 WHERE id = 1;
    DELETE FROM rating_rollup_keys;
    DELETE FROM rating_rollups;
    RETURN NULL;
END $$""")
        op.execute("CREATE TRIGGER usage_records_truncate_generation AFTER TRUNCATE ON usage_records "
                   "FOR EACH STATEMENT EXECUTE FUNCTION hub_usage_truncated()")
    else:
        for event in _EVENTS:
            stamps = "; ".join(
                _STAMP.format(days=f"SELECT {row}.start_s / 86400, n FROM usage_generation WHERE id = 1 AND true")
                for row in _SQLITE_DAYS[event])
            # An insert by the pipelined writer, which stamps its whole batch
            # itself (batch = 1 only inside its transaction), skips the row's.
            when = " WHEN (SELECT batch FROM usage_generation WHERE id = 1) = 0" if event == "insert" else ""
            op.execute(f"CREATE TRIGGER usage_records_{event}_generation AFTER {event.upper()} ON usage_records{when} "
                       f"BEGIN UPDATE usage_generation SET n = n + 1 WHERE id = 1; {stamps}; END")


def upgrade() -> None:
    op.create_table('usage_generation',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False, comment='always 1: one row'),
    sa.Column('n', sa.BigInteger(), nullable=False,
              comment='+1 at each change of usage_records (triggers of migration 0006), in the changing transaction'),
    sa.Column('batch', sa.Integer(), nullable=False,
              comment='1 only inside a transaction of the SQLite pipelined writer, which stamps its batch itself'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_usage_generation'))
    )
    op.execute("INSERT INTO usage_generation (id, n, batch) VALUES (1, 0, 0)")
    op.create_table('usage_change_days',
    sa.Column('day', sa.BigInteger(), autoincrement=False, nullable=False,
              comment='start_s / 86400 of changed records (integer division)'),
    sa.Column('generation', sa.BigInteger(), nullable=False, comment='usage_generation.n of the latest change'),
    sa.PrimaryKeyConstraint('day', name=op.f('pk_usage_change_days'))
    )
    op.create_table('rating_rollups',
    sa.Column('key', sa.String(length=64), nullable=False,
              comment='sha256 of the product spec, period bounds and rating revision'),
    sa.Column('generation', sa.BigInteger(), nullable=False, comment='usage_generation.n the quantities were computed at'),
    sa.Column('account', sa.String(length=200), nullable=False),
    sa.Column('rkey', sa.String(length=500), nullable=False, comment="the resource of an itemized product, '' otherwise"),
    sa.Column('q', sa.Text(), nullable=False, comment='the exact quantity in the meter\'s unit: an integer or num/den'),
    sa.Column('records', sa.BigInteger(), nullable=False, comment='usage records it came from'),
    sa.UniqueConstraint('key', 'generation', 'account', 'rkey', name=op.f('uq_rating_rollups_key_generation_account_rkey'))
    )
    op.create_table('rating_rollup_keys',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('generation', sa.BigInteger(), nullable=False),
    sa.Column('period_end_s', sa.BigInteger(), nullable=False, comment='the end of the period rated (UTC epoch seconds)'),
    sa.Column('row_count', sa.BigInteger(), nullable=False, comment='rollups stored with it'),
    sa.Column('stored_at', sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint('key', 'generation', name=op.f('uq_rating_rollup_keys_key_generation'))
    )
    create_triggers()


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    if postgresql:
        op.execute("DROP TRIGGER IF EXISTS usage_records_truncate_generation ON usage_records")
        op.execute("DROP FUNCTION IF EXISTS hub_usage_truncated()")
    for event in _EVENTS:
        op.execute(f"DROP TRIGGER IF EXISTS usage_records_{event}_generation" + (" ON usage_records" if postgresql else ""))
        if postgresql:
            op.execute(f"DROP FUNCTION IF EXISTS hub_usage_{event}d()")
    op.drop_table('rating_rollup_keys')
    op.drop_table('rating_rollups')
    op.drop_table('usage_change_days')
    op.drop_table('usage_generation')
