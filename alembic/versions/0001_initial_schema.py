"""Initial schema: devices, agent tokens, ops, measurements, space targets, work items,
network measurements (read and checked against latency_service/models.py).

Revision ID: 0001
Revises:
Create Date: 2026-11-22 11:24:23.700566
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('devices',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('runtime', sa.String(length=32), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('fingerprint', sa.JSON(), nullable=True),
    sa.Column('fingerprint_id', sa.String(length=32), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_devices')),
    sa.UniqueConstraint('name', name=op.f('uq_devices_name'))
    )
    op.create_table('ops',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=512), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('spec', sa.JSON(), nullable=False),
    sa.Column('features', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ops')),
    sa.UniqueConstraint('key', name=op.f('uq_ops_key'))
    )
    with op.batch_alter_table('ops', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ops_kind'), ['kind'], unique=False)

    op.create_table('agent_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('device_id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('prefix', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('revoked_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['device_id'], ['devices.id'], name=op.f('fk_agent_tokens_device_id_devices'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_agent_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_agent_tokens_token_hash'))
    )
    with op.batch_alter_table('agent_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_agent_tokens_device_id'), ['device_id'], unique=False)

    op.create_table('measurements',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('device_id', sa.Integer(), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('op_id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.String(length=64), nullable=False),
    sa.Column('median_ms', sa.Double(), nullable=False),
    sa.Column('mean_ms', sa.Double(), nullable=False),
    sa.Column('std_ms', sa.Double(), nullable=False),
    sa.Column('min_ms', sa.Double(), nullable=False),
    sa.Column('p10_ms', sa.Double(), nullable=False),
    sa.Column('p90_ms', sa.Double(), nullable=False),
    sa.Column('iqr_ms', sa.Double(), nullable=False),
    sa.Column('samples', sa.Integer(), nullable=False),
    sa.Column('calls_per_sample', sa.Integer(), nullable=False),
    sa.Column('ci_half_width_ms', sa.Double(), nullable=True),
    sa.Column('target_met', sa.Boolean(), nullable=False),
    sa.Column('stable', sa.Boolean(), nullable=False),
    sa.Column('first_call_ms', sa.Double(), nullable=True),
    sa.Column('runtime', sa.JSON(), nullable=False),
    sa.Column('host_state', sa.JSON(), nullable=False),
    sa.Column('extra', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['device_id'], ['devices.id'], name=op.f('fk_measurements_device_id_devices'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['op_id'], ['ops.id'], name=op.f('fk_measurements_op_id_ops')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_measurements')),
    sa.UniqueConstraint('device_id', 'revision', 'op_id', 'run_id', name=op.f('uq_measurements_device_id_revision_op_id_run_id'))
    )
    with op.batch_alter_table('measurements', schema=None) as batch_op:
        batch_op.create_index('ix_measurements_lookup', ['device_id', 'revision', 'op_id', 'created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_measurements_op_id'), ['op_id'], unique=False)

    op.create_table('network_measurements',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('device_id', sa.Integer(), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('space', sa.String(length=32), nullable=False),
    sa.Column('resolution', sa.Integer(), nullable=False),
    sa.Column('width', sa.Double(), nullable=False),
    sa.Column('arch', sa.JSON(), nullable=False),
    sa.Column('arch_hash', sa.String(length=64), nullable=False),
    sa.Column('run_id', sa.String(length=64), nullable=False),
    sa.Column('median_ms', sa.Double(), nullable=False),
    sa.Column('ci_half_width_ms', sa.Double(), nullable=True),
    sa.Column('stable', sa.Boolean(), nullable=False),
    sa.Column('stats', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['device_id'], ['devices.id'], name=op.f('fk_network_measurements_device_id_devices'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_network_measurements')),
    sa.UniqueConstraint('device_id', 'revision', 'arch_hash', 'run_id', name=op.f('uq_network_measurements_device_id_revision_arch_hash_run_id'))
    )
    with op.batch_alter_table('network_measurements', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_network_measurements_space'), ['space'], unique=False)

    op.create_table('space_targets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('device_id', sa.Integer(), nullable=False),
    sa.Column('space', sa.String(length=32), nullable=False),
    sa.Column('resolution', sa.Integer(), nullable=False),
    sa.Column('width', sa.Double(), nullable=False),
    sa.Column('classes', sa.Integer(), nullable=False),
    sa.Column('options', sa.String(length=128), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['device_id'], ['devices.id'], name=op.f('fk_space_targets_device_id_devices'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_space_targets')),
    sa.UniqueConstraint('device_id', 'space', 'resolution', 'width', 'classes', 'options', name=op.f('uq_space_targets_device_id_space_resolution_width_classes_options'))
    )
    op.create_table('work_items',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('device_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('op_id', sa.Integer(), nullable=True),
    sa.Column('network', sa.JSON(), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('lease_id', sa.String(length=64), nullable=True),
    sa.Column('lease_expires_at', sa.DateTime(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['device_id'], ['devices.id'], name=op.f('fk_work_items_device_id_devices'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['op_id'], ['ops.id'], name=op.f('fk_work_items_op_id_ops')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_work_items'))
    )
    with op.batch_alter_table('work_items', schema=None) as batch_op:
        batch_op.create_index('ix_work_items_lease', ['lease_id'], unique=False)
        batch_op.create_index('ix_work_items_op', ['device_id', 'op_id', 'state'], unique=False)
        batch_op.create_index('ix_work_items_queue', ['device_id', 'state', 'id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('work_items', schema=None) as batch_op:
        batch_op.drop_index('ix_work_items_queue')
        batch_op.drop_index('ix_work_items_op')
        batch_op.drop_index('ix_work_items_lease')

    op.drop_table('work_items')
    op.drop_table('space_targets')
    with op.batch_alter_table('network_measurements', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_network_measurements_space'))

    op.drop_table('network_measurements')
    with op.batch_alter_table('measurements', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_measurements_op_id'))
        batch_op.drop_index('ix_measurements_lookup')

    op.drop_table('measurements')
    with op.batch_alter_table('agent_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_agent_tokens_device_id'))

    op.drop_table('agent_tokens')
    with op.batch_alter_table('ops', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ops_kind'))

    op.drop_table('ops')
    op.drop_table('devices')
