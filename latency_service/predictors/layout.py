"""Where ONNX Runtime's x86 CPU execution provider runs each convolution of a block, and
what that costs beyond the arithmetic.

ORT rewrites convolutions into the blocked NCHWc layout (MLAS; channels in blocks of 16
with AVX-512, 8 with AVX2) when their channel counts allow, and leaves the rest in plain
NCHW (im2col + GEMM, much slower per MAC for grouped convolutions). In NCHWc a 24-channel
tensor is padded to 32, and every stretch of NCHWc convolutions costs a reorder in and a
reorder out. Ops that only run in NCHW (a channel shuffle, SE's mean and multiply) end a
stretch. The rules below were read off onnxruntime 1.31's NchwcTransformer and are checked
against the optimised graphs it writes (tests/latency_service/predictors/test_layout.py):

- dense (pw, conv, fc): NCHWc when cin < block (read straight from NCHW) or cin % 4 == 0;
- depthwise: NCHWc when the channel count is a multiple of 4;
- grouped: NCHWc when both channel counts per group are multiples of the block.

A device that does not follow them (ARM, another runtime) gets features that say
nothing; the trees then learn nothing from them.
"""

from __future__ import annotations

import math

import numpy as np

from profiler.features import Cost, kernels
from profiler.ops import OpSpec

BLOCKS = (16, 8)  # AVX-512, AVX2


