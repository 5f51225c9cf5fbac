"""documents and deliveries: the rendered documents of issued invoices (and rejections), the outbox

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('documents',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('invoice_id', sa.BigInteger(), nullable=False, comment='the issued invoice or credit note'),
    sa.Column('format', sa.String(length=40), nullable=False, comment="html | pdf | ubl | facturx | a plugin's"),
    sa.Column('renderer', sa.String(length=200), nullable=False, comment='the [[renderers]] instance that made it'),
    sa.Column('status', sa.String(length=20), nullable=False, comment='stored | rejected | failed'),
    sa.Column('file_name', sa.String(length=300), nullable=True),
    sa.Column('media_type', sa.String(length=200), nullable=True),
    sa.Column('sha256', sa.String(length=64), nullable=True, comment='of content'),
    sa.Column('size', sa.BigInteger(), nullable=True),
    sa.Column('content', sa.LargeBinary(), nullable=True, comment='NULL unless stored'),
    sa.Column('failures', sa.Text(), nullable=True,
              comment='JSON [{rule, message, location}] of a rejected or failed one'),
    sa.Column('rendered_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_documents')),
    sa.UniqueConstraint('invoice_id', 'format', name=op.f('uq_documents_invoice_id_format'))
    )
    op.create_table('deliveries',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('invoice_id', sa.BigInteger(), nullable=False),
    sa.Column('exporter', sa.String(length=200), nullable=False, comment='the [[exporters]] instance'),
    sa.Column('event', sa.String(length=40), nullable=False,
              comment='invoice.issued | credit_note.issued | invoice.paid'),
    sa.Column('key', sa.String(length=100), nullable=False, comment='the idempotency key, the same on every attempt'),
    sa.Column('status', sa.String(length=20), nullable=False, comment='pending | sending | delivered | dead | blocked'),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True,
              comment="while sending: a crashed worker's row is retried after"),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('external_id', sa.Text(), nullable=True, comment="the target's id for it"),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_deliveries')),
    sa.UniqueConstraint('invoice_id', 'exporter', 'event', name=op.f('uq_deliveries_invoice_id_exporter_event')),
    sa.UniqueConstraint('key', name=op.f('uq_deliveries_key'))
    )
    op.create_index(op.f('ix_deliveries_status_next_attempt_at'), 'deliveries', ['status', 'next_attempt_at'],
                    unique=False)
    op.create_table('delivery_attempts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('delivery_id', sa.BigInteger(), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True,
              comment='NULL: the worker died while sending'),
    sa.Column('outcome', sa.String(length=20), nullable=True, comment='delivered | retry | dead | blocked'),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('external_id', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_delivery_attempts')),
    sa.UniqueConstraint('delivery_id', 'attempt', name=op.f('uq_delivery_attempts_delivery_id_attempt'))
    )


def downgrade() -> None:
    op.drop_table('delivery_attempts')
    op.drop_index(op.f('ix_deliveries_status_next_attempt_at'), table_name='deliveries')
    op.drop_table('deliveries')
    op.drop_table('documents')
