"""Measurements name the work item they answered, so an op queued again (an agent batch
measured while the machine was disturbed) can be measured twice by one agent run: the
unique key (device, revision, op, run) gains work_item_id. Rows from before have NULL
there. Downgrading keeps only the newest measurement per (device, revision, op, run).
Read and checked against latency_service/models.py.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 11:14:47.122665
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('measurements', schema=None) as batch_op:
        batch_op.add_column(sa.Column('work_item_id', sa.Integer(), nullable=True))
        batch_op.drop_constraint(batch_op.f('uq_measurements_device_id_revision_op_id_run_id'), type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_measurements_device_id_revision_op_id_run_id_work_item_id'), ['device_id', 'revision', 'op_id', 'run_id', 'work_item_id'])
        batch_op.create_foreign_key(batch_op.f('fk_measurements_work_item_id_work_items'), 'work_items', ['work_item_id'], ['id'], ondelete='SET NULL')


def downgrade() -> None:
    # the old key allows one row per (device, revision, op, run): keep the newest
    op.execute(
        "DELETE FROM measurements WHERE id NOT IN (SELECT max(id) FROM measurements "
        "GROUP BY device_id, revision, op_id, run_id)"
    )
    with op.batch_alter_table('measurements', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_measurements_work_item_id_work_items'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('uq_measurements_device_id_revision_op_id_run_id_work_item_id'), type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_measurements_device_id_revision_op_id_run_id'), ['device_id', 'revision', 'op_id', 'run_id'])
        batch_op.drop_column('work_item_id')
