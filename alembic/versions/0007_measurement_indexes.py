"""The read cache checks, before every read, a device's newest measurement id
(latency_service/stamp.py). With only ix_measurements_lookup (device_id, revision, op_id,
created_at) that max scans every row of the device (10^4 of them per device in
bench/fleet.py); an index on (device_id, id) answers it with one probe. And
measurements.work_item_id (a foreign key, ON DELETE SET NULL) gets the index PostgreSQL
does not make for a referencing column: deleting a work item (`jobs:cancel`) scanned every
measurement for rows pointing at it, and bench/fleet.py's checks join on it.
Read and checked against latency_service/models.py.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 07:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        'ix_measurements_device_newest', 'measurements', ['device_id', 'id'], unique=False
    )
    op.create_index(
        'ix_measurements_work_item_id', 'measurements', ['work_item_id'], unique=False
    )


def downgrade() -> None:
    op.drop_index('ix_measurements_work_item_id', table_name='measurements')
    op.drop_index('ix_measurements_device_newest', table_name='measurements')
