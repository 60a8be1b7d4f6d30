"""Single-Path NAS's super-kernel: every MBConv candidate of a layer as one weight.

A layer whose candidates are MBConv blocks with kernels K = (k_0 < k_1 < ...) and
expansions E = (e_0 < e_1 < ...) (the full grid, same input, output and stride), and
maybe the identity (`zero` / `skip` on a residual layer), is held as ONE MBConv at the
largest kernel and expansion. A candidate is a subset of its weights:

- kernel: the k_0 x k_0 centre of the depthwise kernel, plus the ring k_1 \\ k_0 when
  d_k1 is on, plus the ring k_2 \\ k_1 when d_k1 and d_k2 are on (3x3 -> 5x5 -> 7x7);
- expansion: the first cin·e_0 hidden channels when d_e0 is on, the next
  cin·(e_1 - e_0) when d_e1 is on too (e3 -> e6); d_e0 off is the identity (the block's
  whole output is switched off, the residual stays), only where the layer allows it.

    w_k = w_k0 + d_k1·(w_k1\\k0 + d_k2·w_k2\\k1)
    out = x + d_e0·project(h ⊙ (m_e0 + d_e1·m_e1\\e0))   (residual layers; else no x, d_e0 = 1)

An indicator d is 1(‖w_outer‖² > t) in the paper; the search passes its value (hard, 0 or
1) with a gradient of its own (core/thresholds.py). The channel indicators act on the
hidden activations after the depthwise conv's BN and activation (applied to the
projection's input columns, which is the same and keeps no second copy of h), not on
the depthwise kernel as the reference code does: a zeroed kernel channel still goes
through BN, whose output for a constant input is its bias (so "off" is not off) and
whose gradient there is scaled by 1/√ε. Masking after it, the inner k_0/e_0
super-kernel with every indicator off computes exactly the plain k_0 e_0 MBConv with
the same weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from profiler.blocks import MBConv, build_module
from profiler.ops import OpSpec
from searchers.spaces._chain import ChainSpace
from searchers.spaces.base import Layer

Value = torch.Tensor | float


@dataclass(frozen=True)
class Indicators:
    """One layer's decisions: `kernel` (d_k1, d_k2, ...: len(K) - 1 values) and `channel`
    (d_e0, d_e1, ...: len(E) values; d_e0 is 1 where the layer has no identity)."""

    kernel: Sequence[Value]
    channel: Sequence[Value]


@dataclass(frozen=True)
class Grid:
    """Which table column each (kernel, expansion) of a layer is, and its identity."""

    kernels: tuple[int, ...]
    expansions: tuple[int, ...]
    column: dict[tuple[int, int], int]  # (k, e) -> table column
    skip: int | None  # table column of the identity candidate, when the layer has one

    @property
    def n_kernel(self) -> int:
        return len(self.kernels) - 1

    def decisions(self, col: int) -> tuple[list[float], list[float]]:
        """The hard indicator values that select table column `col`."""
        if col == self.skip:
            return [0.0] * self.n_kernel, [0.0] * len(self.expansions)
        k, e = next(ke for ke, c in self.column.items() if c == col)
        ki, ei = self.kernels.index(k), self.expansions.index(e)
        kernel = [float(i < ki) for i in range(self.n_kernel)]
        return kernel, [float(i <= ei) for i in range(len(self.expansions))]


def representable(op: OpSpec | None) -> bool:
    """A candidate the super-kernel can be: an MBConv without groups or squeeze-excite,
    with its 1x1 expansion (an e1 block without one, FBNet's `ir_k*_e1`, is not the first
    cin channels of a larger expansion: those go through a 1x1 conv, BN and activation)."""
    if op is None or op.kind != "mbconv" or op.num("g") != 1 or op.p["se"]:
        return False
    return op.num("e") > 1 or bool(op.p["pw"])


def is_identity(op: OpSpec | None) -> bool:
    return op is not None and op.kind == "skip" and op.num("s") == 1


def layer_grid(layer: Layer, columns: Sequence[str]) -> Grid:
    """The layer's super-kernel grid; a ValueError when its MBConvs are not a full
    kernel x expansion grid of one shape (what the super-kernel cannot hold)."""
    blocks: dict[str, OpSpec] = {}
    for c in layer.legal:
        if c.op is not None and representable(c.op):
            blocks[c.name] = c.op
    if not blocks:
        raise ValueError(f"{layer.name}: no MBConv candidate for a super-kernel")
    ops = list(blocks.values())
    shape = {(o.shape, o.num("cin"), o.num("cout"), o.num("s"), o.p["act"]) for o in ops}
    ks = tuple(sorted({o.num("k") for o in ops}))
    es = tuple(sorted({o.num("e") for o in ops}))
    column = {(o.num("k"), o.num("e")): list(columns).index(n) for n, o in blocks.items()}
    if len(shape) > 1 or len(column) != len(ks) * len(es) or len(column) != len(blocks):
        raise ValueError(
            f"{layer.name}: the MBConv candidates are not one full kernel x expansion grid "
            f"({sorted(blocks)}); Single-Path NAS nests k and e in one super-kernel"
        )
    residual = bool(ops[0].p["res"])
    skip = next((c for c in layer.legal if is_identity(c.op)), None) if residual else None
    return Grid(ks, es, column, None if skip is None else list(columns).index(skip.name))


def grid_spec(layer: Layer, grid: Grid, columns: Sequence[str]) -> OpSpec:
    """The largest candidate: the super-kernel's weights."""
    name = columns[grid.column[(grid.kernels[-1], grid.expansions[-1])]]
    return next(c.op for c in layer.legal if c.op is not None and c.name == name)


