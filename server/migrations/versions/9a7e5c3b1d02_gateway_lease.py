"""The gateways' lease (one active consumer, fenced by epoch) and their heartbeats

Revision ID: 9a7e5c3b1d02
Revises: c0a7e11d5e01
Create Date: 2026-12-08 05:00:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '9a7e5c3b1d02'
down_revision: str | None = 'c0a7e11d5e01'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'gatewaylease',
        sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column('client_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('holder', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column('epoch', sa.Integer(), nullable=False),
        sa.Column('expires_at', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('name'))
    op.create_table(
        'gatewayheartbeat',
        sa.Column('slot', sqlmodel.sql.sqltypes.AutoString(length=160), nullable=False),
        sa.Column('instance', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('role', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column('connected', sa.Boolean(), nullable=False),
        sa.Column('started_at', sa.Float(), nullable=False),
        sa.Column('beat_at', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('slot'))


def downgrade() -> None:
    op.drop_table('gatewayheartbeat')
    op.drop_table('gatewaylease')
