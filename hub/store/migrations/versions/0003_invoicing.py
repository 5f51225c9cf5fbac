"""invoicing: invoices and their lines, number sequences, the credit ledger, manual charges, payments, period closings

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('credit_entries',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('grant_id', sa.String(length=64), nullable=False),
    sa.Column('entry', sa.String(length=20), nullable=False, comment='grant | consumption | expiry | reversal'),
    sa.Column('amount', sa.String(length=64), nullable=False, comment='positive; the entry says which way'),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('invoice_id', sa.BigInteger(), nullable=True),
    sa.Column('dedupe', sa.String(length=100), nullable=False, comment='grant, expiry, or the invoice: one entry each'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_entries')),
    sa.UniqueConstraint('grant_id', 'dedupe', name=op.f('uq_credit_entries_grant_id_dedupe'))
    )
    op.create_table('credit_grants',
    sa.Column('id', sa.String(length=64), nullable=False, comment='stable key of the [[credits]] table'),
    sa.Column('account', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False, comment='prepaid | promotional'),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('amount', sa.String(length=64), nullable=False),
    sa.Column('granted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('expires', sa.DateTime(timezone=True), nullable=True),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_grants'))
    )
    op.create_table('invoice_lines',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('invoice_id', sa.BigInteger(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False, comment='1, 2, ... as on the document'),
    sa.Column('origin', sa.String(length=20), nullable=False, comment='usage | adjustment | manual'),
    sa.Column('account', sa.String(length=200), nullable=False, comment="whose usage (a child on a parent's invoice)"),
    sa.Column('product', sa.String(length=200), nullable=False),
    sa.Column('resource_id', sa.String(length=500), nullable=True),
    sa.Column('period', sa.String(length=20), nullable=False, comment='the period the line bills'),
    sa.Column('quantity', sa.String(length=64), nullable=False),
    sa.Column('amount', sa.String(length=64), nullable=False),
    sa.Column('records', sa.Integer(), nullable=False, comment='usage records behind the line'),
    sa.Column('manual_charge_id', sa.BigInteger(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_invoice_lines')),
    sa.UniqueConstraint('invoice_id', 'position', name=op.f('uq_invoice_lines_invoice_id_position'))
    )
    with op.batch_alter_table('invoice_lines', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_invoice_lines_account_period'), ['account', 'period'], unique=False)

    op.create_table('invoices',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False, comment='invoice | credit_note'),
    sa.Column('number', sa.String(length=100), nullable=True, comment='NULL while a draft'),
    sa.Column('account', sa.String(length=200), nullable=False, comment='the billed account (a parent for its children)'),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('period', sa.String(length=20), nullable=True, comment='2026-10, 2026-W43, 2026-10-15; NULL on credit notes'),
    sa.Column('period_start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('period_end', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False, comment='draft | issued | paid | partially_paid | void'),
    sa.Column('issue_date', sa.String(length=10), nullable=True, comment="ISO date, in the account's time zone"),
    sa.Column('due_date', sa.String(length=10), nullable=True),
    sa.Column('total', sa.String(length=64), nullable=False),
    sa.Column('amount_due', sa.String(length=64), nullable=False),
    sa.Column('content', sa.Text(), nullable=False, comment='JSON: the figures and lines under the invoice contract'),
    sa.Column('refers_to', sa.BigInteger(), nullable=True, comment="a credit note's invoice"),
    sa.Column('reason', sa.Text(), nullable=True, comment="a credit note's reason"),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('issued_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_invoices')),
    sa.UniqueConstraint('kind', 'account', 'period', name=op.f('uq_invoices_kind_account_period')),
    sa.UniqueConstraint('number', name=op.f('uq_invoices_number'))
    )
    op.create_table('manual_charges',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('account', sa.String(length=200), nullable=False),
    sa.Column('amount', sa.String(length=64), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('invoice_id', sa.BigInteger(), nullable=True, comment='the issued invoice that billed it'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_manual_charges'))
    )
    op.create_table('payments',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('invoice_id', sa.BigInteger(), nullable=False),
    sa.Column('amount', sa.String(length=64), nullable=False),
    sa.Column('paid_on', sa.String(length=10), nullable=False, comment='ISO date'),
    sa.Column('reference', sa.Text(), nullable=True),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payments'))
    )
    op.create_table('period_closings',
    sa.Column('account', sa.String(length=200), nullable=False, comment='the billed account'),
    sa.Column('period', sa.String(length=20), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=False, comment='usage received later is an adjustment'),
    sa.Column('invoice_id', sa.BigInteger(), nullable=True, comment='NULL when the period had no charges'),
    sa.PrimaryKeyConstraint('account', 'period', name=op.f('pk_period_closings'))
    )
    op.create_table('sequences',
    sa.Column('series', sa.String(length=100), nullable=False, comment='invoice:2026, credit_note:2026, ...'),
    sa.Column('last', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('series', name=op.f('pk_sequences'))
    )


def downgrade() -> None:
    op.drop_table('sequences')
    op.drop_table('period_closings')
    op.drop_table('payments')
    op.drop_table('manual_charges')
    op.drop_table('invoices')
    with op.batch_alter_table('invoice_lines', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_invoice_lines_account_period'))

    op.drop_table('invoice_lines')
    op.drop_table('credit_grants')
    op.drop_table('credit_entries')
