"""Predictors: train per (device revision, kind), store the recipe, rebuild on demand."""

from __future__ import annotations

import math
from itertools import groupby
from typing import Any, NamedTuple

import numpy as np
import sklearn
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from latency_service.errors import Conflict, Invalid, NotFound
from latency_service.models import Device, Measurement, Op, Predictor
from latency_service.predictors.kernel_table import KernelTable
from latency_service.predictors.registry import candidate, make, resolve
from latency_service.predictors.training import MIN_SAMPLES, Model, Trained, one_thread, train
from latency_service.repository import reference
from latency_service.repository.work import enqueue_ops
from profiler.decompose import can_decompose
from profiler.ops import OpSpec
from profiler.sampling import MOVES, refine_ops


class Rows(NamedTuple):
    """A predictor's training rows, in a fixed order (by op key, then measurement id):
    one per measurement, so an op measured again (`remeasure`) has several."""

    specs: list[OpSpec]
    ms: list[float]  # median of each measurement, as measured
    reference_ids: list[int | None]  # the reference reading of its batch
    run_ids: list[str]  # the agent run that measured it
    watermark: int  # the newest measurement id among them


# How an op's measurements make one label, kept in the predictor's record. "median": the
# median of their drift-divided values (log space), better than the newest alone
# (docs/BENCHMARKS.md, issue 6 sixth figures); records without it ("newest") rebuild
# from each op's newest measurement.
REPEATS = "median"


def training_rows(
    s: Session,
    device: Device,
    kind: str,
    revision: int | None = None,
    watermark: int | None = None,
    dtype: str | None = None,
) -> Rows:
    """Every measurement of `kind` at the revision, up to `watermark`. Rows of 0 ms are
    left out: they are a file's convention (ProxylessNAS's free `zero`), not a timing, and
    the regressors fit log latencies."""
    rev = device.revision if revision is None else revision
    q = (
        select(
            Op.key,
            Measurement.median_ms,
            Measurement.reference_id,
            Measurement.id,
            Measurement.run_id,
        )
        .join(Measurement, Measurement.op_id == Op.id)
        .where(Measurement.device_id == device.id, Measurement.revision == rev, Op.kind == kind)
        .where(Measurement.median_ms > 0)
    )
    if watermark is not None:
        q = q.where(Measurement.id <= watermark)
    rows = s.execute(q.order_by(Op.key, Measurement.id)).all()
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
) -> tuple[Rows, np.ndarray, dict[str, Any]]:
    """One label per op: each measurement with its batch's drift divided out
    (`reference.normalise`: per batch, shrunk toward the run's median), then an op's
    measurements combined as `REPEATS` says. Returns the ops (one row each, their newest
    measurement's ids), their labels and the record a predictor keeps. Training anew
    (`rebuild` false) uses every reading there is; a rebuild divides and combines as the
    predictor's record `drift` says: without a baseline, labels as measured; without
    `repeats`, each op's newest measurement."""
    if rebuild and (drift is None or "baseline" not in drift):
        ms, record = list(rows.ms), None
    else:
        ms, record = reference.normalise(
            s, device, revision, rows.reference_ids, rows.run_ids, rows.ms, drift
        )
    repeats = REPEATS if not rebuild else (drift or {}).get("repeats", "newest")
    ops, y = per_op(rows, np.asarray(ms, dtype=np.float64), repeats)
    return ops, y, {**(record or {}), "repeats": repeats}


