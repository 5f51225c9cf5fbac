"""an index of usage_records by account, for one account's charges

Rating one account (its current charges, a trace) read every record of the
store: 0.5 to 0.7 s on 5 M records. Through this index it reads that
account's records: a few milliseconds (bench/README.md, "bench_rating.py").

The index is partial on ``account IS NOT NULL``, which always holds: SQLite
uses a partial index only in a query that states its condition, so the
queries that aggregate every account keep their scan (SQLite would otherwise
walk the index to avoid sorting by account, twice as slow on 5 M records);
PostgreSQL chooses with its statistics either way. Its upkeep costs an
import about 3 to 5 us a row of CPU (bench/README.md, "bench_import.py").

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('usage_records', schema=None) as batch_op:
        batch_op.create_index('ix_usage_records_account', ['account'], unique=False,
                              sqlite_where=sa.text('account IS NOT NULL'),
                              postgresql_where=sa.text('account IS NOT NULL'))


def downgrade() -> None:
    with op.batch_alter_table('usage_records', schema=None) as batch_op:
        batch_op.drop_index('ix_usage_records_account')
