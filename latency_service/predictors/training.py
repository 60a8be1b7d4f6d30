"""Train one regressor per (device revision, op kind) and say how good it is.

Candidates (`models.py`): a random forest and histogram gradient boosting on log
latency, a roofline-style linear model (latency ≈ a·FLOPs + b·bytes + c, non-negative),
that roofline corrected by extra-trees on its log residual, and the kernel-level roofline
(one law per convolution kernel type, and per ONNX Runtime layout path) corrected by
extra-trees or by gradient boosting. k-fold cross-validation (seeded) picks the
candidate with the lowest RMSPE on held-out folds; its held-out predictions are kept
for the record. Everything is seeded, so retraining
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
from sklearn.model_selection import KFold
from threadpoolctl import ThreadpoolController

from latency_service.predictors.kernel_net import KernelNet
from latency_service.predictors.kernel_table import KERNEL_MIN, KernelTable, KernelTableBoost
from latency_service.predictors.models import (
    BOOSTED_LAWS,
    SEED,
    Blend,
    KernelRoofline,
    LogTree,
    Predicts,
    Roofline,
    RooflineForest,
    boosted_kernel_law,
)
from profiler.decompose import can_decompose
from profiler.ops import OpSpec

MIN_SAMPLES = 30


@cache
def _controller() -> ThreadpoolController:
    return ThreadpoolController()  # scans the loaded native libraries once


@contextmanager
def one_thread() -> Iterator[None]:
    """OpenMP (gradient boosting) and BLAS (the kernel networks) on one thread. The data
    are small: a fit on 80 rows took 0.09 s on one thread and 0.15 s on two, a kernel
    network on 300 rows 4.4 s on one BLAS thread and 11.7 s on two, and on a busy 2-vCPU
    machine the threads' synchronisation turned into minutes of system time. Limits set
    with omp_set_num_threads apply to the calling thread, so other threads keep theirs;
    OpenBLAS's limit is the process's, set for the fit and restored after it."""
    with _controller().limit(limits=1):  # every API: OpenMP and BLAS
        yield


Model = Predicts
MODELS = (
    "random_forest",
    "hist_gbm",
    "roofline",
    "roofline_forest",
    "kernel_roofline",
    "kernel_forest",
    "kernel_gbm",
    "kernel_gbm_layout",
    "kernel_gbm_nchwc",
    "kernel_gbm_mlas",
    "kernel_table_gbm",
    "kernel_table_blend",
    "kernel_net",
    "kernel_net_joint",
    "kernel_net_blend",
    "kernel_net_table_blend",
)
# candidates built on the device's measured kernels (`KernelTable`), offered only to kinds
# that decompose into convs, on devices with enough of them measured
KERNEL_MODELS = (
    "kernel_table_gbm",
    "kernel_table_blend",
    "kernel_net_joint",
    "kernel_net_table_blend",
)
# the kernel networks (`kernel_net.py`), offered from NET_MIN rows: a few hundred blocks
# are what they need to learn from, and below that they only cost the fit's time
NET_MODELS = ("kernel_net", "kernel_net_joint", "kernel_net_blend", "kernel_net_table_blend")
NET_MIN = 200
# Geometric means of other candidates (`models.Blend`). Their errors differ: on 1 540
# ort-mobile mbconv ops `kernel_table_blend` reached 88.4% within ±10% against 85.1% and
# 82.8% for its parts (BENCHMARKS, seventh figures); the networks' blends, eleventh
# figures. Each part refits on a fold to the same bits, so cross-validation takes a
# blend's held-out estimates from its parts' instead of fitting them again.
BLENDS = {
    "kernel_table_blend": ("kernel_table_gbm", "kernel_gbm_mlas"),
    "kernel_net_blend": ("kernel_net", "kernel_gbm_mlas"),
    "kernel_net_table_blend": ("kernel_net_joint", "kernel_table_blend"),
}


def make(model: str, table: KernelTable | None = None) -> Model:
    if model in KERNEL_MODELS and table is None:
        raise ValueError(f"{model}: needs the device's measured kernels (a KernelTable)")
    if model in BLENDS:
        return Blend([make(part, table) for part in BLENDS[model]])
    if model == "kernel_table_gbm":
        assert table is not None  # checked above
        return KernelTableBoost(table)
    if model == "kernel_net_joint":
        assert table is not None
        return KernelNet(extra=table.rows)
    if model == "kernel_net":
        return KernelNet()
    if model == "roofline":
        return Roofline()
    if model == "roofline_forest":
        return RooflineForest()
    if model == "kernel_roofline":
        return KernelRoofline()
    if model == "kernel_forest":
        return RooflineForest(KernelRoofline())
    if model in BOOSTED_LAWS:
        return boosted_kernel_law(model)
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
    kernels: int = 0  # measured conv ops its kernel table was fitted on (0: none used)

    @property
    def rmspe(self) -> float:
        return self.cv[self.model]["rmspe"]

    def predict(self, specs: list[OpSpec]) -> np.ndarray:
        with one_thread():
            return np.asarray(self.predictor.predict(specs))


def kernel_table(kind: str, kernels: tuple[list[OpSpec], np.ndarray] | None) -> KernelTable | None:
    """A kernel table for a kind that decomposes into convs, when enough are measured."""
    if kernels is None or not can_decompose(kind) or len(kernels[0]) < KERNEL_MIN:
        return None
    with one_thread():
        return KernelTable(*kernels)


def _no_kernels(kind: str) -> str:
    if not can_decompose(kind):
        return f"models: the kernel-table candidates do not apply to {kind} ops"
    return (
        f"models: the kernel-table candidates need at least {KERNEL_MIN} measured conv "
        f"ops of the device; queue them with `hwlat jobs sample --kind {kind}_kernels`"
    )


def _depth(model: str) -> int:
    """0 for a model, 1 + its deepest part's for a blend."""
    return 1 + max(_depth(p) for p in BLENDS[model]) if model in BLENDS else 0