def nchwc(c: Cost, block: int) -> bool:
    """Whether ORT runs this convolution in the NCHWc layout."""
    if c.kernel == "dw":
        return c.cin % 4 == 0
    if c.kernel == "gconv":
        return (c.cin // c.g) % block == 0 and (c.cout // c.g) % block == 0
    return c.cin < block or c.cin % 4 == 0


def padded_macs(c: Cost, block: int) -> float:
    """The MACs the kernel really does: NCHWc pads channel counts to whole blocks."""
    if not nchwc(c, block) or c.kernel == "gconv":  # a grouped one qualifies only aligned
        return float(c.macs)
    up = math.ceil(c.cout / block) * block / c.cout
    if c.kernel == "dw" or c.cin < block:  # dw: one channel count; small cin: read as is
        return c.macs * up
    return c.macs * up * math.ceil(c.cin / block) * block / c.cin


def reads_nchw(c: Cost, block: int) -> bool:
    """A dense kernel with fewer input channels than a block reads plain NCHW input."""
    return c.kernel in ("pw", "conv", "fc") and c.cin < block


def stretches(costs: list[Cost], block: int) -> list[tuple[int, int]]:
    """The runs of consecutive NCHWc kernels, as (first, last) indices into `costs`."""
    runs: list[tuple[int, int]] = []
    for i, c in enumerate(costs):
        if not nchwc(c, block):
            continue
        cut = c.after_nchw or reads_nchw(c, block) or (c.branch and not _joined(costs, i, block))
        if runs and runs[-1][1] == i - 1 and not cut:
            runs[-1] = (runs[-1][0], i)
        else:
            runs.append((i, i))
    return runs


def _joined(costs: list[Cost], i: int, block: int) -> bool:
    """Two branches (before `i` and from `i` to the end) concatenate in NCHWc when
    both outputs fill whole blocks; otherwise each is reordered back on its own."""
    return costs[i - 1].cout % block == 0 and costs[-1].cout % block == 0


def reorder_elements(costs: list[Cost], block: int) -> int:
    """Elements the layout reorders copy: each stretch's input (unless its first kernel
    reads NCHW directly) and its output."""
    total = 0
    for first, last in stretches(costs, block):
        head = costs[first]  # a second branch shares the first's reordered input
        shared = head.branch or reads_nchw(head, block)
        total += (0 if shared else head.inp) + costs[last].out
    return total


def layout_names() -> list[str]:
    per = ("nchw_mac_share", "padded_mac_ratio", "stretches", "log_reorder")
    return [f"{name}@{b}" for b in BLOCKS for name in per]


def nchwc_vector(spec: OpSpec) -> list[float]:
    """Per block size: the share of MACs left in plain NCHW, padded over real MACs, the
    number of NCHWc stretches and the elements their reorders copy (log)."""
    costs = kernels(spec)
    macs = sum(c.macs for c in costs)
    row: list[float] = []
    for b in BLOCKS:
        slow = sum(c.macs for c in costs if not nchwc(c, b))
        padded = sum(padded_macs(c, b) for c in costs)
        row += [
            slow / macs if macs else 0.0,
            padded / macs if macs else 1.0,
            float(len(stretches(costs, b))),
            math.log1p(reorder_elements(costs, b)),
        ]
    return row


def nchwc_matrix(specs: list[OpSpec]) -> np.ndarray:
    return np.asarray([nchwc_vector(s) for s in specs], dtype=np.float64)


def _interior_share(c: Cost, n: int) -> float:
    """The share of a k x k convolution's outputs whose window lies wholly inside the
    (square) input map: MLAS computes the others on a slower path that skips padding."""
    side_in = math.isqrt(max(c.inp // max(c.cin * n, 1), 1))
    side_out = math.isqrt(max(c.out // max(c.cout * n, 1), 1))
    s = 1 if side_out >= side_in else 2  # the blocks use strides 1 and 2
    pad = c.k // 2
    inside = sum(1 for o in range(side_out) if o * s >= pad and o * s - pad + c.k <= side_in)
    return (inside / side_out) ** 2 if side_out else 0.0


def mlas_fit(c: Cost, n: int, block: int) -> list[float]:
    """How well one convolution's shape fits MLAS's kernels: the share of filter slots
    left empty (dense NCHWc kernels compute 4 blocks of output channels at once), the
    interior share (depthwise), the output positions padded to 16 GEMM columns (plain
    NCHW convolutions are im2col + SGEMM) and the output side."""
    positions = max(c.out // max(c.cout * n, 1), 1)
    blocks = math.ceil(c.cout / block)
    dense = c.kernel in ("pw", "conv") and nchwc(c, block)
    empty = 1.0 - blocks / (math.ceil(blocks / 4) * 4) if dense else 0.0
    interior = _interior_share(c, n) if c.kernel in ("dw", "conv") else 1.0
    gemm = 0.0 if nchwc(c, block) else math.ceil(positions / 16) * 16 / positions - 1.0
    return [empty, interior, gemm, math.sqrt(positions)]


MLAS_TYPES = ("pw", "dw", "gconv", "conv")


def mlas_names() -> list[str]:
    per = ("empty_filter_slots", "interior_share", "gemm_column_padding", "output_side")
    return [f"{t}_{name}" for t in MLAS_TYPES for name in per]


def mlas_vector(spec: OpSpec, block: int = BLOCKS[0]) -> list[float]:
    """Per kernel type, the MAC-weighted mean of `mlas_fit` over the block's convolutions
    (zeros where the block has none of that type). Trees see from these what a channel
    count or a side alone cannot: a 4x4 depthwise map is all border, 40 output channels
    leave a quarter of a filter group empty."""
    costs = kernels(spec)
    n = spec.shape[0]
    row: list[float] = []
    for t in MLAS_TYPES:
        mine = [c for c in costs if c.kernel == t and c.macs > 0]
        macs = sum(c.macs for c in mine)
        if not macs:
            row += [0.0, 0.0, 0.0, 0.0]
            continue
        parts = np.asarray([mlas_fit(c, n, block) for c in mine])  # (kernels, 4)
        weights = np.asarray([c.macs for c in mine], dtype=np.float64) / macs
        row += list(weights @ parts)
    return row


def mlas_matrix(specs: list[OpSpec]) -> np.ndarray:
    return np.asarray([mlas_vector(s) for s in specs], dtype=np.float64)
