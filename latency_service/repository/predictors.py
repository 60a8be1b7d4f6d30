"""Predictors: train per (device revision, kind), store the recipe, rebuild on demand."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
import sklearn
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from latency_service.errors import Conflict, Invalid, NotFound
from latency_service.models import Device, Measurement, Op, Predictor
from latency_service.predictors.training import (
    MIN_SAMPLES,
    Model,
    Trained,
    make,
    train,
)
from latency_service.repository import reference
from latency_service.repository.work import enqueue_ops
from profiler.ops import OpSpec
from profiler.sampling import MOVES, refine_ops


class Rows(NamedTuple):
    """A predictor's training rows, in a fixed order (by op key)."""

    specs: list[OpSpec]
    ms: list[float]  # median per op, as measured
    reference_ids: list[int | None]  # the reference reading of each op's batch
    run_ids: list[str]  # the agent run that measured each op
    watermark: int  # the newest measurement id among them


def training_rows(
    s: Session,
    device: Device,
    kind: str,
    revision: int | None = None,
    watermark: int | None = None,
    dtype: str | None = None,
) -> Rows:
    """The newest measurement per op of `kind` at the revision, up to `watermark`."""
    rev = device.revision if revision is None else revision
    q = (
        select(func.max(Measurement.id))
        .join(Op, Op.id == Measurement.op_id)
        .where(Measurement.device_id == device.id, Measurement.revision == rev, Op.kind == kind)
    )
    if watermark is not None:
        q = q.where(Measurement.id <= watermark)
    newest = q.group_by(Measurement.op_id).subquery()
    rows = s.execute(
        select(
            Op.key,
            Measurement.median_ms,
            Measurement.reference_id,
            Measurement.id,
            Measurement.run_id,
        )
        .join(Measurement, Measurement.op_id == Op.id)
        .join(newest, Measurement.id == newest.c[0])
        .order_by(Op.key)
    ).all()
    parsed = [(OpSpec.from_key(key), ms, ref, mid, run) for key, ms, ref, mid, run in rows]
    if dtype is None and parsed:  # one predictor per dtype: the device's usual one
        dtypes = [row[0].dtype for row in parsed]
        dtype = max(set(dtypes), key=dtypes.count)
    parsed = [row for row in parsed if row[0].dtype == dtype]
    return Rows(
        [row[0] for row in parsed],
        [row[1] for row in parsed],
        [row[2] for row in parsed],
        [row[4] for row in parsed],
        max((row[3] for row in parsed), default=0),
    )


def labels(
    s: Session,
    device: Device,
    revision: int,
    rows: Rows,
    drift: dict[str, Any] | None,
    rebuild: bool = False,
) -> tuple[np.ndarray, dict[str, Any] | None]:
    """The rows' labels with their batch's drift divided out (`reference.normalise`:
    per batch, shrunk toward the run's median). Training anew
    (`rebuild` false) uses every reading there is; a rebuild divides by what the
    predictor's record `drift` says, and a predictor trained without one keeps its
    labels as measured."""
    if rebuild and drift is None:
        return np.asarray(rows.ms, dtype=np.float64), None
    ms, record = reference.normalise(
        s, device, revision, rows.reference_ids, rows.run_ids, rows.ms, drift
    )
    return np.asarray(ms, dtype=np.float64), record


def measured_kinds(s: Session, device: Device) -> list[str]:
    return list(
        s.scalars(
            select(Op.kind)
            .join(Measurement, Measurement.op_id == Op.id)
            .where(Measurement.device_id == device.id, Measurement.revision == device.revision)
            .distinct()
            .order_by(Op.kind)
        )
    )


def train_device(
    s: Session, device: Device, kinds: list[str] | None = None
) -> tuple[list[Predictor], dict[str, str]]:
    """Train the asked kinds (default: every measured kind with enough samples).
    Returns the new predictor rows and, per skipped kind, why."""
    wanted = kinds or measured_kinds(s, device)
    made, skipped = [], {}
    for kind in wanted:
        rows = training_rows(s, device, kind)
        if len(rows.specs) < MIN_SAMPLES:
            why = (
                f"{len(rows.specs)} measured ops, at least {MIN_SAMPLES} needed; queue more "
                f"with `hwlat jobs sample --device {device.name} --kind {kind}`"
            )
            if kinds:
                raise Invalid(f"kind {kind}: {why}")
            skipped[kind] = why
            continue
        y, drift = labels(s, device, device.revision, rows, None)
        trained = train(kind, rows.specs, list(y))
        made.append(_store(s, device, trained, rows, drift))
    return made, skipped


