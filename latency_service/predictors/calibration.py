"""From a table sum to a whole-network estimate.

Summing per-op latencies misses what happens between ops (framework overhead per op,
fusion across ops, caches warm or cold from the previous op). Per device revision, a
small model is fitted on end-to-end network measurements, in one of two forms:
    linear: measured_ms ≈ a · table_sum_ms + b · ops + c   (fitted on relative error)
    power:  measured_ms ≈ e^c · table_sum_ms^a · ops^b     (least squares in log space)
Leave-one-out error picks the form, and is reported next to every calibrated estimate.
The power form is there because the sum can overestimate the smallest networks and
underestimate the largest: a bend a linear map cannot follow (docs/BENCHMARKS.md, issue 6
second and fourth figures).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import kendalltau
from sklearn.linear_model import LinearRegression

from latency_service.calibration_formula import estimate

MIN_NETWORKS = 5
FORMS = ("linear", "power")


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
    form: str = "linear"

    def apply(self, table_sum_ms: float, ops: int) -> float:
        return estimate(self.form, self.coef, self.intercept, table_sum_ms, ops)


def _fit(form: str, x: np.ndarray, y: np.ndarray) -> LinearRegression:
    if form == "power":
        return LinearRegression().fit(np.log(x), np.log(y))
    return LinearRegression().fit(x, y, sample_weight=1.0 / y**2)  # relative error


def _loo(form: str, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    out = np.empty_like(y)
    for i in range(len(y)):
        keep = np.arange(len(y)) != i
        model = _fit(form, x[keep], y[keep])
        out[i] = estimate(form, model.coef_, float(model.intercept_), *x[i])
    return out


def fit(sums: list[float], ops: list[int], measured: list[float]) -> Calibration:
    if len(sums) < MIN_NETWORKS:
        raise ValueError(
            f"networks: {len(sums)} measured end to end, calibration needs at "
            f"least {MIN_NETWORKS}; queue some with `hwlat validate`"
        )
    x = np.column_stack([sums, np.maximum(ops, 1)]).astype(np.float64)
    y = np.asarray(measured, dtype=np.float64)
    rel = {form: (_loo(form, x, y) - y) / y for form in FORMS}
    rmspe = {form: float(math.sqrt(np.mean(r**2))) for form, r in rel.items()}
    form = min(FORMS, key=lambda f: (rmspe[f], FORMS.index(f)))  # a tie keeps linear
    full = _fit(form, x, y)
    raw = (np.asarray(sums) - y) / y
    return Calibration(
        (float(full.coef_[0]), float(full.coef_[1])),
        float(full.intercept_),
        len(y),
        rmspe[form],
        float(np.mean(np.abs(rel[form]) <= 0.05)),
        float(np.mean(np.abs(rel[form]) <= 0.10)),
        float(math.sqrt(np.mean(raw**2))),
        tuple(float(v) for v in y * (1 + rel[form])),
        form,
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
    the dashboard report them. Each row has `measured_ms`, `table_sum_ms`, `ops` and
    optionally `scope`; each gets `calibrated_ms`, its estimate from a calibration fitted
    without it (LOO) on the rows of its scope, or on all rows when its scope has fewer
    than MIN_NETWORKS (as the service's estimates are fitted). Returns `raw` and
    `calibrated` figures (`errors_of`), the `calibration` of all rows (None if none) and
    a `note` saying why not."""
    measured = [r["measured_ms"] for r in rows]
    sums = [r["table_sum_ms"] for r in rows]
    ops = [r["ops"] for r in rows]
    out: dict[str, Any] = {
        "raw": errors_of(sums, measured),
        "calibrated": None,
        "calibration": None,
        "note": None,
    }
    try:
        pooled = fit(sums, ops, measured)
    except ValueError as exc:
        out["note"] = str(exc)
        return out
    loo = list(pooled.loo)
    scopes: dict[Any, list[int]] = {}
    for i, row in enumerate(rows):
        scopes.setdefault(row.get("scope"), []).append(i)
    for idx in scopes.values() if len(scopes) > 1 else ():
        if len(idx) >= MIN_NETWORKS:
            own = fit([sums[i] for i in idx], [ops[i] for i in idx], [measured[i] for i in idx])
            for i, v in zip(idx, own.loo, strict=True):
                loo[i] = v
    for row, v in zip(rows, loo, strict=True):
        row["calibrated_ms"] = v
    out["calibrated"], out["calibration"] = errors_of(loo, measured), pooled
    return out
