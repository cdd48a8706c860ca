"""organisations get a phone number

Revision ID: 5d2c8e41a7b3
Revises: 29e556d93e30
Create Date: 2026-12-02 05:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '5d2c8e41a7b3'
down_revision: str | None = 'a1c0de5e7e11'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('organization') as batch:
        batch.add_column(sa.Column('phone', sqlmodel.sql.sqltypes.AutoString(length=20),
                                   nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('organization') as batch:
        batch.drop_column('phone')
