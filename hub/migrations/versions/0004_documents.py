"""documents: the rendered documents of issued invoices, and rejections

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


def downgrade() -> None:
    op.drop_table('documents')
