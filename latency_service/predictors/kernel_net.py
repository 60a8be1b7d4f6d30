"""A block as the sum of its kernels, each kernel's time learned by a small network.

latency ≈ Σ_kernels exp(net_type(kernel features)) + exp(net_block(block features))

One two-layer network per convolution kernel type (1x1, k x k, depthwise, grouped, fully
connected) maps a kernel's shape (channels, sides, stride, groups, the NCHWc path and
padding ONNX Runtime gives it, its MACs and bytes, how it fits MLAS's kernels) to the log
of its time inside the block; one more network gives what the block adds around its
kernels (layout reorders, SE's pooling and multiply, the residual add, the per-run
overhead). The whole sum is fitted to the block's measured latency on log error, so the
kernel networks are trained by every block that contains such a kernel: a 1x1 kernel
is one law seen in three places of every mbconv block, which a tree ensemble on the
block's features has to learn again for each place.

It is the kernel-level structure of nn-Meter, trained end to end on block labels instead
of on kernels measured alone. Alone it leads the trees on a few hundred blocks and
falls behind them on thousands (tiny maps most of all); its errors differ from theirs,
so its blends are what it is for (docs/BENCHMARKS.md, issue 6 eleventh and thirteenth
figures).

Plain numpy, full-batch Adam with a cosine schedule, seeded initial weights: a refit on
the same rows gives the same bits, which is how a predictor is stored. The networks run in
float32 (the features are standardised, the outputs logs), which cuts the fit time at
the same held-out accuracy (docs/BENCHMARKS.md, issue 6 twelfth figures); the sums and
the loss stay in float64.
"""

from __future__ import annotations

import math

import numpy as np

from latency_service.predictors.layout import (
    BLOCKS,
    mlas_fit,
    nchwc,
    padded_macs,
    reorder_elements,
    stretches,
)
from latency_service.predictors.models import SEED
from profiler._kinds import ACTS
from profiler.features import Cost, kernels
from profiler.ops import OpSpec

TYPES = ("pw", "conv", "dw", "gconv", "fc")
# a fit's inputs: (standardised features, owning row) per kernel type; block features
Inputs = tuple[list[tuple[np.ndarray, np.ndarray]], np.ndarray]
BLOCK = BLOCKS[0]  # the features use AVX-512's 16-channel blocks; 8 divides them


def _lg(x: float) -> float:
    return math.log2(1.0 + x)