class SuperKernel(nn.Module):
    """One layer: the largest MBConv's modules, run with nested masks."""

    def __init__(self, layer: Layer, columns: Sequence[str]):
        super().__init__()
        self.name = layer.name
        self.grid = layer_grid(layer, columns)
        spec = grid_spec(layer, self.grid, columns)
        self.block = MBConv(spec)  # expand, depthwise, project at k_max, e_max
        self.residual, self.stride = bool(spec.p["res"]), spec.num("s")
        k_max, cin = self.grid.kernels[-1], spec.num("cin")
        # rings[i]: the k_i x k_i centre minus the k_(i-1) x k_(i-1) one (ring 0: the centre)
        rings = torch.zeros(len(self.grid.kernels), k_max, k_max)
        for i, k in enumerate(self.grid.kernels):
            lo = (k_max - k) // 2
            rings[i, lo : lo + k, lo : lo + k] = 1.0
            rings[i] -= rings[:i].sum(0)
        # groups[j]: the hidden channels e_(j-1)·cin .. e_j·cin
        mid = cin * self.grid.expansions[-1]
        groups = torch.zeros(len(self.grid.expansions), mid)
        bounds = (0, *(cin * e for e in self.grid.expansions))
        for j in range(len(self.grid.expansions)):
            groups[j, bounds[j] : bounds[j + 1]] = 1.0
        self.register_buffer("rings", rings)
        self.register_buffer("groups", groups)

    def conv(self) -> nn.Conv2d:
        """The depthwise convolution whose weight is the super-kernel."""
        return cast(nn.Conv2d, self.block.depthwise[0])

    def kernel(self, d: Indicators) -> torch.Tensor:
        """The depthwise weight with the rings that are off zeroed: [mid, 1, k_max, k_max]."""
        rings: torch.Tensor = self.rings  # type: ignore[assignment]
        mask = rings[-1]
        for i in range(len(rings) - 1, 0, -1):  # nested from the outside in
            mask = rings[i - 1] + d.kernel[i - 1] * mask
        return self.conv().weight * mask

    def channels(self, d: Indicators) -> torch.Tensor:
        """The hidden-channel mask [mid], without d_e0 (it switches the whole output)."""
        groups: torch.Tensor = self.groups  # type: ignore[assignment]
        mask = groups[-1]
        for j in range(len(groups) - 1, 0, -1):
            mask = groups[j - 1] + d.channel[j] * mask
        return mask

    def outer_norms(self) -> torch.Tensor:
        """log ‖w‖² of each indicator's weight subset, in `Indicators` order: the kernel
        rings over all channels, then each channel group's whole depthwise kernel (the
        reference code masks it by the kernel decision first; kept apart here, so one
        decision's straight-through gradient does not flow into the other's signal)."""
        rings: torch.Tensor = self.rings  # type: ignore[assignment]
        groups: torch.Tensor = self.groups  # type: ignore[assignment]
        w = self.conv().weight.squeeze(1)  # [mid, k, k]
        sq = w.pow(2)
        kernel = [(sq * ring).sum() for ring in rings[1:]]
        per_channel = sq.sum((1, 2))  # [mid]
        channel = [per_channel @ g for g in groups]
        return torch.log(torch.stack([*kernel, *channel]).clamp_min(1e-30))

    def forward(self, x: torch.Tensor, d: Indicators) -> torch.Tensor:
        b, conv = self.block, self.conv()
        h = b.expand(x)
        _, bn, act = b.depthwise
        pad = conv.kernel_size[0] // 2
        h = F.conv2d(h, self.kernel(d), None, self.stride, pad, groups=conv.groups)
        h = act(bn(h))  # (N, mid, H, W)
        # a hidden channel switched off is an input column of the 1x1 projection switched
        # off: the same output and gradients as masking h, without a second copy of h
        proj, proj_bn, proj_act = b.project
        w = cast(nn.Conv2d, proj).weight * self.channels(d)[None, :, None, None]
        y = proj_act(proj_bn(F.conv2d(h, w)))
        if not self.residual:
            return y
        on = d.channel[0] if self.grid.skip is not None else 1.0
        return x + on * y