def _offered(
    kind: str, models: tuple[str, ...], table: KernelTable | None, rows: int
) -> tuple[str, ...]:
    """The candidates that apply: kernel-table ones with a table, networks from NET_MIN
    rows. None left is an error that says what to measure."""
    kept = tuple(
        m
        for m in models
        if (m not in KERNEL_MODELS or table is not None)
        and (m not in NET_MODELS or rows >= NET_MIN)
    )
    if kept:
        return kept
    if any(m in KERNEL_MODELS for m in models):
        raise ValueError(_no_kernels(kind))
    raise ValueError(
        f"models: the kernel networks need at least {NET_MIN} measured {kind} ops, "
        f"there are {rows}; queue more with `hwlat jobs sample --kind {kind}`"
    )


def train(
    kind: str,
    specs: list[OpSpec],
    ms: list[float],
    folds: int = 5,
    models: tuple[str, ...] = MODELS,
    kernels: tuple[list[OpSpec], np.ndarray] | None = None,
) -> Trained:
    """Cross-validate every candidate, keep the best, refit it on all rows. `kernels`:
    the device's measured conv ops and their labels, for the kernel-table candidates
    (left out where there are too few, or the kind does not decompose into convs)."""
    if len(specs) < MIN_SAMPLES:
        raise ValueError(
            f"samples: {kind} has {len(specs)} measured ops, a predictor needs "
            f"at least {MIN_SAMPLES}; queue more with `hwlat jobs sample --kind "
            f"{kind}` and run an agent"
        )
    y = np.asarray(ms, dtype=np.float64)
    wants_table = any(m in KERNEL_MODELS for m in models)
    table = kernel_table(kind, kernels) if wants_table else None
    models = _offered(kind, models, table, len(specs))
    kfold = KFold(n_splits=min(folds, len(specs)), shuffle=True, random_state=SEED)
    splits = list(kfold.split(specs))
    cv: dict[str, dict[str, float]] = {}
    heldout: dict[str, np.ndarray] = {}
    with one_thread():
        for model in sorted(models, key=_depth):  # parts before their blends
            parts = BLENDS.get(model, ())
            if parts and all(p in heldout for p in parts):  # as Blend.predict computes it
                pred = np.exp(np.mean([np.log(heldout[p]) for p in parts], axis=0))
            else:
                pred = np.empty_like(y)
                for tr, te in splits:
                    fitted = make(model, table).fit([specs[i] for i in tr], y[tr])
                    pred[te] = fitted.predict([specs[i] for i in te])
            cv[model], heldout[model] = metrics(pred, y), pred
        best = min(models, key=lambda m: cv[m]["rmspe"])
        final = make(best, table).fit(specs, y)
    return Trained(
        kind,
        best,
        len(specs),
        cv,
        [(float(t), float(p)) for t, p in zip(y, heldout[best], strict=True)],
        final,
        table.samples if table is not None and best in KERNEL_MODELS else 0,
    )