def _store(
    s: Session, device: Device, t: Trained, rows: Rows, drift: dict[str, Any] | None
) -> Predictor:
    version = (
        s.scalar(
            select(func.max(Predictor.version)).where(
                Predictor.device_id == device.id,
                Predictor.revision == device.revision,
                Predictor.kind == t.kind,
            )
        )
        or 0
    ) + 1
    row = Predictor(
        device_id=device.id,
        revision=device.revision,
        kind=t.kind,
        dtype=rows.specs[0].dtype,
        version=version,
        model=t.model,
        samples=t.samples,
        watermark=rows.watermark,
        metrics=t.cv,
        heldout=t.heldout,
        drift=drift,
        sklearn_version=sklearn.__version__,
    )
    s.add(row)
    s.flush()
    return row


def latest(s: Session, device: Device) -> dict[str, Predictor]:
    """The newest predictor of each kind at the device's current revision."""
    rows = s.scalars(
        select(Predictor)
        .where(Predictor.device_id == device.id, Predictor.revision == device.revision)
        .order_by(Predictor.kind, Predictor.version)
    )
    return {row.kind: row for row in rows}


def rebuild(s: Session, device: Device, row: Predictor) -> Model:
    """The same predictor again, from the same rows (deterministic, seeded retraining)."""
    rows = training_rows(s, device, row.kind, row.revision, row.watermark, row.dtype)
    y, _ = labels(s, device, row.revision, rows, row.drift, rebuild=True)
    return make(row.model).fit(rows.specs, y)


def worst_heldout(
    s: Session, device: Device, row: Predictor, fraction: float
) -> tuple[list[OpSpec], list[float]]:
    """The `fraction` (at least one) of the predictor's training ops with the largest
    out-of-fold relative error |predicted / measured - 1|, worst first, with the errors."""
    specs = training_rows(s, device, row.kind, row.revision, row.watermark, row.dtype).specs
    if len(specs) != len(row.heldout):
        raise Conflict(
            f"the {row.kind} predictor (version {row.version}) no longer matches its "
            f"{len(row.heldout)} training ops ({len(specs)} found); retrain it with "
            f"`hwlat train --device {device.name} --kind {row.kind}`"
        )
    errors = [abs(float(pred) / float(ms) - 1) for ms, pred in row.heldout]
    ranked = sorted(range(len(specs)), key=lambda i: (-errors[i], specs[i].key))
    ranked = ranked[: max(1, int(fraction * len(specs) + 1e-9))]
    return [specs[i] for i in ranked], [errors[i] for i in ranked]


def refine(
    s: Session, device: Device, kind: str, n: int, seed: int = 0, worst_fraction: float = 0.1
) -> dict[str, Any]:
    """Queue `n` new ops near those the current predictor of `kind` gets most wrong
    (held-out error), spread in proportion to that error; counts as `enqueue_ops`."""
    if kind not in MOVES:
        raise Invalid(f"kind: cannot refine {kind!r} (kinds: {', '.join(MOVES)})")
    row = latest(s, device).get(kind)
    if row is None:
        raise NotFound(
            f"device {device.name} has no {kind} predictor at revision {device.revision}; "
            f"run `hwlat train --device {device.name} --kind {kind}` first"
        )
    worst, errors = worst_heldout(s, device, row, worst_fraction)
    try:
        specs = refine_ops(kind, worst, n, seed, row.dtype, weights=errors)
    except ValueError as exc:
        raise Invalid(str(exc)) from None
    counts: dict[str, Any] = enqueue_ops(s, device, specs)
    return {**counts, "worst": len(worst), "worst_mean_abs_error": math.fsum(errors) / len(worst)}
