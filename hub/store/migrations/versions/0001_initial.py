"""initial schema: usage records, checkpoints, quarantine, pull runs

Revision ID: 0001
Revises: 
Create Date: 2026-11-22
"""

from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('checkpoints',
    sa.Column('source', sa.String(length=200), nullable=False),
    sa.Column('state', sa.Text(), nullable=False, comment="JSON, the source's own resume state"),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('source', name=op.f('pk_checkpoints'))
    )
    op.create_table('pull_runs',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('source', sa.String(length=200), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False, comment='running | ok | failed'),
    sa.Column('imported', sa.Integer(), nullable=False),
    sa.Column('updated', sa.Integer(), nullable=False),
    sa.Column('quarantined', sa.Integer(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pull_runs'))
    )
    with op.batch_alter_table('pull_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pull_runs_source_started_at'), ['source', 'started_at'], unique=False)

    op.create_table('quarantine',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('source', sa.String(length=200), nullable=False),
    sa.Column('location', sa.Text(), nullable=False),
    sa.Column('line', sa.Integer(), nullable=True),
    sa.Column('raw', sa.Text(), nullable=True),
    sa.Column('errors', sa.Text(), nullable=False, comment='JSON list of messages'),
    sa.Column('record_id', sa.String(length=500), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False, comment='open | resolved'),
    sa.Column('resolution', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_quarantine'))
    )
    with op.batch_alter_table('quarantine', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_quarantine_source_record_id'), ['source', 'record_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_quarantine_source_status'), ['source', 'status'], unique=False)

    op.create_table('usage_records',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('source', sa.String(length=200), nullable=False),
    sa.Column('record_id', sa.String(length=500), nullable=False),
    sa.Column('account', sa.String(length=200), nullable=False),
    sa.Column('resource_id', sa.String(length=500), nullable=False),
    sa.Column('meter', sa.String(length=200), nullable=False),
    sa.Column('start_s', sa.BigInteger(), nullable=False, comment='UTC epoch seconds, inclusive'),
    sa.Column('end_s', sa.BigInteger(), nullable=True, comment='UTC epoch seconds, exclusive; NULL while running'),
    sa.Column('quantity', sa.String(length=64), nullable=False, comment='canonical exact decimal'),
    sa.Column('qty_units', sa.BigInteger(), nullable=False, comment='integer part of quantity'),
    sa.Column('qty_nanos', sa.BigInteger(), nullable=False, comment='fractional part of quantity, in 1e-9'),
    sa.Column('unit', sa.String(length=100), nullable=True),
    sa.Column('labels', sa.Text(), nullable=False, comment='JSON object, sorted keys'),
    sa.Column('origin', sa.Text(), nullable=True, comment='where the current version came from'),
    sa.Column('version', sa.Integer(), nullable=False, comment='1, then +1 at each change'),
    sa.Column('received_s', sa.BigInteger(), nullable=False, comment='when the current version was stored'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_usage_records')),
    sa.UniqueConstraint('source', 'record_id', name=op.f('uq_usage_records_source_record_id'))
    )
    with op.batch_alter_table('usage_records', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_usage_records_start_s'), ['start_s'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('usage_records', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_usage_records_start_s'))

    op.drop_table('usage_records')
    with op.batch_alter_table('quarantine', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_quarantine_source_status'))
        batch_op.drop_index(batch_op.f('ix_quarantine_source_record_id'))

    op.drop_table('quarantine')
    with op.batch_alter_table('pull_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pull_runs_source_started_at'))

    op.drop_table('pull_runs')
    op.drop_table('checkpoints')
