"""Per-patient version numbers of the rule inputs, for the gateway's in-memory contexts

Revision ID: c0a7e11d5e01
Revises: 5d2c8e41a7b3
Create Date: 2026-12-02 07:00:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = 'c0a7e11d5e01'
down_revision: str | None = '5d2c8e41a7b3'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The triggers that keep `settings` are made after every upgrade, as the audit log's are
    # (server/migrate.py): a later batch migration that rebuilds a table drops its triggers.
    op.create_table(
        'rulecontextversion',
        sa.Column('patient_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('settings', sa.Integer(), nullable=False),
        sa.Column('readings', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('patient_id'))


def downgrade() -> None:
    from telekol.server.alerts.context_versions import drop_triggers

    drop_triggers(op.get_bind())
    op.drop_table('rulecontextversion')
