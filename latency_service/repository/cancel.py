"""Cancelling queued work: a user who queued more than the machine's time allows takes the
rest back, e.g. the last 600 items of a sample (`hwlat jobs cancel --newest 600`).

Only pending items go. An item an agent has leased is being measured now; its result
will be welcome, so it is left to finish and counted apart. Cancelled items are deleted:
a pending item has no measurement and no error to keep, and an op whose item is gone can
be queued again by any job.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from latency_service.models import Device, Op, WorkItem
from latency_service.repository import devices
from latency_service.repository.ops import ACTIVE, check_kind, chunks
from latency_service.repository.work import rowcount


def cancel(
    s: Session, device: Device, kind: str | None, reason: str | None, newest: int | None
) -> dict[str, int]:
    """Delete the device's pending items that match `kind` (an op kind, or "network")
    and `reason`, at most `newest` of them, the most recently queued first. The device is
    locked first, as by lease and upload, so their work-item locks never cross."""
    devices.lock(s, device)
    match = _matching(device, kind, reason)
    picked = select(WorkItem.id).where(*match, WorkItem.state == "pending")
    picked = picked.order_by(WorkItem.id.desc()).limit(newest)
    ids = list(s.scalars(picked))
    cancelled = 0
    for chunk in chunks(ids):
        # state is checked again: an agent may have leased an item since it was picked
        gone = delete(WorkItem).where(WorkItem.id.in_(chunk), WorkItem.state == "pending")
        cancelled += rowcount(s.execute(gone.execution_options(synchronize_session=False)))
    left = s.execute(
        select(WorkItem.state, func.count())
        .where(*match, WorkItem.state.in_(ACTIVE))
        .group_by(WorkItem.state)
    )
    counts = {state: int(n) for state, n in left}
    return {
        "cancelled": cancelled,
        "pending_left": counts.get("pending", 0),
        "leased": counts.get("leased", 0),
    }


def _matching(device: Device, kind: str | None, reason: str | None) -> list[Any]:
    match: list[Any] = [WorkItem.device_id == device.id]
    if kind == "network":
        match.append(WorkItem.kind == "network")
    elif kind is not None:
        check_kind(kind)
        match.append(WorkItem.op_id.in_(select(Op.id).where(Op.kind == kind)))
    if reason is not None:
        match.append(WorkItem.reason == reason)
    return match
