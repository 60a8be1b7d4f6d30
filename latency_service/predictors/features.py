"""The feature vector of an op for its kind's regressor: every spec parameter (integers
as numbers, categories one-hot), the input shape, and the analytic costs in log space."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from profiler._kinds import KINDS
from profiler.features import features
from profiler.ops import OpSpec

ANALYTIC = ("flops", "params", "input_bytes", "output_bytes", "weight_bytes")
# parameters added after predictors were stored: a stored predictor is rebuilt by
# retraining on its recipe, so its feature layout must not change under it; what they
# change shows in the analytic costs (mbconv's pw: the expansion's flops and params)
LATER = {"mbconv": ("pw",)}


def _params(kind: str) -> list[Any]:
    return [p for p in sorted(KINDS[kind].params, key=lambda q: q.name)
            if p.name not in LATER.get(kind, ())]  # fmt: skip


def feature_names(kind: str) -> list[str]:
    names = []
    for p in _params(kind):
        if p.type is int:
            names.append(p.name)
        else:
            names += [f"{p.name}={c}" for c in p.choices]
    names += ["n", "h", "w"]
    names += [f"log_{a}" for a in ANALYTIC] + ["intensity"]
    return names


def feature_vector(spec: OpSpec) -> list[float]:
    values = spec.p
    row: list[float] = []
    for p in _params(spec.kind):
        if p.type is int:
            row.append(float(values[p.name]))
        else:
            row += [float(values[p.name] == c) for c in p.choices]
    n, _, h, w = spec.shape
    row += [float(n), float(h), float(w)]
    f = features(spec)
    row += [math.log1p(getattr(f, a)) for a in ANALYTIC] + [f.arithmetic_intensity]
    return row


def matrix(specs: list[OpSpec]) -> np.ndarray:
    return np.asarray([feature_vector(s) for s in specs], dtype=np.float64)


LANES = (8, 16)  # floats per SIMD register: AVX2, AVX-512 (NEON's 4 divides both)


def layout_vector(spec: OpSpec) -> list[float]:
    """How much padding the block's channel counts need to fill whole SIMD blocks (ONNX
    Runtime's CPU convolutions run in the blocked NCHWc layout, so 20 channels cost like
    24 or 32), for the input, expanded and output widths, and whether the side is a
    multiple of 8. Trees cannot compute a remainder from a channel count themselves."""
    cin, cout = spec.shape[1], spec.out_shape[1]
    mid = cin * spec.num("e") if "e" in spec.p else cin
    pads = [math.ceil(c / b) * b / c for c in (cin, mid, cout) for b in LANES]
    return [*pads, float(spec.shape[2] % 8 == 0)]


def layout_matrix(specs: list[OpSpec]) -> np.ndarray:
    return np.asarray([layout_vector(s) for s in specs], dtype=np.float64)
