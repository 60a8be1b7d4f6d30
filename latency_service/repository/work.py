"""The profiling queue: enqueue ops, lease them to agents, take results back.

Leasing is race-free on every database: candidate rows are picked (on PostgreSQL with
FOR UPDATE SKIP LOCKED, so concurrent agents never wait on each other) and then claimed
with a conditional UPDATE ... WHERE state = 'pending', so two agents can never hold the
same item even where row locks do not exist (SQLite).

Items leave the queue in the order they entered it, except retests: a user who asks how
well a device's labels repeat gets the answer before the rest of a long queue is done.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, Result, and_, case, func, or_, select, update
from sqlalchemy.orm import Session

from latency_service.errors import Forbidden, NotFound
from latency_service.models import Device, Measurement, WorkItem, utcnow
from latency_service.repository import devices, networks, reference, remeasure, retest
from latency_service.repository.latency import measured_op_ids
from latency_service.repository.ops import active_op_ids, ensure_ops
from profiler.ops import OpSpec

STATES = ("pending", "leased", "done", "failed")


def enqueue_ops(s: Session, device: Device, specs: list[OpSpec]) -> dict[str, int]:
    """Queue the ops that have neither a current measurement nor an active work item."""
    ops = ensure_ops(s, specs)
    keys = list(ops)
    measured = measured_op_ids(s, device, keys)
    queued = active_op_ids(s, device, [ops[k].id for k in keys])
    new = 0
    for key in keys:
        if key not in measured and ops[key].id not in queued:
            s.add(WorkItem(device_id=device.id, kind="op", op_id=ops[key].id))
            new += 1
    s.flush()
    already_queued = sum(1 for k in keys if k not in measured and ops[k].id in queued)
    return {
        "total": len(keys),
        "new": new,
        "already_measured": len(measured),
        "already_queued": already_queued,
    }


def expire_leases(s: Session, device: Device, max_attempts: int) -> int:
    """Leases past their expiry go back to pending, or fail after max_attempts.
    Returns how many items were expired (both kinds), for the caller to report."""
    now = utcnow()
    expired = and_(
        WorkItem.device_id == device.id, WorkItem.state == "leased", WorkItem.lease_expires_at < now
    )
    failed = s.execute(
        update(WorkItem)
        .where(expired, WorkItem.attempts >= max_attempts)
        .values(
            state="failed",
            lease_id=None,
            last_error="lease expired without a result "
            f"{max_attempts} times (agent crashed or too slow?)",
            updated_at=now,
        )
    )
    requeued = s.execute(
        update(WorkItem)
        .where(expired)
        .values(state="pending", lease_id=None, lease_expires_at=None, updated_at=now)
    )
    # an UPDATE's result is a CursorResult (Session.execute is typed for any statement);
    # the failed rows are no longer 'leased', so the second UPDATE never counts them again
    return rowcount(failed) + rowcount(requeued)


def rowcount(result: Result[Any]) -> int:
    return int(cast(CursorResult[Any], result).rowcount)


@dataclass(frozen=True)
class Leased:
    """What `lease` did: the new lease (id None when nothing was pending) and how many
    expired items it found first."""

    lease_id: str | None
    expires: datetime | None
    items: list[WorkItem]
    expired: int


def lease(s: Session, device: Device, n: int, lease_s: float, max_attempts: int) -> Leased:
    devices.lock(s, device)
    expired = expire_leases(s, device, max_attempts)
    pick = (
        select(WorkItem.id)
        .where(WorkItem.device_id == device.id, WorkItem.state == "pending")
        .order_by(case((WorkItem.reason == retest.RETEST, 0), else_=1), WorkItem.id)
        .limit(n)
        .with_for_update(skip_locked=True)
    )
    ids = list(s.scalars(pick))
    if not ids:
        return Leased(None, None, [], expired)
    lease_id, expires = secrets.token_hex(16), utcnow() + timedelta(seconds=lease_s)
    s.execute(
        update(WorkItem)
        .where(WorkItem.id.in_(ids), WorkItem.state == "pending")
        .values(
            state="leased",
            lease_id=lease_id,
            lease_expires_at=expires,
            attempts=WorkItem.attempts + 1,
            updated_at=utcnow(),
        )
    )
    items = list(
        s.scalars(select(WorkItem).where(WorkItem.lease_id == lease_id).order_by(WorkItem.id))
    )
    device.last_seen_at = utcnow()
    return Leased(lease_id, expires, items, expired)


def _lease_items(s: Session, device: Device, lease_id: str) -> list[WorkItem]:
    items = list(s.scalars(select(WorkItem).where(WorkItem.lease_id == lease_id)))
    if not items:
        raise NotFound(
            f"lease {lease_id} is unknown or over (expired leases go back to the "
            "queue); lease again"
        )
    if any(item.device_id != device.id for item in items):
        raise Forbidden("this lease belongs to another device")
    return items


def heartbeat(s: Session, device: Device, lease_id: str, lease_s: float) -> datetime:
    items = [i for i in _lease_items(s, device, lease_id) if i.state == "leased"]
    expires = utcnow() + timedelta(seconds=lease_s)
    for item in items:
        item.lease_expires_at = expires
    device.last_seen_at = utcnow()
    return expires


def release(s: Session, device: Device, lease_id: str, item_ids: list[int] | None) -> int:
    """Give leased items back unmeasured (an agent stopping): they do not use an attempt."""
    n = 0
    for item in _lease_items(s, device, lease_id):
        if item.state == "leased" and (item_ids is None or item.id in item_ids):
            item.state, item.lease_id, item.lease_expires_at = "pending", None, None
            item.attempts = max(0, item.attempts - 1)
            n += 1
    return n


def upload(
    s: Session,
    device: Device,
    lease_id: str,
    run_id: str,
    results: list[Any],
    errors: list[Any],
    max_attempts: int,
    reading: Any | None = None,
    rules: remeasure.Rules | None = None,
) -> dict[str, int]:
    """Store results and errors of a lease, and the reference panel read with them (each
    op result is linked to it). Idempotent: a result already stored for this work item
    (device revision, op, run id, item) is a duplicate and changes nothing; a result for
    an item held by another lease (or failed) is rejected (counted, not stored); unknown
    items are errors. With `rules`, accepted ops measured while the machine was disturbed are
    queued once more (`remeasure`)."""
    foreign = select(WorkItem.id).where(
        WorkItem.lease_id == lease_id, WorkItem.device_id != device.id
    )
    if s.scalar(foreign.limit(1)) is not None:
        raise Forbidden("this lease belongs to another device")
    devices.lock(s, device)
    reference_id = reference.store(s, device, lease_id, run_id, reading)
    items = {
        item.id: item
        for item in s.scalars(
            select(WorkItem).where(
                WorkItem.id.in_([r.item_id for r in results] + [e.item_id for e in errors]),
                WorkItem.device_id == device.id,
            )
        )
    }
    counts = {"accepted": 0, "duplicates": 0, "rejected": 0, "failed": 0, "requeued": 0}
    stored: list[remeasure.Result] = []
    for r in results:
        item = _owned(items, r.item_id, r.key)
        if _has_result(s, device, item, run_id):
            counts["duplicates"] += 1
        elif _held(item, lease_id) or item.state == "pending":
            # pending: the lease ran out (e.g. an agent restarted and replays its spool) but
            # nobody else holds the item, so the number is still the one wanted
            _store_result(s, device, item, run_id, r, reference_id)
            counts["accepted"] += 1
            if item.kind == "op" and item.op_id is not None:
                stored.append(
                    remeasure.Result(item.op_id, r.stats.median_ms, r.stats.ci_half_width_ms)
                )
        else:  # leased again to someone else, or failed: not ours to fill
            counts["rejected"] += 1
    for e in errors:
        item = _owned(items, e.item_id, None)
        if not _held(item, lease_id):
            counts["duplicates"] += 1  # already reported, or the lease is over
            continue
        failed = item.attempts >= max_attempts
        item.state = "failed" if failed else "pending"
        item.last_error = f"{e.type}: {e.message}"
        item.lease_id = item.lease_expires_at = None
        counts["failed" if failed else "requeued"] += 1
    if rules is not None:
        counts["remeasure"] = remeasure.after_upload(s, device, stored, reference_id, rules)
    device.last_seen_at = utcnow()
    return counts


def _owned(items: dict[int, WorkItem], item_id: int, key: str | None) -> WorkItem:
    item = items.get(item_id)
    if item is None:
        raise NotFound(f"item {item_id} is not a work item of this device")
    if item.kind == "op" and key is not None and (item.op is None or item.op.key != key):
        raise Forbidden(f"item {item_id} is not op {key!r}")
    return item


def _held(item: WorkItem, lease_id: str) -> bool:
    return item.state == "leased" and item.lease_id == lease_id


def _has_result(s: Session, device: Device, item: WorkItem, run_id: str) -> bool:
    if item.kind == "network":
        return networks.has_result(s, device, item, run_id)
    # this item's own result; a row from before migration 0004 names no item, and is this
    # one's only if it was stored after the item was queued (else it answered an older one)
    mine = or_(
        Measurement.work_item_id == item.id,
        and_(Measurement.work_item_id.is_(None), Measurement.created_at >= item.created_at),
    )
    return (
        s.scalar(
            select(Measurement.id).where(
                Measurement.device_id == device.id,
                Measurement.revision == device.revision,
                Measurement.op_id == item.op_id,
                Measurement.run_id == run_id,
                mine,
            )
        )
        is not None
    )


def _store_result(
    s: Session, device: Device, item: WorkItem, run_id: str, r: Any, reference_id: int | None
) -> None:
    if item.kind == "network":
        networks.store_result(s, device, item, run_id, r)
    else:
        assert item.op is not None  # op items always have an op
        s.add(
            Measurement(
                device_id=device.id,
                revision=device.revision,
                op_id=item.op.id,
                run_id=run_id,
                **r.stats.model_dump(),
                runtime=r.runtime,
                host_state=r.host_state,
                extra=r.extra,
                reference_id=reference_id,
                work_item_id=item.id,
            )
        )
    item.state, item.lease_id, item.lease_expires_at = "done", None, None
    s.flush()


def queue_depth(s: Session) -> list[tuple[str, str, int]]:
    """(device name, state, work items) for every device and every state, 0 included: a
    series that vanished at zero would read as 'no data' rather than 'queue empty'.
    One GROUP BY over the queue index; devices without items come from the outer join."""
    rows = s.execute(
        select(Device.name, WorkItem.state, func.count(WorkItem.id))
        .outerjoin(WorkItem, WorkItem.device_id == Device.id)
        .group_by(Device.name, WorkItem.state)
    ).all()
    counts = {(name, state): n for name, state, n in rows if state is not None}
    states = list(STATES) + sorted({state for _, state in counts} - set(STATES))
    return [
        (name, state, counts.get((name, state), 0))
        for name in sorted({name for name, _, _ in rows})
        for state in states
    ]


def list_work(s: Session, device: Device, state: str | None, limit: int) -> list[WorkItem]:
    q = select(WorkItem).where(WorkItem.device_id == device.id)
    if state is not None:
        q = q.where(WorkItem.state == state)
    return list(s.scalars(q.order_by(WorkItem.updated_at.desc(), WorkItem.id).limit(limit)))
