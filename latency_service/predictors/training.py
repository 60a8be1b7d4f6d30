"""Train one regressor per (device revision, op kind) and say how good it is.

Candidates: a random forest and histogram gradient boosting on log latency, a
roofline-style linear model (latency ≈ a·FLOPs + b·bytes + c, non-negative), that
roofline corrected by extra-trees on its log residual, and the kernel-level roofline
(one law per convolution kernel type) corrected by extra-trees or by gradient boosting.
k-fold cross-validation (seeded) picks the candidate with the lowest RMSPE on held-out folds;
its held-out predictions are kept for the record. Everything is seeded, so retraining
on the same rows gives the same predictor: that is how predictors are "stored".
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np
from sklearn.ensemble import (
    ExtraTreesRegressor,
    HistGradientBoostingRegressor,
    RandomForestRegressor,
)
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import KFold
from threadpoolctl import ThreadpoolController

from latency_service.predictors.features import layout_matrix, matrix
from profiler.features import features, kernels
from profiler.ops import OpSpec

MIN_SAMPLES = 30
SEED = 0


@cache
def _controller() -> ThreadpoolController:
    return ThreadpoolController()  # scans the loaded native libraries once


@contextmanager
def one_thread() -> Iterator[None]:
    """OpenMP (gradient boosting) on one thread in this thread. The data are small: a
    fit on 80 rows took 0.09 s on one thread and 0.15 s on two, and on a busy 2-vCPU
    machine the threads' synchronisation turned into minutes of system time. Limits set
    with omp_set_num_threads apply to the calling thread, so other threads keep theirs."""
    with _controller().limit(limits=1, user_api="openmp"):
        yield


class Roofline:
    """latency_ms ≈ a·FLOPs + b·bytes moved + c with a, b >= 0, fitted on relative error."""

    def __init__(self) -> None:
        self.lr = LinearRegression(positive=True)

    @staticmethod
    def _x(specs: list[OpSpec]) -> np.ndarray:
        fs = [features(s) for s in specs]
        return np.asarray(
            [[f.flops, f.input_bytes + f.output_bytes + f.weight_bytes] for f in fs],
            dtype=np.float64,
        )

    def fit(self, specs: list[OpSpec], ms: np.ndarray) -> Roofline:
        # weights 1/y²: minimise relative, not absolute, error (small ops matter as much)
        self.lr.fit(self._x(specs), ms, sample_weight=1.0 / ms**2)
        return self

    def predict(self, specs: list[OpSpec]) -> np.ndarray:
        return np.maximum(self.lr.predict(self._x(specs)), 1e-6)


KERNELS = ("pw", "conv", "dw", "gconv", "fc")


class KernelRoofline:
    """The block as the sum of its convolution kernels (nn-Meter's kernel-level view,
    without kernel-level measurements): per kernel type a·MACs + b·outputs + c·weights +
    d per call, plus the block's input and output traffic, all non-negative, fitted on
    relative error. A depthwise MAC and a 1x1 MAC cost very differently on a CPU; one
    FLOPs coefficient for both is what holds the plain roofline back on mbconv."""

    def __init__(self) -> None:
        self.lr = LinearRegression(positive=True)
        self.scale = np.ones(1)

    @staticmethod
    def columns(spec: OpSpec) -> list[float]:
        sums = {k: [0.0, 0.0, 0.0, 0.0] for k in KERNELS}
        for c in kernels(spec):
            if c.kernel in sums:
                row = sums[c.kernel]
                row[0] += c.macs
                row[1] += c.out
                row[2] += c.params
                row[3] += 1
        f = features(spec)
        return [v for k in KERNELS for v in sums[k]] + [f.input_bytes, f.output_bytes]

    def _x(self, specs: list[OpSpec]) -> np.ndarray:
        return np.asarray([self.columns(s) for s in specs], dtype=np.float64) / self.scale

    def fit(self, specs: list[OpSpec], ms: np.ndarray) -> KernelRoofline:
        raw = np.asarray([self.columns(s) for s in specs], dtype=np.float64)
        self.scale = np.where(raw.max(axis=0) > 0, raw.max(axis=0), 1.0)  # conditioning only
        self.lr.fit(raw / self.scale, ms, sample_weight=1.0 / ms**2)
        return self

    def predict(self, specs: list[OpSpec]) -> np.ndarray:
        return np.maximum(self.lr.predict(self._x(specs)), 1e-6)

    def shares(self, specs: list[OpSpec]) -> np.ndarray:
        """(n, 6): the fitted law's time per kernel type and for the block's input and
        output traffic, as shares of its estimate (the intercept is not a part)."""
        terms = self._x(specs) * self.lr.coef_  # (n, 4 per kernel type + 2)
        parts = terms[:, : 4 * len(KERNELS)].reshape(len(specs), len(KERNELS), 4).sum(axis=2)
        parts = np.column_stack([parts, terms[:, 4 * len(KERNELS) :].sum(axis=1)])
        return parts / np.maximum(self.predict(specs), 1e-9)[:, None]


class LogTree:
    """A tree ensemble on the feature vector, fitted to log latency."""

    def __init__(self, model: str):
        self.model = (
            RandomForestRegressor(n_estimators=200, min_samples_leaf=1, n_jobs=1, random_state=SEED)
            if model == "random_forest"
            else HistGradientBoostingRegressor(max_iter=300, learning_rate=0.05, random_state=SEED)
        )

    def fit(self, specs: list[OpSpec], ms: np.ndarray) -> LogTree:
        self.model.fit(matrix(specs), np.log(ms))
        return self

    def predict(self, specs: list[OpSpec]) -> np.ndarray:
        return np.exp(self.model.predict(matrix(specs)))


class RooflineForest:
    """The roofline's estimate, corrected by trees fitted to its log residual: the
    physics carries the scale, the trees learn what the runtime adds (kernel choice,
    layouts, per-call overhead). On 400 measured mbconv ops (ort-cpu) extra-trees took
    the held-out share within ±10% from 32-40% (trees alone) to 52%; on 1 600, gradient
    boosting on the kernel roofline's residual reached 80% against extra-trees' 77%."""

    def __init__(
        self,
        base: Roofline | KernelRoofline | None = None,
        trees: ExtraTreesRegressor | HistGradientBoostingRegressor | None = None,
        layout: bool = False,
    ) -> None:
        self.base = base or Roofline()
        # `is None`, not `or`: an unfitted ensemble's len() raises
        self.trees = (
            trees
            if trees is not None
            else ExtraTreesRegressor(
                n_estimators=300, min_samples_leaf=2, n_jobs=1, random_state=SEED
            )
        )
        # the trees also see where the kernel law puts the time and the SIMD padding
        self.layout = layout

    def _x(self, specs: list[OpSpec], base: np.ndarray) -> np.ndarray:
        x = np.column_stack([matrix(specs), np.log(base)])
        if self.layout:
            assert isinstance(self.base, KernelRoofline)  # make() pairs them
            x = np.column_stack([x, self.base.shares(specs), layout_matrix(specs)])
        return x

    def fit(self, specs: list[OpSpec], ms: np.ndarray) -> RooflineForest:
        base = self.base.fit(specs, ms).predict(specs)
        self.trees.fit(self._x(specs, base), np.log(ms) - np.log(base))
        return self

    def predict(self, specs: list[OpSpec]) -> np.ndarray:
        base = self.base.predict(specs)
        return base * np.exp(self.trees.predict(self._x(specs, base)))


Model = Roofline | KernelRoofline | LogTree | RooflineForest
MODELS = (
    "random_forest",
    "hist_gbm",
    "roofline",
    "roofline_forest",
    "kernel_roofline",
    "kernel_forest",
    "kernel_gbm",
    "kernel_gbm_layout",
)


def make(model: str) -> Model:
    if model == "roofline":
        return Roofline()
    if model == "roofline_forest":
        return RooflineForest()
    if model == "kernel_roofline":
        return KernelRoofline()
    if model == "kernel_forest":
        return RooflineForest(KernelRoofline())
    if model in ("kernel_gbm", "kernel_gbm_layout"):
        boost = HistGradientBoostingRegressor(max_iter=500, learning_rate=0.05, random_state=SEED)
        return RooflineForest(KernelRoofline(), boost, layout=model == "kernel_gbm_layout")
    return LogTree(model)


def metrics(pred: np.ndarray, true: np.ndarray) -> dict[str, float]:
    rel = (pred - true) / true
    return {
        "rmspe": float(math.sqrt(np.mean(rel**2))),
        "within_5pct": float(np.mean(np.abs(rel) <= 0.05)),
        "within_10pct": float(np.mean(np.abs(rel) <= 0.10)),
        "max_abs_rel": float(np.max(np.abs(rel))),
    }


@dataclass
class Trained:
    kind: str
    model: str
    samples: int
    cv: dict[str, dict[str, float]]  # model -> held-out metrics
    heldout: list[tuple[float, float]] = field(default_factory=list)  # (measured, predicted)
    predictor: Any = None

    @property
    def rmspe(self) -> float:
        return self.cv[self.model]["rmspe"]

    def predict(self, specs: list[OpSpec]) -> np.ndarray:
        with one_thread():
            return np.asarray(self.predictor.predict(specs))


def train(
    kind: str,
    specs: list[OpSpec],
    ms: list[float],
    folds: int = 5,
    models: tuple[str, ...] = MODELS,
) -> Trained:
    """Cross-validate every candidate, keep the best, refit it on all rows."""
    if len(specs) < MIN_SAMPLES:
        raise ValueError(
            f"samples: {kind} has {len(specs)} measured ops, a predictor needs "
            f"at least {MIN_SAMPLES}; queue more with `hwlat jobs sample --kind "
            f"{kind}` and run an agent"
        )
    y = np.asarray(ms, dtype=np.float64)
    kfold = KFold(n_splits=min(folds, len(specs)), shuffle=True, random_state=SEED)
    cv, heldout = {}, {}
    with one_thread():
        for model in models:
            pred = np.empty_like(y)
            for tr, te in kfold.split(specs):
                fitted = make(model).fit([specs[i] for i in tr], y[tr])
                pred[te] = fitted.predict([specs[i] for i in te])
            cv[model], heldout[model] = metrics(pred, y), pred
        best = min(models, key=lambda m: cv[m]["rmspe"])
        final = make(best).fit(specs, y)
    return Trained(
        kind,
        best,
        len(specs),
        cv,
        [(float(t), float(p)) for t, p in zip(y, heldout[best], strict=True)],
        final,
    )
