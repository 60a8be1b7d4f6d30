"""Predictors: trained latency regressors stored as recipes (kind, model, watermark of
the rows used); read and checked against latency_service/models.py.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 12:07:07.373865
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('predictors',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('device_id', sa.Integer(), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('dtype', sa.String(length=16), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('model', sa.String(length=32), nullable=False),
    sa.Column('samples', sa.Integer(), nullable=False),
    sa.Column('watermark', sa.Integer(), nullable=False),
    sa.Column('metrics', sa.JSON(), nullable=False),
    sa.Column('heldout', sa.JSON(), nullable=False),
    sa.Column('sklearn_version', sa.String(length=32), nullable=False),
    sa.Column('trained_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['device_id'], ['devices.id'], name=op.f('fk_predictors_device_id_devices'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_predictors')),
    sa.UniqueConstraint('device_id', 'revision', 'kind', 'version', name=op.f('uq_predictors_device_id_revision_kind_version'))
    )


def downgrade() -> None:
    op.drop_table('predictors')
