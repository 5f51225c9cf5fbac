"""rating rollups kept up to date by the writers; an index of running records

The rollups of time-weighted and sum meters now hold the exact split sums
of their quantities (``s1``..``s4``, which a writer adds its batch's changes
to, hub/store/rollups.py) and, for time-weighted meters, only what finished
records bill: a rating adds the running records' part from
``ix_usage_records_running``. A key is one row (its generation moves
forward as writers keep it up to date) and says in ``spec`` how to.

Rollups are derived data: the tables are created anew, empty.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

_SUM = sa.Numeric(precision=40, scale=0)


def upgrade() -> None:
    op.drop_table('rating_rollup_keys')
    op.drop_table('rating_rollups')
    op.create_table('rating_rollups',
    sa.Column('key', sa.String(length=64), nullable=False, comment='rating_rollup_keys.key'),
    sa.Column('account', sa.String(length=200), nullable=False),
    sa.Column('rkey', sa.String(length=500), nullable=False, comment="the resource of an itemized product, '' otherwise"),
    sa.Column('n', sa.BigInteger(), nullable=False, comment='usage records it came from'),
    sa.Column('s1', _SUM, nullable=True, comment='sum of qty_units / 10^6 x billed seconds'),
    sa.Column('s2', _SUM, nullable=True, comment='sum of qty_units % 10^6 x billed seconds'),
    sa.Column('s3', _SUM, nullable=True, comment='sum of qty_nanos / 10^5 x billed seconds'),
    sa.Column('s4', _SUM, nullable=True, comment='sum of qty_nanos % 10^5 x billed seconds'),
    sa.Column('q', sa.Text(), nullable=True, comment='the exact quantity (integer or num/den) of the other meters'),
    sa.PrimaryKeyConstraint('key', 'account', 'rkey', name=op.f('pk_rating_rollups'))
    )
    op.create_table('rating_rollup_keys',
    sa.Column('key', sa.String(length=64), nullable=False,
              comment='sha256 of the product spec, period bounds and rating revision'),
    sa.Column('generation', sa.BigInteger(), nullable=False,
              comment='usage_generation.n the quantities are up to date with'),
    sa.Column('period_end_s', sa.BigInteger(), nullable=False, comment='the end of the period rated (UTC epoch seconds)'),
    sa.Column('stored_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('spec', sa.Text(), nullable=True,
              comment='JSON: how the writers keep the rollups up to date (time-weighted and sum meters), or NULL'),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_rating_rollup_keys'))
    )
    op.create_index('ix_usage_records_running', 'usage_records',
                    ['meter', 'account', 'resource_id', 'start_s', 'qty_units', 'qty_nanos', 'end_s'], unique=False,
                    sqlite_where=sa.text('end_s IS NULL'), postgresql_where=sa.text('end_s IS NULL'))


def downgrade() -> None:
    op.drop_index('ix_usage_records_running', table_name='usage_records',
                  sqlite_where=sa.text('end_s IS NULL'), postgresql_where=sa.text('end_s IS NULL'))
    op.drop_table('rating_rollup_keys')
    op.drop_table('rating_rollups')
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
