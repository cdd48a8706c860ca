"""Quarantine quota: a bounded prefix with the payload's size and hash, overflow counted

Revision ID: b7e2a9c4d310
Revises: 9a7e5c3b1d02
Create Date: 2026-12-08 05:00:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from telekol.server.db import UTCDateTime

revision: str = 'b7e2a9c4d310'
down_revision: str | None = '9a7e5c3b1d02'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('quarantinedmessage') as table:
        table.add_column(sa.Column('size', sa.Integer(), nullable=True))
        table.add_column(sa.Column('sha256', sqlmodel.sql.sqltypes.AutoString(length=64),
                                   nullable=True))
    op.create_index('ix_quarantine_device_received', 'quarantinedmessage',
                    ['device_id', 'received_at'])
    # Rows kept whole so far: their size is known; their hash is left to the page ("—").
    op.execute("UPDATE quarantinedmessage SET size = length(payload)")
    op.create_table(
        'quarantineoverflow',
        sa.Column('device_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('dropped', sa.Integer(), nullable=False),
        sa.Column('dropped_bytes', sa.BigInteger(), nullable=False),
        sa.Column('first_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('last_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('last_errors', sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint('device_id'))


def downgrade() -> None:
    op.drop_table('quarantineoverflow')
    op.drop_index('ix_quarantine_device_received', 'quarantinedmessage')
    with op.batch_alter_table('quarantinedmessage') as table:
        table.drop_column('sha256')
        table.drop_column('size')
