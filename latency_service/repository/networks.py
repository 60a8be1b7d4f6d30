"""Whole-network work items and their end-to-end measurements (to check table sums)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from latency_service.errors import Invalid
from latency_service.models import Device, NetworkMeasurement, WorkItem
from latency_service.repository.ops import ACTIVE, make_space


def arch_hash(network: dict[str, Any]) -> str:
    blob = json.dumps(network, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def normalise(spec: Any, index: int) -> dict[str, Any]:
    """A network spec validated against its space, in canonical JSON form."""
    options = tuple(sorted(spec.options.items()))
    space = make_space(spec.space, spec.resolution, spec.width, spec.classes, options)
    try:
        arch = space.arch_to_json(spec.arch)
    except ValueError as exc:
        raise Invalid(f"networks[{index}].arch: {exc}") from None
    return {"options": dict(options), **arch}


def enqueue_networks(s: Session, device: Device, specs: list[Any]) -> dict[str, int]:
    networks = {}
    for i, spec in enumerate(specs):
        net = normalise(spec, i)
        networks[arch_hash(net)] = net
    measured = set(
        s.scalars(
            select(NetworkMeasurement.arch_hash).where(
                NetworkMeasurement.device_id == device.id,
                NetworkMeasurement.revision == device.revision,
                NetworkMeasurement.arch_hash.in_(list(networks)),
            )
        )
    )
    queued = {
        item.network.get("arch_hash")
        for item in s.scalars(
            select(WorkItem).where(
                WorkItem.device_id == device.id,
                WorkItem.kind == "network",
                WorkItem.state.in_(ACTIVE),
            )
        )
        if item.network
    }
    new = 0
    for h, net in networks.items():
        if h not in measured and h not in queued:
            s.add(WorkItem(device_id=device.id, kind="network", network={**net, "arch_hash": h}))
            new += 1
    s.flush()
    return {
        "total": len(networks),
        "new": new,
        "already_measured": len(measured),
        "already_queued": len(set(networks) & queued - measured),
    }


def has_result(s: Session, device: Device, item: WorkItem, run_id: str) -> bool:
    h = (item.network or {}).get("arch_hash", "")
    return (
        s.scalar(
            select(NetworkMeasurement.id).where(
                NetworkMeasurement.device_id == device.id,
                NetworkMeasurement.revision == device.revision,
                NetworkMeasurement.arch_hash == h,
                NetworkMeasurement.run_id == run_id,
            )
        )
        is not None
    )


def store_result(s: Session, device: Device, item: WorkItem, run_id: str, r: Any) -> None:
    net = item.network or {}
    st = r.stats
    s.add(
        NetworkMeasurement(
            device_id=device.id,
            revision=device.revision,
            space=net["space"],
            resolution=net["resolution"],
            width=net["width"],
            arch=net,
            arch_hash=net["arch_hash"],
            run_id=run_id,
            median_ms=st.median_ms,
            ci_half_width_ms=st.ci_half_width_ms,
            stable=st.stable,
            stats={**st.model_dump(), "runtime": r.runtime, "extra": r.extra},
        )
    )


def measurements(
    s: Session,
    device_id: int,
    revision: int,
    space: str | None = None,
    resolution: int | None = None,
) -> list[NetworkMeasurement]:
    """End-to-end measurements of a device revision, oldest first."""
    q = select(NetworkMeasurement).where(
        NetworkMeasurement.device_id == device_id, NetworkMeasurement.revision == revision
    )
    if space is not None:
        q = q.where(NetworkMeasurement.space == space)
    if resolution is not None:
        q = q.where(NetworkMeasurement.resolution == resolution)
    return list(s.scalars(q.order_by(NetworkMeasurement.id)))
