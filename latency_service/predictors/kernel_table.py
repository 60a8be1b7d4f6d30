"""Blocks from their kernels measured alone: nn-Meter's kernel-level predictors.

`KernelTable` is a predictor of standalone `conv` ops, trained on the device's measured
convolutions (`hwlat jobs sample --kind mbconv --kernels`). A block's base estimate is the
sum of its kernels' estimates (`profiler.decompose`); `KernelTableBoost` then fits
gradient boosting to the log of measured / base, so the trees learn only what the block
adds to its kernels: SE, the residual add, the reorders between layouts, and what a
kernel gains when its input is still in cache.

The kernel predictor is fitted once per training, on every conv row of the revision,
and shared by all folds: the folds hold out blocks, not kernels, and a device's measured
kernels are what a lookup of an unseen block would have too.
"""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor

from latency_service.predictors.features import layout_matrix, matrix
from latency_service.predictors.layout import mlas_matrix, nchwc_matrix
from latency_service.predictors.models import SEED, boosted_kernel_law
from profiler.decompose import SLOTS, conv_slots
from profiler.ops import OpSpec

KERNEL_MIN = 100  # measured conv ops before a kernel table is worth fitting
CACHE_MAX = 100_000  # blocks whose kernel estimates a table keeps


class KernelTable:
    """Estimated latency (ms) of each kernel of a block, from measured standalone convs."""

    def __init__(self, specs: list[OpSpec], ms: np.ndarray) -> None:
        if len(specs) < KERNEL_MIN:
            raise ValueError(f"kernels: {len(specs)} measured conv ops, {KERNEL_MIN} needed")
        self.samples = len(specs)
        self.rows = (list(specs), np.asarray(ms, dtype=np.float64))  # for `kernel_net_joint`
        self.model = boosted_kernel_law("kernel_gbm_mlas").fit(specs, ms)
        self._known: dict[str, np.ndarray] = {}  # block key -> its parts (folds reuse them)

    def parts(self, specs: list[OpSpec]) -> np.ndarray:
        """(n, slots): each block's kernels' estimates in forward order, 0 where a block
        has no such kernel (an mbconv without expansion). Estimates are cached per block
        (CV folds and lookups ask for the same blocks again); the cache starts over when
        it would pass CACHE_MAX blocks."""
        found = {s.key: self._known.get(s.key) for s in specs}  # one read: threads share it
        new = [s for s in {s.key: s for s in specs}.values() if found[s.key] is None]
        slots = [conv_slots(spec) for spec in new]
        convs = [c for row in slots for c in row if c is not None]
        est = iter(self.model.predict(convs)) if convs else iter(())
        fresh = {
            spec.key: np.asarray([0.0 if c is None else next(est) for c in row])
            for spec, row in zip(new, slots, strict=True)
        }
        found.update(fresh)
        if len(self._known) + len(fresh) > CACHE_MAX:
            self._known = {}
        self._known.update(fresh)
        width = SLOTS[specs[0].kind] if specs else 0
        return np.asarray([found[s.key] for s in specs]).reshape(len(specs), width)


class KernelTableBoost:
    """measured ≈ Σ kernel estimates · exp(trees(block features)): boosting on the log
    residual of the kernel sum, seeing the block's features, each kernel's share of the
    sum, and the SIMD-layout, layout-path and MLAS-fit features of `kernel_gbm_mlas`."""

    def __init__(self, table: KernelTable) -> None:
        self.table = table
        self.trees = HistGradientBoostingRegressor(
            max_iter=500, learning_rate=0.05, random_state=SEED
        )

    def _x(self, specs: list[OpSpec], parts: np.ndarray) -> np.ndarray:
        base = parts.sum(axis=1)
        return np.column_stack(
            [
                matrix(specs),
                np.log(base),
                parts / base[:, None],  # (n, slots): where the kernels put the time
                layout_matrix(specs),
                nchwc_matrix(specs),
                mlas_matrix(specs),
            ]
        )

    def fit(self, specs: list[OpSpec], ms: np.ndarray) -> KernelTableBoost:
        parts = self.table.parts(specs)
        base = parts.sum(axis=1)
        self.trees.fit(self._x(specs, parts), np.log(ms) - np.log(base))
        return self

    def predict(self, specs: list[OpSpec]) -> np.ndarray:
        parts = self.table.parts(specs)
        return parts.sum(axis=1) * np.exp(self.trees.predict(self._x(specs, parts)))
