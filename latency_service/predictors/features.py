"""The feature vector of an op for its kind's regressor: every spec parameter (integers
as numbers, categories one-hot), the input shape, and the analytic costs in log space."""

from __future__ import annotations

import math

import numpy as np

from profiler._kinds import KINDS
from profiler.features import features
from profiler.ops import OpSpec

ANALYTIC = ("flops", "params", "input_bytes", "output_bytes", "weight_bytes")


def feature_names(kind: str) -> list[str]:
    names = []
    for p in sorted(KINDS[kind].params, key=lambda q: q.name):
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
    for p in sorted(KINDS[spec.kind].params, key=lambda q: q.name):
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
