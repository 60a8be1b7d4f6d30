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
newest earlier measurement, the one lookups served, and the retest; |log(b/a)| within
the quadrature sum of their relative half-widths, profiler.uncertainty.covered): about
95% when the CIs tell the whole story, less when the machine varies more between
batches than within one. The same raw pairs calibrate the between-session term lookups
add to those CIs, and the report (`repository.uncertainty.repeatability`) says how the
intervals reported now cover them.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from itertools import groupby
from typing import Any, NamedTuple

import numpy as np
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from latency_service.errors import Invalid
from latency_service.models import Device, Measurement, Op, WorkItem
from latency_service.repository import reference
from latency_service.repository.ops import active_op_ids, check_kind
from profiler import uncertainty

RETEST = "retest"  # WorkItem.reason of a retest
# pairs a kind needs before lookups give its measured values the retests' RMS difference
# (`repeat_rel_error`) and their between-session sigma: fewer say too little about a
# device's spread between batches
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
    ms), and the raw pair lookups judge intervals on: the newest measurement before the
    retest (the one lookups served) and the retest, medians and their own 95% CIs (NaN:
    none)."""

    key: str
    label: float
    retest: float
    raw: uncertainty.Pair

    @property
    def covered(self) -> bool | None:
        """Whether the raw measurements' own CIs cover their difference (None: no CI)."""
        return uncertainty.covered(self.raw, None) if self.raw.usable() else None


def _rows(s: Session, device: Device, kinds: Sequence[str] | None = None) -> list[Any]:
    """Every measurement at the device's revision of the retested ops (of `kinds`,
    default all), by kind, op and measurement order: what pairs are made of."""
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
    return list(s.execute(q.order_by(Op.kind, Op.key, Measurement.id)).all())


def pairs(s: Session, device: Device, kinds: Sequence[str] | None = None) -> dict[str, list[Pair]]:
    """Per kind (of `kinds`, default all), the retest pairs at the device's revision."""
    found = _rows(s, device, kinds)
    if not found:
        return {}
    ref_ids, run_ids, ms = ([r[i] for r in found] for i in (4, 5, 2))
    normalised, _ = reference.normalise(s, device, device.revision, ref_ids, run_ids, ms)
    out: dict[str, list[Pair]] = {}
    for kind, before, again in _ops(found):
        label = math.exp(float(np.median([math.log(normalised[i]) for i in before])))
        raw = _raw(found[before[-1]], found[again])
        out.setdefault(kind, []).append(Pair(found[again][1], label, normalised[again], raw))
    return out


def _ops(found: Sequence[Any]) -> Iterator[tuple[str, list[int], int]]:
    """Per retested op of `rows`: its kind, the indices of its measurements before its
    first retest and the retest's; ops whose retest has nothing before it are left out."""
    for kind, of_kind in groupby(range(len(found)), key=lambda i: found[i][0]):
        for _, of_op in groupby(of_kind, key=lambda i: found[i][1]):
            idx = list(of_op)
            first = next((n for n, i in enumerate(idx) if found[i][6] == RETEST), None)
            if first:  # None (cannot happen: the op was retested) or 0 (nothing before it)
                yield kind, idx[:first], idx[first]


def _raw(newest: Any, again: Any) -> uncertainty.Pair:
    """The newest measurement before the retest and the retest, as stored; a NULL CI as
    NaN (`Pair.usable` leaves it out)."""
    return uncertainty.Pair(
        newest[2], again[2], uncertainty.half(newest[3]), uncertainty.half(again[3])
    )


def summary(ratios: Sequence[float], covered: Sequence[bool | None]) -> dict[str, Any]:
    """How closely retests repeat their labels: `ratios` are retest / label, `covered`
    whether each raw pair's own CIs cover it (None: no CI, not judged)."""
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
