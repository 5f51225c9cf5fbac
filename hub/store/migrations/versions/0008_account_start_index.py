"""the account index of usage_records holds each record's start too

``hub run``'s close job (every minute) looks for the earliest usage of each
account without a ``since`` date: one aggregate over every record of the
store (11 s on 5 M records with SQLite, holding the write lock all along).
Indexed by (account, start_s), each account's earliest start is one search
of the index: milliseconds for 10,000 accounts. One account's rating reads
through it as it did through the index by account alone (migration 0005),
which it replaces; new records still go to the end of their account's
entries, their starts being the latest.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def _index(columns: list[str]) -> None:
    # if_exists: a bulk load killed half-way leaves the SQLite index dropped
    op.drop_index('ix_usage_records_account', table_name='usage_records', if_exists=True)
    op.create_index('ix_usage_records_account', 'usage_records', columns, unique=False,
                    sqlite_where=sa.text('account IS NOT NULL'),
                    postgresql_where=sa.text('account IS NOT NULL'))


def upgrade() -> None:
    _index(['account', 'start_s'])


def downgrade() -> None:
    _index(['account'])
