"""The supernet of a chain space: fixed stem and tail, one mixed op per searchable layer.

A mixed op holds every legal candidate of its layer and runs in one of three ways,
chosen by the searcher before each forward:

- one active path (`active`): ProxylessNAS's weight step and evaluation. Only that
  path's activations are kept, so memory does not grow with the number of candidates;
- binary gates (`gates` over `paths`): ProxylessNAS's architecture step. The forward
  runs the hot path only; the backward recomputes the other paths of `paths` under
  no_grad to get dL/dg_j = <dL/dout, o_j(x)> (the `full_v2` trick);
- soft weights over all paths (`weights`): FBNet's Gumbel-softmax and DARTS. Every
  path's activations are kept: memory grows with the candidates.

The architecture parameters are one [layers x candidates] tensor on the supernet, the
same axes as the latency table, with illegal cells masked out of the softmax.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from profiler.blocks import build_module
from searchers.spaces import SearchSpace
from searchers.spaces._chain import ChainSpace
from searchers.spaces.base import Layer


class _GatedPaths(torch.autograd.Function):
    """out = Σ_j g_j·o_j(x) with one-hot g, computed as o_hot(x); grads for x and all g_j."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, gates: torch.Tensor, mixed: MixedOp) -> torch.Tensor:
        detached = x.detach().requires_grad_(x.requires_grad)
        with torch.enable_grad():
            out = mixed.candidates[mixed.paths[mixed.hot]](detached)
        ctx.save_for_backward(detached, out)
        ctx.mixed = mixed
        return out.detach()

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[Any, ...]:
        detached, out = ctx.saved_tensors
        mixed: MixedOp = ctx.mixed
        grad_x = None
        if detached.requires_grad:  # only the hot path carries the gradient to x
            (grad_x,) = torch.autograd.grad(out, detached, grad_out, only_inputs=True)
        grads = []
        with torch.no_grad():  # recompute every other path: dL/dg_j = <dL/dout, o_j(x)>
            for j, p in enumerate(mixed.paths):
                o = out if j == mixed.hot else mixed.candidates[p](detached)
                grads.append((o * grad_out).sum())
        return grad_x, torch.stack(grads), None


class MixedOp(nn.Module):
    def __init__(self, layer: Layer, columns: tuple[str, ...]):
        super().__init__()
        self.name = layer.name
        self.columns = [columns.index(c.name) for c in layer.legal]  # table column per path
        self.candidates = nn.ModuleList(build_module(c.op) for c in layer.legal if c.op)
        self.active: int = 0  # one-path mode
        self.gates: torch.Tensor | None = None  # binary-gate mode: one-hot over `paths`
        self.paths: list[int] = []
        self.hot: int = 0  # index into `paths` of the path whose gate is 1
        self.weights: torch.Tensor | None = None  # all-paths mode: one weight per path

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.weights is not None:
            return sum(w * op(x) for w, op in zip(self.weights, self.candidates, strict=True))
        if self.gates is not None:
            return _GatedPaths.apply(x, self.gates, self)
        return self.candidates[self.active](x)


class SuperNet(nn.Module):
    def __init__(self, space: SearchSpace):
        super().__init__()
        if not isinstance(space, ChainSpace):
            raise ValueError(
                f"space: the searchers take chain spaces (proxyless-mobile, fbnet, spos); "
                f"{space.name} is a cell space, not supported yet"
            )
        fixed, n = space.fixed_ops(), space.n_stem
        self.space = space
        self.stem = nn.Sequential(*(build_module(op) for op in fixed[:n]))
        self.layers = nn.ModuleList(MixedOp(layer, space.candidates) for layer in space.layers())
        self.tail = nn.Sequential(*(build_module(op) for op in fixed[n:]))
        mask = [[c.op is not None for c in layer.choices] for layer in space.layers()]
        self.register_buffer("mask", torch.tensor(mask, dtype=torch.bool))
        self.alpha = nn.Parameter(torch.zeros(len(mask), len(space.candidates)))
        self.train()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for layer in self.layers:
            x = layer(x)
        return self.tail(x).flatten(1)  # (N, classes, [1, 1]) -> (N, classes)

    def weight_parameters(self) -> list[nn.Parameter]:
        return [p for name, p in self.named_parameters() if name != "alpha"]

    def probs(self, alpha: torch.Tensor | None = None) -> torch.Tensor:
        """Softmax over each layer's legal candidates; exactly 0 on illegal cells."""
        a = self.alpha if alpha is None else alpha
        legal: torch.Tensor = self.mask  # type: ignore[assignment]
        return F.softmax(a.masked_fill(~legal, float("-inf")), dim=1)

    def argmax(self) -> list[int]:
        """The most probable candidate (table column) per layer."""
        return [int(i) for i in self.probs().argmax(dim=1)]

    def set_arch(self, columns: list[int]) -> None:
        """Run one fixed architecture (candidate column per layer) through the supernet."""
        for layer, col in zip(self.layers, columns, strict=True):
            mixed: MixedOp = layer  # type: ignore[assignment]
            if col not in mixed.columns:
                raise ValueError(f"{mixed.name}: column {col} is illegal here")
            mixed.active, mixed.gates, mixed.weights = mixed.columns.index(col), None, None

    def keep_first(self, k: int) -> SuperNet:
        """Cut every layer to its first k candidates (benchmarks and tests of how a step
        scales with the number of candidates)."""
        for mixed in self.mixed():
            mixed.columns = mixed.columns[:k]
            mixed.candidates = nn.ModuleList(list(mixed.candidates)[:k])
        legal: torch.Tensor = self.mask  # type: ignore[assignment]
        kept = torch.zeros_like(legal)
        for layer, mixed in enumerate(self.mixed()):
            kept[layer, mixed.columns] = True
        legal &= kept  # in place: the registered buffer
        return self

    def mixed(self) -> list[MixedOp]:
        return list(self.layers)  # type: ignore[arg-type]
