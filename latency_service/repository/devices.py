"""Devices, their agent tokens, coverage and work counts."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from latency_service.errors import Conflict, NotFound
from latency_service.models import (
    AgentToken,
    Device,
    LutImport,
    Measurement,
    SpaceTarget,
    WorkItem,
    utcnow,
)
from latency_service.repository.ops import space_ops
from searchers.spaces import SearchSpace


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return "hwl_" + secrets.token_urlsafe(32)


def same_secret(given: str | None, expected: str | None) -> bool:
    """Constant-time comparison of two secrets (False when either is missing)."""
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


def create_device(s: Session, name: str, runtime: str) -> tuple[Device, str]:
    if s.scalar(select(Device.id).where(Device.name == name)) is not None:
        raise Conflict(
            f"device {name!r} already exists; pick another name or add a token "
            f"to it (POST /v1/devices/{name}/tokens)"
        )
    device = Device(name=name, runtime=runtime)
    s.add(device)
    try:
        s.flush()
    except IntegrityError:
        raise Conflict(f"device {name!r} already exists") from None
    return device, add_token(s, device)


def lock(s: Session, device: Device) -> None:
    """Hold the device's row until the transaction ends. Every writer of a device's
    measurements (upload) and of its queue (lease) takes it first, so they go one at a
    time per device: measurement ids are handed out in commit order (the read cache's
    incremental refresh, latency_service/snapshot.py, relies on it), and a lease and an
    upload never lock the same work items in opposite orders (no deadlock). SQLite runs
    one writing transaction at a time anyway and ignores FOR UPDATE.

    FOR NO KEY UPDATE, not FOR UPDATE: a foreign-key check of a row inserted for this
    device (a work item, a predictor) takes FOR KEY SHARE on it, which FOR UPDATE would
    wait for (a training holds one for minutes). The device is read again under the lock:
    a new revision committed meanwhile is seen."""
    s.refresh(device, with_for_update={"key_share": True})


def no_device(name: str) -> str:
    return (
        f"no device {name!r}; list them with `hwlat devices list` or create it with "
        "`hwlat devices add NAME --runtime R`"
    )


def get_device(s: Session, name: str) -> Device:
    device = s.scalar(select(Device).where(Device.name == name))
    if device is None:
        raise NotFound(no_device(name))
    return device


def list_devices(s: Session) -> list[Device]:
    return list(s.scalars(select(Device).order_by(Device.name)))


def add_token(s: Session, device: Device) -> str:
    token = new_token()
    s.add(AgentToken(device_id=device.id, token_hash=hash_token(token), prefix=token[:12]))
    s.flush()
    return token


def revoke_token(s: Session, device: Device, prefix: str) -> None:
    row = s.scalar(
        select(AgentToken).where(
            AgentToken.device_id == device.id,
            AgentToken.prefix == prefix,
            AgentToken.revoked_at.is_(None),
        )
    )
    if row is None:
        raise NotFound(f"device {device.name!r} has no active token starting {prefix!r}")
    row.revoked_at = utcnow()


def device_for_token(s: Session, token: str) -> Device | None:
    """The device an active agent token belongs to (looked up by its hash)."""
    row = s.scalar(
        select(AgentToken).where(
            AgentToken.token_hash == hash_token(token), AgentToken.revoked_at.is_(None)
        )
    )
    return row.device if row is not None else None


@dataclass
class DeviceSummary:
    device: Device
    measurements: int
    work: dict[str, int]
    coverage: list[dict[str, object]]
    imports: list[LutImport] = field(default_factory=list)  # at the current revision


def summarize(s: Session, device: Device) -> DeviceSummary:
    n = (
        s.scalar(
            select(func.count())
            .select_from(Measurement)
            .where(Measurement.device_id == device.id, Measurement.revision == device.revision)
        )
        or 0
    )
    rows = s.execute(
        select(WorkItem.state, func.count())
        .where(WorkItem.device_id == device.id)
        .group_by(WorkItem.state)
    )
    work = {state: count for state, count in rows}
    imports = s.scalars(
        select(LutImport)
        .where(LutImport.device_id == device.id, LutImport.revision == device.revision)
        .order_by(LutImport.id)
    )
    return DeviceSummary(device, n, work, coverage(s, device), list(imports))


def coverage(s: Session, device: Device) -> list[dict[str, object]]:
    """Measured share of the distinct ops of every space target of the device."""
    from latency_service.repository.latency import measured_op_ids

    out = []
    targets = s.scalars(
        select(SpaceTarget).where(SpaceTarget.device_id == device.id).order_by(SpaceTarget.id)
    )
    for t in targets:
        options = parse_options(t.options)
        keys = [op.key for op in space_ops(t.space, t.resolution, t.width, t.classes, options)]
        measured = len(measured_op_ids(s, device, keys))
        out.append(
            {
                "space": t.space,
                "resolution": t.resolution,
                "width": t.width,
                "classes": t.classes,
                "options": dict(options),
                "measured": measured,
                "total": len(keys),
                "fraction": measured / len(keys) if keys else 0.0,
            }
        )
    return out


def options_text(options: tuple[tuple[str, int], ...]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(options))


def parse_options(text: str) -> tuple[tuple[str, int], ...]:
    pairs = (item.split("=", 1) for item in text.split(",") if item)
    return tuple(sorted((k, int(v)) for k, v in pairs))


def add_space_target(
    s: Session, device: Device, space: SearchSpace, options: tuple[tuple[str, int], ...]
) -> None:
    """Remember that the device should cover this space (its coverage rows)."""
    text = options_text(options)
    exists = s.scalar(
        select(SpaceTarget.id).where(
            SpaceTarget.device_id == device.id,
            SpaceTarget.space == space.name,
            SpaceTarget.resolution == space.resolution,
            SpaceTarget.width == space.width,
            SpaceTarget.classes == space.classes,
            SpaceTarget.options == text,
        )
    )
    if exists is None:
        s.add(
            SpaceTarget(
                device_id=device.id,
                space=space.name,
                resolution=space.resolution,
                width=space.width,
                classes=space.classes,
                options=text,
            )
        )


def hello(
    s: Session,
    device: Device,
    fingerprint: dict[str, object],
    fingerprint_id: str,
    runtime: str,
    new_revision: bool,
) -> Device:
    """Check an agent's fingerprint against the device's; the first one is adopted, a
    different one is refused unless the agent asks for a new device revision."""
    if runtime != device.runtime:
        raise Conflict(
            f"device {device.name!r} is registered for runtime {device.runtime!r}, "
            f"the agent runs {runtime!r}; start the agent with --runtime "
            f"{device.runtime} or register another device"
        )
    if device.fingerprint_id is None:
        device.fingerprint, device.fingerprint_id = fingerprint, fingerprint_id
    elif device.fingerprint_id != fingerprint_id:
        if not new_revision:
            raise Conflict(
                f"this machine/runtime (fingerprint {fingerprint_id}) differs from the one "
                f"device {device.name!r} was measured on ({device.fingerprint_id}); numbers are "
                "never mixed: run the agent with --new-revision to start a new revision of "
                "the device, or use another device"
            )
        device.revision += 1
        device.fingerprint, device.fingerprint_id = fingerprint, fingerprint_id
    device.last_seen_at = utcnow()
    return device
