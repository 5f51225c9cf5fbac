"""an index of the open quarantine entries in the order they are listed

``hub quarantine list`` shows a page of the open entries (the first 50 by
default) and their total by one ``COUNT``. On SQLite this index
(status, source, location, line, id) holds the open entries in the order
they are listed, so the page is read off its first leaves instead of a sort
of them all.

PostgreSQL does not get it: a B-tree entry holds at most about 2,700 bytes,
and ``location`` is a text a source chooses (a file path, a URL); one entry
over it would make its INSERT fail and block the source. There the page is a
top-N sort of the open entries (the figures: docs/benchmarks.md,
bench/bench_quarantine_list.py).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08
"""

from alembic import op


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == 'sqlite':
        op.create_index('ix_quarantine_open', 'quarantine', ['status', 'source', 'location', 'line', 'id'],
                        unique=False)


def downgrade() -> None:
    if op.get_bind().dialect.name == 'sqlite':
        op.drop_index('ix_quarantine_open', table_name='quarantine')
