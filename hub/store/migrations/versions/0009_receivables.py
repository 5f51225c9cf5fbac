"""receivables: credit notes that settle, reissues, refunds, reminders, resends, the minimum invoice amount

- ``invoices.reissue`` (0 for a period's first invoice, n for its n-th
  reissue after a full credit note) joins the unique key of an account's
  period, so a voided period can be invoiced again; ``reissue_of`` is the
  voided invoice a reissue replaces; ``applied`` is what a credit note
  settled of its invoice's open balance.
- ``credit_grants.source``: ``config`` ([[credits]]) or ``credit_note``
  (what a credit note credited beyond its invoice's balance), with the
  credit note in ``invoice_id``.
- ``refunds``: credit balances paid out.
- ``period_closings.deferred`` / ``carried_to``: a period below
  ``[invoicing] minimum_amount``, and the invoice that billed it later.
- ``reminders``: one row per overdue invoice and ``[dunning]`` step.
- ``deliveries.occasion`` joins the unique key of a delivery: a resend or
  a reminder is a delivery of its own, with its own idempotency key.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    with op.batch_alter_table('invoices') as batch:
        batch.add_column(sa.Column('reissue', sa.Integer(), nullable=False, server_default=sa.text('0'),
                                   comment='0: the period\'s first invoice; n: its n-th reissue (after a full credit note)'))
        batch.add_column(sa.Column('reissue_of', sa.BigInteger(), nullable=True,
                                   comment='the voided invoice a reissue replaces'))
        batch.add_column(sa.Column('applied', sa.String(length=64), nullable=True,
                                   comment="a credit note's amount that settled its invoice's open balance "
                                           "(the rest is a credit balance)"))
        batch.drop_constraint('uq_invoices_kind_account_period', type_='unique')
        batch.create_unique_constraint('uq_invoices_kind_account_period_reissue',
                                       ['kind', 'account', 'period', 'reissue'])
    with op.batch_alter_table('credit_grants') as batch:
        batch.add_column(sa.Column('source', sa.String(length=20), nullable=False, server_default=sa.text("'config'"),
                                   comment='config ([[credits]]) | credit_note (what a credit note credited beyond '
                                           "its invoice's balance)"))
        batch.add_column(sa.Column('invoice_id', sa.BigInteger(), nullable=True,
                                   comment='the credit note of a credit_note grant'))
    with op.batch_alter_table('period_closings') as batch:
        batch.add_column(sa.Column('deferred', sa.String(length=64), nullable=True,
                                   comment='the total left uninvoiced below [invoicing] minimum_amount; NULL otherwise'))
        batch.add_column(sa.Column('carried_to', sa.BigInteger(), nullable=True,
                                   comment="the invoice that billed a deferred period's charges"))
    with op.batch_alter_table('deliveries') as batch:
        batch.add_column(sa.Column('occasion', sa.String(length=40), nullable=False, server_default=sa.text("''"),
                                   comment="'' for the event itself; resend:N for the n-th resend, overdue:D for a "
                                           "reminder step"))
        batch.drop_constraint('uq_deliveries_invoice_id_exporter_event', type_='unique')
        batch.create_unique_constraint('uq_deliveries_invoice_id_exporter_event_occasion',
                                       ['invoice_id', 'exporter', 'event', 'occasion'])
    op.create_table('refunds',
    sa.Column('id', _ID, autoincrement=True, nullable=False),
    sa.Column('account', sa.String(length=200), nullable=False),
    sa.Column('grant_id', sa.String(length=64), nullable=False, comment='the credit balance paid out (credit_grants.id)'),
    sa.Column('amount', sa.String(length=64), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('paid_on', sa.String(length=10), nullable=False, comment='ISO date'),
    sa.Column('reference', sa.Text(), nullable=True),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_refunds')),
    )
    op.create_index(op.f('ix_refunds_account'), 'refunds', ['account'], unique=False)
    op.create_table('reminders',
    sa.Column('invoice_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('step', sa.Integer(), autoincrement=False, nullable=False, comment='days past due ([dunning] after_days)'),
    sa.Column('as_of', sa.String(length=10), nullable=False, comment='the ISO date it was due at'),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('invoice_id', 'step', name=op.f('pk_reminders')),
    )


def downgrade() -> None:
    op.drop_table('reminders')
    op.drop_index(op.f('ix_refunds_account'), table_name='refunds')
    op.drop_table('refunds')
    with op.batch_alter_table('deliveries') as batch:
        batch.drop_constraint('uq_deliveries_invoice_id_exporter_event_occasion', type_='unique')
        batch.create_unique_constraint('uq_deliveries_invoice_id_exporter_event', ['invoice_id', 'exporter', 'event'])
        batch.drop_column('occasion')
    with op.batch_alter_table('period_closings') as batch:
        batch.drop_column('carried_to')
        batch.drop_column('deferred')
    with op.batch_alter_table('credit_grants') as batch:
        batch.drop_column('invoice_id')
        batch.drop_column('source')
    with op.batch_alter_table('invoices') as batch:
        batch.drop_constraint('uq_invoices_kind_account_period_reissue', type_='unique')
        batch.create_unique_constraint('uq_invoices_kind_account_period', ['kind', 'account', 'period'])
        batch.drop_column('applied')
        batch.drop_column('reissue_of')
        batch.drop_column('reissue')
