"""The audit chain keyed: each record's place in the chain (seq) and its hash scheme

Existing records keep their unkeyed SHA-256 hashes (scheme 1) and are numbered in id order;
records appended from now on are HMAC-SHA256 under the audit key (scheme 2) and the first of
them covers the last unkeyed hash, so the older records are sealed by it (server/audit/log.py).

Revision ID: e5a1d17c0b2f
Revises: b7e2a9c4d310
Create Date: 2026-12-08 05:00:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'e5a1d17c0b2f'
down_revision: str | None = 'b7e2a9c4d310'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The append-only triggers refuse the numbering UPDATE; server/migrate.py makes them again
# after every upgrade.
_DROP_TRIGGERS = {
    "postgresql": ["DROP TRIGGER IF EXISTS auditrecord_append_only ON auditrecord",
                   "DROP TRIGGER IF EXISTS auditrecord_no_truncate ON auditrecord"],
    "sqlite": ["DROP TRIGGER IF EXISTS auditrecord_no_update",
               "DROP TRIGGER IF EXISTS auditrecord_no_delete"],
}
_NUMBER = ("UPDATE auditrecord SET seq = ranked.n FROM (SELECT id, row_number() OVER "
           "(ORDER BY id) AS n FROM auditrecord) AS ranked WHERE auditrecord.id = ranked.id")


def upgrade() -> None:
    bind = op.get_bind()
    for statement in _DROP_TRIGGERS.get(bind.dialect.name, []):
        op.execute(statement)
    op.add_column('auditrecord', sa.Column('seq', sa.Integer(), nullable=True))
    op.add_column('auditrecord', sa.Column('scheme', sa.Integer(), nullable=False,
                                           server_default='1'))
    op.execute(_NUMBER)
    with op.batch_alter_table('auditrecord', schema=None) as batch_op:
        batch_op.alter_column('seq', existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column('scheme', existing_type=sa.Integer(), server_default=None)
        batch_op.create_unique_constraint('uq_auditrecord_seq', ['seq'])


def downgrade() -> None:
    bind = op.get_bind()
    for statement in _DROP_TRIGGERS.get(bind.dialect.name, []):
        op.execute(statement)
    with op.batch_alter_table('auditrecord', schema=None) as batch_op:
        batch_op.drop_constraint('uq_auditrecord_seq', type_='unique')
        batch_op.drop_column('scheme')
        batch_op.drop_column('seq')
