"""Reference readings: the reference panel measured with each agent batch, the link from
a measurement to the reading of its batch, and the drift baseline a predictor's labels
were normalised against; read and checked against latency_service/models.py.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 20:58:01.445611
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('reference_readings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('device_id', sa.Integer(), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.String(length=64), nullable=False),
    sa.Column('lease_id', sa.String(length=64), nullable=False),
    sa.Column('panel', sa.String(length=32), nullable=False),
    sa.Column('ops', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['device_id'], ['devices.id'], name=op.f('fk_reference_readings_device_id_devices'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reference_readings')),
    sa.UniqueConstraint('device_id', 'run_id', 'lease_id', name=op.f('uq_reference_readings_device_id_run_id_lease_id'))
    )
    with op.batch_alter_table('measurements', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reference_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_measurements_reference_id'), ['reference_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_measurements_reference_id_reference_readings'), 'reference_readings', ['reference_id'], ['id'], ondelete='SET NULL')

    with op.batch_alter_table('predictors', schema=None) as batch_op:
        batch_op.add_column(sa.Column('drift', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('predictors', schema=None) as batch_op:
        batch_op.drop_column('drift')

    with op.batch_alter_table('measurements', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_measurements_reference_id_reference_readings'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_measurements_reference_id'))
        batch_op.drop_column('reference_id')

    op.drop_table('reference_readings')
