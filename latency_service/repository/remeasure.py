"""Measure again what was measured while the machine was disturbed.

On a shared machine a neighbour can slow a whole batch (docs/BENCHMARKS.md,
issue 6 sixth figures). Dividing such a batch by its panel's factor is a
poor repair, because the disturbance does not hit every op of the batch alike: those
ops were within ±10% of an unseen-op predictor far less often than the rest. An op
whose own 95% CI came out wide (its rounds disagreed) is no better.

So such an op is queued once more, as a new work item, when its result is uploaded:

- its batch's reference panel read more than `drift` (relative) off the revision's
  baseline, once the revision has `MIN_READINGS` readings for a baseline to mean
  something; or
- its CI half-width is more than `ci` of its median.

Every measurement stays stored: lookups serve an op's newest, and training combines all of
an op's drift-divided values (their median), which did better than either the first or
the repeat alone. An op is measured at most
`1 + extra` times per revision, so a machine that is always disturbed cannot loop.
`sweep` applies the same rules to what a device has already measured.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from latency_service.models import Device, Measurement, Op, WorkItem
from latency_service.repository import reference
from latency_service.repository.ops import active_op_ids, check_kind, chunks
from profiler import reference as panel

MIN_READINGS = panel.MIN_READINGS
Rules = panel.Rules  # shared with the local `hwlat profile` (profiler.reference)


@dataclass(frozen=True)
class Result:
    """One measured op as the rules see it."""

    op_id: int
    median_ms: float
    ci_half_width_ms: float | None


def disturbed_readings(s: Session, device: Device, rules: Rules) -> set[int]:
    """Ids of the revision's readings whose factor is beyond `rules.drift`."""
    if rules.drift <= 0:
        return set()
    rows = reference.readings(s, device)
    if len(rows) < MIN_READINGS:
        return set()
    base = reference.baseline(rows)
    limit = math.log1p(rules.drift)
    return {r.id for r in rows if abs(math.log(panel.factor(reference.medians(r), base))) > limit}


def unstable(r: Result, rules: Rules) -> bool:
    return rules.unstable(r.median_ms, r.ci_half_width_ms)


def after_upload(
    s: Session, device: Device, results: Sequence[Result], reference_id: int | None, rules: Rules
) -> int:
    """Queue again the just-stored results that the rules reject; returns how many."""
    if not results:
        return 0
    whole_batch = reference_id is not None and reference_id in disturbed_readings(s, device, rules)
    wanted = [r.op_id for r in results if whole_batch or unstable(r, rules)]
    return requeue(s, device, wanted, rules)["queued"]


def requeue(s: Session, device: Device, op_ids: Sequence[int], rules: Rules) -> dict[str, int]:
    """New work items for `op_ids`, except ops already measured `1 + extra` times at the
    revision or already in the queue."""
    ids = sorted(set(op_ids))
    if not ids:
        return {"queued": 0, "at_limit": 0, "already_queued": 0}
    counts: dict[int, int] = {}
    for chunk in chunks(ids):  # a sweep may pass every op of the device
        rows = s.execute(
            select(Measurement.op_id, func.count(Measurement.id))
            .where(
                Measurement.device_id == device.id,
                Measurement.revision == device.revision,
                Measurement.op_id.in_(chunk),
            )
            .group_by(Measurement.op_id)
        )
        counts.update({op_id: n for op_id, n in rows})
    queued = active_op_ids(s, device, ids)
    out = {"queued": 0, "at_limit": 0, "already_queued": 0}
    for op_id in ids:
        if op_id in queued:
            out["already_queued"] += 1
        elif counts.get(op_id, 0) > rules.extra:
            out["at_limit"] += 1
        else:
            s.add(WorkItem(device_id=device.id, kind="op", op_id=op_id, reason="remeasure"))
            out["queued"] += 1
    s.flush()
    return out


def sweep(s: Session, device: Device, rules: Rules, kind: str | None = None) -> dict[str, Any]:
    """The rules applied to the newest measurement of every op (of `kind`) at the device's
    revision: the disturbed and unstable ones are queued again, within the limit."""
    if kind is not None:
        check_kind(kind)
    newest = (
        select(func.max(Measurement.id))
        .join(Op, Op.id == Measurement.op_id)
        .where(Measurement.device_id == device.id, Measurement.revision == device.revision)
    )
    if kind is not None:
        newest = newest.where(Op.kind == kind)
    rows = s.execute(
        select(
            Measurement.op_id,
            Measurement.median_ms,
            Measurement.ci_half_width_ms,
            Measurement.reference_id,
        ).where(Measurement.id.in_(newest.group_by(Measurement.op_id).scalar_subquery()))
    ).all()
    bad = disturbed_readings(s, device, rules)
    in_bad = [op_id for op_id, _, _, ref in rows if ref is not None and ref in bad]
    shaky = [op_id for op_id, m, ci, _ in rows if unstable(Result(op_id, m, ci), rules)]
    counts = requeue(s, device, in_bad + shaky, rules)
    return {
        "checked": len(rows),
        "disturbed": len(in_bad),
        "unstable": len(shaky),
        **counts,
    }
