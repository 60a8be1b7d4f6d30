"""From a table sum to a whole-network estimate.

Summing per-op latencies misses what happens between ops (framework overhead per op,
fusion across ops, caches warm or cold from the previous op). Per device revision, a
small linear model is fitted on end-to-end network measurements:
    measured_ms ≈ a · table_sum_ms + b · ops + c
and its leave-one-out error is reported next to every calibrated estimate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import kendalltau
from sklearn.linear_model import LinearRegression

MIN_NETWORKS = 5


@dataclass(frozen=True)
class Calibration:
    coef: tuple[float, float]
    intercept: float
    networks: int
    rmspe: float  # leave-one-out
    within_5pct: float
    within_10pct: float
    raw_rmspe: float  # of the plain table sum, for comparison
    loo: tuple[float, ...] = ()  # leave-one-out estimate of each fitted network

    def apply(self, table_sum_ms: float, ops: int) -> float:
        return max(1e-6, self.coef[0] * table_sum_ms + self.coef[1] * ops + self.intercept)


def fit(sums: list[float], ops: list[int], measured: list[float]) -> Calibration:
    if len(sums) < MIN_NETWORKS:
        raise ValueError(
            f"networks: {len(sums)} measured end to end, calibration needs at "
            f"least {MIN_NETWORKS}; queue some with `hwlat validate`"
        )
    x = np.column_stack([sums, ops]).astype(np.float64)
    y = np.asarray(measured, dtype=np.float64)
    w = 1.0 / y**2  # relative error, as for the op predictors
    loo = np.empty_like(y)
    for i in range(len(y)):
        keep = np.arange(len(y)) != i
        loo[i] = (
            LinearRegression().fit(x[keep], y[keep], sample_weight=w[keep]).predict(x[i : i + 1])[0]
        )
    rel = (loo - y) / y
    raw = (np.asarray(sums) - y) / y
    full = LinearRegression().fit(x, y, sample_weight=w)
    return Calibration(
        (float(full.coef_[0]), float(full.coef_[1])),
        float(full.intercept_),
        len(y),
        float(math.sqrt(np.mean(rel**2))),
        float(np.mean(np.abs(rel) <= 0.05)),
        float(np.mean(np.abs(rel) <= 0.10)),
        float(math.sqrt(np.mean(raw**2))),
        tuple(float(v) for v in loo),
    )


def errors_of(estimate: list[float], measured: list[float]) -> dict[str, float]:
    """What `hwlat validate` and the dashboard report: relative |error| mean and max,
    share within ±5% and ±10%, and Kendall τ between estimate and measurement."""
    est, true = np.asarray(estimate), np.asarray(measured)
    rel = np.abs(est - true) / true
    tau = kendalltau(est, true).statistic if len(true) > 1 else float("nan")
    return {
        "mean_abs_error": float(rel.mean()),
        "max_abs_error": float(rel.max()),
        "within_5pct": float(np.mean(rel <= 0.05)),
        "within_10pct": float(np.mean(rel <= 0.10)),
        "kendall_tau": float(tau),
    }


def assess(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Raw and calibrated error of networks measured end to end, as `hwlat validate` and
    the dashboard report them. Each row has `measured_ms`, `table_sum_ms` and `ops`; each
    gets `calibrated_ms`, its estimate from a calibration fitted without it (LOO), when
    there are enough networks to calibrate. Returns `raw` and `calibrated` figures
    (`errors_of`), the `calibration` (None if none) and a `note` saying why not."""
    measured = [r["measured_ms"] for r in rows]
    sums = [r["table_sum_ms"] for r in rows]
    out: dict[str, Any] = {
        "raw": errors_of(sums, measured),
        "calibrated": None,
        "calibration": None,
        "note": None,
    }
    try:
        cal = fit(sums, [r["ops"] for r in rows], measured)
    except ValueError as exc:
        out["note"] = str(exc)
        return out
    for row, v in zip(rows, cal.loo, strict=True):
        row["calibrated_ms"] = v
    out["calibrated"], out["calibration"] = errors_of(list(cal.loo), measured), cal
    return out
