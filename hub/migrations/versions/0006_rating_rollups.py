"""rating rollups: the quantities of a closed period, kept until usage changes

A rating of a closed period by every account stores its quantities per
(product spec and period, account, resource) in ``rating_rollups``, stamped
with ``usage_generation.n``; a later rating reads them while no usage
changed since. Triggers on ``usage_records`` add 1 to ``usage_generation.n``
in every transaction that inserts, updates or deletes a record, so no write
path can forget to (hub/store/rollups.py). On PostgreSQL the triggers run
once per statement, and only when it changed a row; on SQLite, which has
no statement triggers, once per row changed (about 0.4 us).

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

_EVENTS = (("insert", "NEW"), ("update", "NEW"), ("delete", "OLD"))


def create_triggers() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("""
CREATE FUNCTION hub_usage_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM changed) THEN
        UPDATE usage_generation SET n = n + 1;
    END IF;
    RETURN NULL;
END $$""")
        for event, which in _EVENTS:
            op.execute(f"CREATE TRIGGER usage_records_{event}_generation AFTER {event.upper()} ON usage_records "
                       f"REFERENCING {which} TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION hub_usage_changed()")
    else:
        for event, _which in _EVENTS:
            op.execute(f"CREATE TRIGGER usage_records_{event}_generation AFTER {event.upper()} ON usage_records "
                       "BEGIN UPDATE usage_generation SET n = n + 1; END")


def upgrade() -> None:
    op.create_table('usage_generation',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False, comment='always 1: one row'),
    sa.Column('n', sa.BigInteger(), nullable=False,
              comment='+1 at each change of usage_records (triggers of migration 0006), in the changing transaction'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_usage_generation'))
    )
    op.execute("INSERT INTO usage_generation (id, n) VALUES (1, 0)")
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
    sa.Column('row_count', sa.BigInteger(), nullable=False, comment='rollups stored with it'),
    sa.Column('stored_at', sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint('key', 'generation', name=op.f('uq_rating_rollup_keys_key_generation'))
    )
    create_triggers()


def downgrade() -> None:
    for event, _which in _EVENTS:
        op.execute(f"DROP TRIGGER IF EXISTS usage_records_{event}_generation"
                   + (" ON usage_records" if op.get_bind().dialect.name == "postgresql" else ""))
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS hub_usage_changed()")
    op.drop_table('rating_rollup_keys')
    op.drop_table('rating_rollups')
    op.drop_table('usage_generation')
