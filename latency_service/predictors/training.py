"""Train one regressor per (device revision, op kind) and say how good it is.

The candidates are in `registry.py` (the default set, or the ones asked for, or all).
k-fold cross-validation (seeded) picks the candidate with the lowest RMSPE on held-out
folds; its held-out predictions are kept for the record. Everything is seeded, so
retraining on the same rows gives the same predictor: that is how predictors are
"stored".
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np
from sklearn.model_selection import KFold
from threadpoolctl import ThreadpoolController

from latency_service.predictors.kernel_table import KERNEL_MIN, KernelTable
from latency_service.predictors.models import SEED, Predicts
from latency_service.predictors.registry import candidate, make, resolve, without_superseded
from profiler.decompose import can_decompose
from profiler.ops import OpSpec

MIN_SAMPLES = 30


@cache
def _controller() -> ThreadpoolController:
    return ThreadpoolController()  # scans the loaded native libraries once


@contextmanager
def one_thread() -> Iterator[None]:
    """OpenMP (gradient boosting) and BLAS (the kernel networks) on one thread. The data
    are small, so a second thread mostly adds synchronisation: fits were slower on two
    threads than on one, and on a busy 2-vCPU machine the threads' waiting turned into
    minutes of system time. Limits set
    with omp_set_num_threads apply to the calling thread, so other threads keep theirs;
    OpenBLAS's limit is the process's, set for the fit and restored after it."""
    with _controller().limit(limits=1):  # every API: OpenMP and BLAS
        yield


Model = Predicts


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
        f"ops of the device; queue them with `hwlat jobs sample --kind {kind} --kernels`"
    )


def _offered(
    kind: str, models: tuple[str, ...], table: KernelTable | None, rows: int
) -> tuple[str, ...]:
    """The candidates that apply: those needing kernels with a table, each from its
    minimum of rows. None left is an error that says what to measure."""
    kept = tuple(
        m
        for m in models
        if (table is not None or not candidate(m).needs_kernels) and rows >= candidate(m).min_rows
    )
    if kept:
        return kept
    if any(candidate(m).needs_kernels for m in models):
        raise ValueError(_no_kernels(kind))
    need = min(candidate(m).min_rows for m in models)
    raise ValueError(
        f"models: {', '.join(models)}: at least {need} measured {kind} ops needed, "
        f"there are {rows}; queue more with `hwlat jobs sample --kind {kind}`"
    )


def _cross_validate(
    offered: tuple[str, ...],
    specs: list[OpSpec],
    y: np.ndarray,
    folds: int,
    table: KernelTable | None,
) -> tuple[dict[str, dict[str, float]], dict[str, np.ndarray]]:
    """Held-out metrics and estimates of each candidate over seeded k folds."""
    kfold = KFold(n_splits=min(folds, len(specs)), shuffle=True, random_state=SEED)
    splits = list(kfold.split(specs))
    cv: dict[str, dict[str, float]] = {}
    heldout: dict[str, np.ndarray] = {}
    with one_thread():
        for model in offered:  # registration order: parts before their blends
            parts = candidate(model).parts
            if parts and all(p in heldout for p in parts):  # as Blend.predict computes it
                pred = np.exp(np.mean([np.log(heldout[p]) for p in parts], axis=0))
            else:
                pred = np.empty_like(y)
                for tr, te in splits:
                    fitted = make(model, table).fit([specs[i] for i in tr], y[tr])
                    pred[te] = fitted.predict([specs[i] for i in te])
            cv[model], heldout[model] = metrics(pred, y), pred
    return cv, heldout


def train(
    kind: str,
    specs: list[OpSpec],
    ms: list[float],
    folds: int = 5,
    models: Sequence[str] | None = None,
    kernels: tuple[list[OpSpec], np.ndarray] | None = None,
) -> Trained:
    """Cross-validate the candidates (`registry.resolve(models)`: None is the default
    set), keep the best, refit it on all rows. `kernels`:
    the device's measured conv ops and their labels, for the kernel-table candidates
    (left out where there are too few, or the kind does not decompose into convs)."""
    if len(specs) < MIN_SAMPLES:
        raise ValueError(
            f"samples: {kind} has {len(specs)} measured ops, a predictor needs "
            f"at least {MIN_SAMPLES}; queue more with `hwlat jobs sample --kind "
            f"{kind}` and run an agent"
        )
    y = np.asarray(ms, dtype=np.float64)
    asked = resolve(models)
    wants_table = any(candidate(m).needs_kernels for m in asked)
    table = kernel_table(kind, kernels) if wants_table else None
    offered = _offered(kind, asked, table, len(specs))
    if models is None:
        offered = without_superseded(offered)
    cv, heldout = _cross_validate(offered, specs, y, folds, table)
    best = min(offered, key=lambda m: cv[m]["rmspe"])
    with one_thread():
        final = make(best, table).fit(specs, y)
    return Trained(
        kind,
        best,
        len(specs),
        cv,
        [(float(t), float(p)) for t, p in zip(y, heldout[best], strict=True)],
        final,
        table.samples if table is not None and candidate(best).needs_kernels else 0,
    )
