"""Supernet initialisation that lets single-path weight sharing learn.

Why it is needed (figures in docs/BENCHMARKS.md, "Why the supernet stayed at chance",
`bench/supernet_learns.py`): with PyTorch's default initialisation every candidate of a
layer is an unrelated random function, and six of the 21 layers of proxyless-mobile have
no residual path. A layer that switches between six unrelated feature bases from step
to step hands the next layer a different input each time, and with six such layers in a
chain uniform path sampling stayed at chance for every learning rate tried, while one
fixed path learned quickly.

Two remedies from the literature, both on by default:

- `shared_init`: the candidates of a layer that share a structure start as the *same
  function*: the smallest one's weights are copied into the others, zero-padded to a
  larger kernel (a 3x3 is the centre of a 5x5, as in Single-Path NAS's super-kernel and
  OFA's elastic kernel) and tiled across a wider expansion (the input side of the next
  conv divided by the tiling factor, so the sum is unchanged). The candidates keep
  their own weights and drift apart as they train, but start aligned, so the layers
  after them learn one input distribution instead of six. Candidates of another
  structure (FBNet's e1 and grouped blocks, SPOS's Xception unit) keep their own.
- `zero_residual_bn`: the last BN of every residual candidate starts with γ = 0, so each
  residual block starts as the identity (Goyal et al., 2017), whichever path is sampled.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from profiler.blocks import MBConv


@torch.no_grad()
def share_candidate_init(candidates: nn.ModuleList) -> int:
    """Copy the smallest candidate of each structure into the others; returns how many
    candidates now start as another's function."""
    groups: dict[tuple[tuple[str, str], ...], list[nn.Module]] = {}
    for c in candidates:
        if any(True for _ in c.parameters()):
            groups.setdefault(_structure(c), []).append(c)
    shared = 0
    for members in groups.values():
        base = min(members, key=lambda m: sum(p.numel() for p in m.parameters()))
        for other in members:
            if other is not base and _fits(base, other):
                for (_, pb), (_, po) in zip(
                    base.named_parameters(), other.named_parameters(), strict=True
                ):
                    po.copy_(_expand(pb, po.shape))
                shared += 1
    return shared


@torch.no_grad()
def zero_residual_bn(modules: Iterable[nn.Module]) -> int:
    """γ = 0 on the last BN of every residual MBConv among `modules` (a layer's
    candidates, or `net.modules()` of a whole child); returns how many."""
    count = 0
    for c in modules:
        if isinstance(c, MBConv) and c.residual:
            bn = c.project[1]
            assert isinstance(bn, nn.BatchNorm2d)
            nn.init.zeros_(bn.weight)
            count += 1
    return count


def _structure(module: nn.Module) -> tuple[tuple[str, str], ...]:
    """Module names and kinds, convolutions told apart by grouping (dense, depthwise,
    grouped): a grouped 1x1 tiled into a dense one would not compute the same thing."""
    out = []
    for name, m in module.named_modules():
        kind = type(m).__name__
        if isinstance(m, nn.Conv2d):
            kind += "/dw" if m.groups == m.in_channels > 1 else f"/g{min(m.groups, 2)}"
        out.append((name, kind))
    return tuple(out)


def _fits(base: nn.Module, other: nn.Module) -> bool:
    """Every parameter of `other` is `base`'s tiled on the channel dims and padded on the
    kernel dims."""
    for pb, po in zip(base.parameters(), other.parameters(), strict=True):
        if pb.dim() != po.dim():
            return False
        for axis, (b, o) in enumerate(zip(pb.shape, po.shape, strict=True)):
            if axis < 2 and o % b:
                return False
            if axis >= 2 and (o < b or (o - b) % 2):
                return False
    return True


def _expand(p: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Tile dim 0 (outputs) and dim 1 (inputs, divided by the factor: the sum over the
    tiled inputs equals the base's), centre-pad the kernel dims with zeros."""
    out = p.repeat(shape[0] // p.shape[0], *([1] * (p.dim() - 1)))
    if p.dim() >= 2 and shape[1] != p.shape[1]:
        m = shape[1] // p.shape[1]
        out = out.repeat(1, m, *([1] * (p.dim() - 2))) / m
    if p.dim() == 4 and tuple(shape[2:]) != tuple(p.shape[2:]):
        padded = torch.zeros(shape, dtype=p.dtype)
        dh, dw = (shape[2] - p.shape[2]) // 2, (shape[3] - p.shape[3]) // 2
        padded[:, :, dh : dh + p.shape[2], dw : dw + p.shape[3]] = out
        out = padded
    return out
