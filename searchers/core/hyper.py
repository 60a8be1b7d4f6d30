"""SMASH's hypernetwork on a chain space: the 1x1 convolutions of a child generated from
its architecture, W = H(c) (Brock et al., ICLR 2018).

What the paper and its code (github.com/ajbrock/SMASH, `SMASH.sample_weights`) do: the
architecture is written into a 3-D embedding tensor c (read/write memory banks, op,
kernel, dilation, groups, activation slots), a random tensor z is concatenated to it, and
a fully convolutional hypernet (a small DenseNet of weight-normalised 3x3 convs, leaky
ReLU, no BN) maps [z, c] to the weights of the 1x1 convolution that opens every op; each
generated slice is divided by its whole norm (`wn2d`). Everything else — the k x k convs
inside the ops (one set per block, sliced to the op's width), the stem, the 1x1
down-sampling transitions, BN and the classifier — is learnt freely.

Here, on a chain space of L layers and C table columns:

    c   = concat_l onehot(column_l)                      [L·C]
    h   = Linear(ReLU(Linear(c)))  viewed as             [L, d]     (d: `basis`)
    W_{l,n} = Σ_k h_l[k] · B_{l,n}[k][:out, :in/g]       [out, in/g, 1, 1]

for every 1x1 conv weight n of the candidate chosen in layer l (found by shape: the
pointwise expansion / projection of an MBConv, a grouped 1x1 of FBNet, a ShuffleNet
unit's 1x1s, an SE block's convs). B_{l,n} is a learnt basis per layer, parameter name
and group count (a grouped 1x1 maps other channels than a dense one) at the largest
shape among that layer's candidates, so the e3 and e6 blocks of a layer read nested
slices of one basis, and h_l — which depends on the whole architecture, not only on
layer l's choice — mixes it. The other weights (depthwise kernels, BN, stem, tail, SE
biases) are the candidates' own, shared as in a one-shot supernet. The candidates' 1x1
weights are removed from their modules (they would be dead parameters) and set as plain
attributes for the duration of one forward.

Departures from the paper, and why:
- an MLP on a one-hot encoding instead of a conv hypernet on a memory-bank tensor: a
  chain space has no memory banks, and the choices are a table column per layer;
- a linear basis per layer instead of free generated tensors: the hypernet's output
  stays small (L·d numbers) whatever the widths, and with h = (1, 0, ..., 0) at the start
  (output bias, small output weight) the supernet starts as an ordinary one-shot
  network with weights B[0];
- no noise z and no weight normalisation of the generated weights: a ranking wants the
  same weights for the same architecture, and every generated conv of an MBConv is
  followed by BN, which makes its scale irrelevant (SMASH's ops have no BN by default,
  hence its normalisation);
- B is initialised kaiming-uniform at the largest shape (fan-in of the widest input), not
  copied from a candidate: narrower candidates read a slice, so e3 and e6 of a kernel size
  share their first channels but do not start as the same function (core/init.py's tiling
  does not apply to generated weights).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from searchers.core.mixed import Mode, Single
from searchers.core.supernet import ChainSupernet
from searchers.spaces import SearchSpace


@dataclass(frozen=True)
class Target:
    """One generated 1x1 weight: where it goes and its shape."""

    module: nn.Conv2d  # the conv whose `weight` is generated (shared by sliced views)
    key: str  # the parameter's name inside the candidate
    shape: torch.Size  # (out, in / groups, 1, 1)
    groups: int

    @property
    def basis(self) -> str:
        """The basis it reads: per name and group count (a grouped 1x1 maps other input
        channels than a dense one of the same name)."""
        return f"{self.key}.g{self.groups}"


class HyperNet(nn.Module):
    """c (one-hot column per layer) -> h [L, d] -> the 1x1 weights of chosen candidates."""

    def __init__(
        self, width: int, shapes: Sequence[dict[str, tuple[int, int]]], basis: int, hidden: int
    ):
        super().__init__()
        if basis < 1 or hidden < 1:
            raise ValueError(f"hypernet: basis and hidden must be >= 1, got {basis}, {hidden}")
        self.width, self.basis, layers = width, basis, len(shapes)
        self.inp = nn.Linear(layers * width, hidden)
        self.out = nn.Linear(hidden, layers * basis)
        with torch.no_grad():  # h = (1, 0, ..., 0) per layer at the start: an ordinary net
            self.out.weight.mul_(0.1)
            self.out.bias.view(layers, basis).copy_(torch.eye(basis)[0])
        self.bases = nn.ModuleList(
            nn.ParameterDict({_safe(k): _init_basis(basis, o, i) for k, (o, i) in s.items()})
            for s in shapes
        )

    def coefficients(self, columns: Sequence[int]) -> torch.Tensor:
        """h: [L, d] for the architecture `columns` (a table column per layer)."""
        cols = torch.tensor(list(columns), device=self.inp.weight.device)
        c = nn.functional.one_hot(cols, self.width).flatten().float()  # [L·C]
        h = self.out(torch.relu(self.inp(c)))
        return h.view(len(columns), self.basis)  # [L·d] -> [L, d]

    def weight(self, h: torch.Tensor, layer: int, key: str, shape: torch.Size) -> torch.Tensor:
        """Σ_k h[k]·B_{layer,key}[k][:out, :in], as a (out, in, 1, 1) conv weight."""
        bases = self.bases[layer]
        assert isinstance(bases, nn.ParameterDict)
        b = bases[_safe(key)][:, : shape[0], : shape[1]]  # [d, out, in]
        return torch.einsum("k,koi->oi", h, b).view(shape)


class SmashNet(ChainSupernet):
    """The chain supernet whose candidates' 1x1 weights come from a `HyperNet`."""

    hyper: HyperNet

    def __init__(self, space: SearchSpace, basis: int = 4, hidden: int = 128):
        super().__init__(space)
        self.targets = [[_pointwise(c) for c in m.candidates] for m in self.mixed()]
        shapes: list[dict[str, tuple[int, int]]] = []
        for layer in self.targets:
            largest: dict[str, tuple[int, int]] = {}
            for t in (t for cand in layer for t in cand):
                o, i = largest.get(t.basis, (0, 0))
                largest[t.basis] = (max(o, t.shape[0]), max(i, t.shape[1]))
            shapes.append(largest)
        for t in {id(t.module): t for layer in self.targets for c in layer for t in c}.values():
            del t.module.weight  # generated at forward: no dead parameter in the optimiser
        self.hyper = HyperNet(len(space.candidates), shapes, basis, hidden)

    def columns_of(self, plan: Sequence[Mode | None]) -> list[int]:
        """The table column per layer of a plan of one `Single` per layer (else refused)."""
        if len(plan) != len(self.layers) or not all(
            isinstance(m, Single) and m.learn for m in plan
        ):
            raise ValueError(
                f"plan: SMASH runs one child, Single(i) for each of the {len(self.layers)} "
                f"layers (generated weights have no mixture or frozen mode); got {list(plan)}"
            )
        return [m.columns[p.index] for m, p in zip(self.mixed(), plan, strict=True)]  # type: ignore[union-attr]

    def generate(self, plan: Sequence[Mode | None]) -> list[dict[str, torch.Tensor]]:
        """The generated 1x1 weights of the plan's candidates, by name, per layer."""
        h = self.hyper.coefficients(self.columns_of(plan))
        out = []
        for layer, (mode, h_l) in enumerate(zip(plan, h, strict=True)):
            assert isinstance(mode, Single)
            chosen = self.targets[layer][mode.index]
            out.append({t.key: self.hyper.weight(h_l, layer, t.basis, t.shape) for t in chosen})
        return out

    def forward(self, x: torch.Tensor, plan: Sequence[Mode | None]) -> torch.Tensor:
        weights = self.generate(plan)
        x = self.stem(x)
        for layer, (mixed, mode) in enumerate(zip(self.layers, plan, strict=True)):
            assert isinstance(mode, Single)
            chosen = self.targets[layer][mode.index]
            for t in chosen:
                t.module.weight = weights[layer][t.key]  # a plain attribute, not a Parameter
            try:
                x = mixed(x, mode)
            finally:  # no generated tensor (and its graph) outlives the forward
                for t in chosen:
                    del t.module.weight
        return self.tail(x).flatten(1)  # (N, classes, [1, 1]) -> (N, classes)


def _pointwise(candidate: nn.Module) -> list[Target]:
    """The 1x1 conv weights of a candidate, by parameter name."""
    return [
        Target(m, f"{name}.weight", m.weight.shape, m.groups)
        for name, m in candidate.named_modules()
        if isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1)
    ]


def _init_basis(d: int, out: int, inp: int) -> nn.Parameter:
    """d bases of (out, inp), each as nn.Conv2d initialises a weight of that fan-in."""
    b = torch.empty(d, out, inp)
    for k in range(d):
        nn.init.kaiming_uniform_(b[k], a=math.sqrt(5))
    return nn.Parameter(b)


def _safe(key: str) -> str:
    return key.replace(".", "_")  # ParameterDict keys cannot hold dots
