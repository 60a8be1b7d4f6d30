"""The candidate regressors: a roofline law on FLOPs and bytes, the kernel-level law
(one law per convolution kernel type, optionally per ONNX Runtime layout path), tree
ensembles on log latency, and a law corrected by trees fitted to its log residual.
Every one is seeded, so a refit on the same rows is identical."""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np
from sklearn.ensemble import (
    ExtraTreesRegressor,
    HistGradientBoostingRegressor,
    RandomForestRegressor,
)
from sklearn.linear_model import LinearRegression

from latency_service.predictors.features import layout_matrix, matrix
from latency_service.predictors.layout import (
    BLOCKS,
    mlas_matrix,
    nchwc,
    nchwc_matrix,
    padded_macs,
    reorder_elements,
)
from profiler.features import features, kernels
from profiler.ops import OpSpec

SEED = 0


class Predicts(Protocol):
    """What every candidate does: fit on (ops, latency ms), then estimate ops."""

    def fit(self, specs: list[OpSpec], ms: np.ndarray) -> Predicts: ...

    def predict(self, specs: list[OpSpec]) -> np.ndarray: ...


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
    FLOPs coefficient for both is what holds the plain roofline back on mbconv.

    With `layout=True` each kernel type splits by the path ONNX Runtime gives it (NCHWc
    or plain NCHW), MACs are counted with the channel padding NCHWc does, and the layout
    reorders get a term of their own (`layout.py`). The block size (16 or 8 channels)
    is the one whose law fits the training rows better."""

    def __init__(self, layout: bool = False) -> None:
        self.lr = LinearRegression(positive=True)
        self.scale = np.ones(1)
        self.layout = layout
        self.block = BLOCKS[0]

    def groups(self) -> list[str]:
        return [f"{k}{p}" for k in KERNELS for p in (("", "_nchw") if self.layout else ("",))]

    def columns(self, spec: OpSpec) -> list[float]:
        sums = {g: [0.0, 0.0, 0.0, 0.0] for g in self.groups()}
        costs = kernels(spec)
        for c in costs:
            if c.kernel not in KERNELS:
                continue
            fast = not self.layout or nchwc(c, self.block)
            row = sums[c.kernel if fast else c.kernel + "_nchw"]
            row[0] += padded_macs(c, self.block) if self.layout else c.macs
            row[1] += c.out
            row[2] += c.params
            row[3] += 1
        f = features(spec)
        extra = [f.input_bytes, f.output_bytes]
        if self.layout:
            extra.append(reorder_elements(costs, self.block) * spec.itemsize)
        return [v for g in self.groups() for v in sums[g]] + extra

    def _x(self, specs: list[OpSpec]) -> np.ndarray:
        return np.asarray([self.columns(s) for s in specs], dtype=np.float64) / self.scale

    def fit(self, specs: list[OpSpec], ms: np.ndarray) -> KernelRoofline:
        best = math.inf
        for block in BLOCKS if self.layout else (self.block,):
            self.block = block
            raw = np.asarray([self.columns(s) for s in specs], dtype=np.float64)
            scale = np.where(raw.max(axis=0) > 0, raw.max(axis=0), 1.0)  # conditioning only
            lr = LinearRegression(positive=True).fit(raw / scale, ms, sample_weight=1.0 / ms**2)
            err = float(np.mean((lr.predict(raw / scale) / ms - 1.0) ** 2))
            if err < best:
                best, chosen = err, (block, scale, lr)
        self.block, self.scale, self.lr = chosen
        return self

    def predict(self, specs: list[OpSpec]) -> np.ndarray:
        return np.maximum(self.lr.predict(self._x(specs)), 1e-6)

    def shares(self, specs: list[OpSpec]) -> np.ndarray:
        """(n, groups + 1): the fitted law's time per kernel group and for the block's
        traffic, as shares of its estimate (the intercept is not a part)."""
        k = len(self.groups())
        terms = self._x(specs) * self.lr.coef_  # (n, 4 per group + traffic terms)
        parts = terms[:, : 4 * k].reshape(len(specs), k, 4).sum(axis=2)  # (n, groups)
        parts = np.column_stack([parts, terms[:, 4 * k :].sum(axis=1)])
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
    layouts, per-call overhead); far better than trees alone on few rows, and with
    gradient boosting on the kernel law's residual better still on many (docs/
    BENCHMARKS.md, issue 6 first and second figures)."""

    def __init__(
        self,
        base: Roofline | KernelRoofline | None = None,
        trees: ExtraTreesRegressor | HistGradientBoostingRegressor | None = None,
        layout: bool = False,
        mlas: bool = False,
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
        # the trees also see where the kernel law puts the time and the SIMD padding,
        # and (mlas) how each convolution's shape fits MLAS's kernels
        self.layout = layout
        self.mlas = mlas

    def _x(self, specs: list[OpSpec], base: np.ndarray) -> np.ndarray:
        x = np.column_stack([matrix(specs), np.log(base)])
        if self.layout:
            assert isinstance(self.base, KernelRoofline)  # make() pairs them
            x = np.column_stack([x, self.base.shares(specs), layout_matrix(specs)])
            if self.base.layout:  # and which path ORT gives each kernel
                x = np.column_stack([x, nchwc_matrix(specs)])
        if self.mlas:
            x = np.column_stack([x, mlas_matrix(specs)])
        return x

    def fit(self, specs: list[OpSpec], ms: np.ndarray) -> RooflineForest:
        base = self.base.fit(specs, ms).predict(specs)
        self.trees.fit(self._x(specs, base), np.log(ms) - np.log(base))
        return self

    def predict(self, specs: list[OpSpec]) -> np.ndarray:
        base = self.base.predict(specs)
        return base * np.exp(self.trees.predict(self._x(specs, base)))


class Blend:
    """The geometric mean of fitted models' estimates: models whose errors differ (one
    from the kernels measured alone, one from the block's kernel law, one from the kernel
    networks) cancel part of each other's. The registry (`registry.py`) names the parts."""

    def __init__(self, parts: list[Predicts]) -> None:
        self.parts = parts

    def fit(self, specs: list[OpSpec], ms: np.ndarray) -> Blend:
        for model in self.parts:
            model.fit(specs, ms)
        return self

    def predict(self, specs: list[OpSpec]) -> np.ndarray:
        logs = [np.log(model.predict(specs)) for model in self.parts]
        return np.exp(np.mean(logs, axis=0))


BOOSTED_LAWS = ("kernel_gbm", "kernel_gbm_layout", "kernel_gbm_nchwc", "kernel_gbm_mlas")


def boosted_kernel_law(model: str) -> RooflineForest:
    """The kernel law corrected by gradient boosting, with the features `model` names:
    plain, + SIMD layout, + ORT's layout path, + the MLAS fit (each adds to the last)."""
    assert model in BOOSTED_LAWS, model
    boost = HistGradientBoostingRegressor(max_iter=500, learning_rate=0.05, random_state=SEED)
    law = KernelRoofline(layout=model in ("kernel_gbm_nchwc", "kernel_gbm_mlas"))
    return RooflineForest(law, boost, layout=model != "kernel_gbm", mlas=model == "kernel_gbm_mlas")
