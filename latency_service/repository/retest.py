"""Retests: measure random, already measured ops of a kind once more, and say how well a
device's labels repeat.

A predictor is judged against measured labels. Where a second measurement of an op
agrees with the first within ±10% less than 95% of the time (it happens on a shared VM:
docs/BENCHMARKS.md, issue 6 eighth figures), no predictor can be seen to be right 95% of
the time, however good it is:
label repeatability is the ceiling on held-out accuracy, and `hwlat train` prints it
beside the predictors. The re-measuring rules' repeats cannot tell it, because they pick
the ops that looked disturbed; a retest picks at random among the measured ops, so its
pairs are a fair sample of the labels.

A pair is an op's label before its retest (the median of its earlier measurements, each
divided by its batch's drift factor, as training makes labels) and the retest, divided
the same way. Reported per kind: the share of pairs within ±5% and ±10% (retest / label
- 1), their RMS relative difference, the median ratio (a shift between the two times),
and how often the measurements' own 95% CIs cover their difference (raw medians of the
newest earlier measurement, the one lookups serve, and the retest; |a - b| <=
sqrt(ci_a² + ci_b²)): about 95% when the CIs tell the whole story, less when the machine
varies more between batches than within one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import groupby
from typing import Any, NamedTuple

import numpy as np
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from latency_service.errors import Invalid
from latency_service.models import Device, Measurement, Op, WorkItem
from latency_service.repository import reference
from latency_service.repository.ops import active_op_ids, check_kind

RETEST = "retest"  # WorkItem.reason of a retest
# pairs a kind needs before lookups give its measured values the retests' RMS difference
# (`repeat_rel_error`): fewer say too little about a device's spread between batches
MIN_PAIRS = 20


def queue(s: Session, device: Device, kind: str, n: int, seed: int = 0) -> dict[str, int]:
    """New retest work items for `n` (at most) random ops of `kind` measured at the
    device's revision, not retested there yet and not in the queue."""
    check_kind(kind)
    measured = set(
        s.scalars(
            select(Measurement.op_id)
            .join(Op, Op.id == Measurement.op_id)
            .where(*_at_revision(device), Op.kind == kind)
            .distinct()
        )
    )
    if not measured:
        raise Invalid(
            f"kind {kind}: device {device.name} has no measured {kind} ops at revision "
            f"{device.revision} to retest; measure some first (`hwlat jobs sample --device "
            f"{device.name} --kind {kind}`, then an agent)"
        )
    retested = set(s.scalars(_retested(device).distinct()))
    fresh = sorted(measured - retested)
    queued = active_op_ids(s, device, fresh)
    eligible = [op_id for op_id in fresh if op_id not in queued]
    rng = np.random.default_rng(seed)
    picked = rng.choice(len(eligible), size=min(n, len(eligible)), replace=False)
    for i in sorted(int(i) for i in picked):
        s.add(WorkItem(device_id=device.id, kind="op", op_id=eligible[i], reason=RETEST))
    s.flush()
    return {
        "measured": len(measured),
        "already_retested": len(measured & retested),
        "already_queued": len(queued),
        "queued": len(picked),
    }


def _at_revision(device: Device) -> tuple[Any, ...]:
    return (Measurement.device_id == device.id, Measurement.revision == device.revision)


def _retested(device: Device) -> Select[int]:
    """The ids of the ops with a retest measurement at the device's revision."""
    return (
        select(Measurement.op_id)
        .join(WorkItem, WorkItem.id == Measurement.work_item_id)
        .where(*_at_revision(device), WorkItem.reason == RETEST)
    )


class Pair(NamedTuple):
    """One retested op: its label before the retest and the retest (both drift-divided,
    ms), and whether the raw measurements' CIs cover their difference (None: no CI)."""

    key: str
    label: float
    retest: float
    covered: bool | None


def pairs(s: Session, device: Device, kinds: Sequence[str] | None = None) -> dict[str, list[Pair]]:
    """Per kind (of `kinds`, default all), the retest pairs at the device's revision."""
    for kind in kinds or ():
        check_kind(kind)
    q = (
        select(
            Op.kind,
            Op.key,
            Measurement.median_ms,
            Measurement.ci_half_width_ms,
            Measurement.reference_id,
            Measurement.run_id,
            WorkItem.reason,
        )
        .join(Op, Op.id == Measurement.op_id)
        .outerjoin(WorkItem, WorkItem.id == Measurement.work_item_id)
        .where(*_at_revision(device), Measurement.op_id.in_(_retested(device).scalar_subquery()))
    )
    if kinds:
        q = q.where(Op.kind.in_(list(kinds)))
    rows = s.execute(q.order_by(Op.kind, Op.key, Measurement.id)).all()
    if not rows:
        return {}
    normalised, _ = reference.normalise(
        s, device, device.revision, [r[4] for r in rows], [r[5] for r in rows], [r[2] for r in rows]
    )
    out: dict[str, list[Pair]] = {}
    for kind, of_kind in groupby(range(len(rows)), key=lambda i: rows[i][0]):
        for _, of_op in groupby(of_kind, key=lambda i: rows[i][1]):
            pair = _pair(rows, normalised, list(of_op))
            if pair is not None:
                out.setdefault(kind, []).append(pair)
    return out


def repeatability(
    s: Session, device: Device, kinds: Sequence[str] | None = None
) -> dict[str, dict[str, Any]]:
    """Per kind with at least one retest pair at the device's revision: how its labels
    repeat (see the module docstring)."""
    return {
        kind: summary([p.retest / p.label for p in found], [p.covered for p in found])
        for kind, found in pairs(s, device, kinds).items()
    }


def _pair(rows: Sequence[Any], normalised: Sequence[float], idx: list[int]) -> Pair | None:
    """One op's rows, in measurement order, as a pair; None when its first retest has
    no earlier measurement to compare with."""
    first = next((n for n, i in enumerate(idx) if rows[i][6] == RETEST), None)
    if not first:  # None (cannot happen: the op was retested) or 0 (nothing before it)
        return None
    before, again = idx[:first], idx[first]
    label = math.exp(float(np.median([math.log(normalised[i]) for i in before])))
    newest = rows[before[-1]]
    ci_a, ci_b = newest[3], rows[again][3]
    covered = (
        None
        if ci_a is None or ci_b is None
        else abs(rows[again][2] - newest[2]) <= math.hypot(ci_a, ci_b)
    )
    return Pair(rows[again][1], label, normalised[again], covered)


def summary(ratios: Sequence[float], covered: Sequence[bool | None]) -> dict[str, Any]:
    """How closely retests repeat their labels: `ratios` are retest / label."""
    err = np.abs(np.asarray(ratios, dtype=np.float64) - 1.0)
    judged = [c for c in covered if c is not None]
    return {
        "pairs": len(ratios),
        "within_5pct": float(np.mean(err <= 0.05)),
        "within_10pct": float(np.mean(err <= 0.10)),
        "rmspe": float(np.sqrt(np.mean(err**2))),
        "median_ratio": float(np.median(ratios)),
        "ci_coverage": float(np.mean(judged)) if judged else None,
    }