def kernel_vector(c: Cost, n: int, act: str, last: bool) -> list[float]:
    """One kernel: its shape in log2, the NCHWc path and channel padding, MACs (real and
    padded), bytes touched, the MLAS fit (`layout.mlas_fit`) and its activation."""
    side_in = math.sqrt(max(c.inp // max(c.cin * n, 1), 1))
    side_out = math.sqrt(max(c.out // max(c.cout * n, 1), 1))
    empty, interior, gemm, _ = mlas_fit(c, n, BLOCK)
    return [
        _lg(c.cin),
        _lg(c.cout),
        _lg(side_in),
        _lg(side_out),
        float(c.k),
        _lg(c.g),
        float(nchwc(c, BLOCK)),
        math.ceil(c.cin / BLOCK) * BLOCK / c.cin,
        math.ceil(c.cout / BLOCK) * BLOCK / c.cout,
        _lg(c.macs),
        _lg(padded_macs(c, BLOCK)),
        _lg(4 * (c.inp + c.out + c.params)),
        empty,
        interior,
        gemm,
        float(c.after_nchw),
        float(c.branch),
        float(last),
        *[float(act == a) for a in ACTS],
    ]


def block_vector(spec: OpSpec, costs: list[Cost]) -> list[float]:
    """What the block does around its kernels: reorders, the residual add, SE's pooling
    and multiply, the grouped expansion's shuffle, its input and output sizes."""
    _, cin, h, w = spec.shape
    out = spec.out_shape
    area = out[2] * out[3] if len(out) == 4 else 1
    mid = cin * int(spec.p.get("e", 1))
    act = str(spec.p.get("act", "none"))
    return [
        float(spec.kind == "conv"),  # a kernel measured alone (joint training)
        _lg(reorder_elements(costs, BLOCK)),
        float(len(stretches(costs, BLOCK))),
        float(len(costs)),
        float(spec.p.get("res", 0)) * _lg(out[1] * area),
        float(spec.p.get("se", 0)) * _lg(mid * area),
        float(int(spec.p.get("g", 1)) > 1) * _lg(mid * h * w),
        _lg(cin * h * w),
        _lg(out[1] * area),
        *[float(act == a) for a in ACTS],
    ]


def encode(specs: list[OpSpec]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(kernel features (P, dk), kernel types (P,), owning row (P,), block features
    (N, db)) for N specs with P kernels between them."""
    feats, types, rows, blocks = [], [], [], []
    for r, spec in enumerate(specs):
        costs = kernels(spec)
        act = str(spec.p.get("act", "none"))
        for i, c in enumerate(costs):
            last = i == len(costs) - 1
            # mbconv's projection and SE's two FCs carry no block activation
            own = "none" if c.kernel == "fc" or (last and spec.kind == "mbconv") else act
            feats.append(kernel_vector(c, spec.shape[0], own, last))
            types.append(TYPES.index(c.kernel))
            rows.append(r)
        blocks.append(block_vector(spec, costs))
    width = len(kernel_vector(Cost(1, 1, "pw", 1, 1, 1, 1, 1), 1, "none", False))
    return (
        np.asarray(feats, dtype=np.float64).reshape(len(feats), width),
        np.asarray(types, dtype=np.int64),
        np.asarray(rows, dtype=np.int64),
        np.asarray(blocks, dtype=np.float64),
    )


class _Mlp:
    """x (m, d) -> SiLU -> SiLU -> (m,): the log of a time. Keeps what backward needs."""

    def __init__(self, d: int, hidden: int, rng: np.random.Generator, dtype: type) -> None:
        params = [
            rng.normal(0.0, 1.0 / math.sqrt(d), (d, hidden)),
            np.zeros(hidden),
            rng.normal(0.0, 1.0 / math.sqrt(hidden), (hidden, hidden)),
            np.zeros(hidden),
            rng.normal(0.0, 0.1 / math.sqrt(hidden), hidden),
            np.zeros(1),
        ]
        self.params: list[np.ndarray] = [p.astype(dtype) for p in params]

    def forward(self, x: np.ndarray) -> np.ndarray:
        w1, b1, w2, b2, w3, b3 = self.params
        self.x, self.z1 = x, x @ w1 + b1
        self.s1 = _sigmoid(self.z1)  # SiLU(z) = z·σ(z); σ is kept for the backward pass
        self.h1 = self.z1 * self.s1
        self.z2 = self.h1 @ w2 + b2
        self.s2 = _sigmoid(self.z2)
        self.h2 = self.z2 * self.s2
        return self.h2 @ w3 + b3[0]

    def backward(self, g: np.ndarray) -> list[np.ndarray]:
        """Gradients of the params, given d loss / d output (m,)."""
        _, _, w2, _, w3, _ = self.params
        d2 = np.outer(g, w3) * _dsilu(self.z2, self.s2)  # (m, hidden)
        d1 = (d2 @ w2.T) * _dsilu(self.z1, self.s1)
        return [
            self.x.T @ d1,
            d1.sum(0),
            self.h1.T @ d2,
            d2.sum(0),
            self.h2.T @ g,
            g.sum(keepdims=True),
        ]


def _sigmoid(z: np.ndarray) -> np.ndarray:
    # below -80, SiLU(z) = z·σ(z) is under 1e-32: the clip changes nothing that counts and
    # keeps exp(-z) from overflowing float32
    return 1.0 / (1.0 + np.exp(-np.maximum(z, -80.0)))


def _dsilu(z: np.ndarray, s: np.ndarray) -> np.ndarray:
    """d SiLU / dz, given σ(z)."""
    return s * (1.0 + z * (1.0 - s))


class KernelNet:
    """Σ kernels' exp(net) + exp(block net), fitted to log latency (see the module)."""

    def __init__(
        self,
        extra: tuple[list[OpSpec], np.ndarray] | None = None,
        steps: int = 4000,
        hidden: int = 48,
        lr: float = 1e-2,
        l2: float = 1e-4,
        dtype: type = np.float32,
    ) -> None:
        """`extra`: more rows every fit also trains on, the device's conv ops measured
        alone (`kernel_net_joint`): one kernel each, they teach the kernel networks the
        shapes a block's label mixes with others (tiny maps most of all)."""
        self.extra = extra
        self.steps, self.hidden, self.lr, self.l2 = steps, hidden, lr, l2
        self.dtype = dtype

    def _inputs(self, specs: list[OpSpec]) -> Inputs:
        return self._standardise(*encode(specs))

    def _standardise(
        self, feats: np.ndarray, types: np.ndarray, rows: np.ndarray, blocks: np.ndarray
    ) -> Inputs:
        """Standardised features, the kernels gathered by type once."""
        feats = ((feats - self.mu[0]) / self.sd[0]).astype(self.dtype)
        by_type = [(feats[types == t], rows[types == t]) for t in range(len(TYPES))]
        return by_type, ((blocks - self.mu[1]) / self.sd[1]).astype(self.dtype)

    def _forward(self, inputs: Inputs, n: int) -> tuple[np.ndarray, list[np.ndarray]]:
        """Each row's predicted time / scale, and each net's exp output in order."""
        by_type, blocks = inputs
        extra = np.exp(self.nets[-1].forward(blocks))
        total, parts = extra.astype(np.float64), []  # a copy: the sums and loss in float64
        for net, (feats, rows) in zip(self.nets[:-1], by_type, strict=True):
            part = np.exp(net.forward(feats)) if len(rows) else np.zeros(0)
            total += np.bincount(rows, weights=part, minlength=n)
            parts.append(part)
        return total, [*parts, extra]

    def fit(self, specs: list[OpSpec], ms: np.ndarray) -> KernelNet:
        if self.extra is not None:
            specs, ms = [*specs, *self.extra[0]], np.concatenate([ms, self.extra[1]])
        raw = encode(specs)
        feats, _, _, blocks = raw
        self.mu = (feats.mean(0), blocks.mean(0))
        self.sd = (feats.std(0) + 1e-6, blocks.std(0) + 1e-6)
        self.scale = float(np.exp(np.mean(np.log(ms))))  # the nets learn time / scale
        rng = np.random.default_rng(SEED)
        self.nets = [_Mlp(feats.shape[1], self.hidden, rng, self.dtype) for _ in TYPES]
        self.nets.append(_Mlp(blocks.shape[1], self.hidden, rng, self.dtype))
        inputs, y = self._standardise(*raw), np.log(np.asarray(ms) / self.scale)
        adam = _Adam([p for net in self.nets for p in net.params])
        for step in range(1, self.steps + 1):
            lr = self.lr * 0.5 * (1.0 + math.cos(math.pi * step / self.steps))
            adam.step(self._grads(inputs, y), lr, self.l2)
        return self

    def _grads(self, inputs: Inputs, y: np.ndarray) -> list[np.ndarray]:
        """Gradients of the mean squared log error, every net's params in order."""
        total, parts = self._forward(inputs, len(y))
        g_total = 2.0 * (np.log(total) - y) / (len(y) * total)  # d loss / d row total
        grads: list[np.ndarray] = []
        for net, (_, rows), part in zip(self.nets[:-1], inputs[0], parts[:-1], strict=True):
            if len(rows):  # d exp(o) / d o = exp(o); each kernel feeds its own row
                grads += net.backward((g_total[rows] * part).astype(self.dtype))
            else:  # no kernel of this type in these rows
                grads += [np.zeros_like(p) for p in net.params]
        block_g = (g_total * parts[-1]).astype(self.dtype)
        return grads + self.nets[-1].backward(block_g)  # the block net

    def predict(self, specs: list[OpSpec]) -> np.ndarray:
        total, _ = self._forward(self._inputs(specs), len(specs))
        return total * self.scale


class _Adam:
    """Adam (β 0.9, 0.999) with L2 on the weights, updating the arrays in place."""

    def __init__(self, params: list[np.ndarray]) -> None:
        self.params, self.t = params, 0
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]

    def step(self, grads: list[np.ndarray], lr: float, l2: float) -> None:
        self.t += 1
        fix1, fix2 = 1 - 0.9**self.t, 1 - 0.999**self.t
        for p, g, m, v in zip(self.params, grads, self.m, self.v, strict=True):
            g = g + l2 * p
            m *= 0.9
            m += 0.1 * g
            v *= 0.999
            v += 0.001 * g * g
            p -= lr * (m / fix1) / (np.sqrt(v / fix2) + 1e-8)