class SuperKernelNet(nn.Module):
    """A chain space's supernet with one super-kernel per layer: stem, layers, tail."""

    def __init__(self, space: ChainSpace):
        super().__init__()
        fixed, n = space.fixed_ops(), space.n_stem
        self.stem = nn.Sequential(*(build_module(op) for op in fixed[:n]))
        self.layers = nn.ModuleList(
            SuperKernel(layer, space.candidates) for layer in space.layers()
        )
        self.tail = nn.Sequential(*(build_module(op) for op in fixed[n:]))
        self.width = len(space.candidates)
        self.train()

    def forward(self, x: torch.Tensor, plan: Sequence[Indicators]) -> torch.Tensor:
        x = self.stem(x)
        for layer, d in zip(self.layers, plan, strict=True):
            x = layer(x, d)
        return self.tail(x).flatten(1)  # (N, classes, [1, 1]) -> (N, classes)

    def grids(self) -> list[Grid]:
        return [k.grid for k in self.kernels()]

    def kernels(self) -> list[SuperKernel]:
        return [cast(SuperKernel, layer) for layer in self.layers]

    def mask(self) -> torch.Tensor:
        """[layers x candidates]: the candidates a super-kernel holds."""
        return grid_mask(self.grids(), self.width)

    def log_norms(self) -> torch.Tensor:
        """[layers x n] log ‖w_outer‖² per indicator, padded with 0 to the widest layer."""
        norms = [k.outer_norms() for k in self.kernels()]
        width = max(len(n) for n in norms)
        return torch.stack([F.pad(n, (0, width - len(n))) for n in norms])


def grid_mask(grids: Sequence[Grid], width: int) -> torch.Tensor:
    mask = torch.zeros(len(grids), width, dtype=torch.bool)
    for row, g in enumerate(grids):
        mask[row, list(g.column.values())] = True
        if g.skip is not None:
            mask[row, g.skip] = True
    return mask


def space_grids(space: ChainSpace) -> list[Grid]:
    """Every layer's grid (ValueError naming a layer the super-kernel cannot hold)."""
    return [layer_grid(layer, space.candidates) for layer in space.layers()]
