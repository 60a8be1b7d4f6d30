"""Imported devices: a device whose numbers came from a foreign latency table (ProxylessNAS
or OFA yaml, NNI lut.txt, ...) is `source = 'imported'`; `lut_imports` keeps each file's
name, sha256, format, space configuration, entries and what they mapped onto. An imported
cell has the file's mean and at most its spread and count, so the measurement statistics
the profiler alone gives (std, min, p10, p90, IQR) become nullable. Rows from before are
`measured` devices (the server default). Downgrading deletes the imported devices (the
old schema cannot hold them) with everything of theirs.
Read and checked against latency_service/models.py.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 10:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATS = ('std_ms', 'min_ms', 'p10_ms', 'p90_ms', 'iqr_ms')
# every table with a device_id, children before their parents
DEVICE_TABLES = (
    'measurements', 'reference_readings', 'work_items', 'network_measurements',
    'predictors', 'space_targets', 'agent_tokens',
)


def upgrade() -> None:
    with op.batch_alter_table('devices', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('source', sa.String(length=16), server_default='measured', nullable=False)
        )
    with op.batch_alter_table('measurements', schema=None) as batch_op:
        for name in STATS:
            batch_op.alter_column(name, existing_type=sa.Double(), nullable=True)
    op.create_table('lut_imports',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('device_id', sa.Integer(), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('file_name', sa.String(length=255), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('format', sa.String(length=32), nullable=False),
    sa.Column('space', sa.String(length=32), nullable=False),
    sa.Column('resolution', sa.Integer(), nullable=False),
    sa.Column('width', sa.Double(), nullable=False),
    sa.Column('classes', sa.Integer(), nullable=False),
    sa.Column('options', sa.String(length=128), nullable=False),
    sa.Column('entries', sa.JSON(), nullable=False),
    sa.Column('mapped', sa.Integer(), nullable=False),
    sa.Column('unfilled', sa.JSON(), nullable=False),
    sa.Column('unmapped', sa.JSON(), nullable=False),
    sa.Column('imported_at', sa.DateTime(), nullable=False),
    sa.Column('carried_from', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['carried_from'], ['lut_imports.id'], name=op.f('fk_lut_imports_carried_from_lut_imports'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['device_id'], ['devices.id'], name=op.f('fk_lut_imports_device_id_devices'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lut_imports'))
    )
    with op.batch_alter_table('lut_imports', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lut_imports_device_id'), ['device_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('lut_imports', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_lut_imports_device_id'))
    op.drop_table('lut_imports')
    imported = "SELECT id FROM devices WHERE source = 'imported'"
    for table in DEVICE_TABLES:
        op.execute(f"DELETE FROM {table} WHERE device_id IN ({imported})")
    op.execute(f"DELETE FROM devices WHERE id IN ({imported})")
    # the old schema has no room for a missing statistic
    op.execute(f"DELETE FROM measurements WHERE {' OR '.join(f'{n} IS NULL' for n in STATS)}")
    with op.batch_alter_table('measurements', schema=None) as batch_op:
        for name in STATS:
            batch_op.alter_column(name, existing_type=sa.Double(), nullable=False)
    # ALTER TABLE ... DROP COLUMN (SQLite >= 3.35): recreating `devices` on SQLite would
    # delete every row that references a device (ON DELETE CASCADE)
    with op.batch_alter_table('devices', schema=None, recreate='never') as batch_op:
        batch_op.drop_column('source')
