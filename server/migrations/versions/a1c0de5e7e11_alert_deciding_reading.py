"""An alert remembers the reading that set its severity; schedules come only from plans

Revision ID: a1c0de5e7e11
Revises: 29e556d93e30
Create Date: 2026-12-02 04:43:54.292916
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import telekol.server.db


revision: str = 'a1c0de5e7e11'
down_revision: str | None = '29e556d93e30'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('alert', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_at', telekol.server.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('severity_observation_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.add_column(sa.Column('severity_reason', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('severity_details', sa.JSON(), nullable=False, server_default='{}'))
        batch_op.add_column(sa.Column('severity_at', telekol.server.db.UTCDateTime(timezone=True), nullable=True))
    # Existing alerts: the best we know is that the first reading set the severity.
    op.execute("UPDATE alert SET severity_observation_id = observation_id, "
               "severity_reason = reason, severity_details = details, "
               "severity_at = created_at, last_at = updated_at")
    with op.batch_alter_table('alert', schema=None) as batch_op:
        batch_op.alter_column('severity_reason', server_default=None)
        batch_op.alter_column('severity_details', server_default=None)
    # The default schedule imposed on every patient is gone: schedules come from the plan.
    op.execute("DELETE FROM measurementschedule WHERE patient_id IS NULL")


def downgrade() -> None:
    with op.batch_alter_table('alert', schema=None) as batch_op:
        batch_op.drop_column('severity_at')
        batch_op.drop_column('severity_details')
        batch_op.drop_column('severity_reason')
        batch_op.drop_column('severity_observation_id')
        batch_op.drop_column('last_at')