def per_op(rows: Rows, y: np.ndarray, repeats: str) -> tuple[Rows, np.ndarray]:
    """Rows grouped by op (they come sorted by key, then id): each op's newest row, and
    its label — the median of its values in log space, or the newest value."""
    keep: list[int] = []
    out: list[float] = []
    for _, group in groupby(range(len(rows.specs)), key=lambda i: rows.specs[i].key):
        idx = list(group)
        keep.append(idx[-1])  # the op's newest row
        values = y[idx] if repeats == "median" else y[idx[-1:]]
        out.append(float(np.exp(np.median(np.log(values)))))
    ops = Rows(
        [rows.specs[i] for i in keep],
        [rows.ms[i] for i in keep],
        [rows.reference_ids[i] for i in keep],
        [rows.run_ids[i] for i in keep],
        rows.watermark,
    )
    return ops, np.asarray(out, dtype=np.float64)


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
    s: Session, device: Device, kinds: list[str] | None = None, models: list[str] | None = None
) -> tuple[list[Predictor], dict[str, str]]:
    """Train the asked kinds (default: every measured kind with enough samples) with the
    asked candidates (default: the registry's default set). Returns the new predictor
    rows and, per skipped kind, why."""
    candidates = _candidates(models)
    wanted = kinds or measured_kinds(s, device)
    made, skipped = [], {}
    for kind in wanted:
        rows = training_rows(s, device, kind)
        n_ops = len({sp.key for sp in rows.specs})
        if n_ops < MIN_SAMPLES:
            why = (
                f"{n_ops} measured ops, at least {MIN_SAMPLES} needed; queue more "
                f"with `hwlat jobs sample --device {device.name} --kind {kind}`"
            )
            if kinds:
                raise Invalid(f"kind {kind}: {why}")
            skipped[kind] = why
            continue
        ops, y, record = labels(s, device, device.revision, rows, None)
        kernels: tuple[list[OpSpec], np.ndarray] | None = None
        kernel_record: dict[str, Any] = {}
        if any(candidate(m).needs_kernels for m in candidates):  # else skip the conv rows
            kernels, kernel_record = kernel_labels(s, device, kind, ops.specs[0].dtype)
        try:
            # the request as asked: None is the default set, whose rules `train` applies
            trained = train(kind, ops.specs, list(y), models=models, kernels=kernels)
        except ValueError as exc:  # only candidates asked that do not apply here
            if kinds:
                raise Invalid(f"kind {kind}: {exc}") from None
            skipped[kind] = str(exc)
            continue
        if trained.kernels:  # the kernel rows it used, for a rebuild
            record = {**record, "kernels": kernel_record}
        made.append(_store(s, device, trained, ops, record))
    return made, skipped


def _candidates(models: list[str] | None) -> tuple[str, ...]:
    """The registry's default set (None), every candidate (["all"]) or those named, with
    the parts of the blends named."""
    try:
        return resolve(models)
    except ValueError as exc:
        raise Invalid(str(exc)) from None


def kernel_labels(
    s: Session, device: Device, kind: str, dtype: str
) -> tuple[tuple[list[OpSpec], np.ndarray] | None, dict[str, Any]]:
    """The device's measured conv ops (one label each, as `labels`) for a kind that
    decomposes into convs, and the record that rebuilds the same labels."""
    if not can_decompose(kind):
        return None, {}
    rows = training_rows(s, device, "conv", dtype=dtype)
    if not rows.specs:
        return None, {}
    ops, y, record = labels(s, device, device.revision, rows, None)
    return (ops.specs, y), {"watermark": rows.watermark, "labels": record}


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
    ops, y, _ = labels(s, device, row.revision, rows, row.drift, rebuild=True)
    table = None
    with one_thread():  # as in training: the same bits, and no threads fighting
        if candidate(row.model).needs_kernels:  # the same kernel rows, labelled the same way
            kept = (row.drift or {})["kernels"]
            conv = training_rows(s, device, "conv", row.revision, kept["watermark"], row.dtype)
            conv_ops, conv_y, _ = labels(s, device, row.revision, conv, kept["labels"], True)
            table = KernelTable(conv_ops.specs, conv_y)
        return make(row.model, table).fit(ops.specs, y)


def worst_heldout(
    s: Session, device: Device, row: Predictor, fraction: float
) -> tuple[list[OpSpec], list[float]]:
    """The `fraction` (at least one) of the predictor's training ops with the largest
    out-of-fold relative error |predicted / measured - 1|, worst first, with the errors."""
    rows = training_rows(s, device, row.kind, row.revision, row.watermark, row.dtype)
    specs = list({sp.key: sp for sp in rows.specs}.values())  # one per op, by key
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
