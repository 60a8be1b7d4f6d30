"""How a predictor does on its quiet labels.

Training reports its held-out shares against every label, however noisy the machine was
when it was measured. On a shared VM many labels can carry a measurement whose 95% CI
is wider than ±5%, and a predictor cannot be seen to be right about those (docs/
BENCHMARKS.md, issue 6 twelfth figures). The same held-out pairs, restricted to the ops
whose every measurement had a CI half-width within `QUIET_CI` of its median, say how
much of the shortfall is the labels' and how much the predictor's. A subset, not a
random sample: quiet ops tend to be the slower ones, so it is printed beside the overall
figure, never instead of it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from latency_service.models import Device, Measurement, Op, Predictor
from latency_service.predictors.training import metrics
from latency_service.repository.predictors import training_rows

QUIET_CI = 0.05  # a measurement is quiet when its 95% CI half-width is within 5% of it
MIN_QUIET = 20  # fewer quiet labels say too little to print a share


def widest_ci(s: Session, device: Device, row: Predictor) -> dict[str, float]:
    """Per op of the predictor's rows: its widest relative CI half-width (no CI: inf)."""
    found = s.execute(
        select(Op.key, Measurement.median_ms, Measurement.ci_half_width_ms)
        .join(Measurement, Measurement.op_id == Op.id)
        .where(
            Measurement.device_id == device.id,
            Measurement.revision == row.revision,
            Measurement.id <= row.watermark,
            Op.kind == row.kind,
        )
    )
    widest: dict[str, float] = {}
    for key, median, ci in found:
        rel = math.inf if ci is None or median <= 0 else ci / median
        widest[key] = max(widest.get(key, 0.0), rel)
    return widest


def quiet_metrics(
    s: Session, device: Device, row: Predictor, limit: float = QUIET_CI
) -> dict[str, Any] | None:
    """The predictor's held-out metrics on its quiet labels, with how many there were of
    how many; None below MIN_QUIET quiet labels."""
    rows = training_rows(s, device, row.kind, row.revision, row.watermark, row.dtype)
    keys = list(dict.fromkeys(spec.key for spec in rows.specs))  # the held-out pairs' order
    assert len(keys) == len(row.heldout), "a predictor's pairs are one per training op"
    widest = widest_ci(s, device, row)
    quiet = np.array([widest[k] <= limit for k in keys], dtype=bool)
    if quiet.sum() < MIN_QUIET:
        return None
    pairs = np.asarray(row.heldout, dtype=np.float64)  # (measured, predicted) per op
    return {
        "ci_limit": limit,
        "labels": int(quiet.sum()),
        "of": len(keys),
        **metrics(pairs[quiet, 1], pairs[quiet, 0]),
    }
