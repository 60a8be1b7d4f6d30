"""ORM models (SQLAlchemy 2.0 typed). Every change here needs an Alembic revision."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, ForeignKey, Index, MetaData, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)  # stored naive, always UTC


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[Any]: JSON}


class Device(Base):
    __tablename__ = "devices"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    runtime: Mapped[str] = mapped_column(String(32))
    revision: Mapped[int] = mapped_column(default=1)
    # "measured" (its agents measure it) or "imported" (its numbers came from files,
    # `LutImport`; no agent may measure it: the machine is someone else's)
    source: Mapped[str] = mapped_column(String(16), default="measured", server_default="measured")
    fingerprint: Mapped[dict[str, Any] | None]
    fingerprint_id: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime | None]
    tokens: Mapped[list[AgentToken]] = relationship(back_populates="device")


class AgentToken(Base):
    """Only the SHA-256 of a token is stored; the token itself is shown once."""

    __tablename__ = "agent_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
    device: Mapped[Device] = relationship(back_populates="tokens")


class Op(Base):
    __tablename__ = "ops"
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(512), unique=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    spec: Mapped[dict[str, Any]]
    features: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Measurement(Base):
    __tablename__ = "measurements"
    __table_args__ = (
        # one result per work item: an op queued again (`remeasure`) may be measured twice
        # by the same agent run; rows from before work_item_id (NULL) are not constrained
        UniqueConstraint("device_id", "revision", "op_id", "run_id", "work_item_id"),
        Index("ix_measurements_lookup", "device_id", "revision", "op_id", "created_at"),
        # a device's newest measurement id, read before every lookup (the read cache's
        # stamp): one index probe instead of a scan of the device's rows
        Index("ix_measurements_device_newest", "device_id", "id"),
        # PostgreSQL does not index a referencing column: without it, every deleted work
        # item (`jobs:cancel`) scanned all measurements for its ON DELETE SET NULL
        Index("ix_measurements_work_item_id", "work_item_id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    revision: Mapped[int]
    op_id: Mapped[int] = mapped_column(ForeignKey("ops.id"), index=True)
    run_id: Mapped[str] = mapped_column(String(64))
    median_ms: Mapped[float]
    mean_ms: Mapped[float]
    # None: an imported cell, whose file gives a mean and at most its spread and count;
    # percentiles are never invented
    std_ms: Mapped[float | None]
    min_ms: Mapped[float | None]
    p10_ms: Mapped[float | None]
    p90_ms: Mapped[float | None]
    iqr_ms: Mapped[float | None]
    samples: Mapped[int]
    calls_per_sample: Mapped[int]
    ci_half_width_ms: Mapped[float | None]
    target_met: Mapped[bool]
    stable: Mapped[bool]
    first_call_ms: Mapped[float | None]
    runtime: Mapped[dict[str, Any]]
    host_state: Mapped[dict[str, Any]]
    extra: Mapped[dict[str, Any]]  # warm-up, rounds, timer, export time, per-op runtime facts
    # the reference panel measured with this op's batch (None: an agent without one)
    reference_id: Mapped[int | None] = mapped_column(
        ForeignKey("reference_readings.id", ondelete="SET NULL"), index=True
    )
    # the work item this measurement answered (None: stored before migration 0004)
    work_item_id: Mapped[int | None] = mapped_column(
        ForeignKey("work_items.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LutImport(Base):
    """A foreign latency table imported into an `imported` device for one space
    configuration: the whole file's entries (provenance, and the round trip back to its
    format) and what they mapped onto. A row carried into a new device revision (another
    configuration's file was replaced) names the row it was copied from."""

    __tablename__ = "lut_imports"
    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"), index=True)
    revision: Mapped[int]
    file_name: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    format: Mapped[str] = mapped_column(String(32))
    space: Mapped[str] = mapped_column(String(32))
    resolution: Mapped[int]
    width: Mapped[float]
    classes: Mapped[int]
    options: Mapped[str] = mapped_column(String(128), default="")  # as SpaceTarget.options
    entries: Mapped[dict[str, Any]]  # file key -> Entry.to_dict(), the whole file
    mapped: Mapped[int]  # op cells filled
    unfilled: Mapped[list[Any]]  # [slot, why] of the space's ops the file has no number for
    unmapped: Mapped[list[Any]]  # [file key, why] of entries no op of the space uses
    imported_at: Mapped[datetime] = mapped_column(default=utcnow)
    carried_from: Mapped[int | None] = mapped_column(
        ForeignKey("lut_imports.id", ondelete="SET NULL")
    )


class ReferenceReading(Base):
    """The reference panel (profiler.reference) as measured with one agent batch:
    how fast the machine was while it measured that batch. Never changed once stored."""

    __tablename__ = "reference_readings"
    __table_args__ = (UniqueConstraint("device_id", "run_id", "lease_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    revision: Mapped[int]
    run_id: Mapped[str] = mapped_column(String(64))
    lease_id: Mapped[str] = mapped_column(String(64))
    panel: Mapped[str] = mapped_column(String(32))
    ops: Mapped[dict[str, Any]]  # panel op key -> {median_ms, ci_half_width_ms, stable}
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SpaceTarget(Base):
    """A (space, resolution, width, classes) a device was asked to cover: coverage rows."""

    __tablename__ = "space_targets"
    __table_args__ = (
        UniqueConstraint("device_id", "space", "resolution", "width", "classes", "options"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    space: Mapped[str] = mapped_column(String(32))
    resolution: Mapped[int]
    width: Mapped[float]
    classes: Mapped[int]
    options: Mapped[str] = mapped_column(String(128), default="")  # "C=16,cells=8" (sorted)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WorkItem(Base):
    __tablename__ = "work_items"
    __table_args__ = (
        Index("ix_work_items_queue", "device_id", "state", "id"),
        Index("ix_work_items_lease", "lease_id"),
        Index("ix_work_items_op", "device_id", "op_id", "state"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))  # "op" or "network"
    op_id: Mapped[int | None] = mapped_column(ForeignKey("ops.id"))
    network: Mapped[dict[str, Any] | None]
    state: Mapped[str] = mapped_column(String(16), default="pending")
    # why it was queued: "queue" (asked for), "remeasure" (the rules: a disturbed batch or
    # a wide CI) or "retest" (a random measured op again, to see how well labels repeat)
    reason: Mapped[str] = mapped_column(String(16), default="queue", server_default="queue")
    lease_id: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    op: Mapped[Op | None] = relationship()


class NetworkMeasurement(Base):
    __tablename__ = "network_measurements"
    __table_args__ = (UniqueConstraint("device_id", "revision", "arch_hash", "run_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    revision: Mapped[int]
    space: Mapped[str] = mapped_column(String(32), index=True)
    resolution: Mapped[int]
    width: Mapped[float]
    arch: Mapped[dict[str, Any]]
    arch_hash: Mapped[str] = mapped_column(String(64))
    run_id: Mapped[str] = mapped_column(String(64))
    median_ms: Mapped[float]
    ci_half_width_ms: Mapped[float | None]
    stable: Mapped[bool]
    stats: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Predictor(Base):
    """A trained latency predictor, stored as its recipe: the rows it was trained on are
    every measurement of `kind` at `revision` with id <= `watermark` (combined per op
    as `drift["repeats"]` says; no such key: the newest per op), and
    training is seeded, so `rebuild` gives the same predictor (no pickles)."""

    __tablename__ = "predictors"
    __table_args__ = (UniqueConstraint("device_id", "revision", "kind", "version"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    revision: Mapped[int]
    kind: Mapped[str] = mapped_column(String(32))
    dtype: Mapped[str] = mapped_column(String(16))  # it predicts ops of this dtype only
    version: Mapped[int]
    model: Mapped[str] = mapped_column(String(32))
    samples: Mapped[int]
    watermark: Mapped[int]
    metrics: Mapped[dict[str, Any]]  # held-out metrics of every candidate
    heldout: Mapped[list[Any]]  # (measured, predicted) per training op, out of fold
    # labels divided by their run's drift factor against this baseline (None: raw)
    drift: Mapped[dict[str, Any] | None]
    sklearn_version: Mapped[str] = mapped_column(String(32))
    trained_at: Mapped[datetime] = mapped_column(default=utcnow)
