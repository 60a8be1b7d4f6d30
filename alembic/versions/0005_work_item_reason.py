"""Work items say why they were queued: "queue" (asked for: a space, an op list, samples),
"remeasure" (the re-measuring rules) or "retest" (a random measured op measured again, so
that a device's labels can be checked for how well they repeat). Rows from before are
"queue" (the server default), remeasured ones included: nothing recorded them apart.
Read and checked against latency_service/models.py.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 17:10:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('work_items', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('reason', sa.String(length=16), server_default='queue', nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table('work_items', schema=None) as batch_op:
        batch_op.drop_column('reason')
