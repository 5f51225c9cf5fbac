"""drop the start_s index of usage_records

Period queries match most rows with ``start_s < :period_end``, so the index
turned SQLite's scans into random lookups (4 to 26 times slower), and its
upkeep was most of an import's upsert (7.5 against 2.8 µs a row at 1 M rows).
Rating scans the table; per-account reads will use rollups.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from alembic import op


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('usage_records', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_usage_records_start_s'))


def downgrade() -> None:
    with op.batch_alter_table('usage_records', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_usage_records_start_s'), ['start_s'], unique=False)
