"""Mixed ops: one searchable decision holding every legal candidate, run by *mode*.

A searcher never sets fields on a mixed op; it passes a mode with every forward
(`MixedOp.forward(x, mode)`), so two ways of running cannot silently override each
other. The modes, and who uses them:

| mode | runs | memory | used by |
|---|---|---|---|
| `Single(i, learn)` | candidate i (`learn=False`: frozen) | one path | SPOS, FairNAS, eval |
| `Weighted(w, p)` | Σ_i w_i·o_i(x) over all; identities' dropout p | all paths | FBNet, DARTS |
| `Gates(paths, s, g)` | o_s(x), s sampled; ∂L/∂g_j all j | one path (+recompute) | ProxylessNAS |
| `HardGumbel(i, w)` | w_i·o_i(x), w one-hot straight-through | one path | GDAS, FBNet `hard` |
| `Partial(w, k)` | Σ_i w_i·o_i on 1/k of the channels, the rest bypass | 1/k | PC-DARTS |
| `Paths(idx)` | mean of o_i(x) over the kept i in idx | the kept paths | One-Shot |

Indices are into the op's legal candidates (`paths`), in table-column order
(`columns[i]` is candidate i's column in the latency table).

`Paths` is One-Shot's path dropout (Bender et al. 2018): the candidates that survived
the drop run and their outputs are averaged. The paper *sums* the kept ops, inside a
cell whose residual lies outside the ops; here every chain candidate carries its own
residual (an MBConv adds x, `zero` is the identity), so a sum would scale the identity
by the number of kept paths; the mean keeps one path's scale (x + mean of the branches),
and one kept index is exactly `Single(i)`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from profiler.ops import OpSpec
from searchers.core.distributed import dropout
from searchers.core.sliced import build_candidates
from searchers.spaces.base import Layer


@dataclass(frozen=True)
class Single:
    index: int
    learn: bool = True  # False: the candidate runs with its weights frozen (FairNAS fillers)


@dataclass(frozen=True)
class Weighted:
    weights: torch.Tensor  # one per legal candidate
    skip_drop: float = 0.0  # dropout on identity candidates' outputs (P-DARTS)


@dataclass(frozen=True)
class Gates:
    paths: tuple[int, ...]  # the candidates whose gate gradient is wanted
    sampled: int  # position in `paths` of the one that runs
    gates: torch.Tensor  # one per path: value one-hot, gradient to the probabilities


@dataclass(frozen=True)
class HardGumbel:
    index: int  # the sampled candidate
    weights: torch.Tensor  # one per legal candidate: value one-hot, soft gradient


@dataclass(frozen=True)
class Partial:
    weights: torch.Tensor  # one per legal candidate
    k: int  # 1/k of the channels go through the candidates


@dataclass(frozen=True)
class Paths:
    indices: tuple[int, ...]  # the kept candidates: their outputs are averaged, not summed


Mode = Single | Weighted | Gates | HardGumbel | Partial | Paths


class _GatedPaths(torch.autograd.Function):
    """out = Σ_j g_j·o_j(x) with one-hot g, computed as o_sampled(x); grads for x and all g_j."""

    @staticmethod
    def forward(
        ctx: Any, x: torch.Tensor, gates: torch.Tensor, mixed: MixedOp, mode: Gates
    ) -> torch.Tensor:
        detached = x.detach().requires_grad_(x.requires_grad)
        with torch.enable_grad():
            out = mixed.candidates[mode.paths[mode.sampled]](detached)
        ctx.save_for_backward(detached, out)
        ctx.mixed, ctx.mode = mixed, mode
        return out.detach()

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[Any, ...]:
        detached, out = ctx.saved_tensors
        mixed: MixedOp = ctx.mixed
        mode: Gates = ctx.mode
        grad_x = None
        if detached.requires_grad:  # only the sampled path carries the gradient to x
            (grad_x,) = torch.autograd.grad(out, detached, grad_out, only_inputs=True)
        grads = []
        with torch.no_grad():  # recompute every other path: dL/dg_j = <dL/dout, o_j(x)>
            for j, p in enumerate(mode.paths):
                o = out if j == mode.sampled else mixed.candidates[p](detached)
                grads.append((o * grad_out).sum())
        return grad_x, torch.stack(grads), None, None


class MixedOp(nn.Module):
    """The legal candidates of one layer (or cell edge), each its own module."""

    def __init__(self, layer: Layer, columns: Sequence[str], channels_div: int = 1):
        super().__init__()
        self.name = layer.name
        self.columns = [list(columns).index(c.name) for c in layer.legal]  # table column per path
        ops = [c.op for c in layer.legal if c.op is not None]
        self.k = channels_div
        self.candidates = nn.ModuleList(build_candidates([_narrow(op, channels_div) for op in ops]))
        self.stride = _stride(ops[0])
        self.identity = [op.kind == "skip" and _stride(op) == 1 for op in ops]

    def forward(self, x: torch.Tensor, mode: Mode) -> torch.Tensor:
        match mode:
            case Single(index=i, learn=True):
                return self.candidates[i](x)
            case Single(index=i):
                return _frozen(self.candidates[i], x)
            case Weighted(weights=w, skip_drop=p):
                return sum(wi * self._run(i, x, p) for i, wi in enumerate(w))
            case Gates():
                return _GatedPaths.apply(x, mode.gates, self, mode)
            case HardGumbel(index=i, weights=w):
                # value: o_i(x); gradient: ∂L/∂w_i = <∂L/∂out, o_i(x)> (GDAS)
                return w[i] * self.candidates[i](x)
            case Partial():
                return self._partial(x, mode)
            case Paths(indices=kept):
                return self._paths(x, kept)
        raise TypeError(f"{self.name}: unknown mode {mode!r}")

    def _run(self, i: int, x: torch.Tensor, skip_drop: float) -> torch.Tensor:
        out = self.candidates[i](x)
        if skip_drop > 0 and self.identity[i]:  # P-DARTS: skip-connect cannot win by default
            out = dropout(out, skip_drop, self.training)  # N ranks: the global batch's mask
        return out

    def _paths(self, x: torch.Tensor, kept: tuple[int, ...]) -> torch.Tensor:
        """The mean of the kept candidates' outputs (the paper's sum would scale the
        residual each candidate carries by len(kept))."""
        if not kept:
            raise ValueError(f"{self.name}: Paths needs at least one candidate")
        out: torch.Tensor = self.candidates[kept[0]](x)
        for i in kept[1:]:
            out = out + self.candidates[i](x)
        return out / len(kept) if len(kept) > 1 else out  # one path: exactly Single(i)

    def _partial(self, x: torch.Tensor, mode: Partial) -> torch.Tensor:
        """PC-DARTS: 1/k of the channels through the weighted candidates, the others
        bypass (max-pooled when the edge reduces), then a channel shuffle."""
        if mode.k != self.k:
            raise ValueError(f"{self.name}: built for 1/{self.k} of the channels, got k={mode.k}")
        c = x.shape[1] // mode.k
        part, rest = x[:, :c], x[:, c:]
        y = sum(w * op(part) for w, op in zip(mode.weights, self.candidates, strict=True))
        if self.stride > 1:
            rest = F.max_pool2d(rest, 2, 2, ceil_mode=rest.shape[-1] % 2 == 1)
        out = torch.cat([y, rest], dim=1)
        n, ch, h, w = out.shape
        # (N, k, C/k, H, W) -> (N, C/k, k, H, W): interleave the processed and bypassed parts
        return out.view(n, mode.k, ch // mode.k, h, w).transpose(1, 2).reshape(n, ch, h, w)


def _frozen(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """`module(x)` with no gradient to its parameters (the gradient to x still flows)."""
    params = {name: p.detach() for name, p in module.named_parameters()}
    out: torch.Tensor = torch.func.functional_call(module, params, (x,), strict=False)
    return out


def _stride(op: OpSpec) -> int:
    return int(op.p.get("s", 1))


def _narrow(op: OpSpec, k: int) -> OpSpec:
    """The op on 1/k of its channels (PC-DARTS); DARTS edge ops keep their width."""
    if k == 1:
        return op
    params = dict(op.params)
    for name in ("c", "cin", "cout"):
        if name in params:
            params[name] = int(params[name]) // k
    n, c, h, w = op.shape
    return OpSpec.make(op.kind, (n, c // k, h, w), op.dtype, **params)
