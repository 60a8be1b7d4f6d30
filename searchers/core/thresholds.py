"""Single-Path NAS's architecture parameters: a threshold per indicator.

Each super-kernel (core/superkernel.py) decides by indicators d = 1(‖w_outer‖² > t) on
the norms of its weight subsets. The threshold is kept in log space,
d = 1(log ‖w_outer‖² − t ≥ 0), which is the paper's indicator with threshold e^t: the
sigmoid relaxation σ(log ‖w‖² − t) then has the same slope for a 3x3 ring of 16
channels and a 7x7 ring of 1152, where σ(‖w‖² − t) saturates on the large ones.

In the forward pass an indicator is its hard value (one path, one weight); its
gradient is the sigmoid's (straight-through, as the reference code's `Indicator`). The
chain of indicators of a layer defines a distribution over its candidates when each
d is read as an independent Bernoulli of probability σ(z):

    P(k_0) = 1 − d_k1,  P(k_1) = d_k1(1 − d_k2),  P(k_2) = d_k1·d_k2
    P(skip) = 1 − d_e0,  P(e_0) = d_e0(1 − d_e1),  P(e_1) = d_e0·d_e1
    P(k, e) = P(k)·P(e)

so E[LAT] = Σ P·T is the paper's nested runtime (each indicator multiplies the extra
cost of the subset it switches on), `probs()` is a proper distribution for the core
(entropy, sampling, the repair's log-probabilities), and for hard indicators it is one
hot: the runtime term is then exactly the table latency of the decided architecture.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from searchers.core.arch import ArchParams
from searchers.core.superkernel import Grid, Indicators


def nested(switches: Sequence[torch.Tensor], one: torch.Tensor) -> list[torch.Tensor]:
    """Probabilities of stopping after 0, 1, ..., m of m nested switches (`one`: a 1 on
    the switches' device and dtype, for a chain without switches)."""
    out, run = [], one
    for d in switches:
        out.append(run * (1 - d))
        run = run * d
    return [*out, run]


def chain_probs(d: torch.Tensor, grids: Sequence[Grid], width: int) -> torch.Tensor:
    """[layers x candidates]: each layer's candidate probabilities from its switch values
    d [layers x n] (hard values give one-hot rows)."""
    rows = []
    for row, g in zip(d, grids, strict=True):
        one = row.new_ones(())
        kernel = nested(list(row[: g.n_kernel]), one)
        channel = list(row[g.n_kernel : g.n_kernel + len(g.expansions)])
        expansion = nested(channel if g.skip is not None else channel[1:], one)
        stop = expansion[1:] if g.skip is not None else expansion
        cells = [row.new_zeros(()) for _ in range(width)]
        for (k, e), col in g.column.items():
            cells[col] = kernel[g.kernels.index(k)] * stop[g.expansions.index(e)]
        if g.skip is not None:
            cells[g.skip] = expansion[0]
        rows.append(torch.stack(cells))
    return torch.stack(rows)


class Thresholds(ArchParams):
    """t [layers x n] (kernel thresholds, then channel ones; padded to the widest layer);
    `norms()` gives the super-kernels' current log ‖w_outer‖² in the same layout."""

    learnable = True

    def __init__(
        self, mask: torch.Tensor, grids: Sequence[Grid], norms: Callable[[], torch.Tensor]
    ):
        super().__init__(mask)
        self.grids = list(grids)
        width = max(g.n_kernel + len(g.expansions) for g in self.grids)
        self.t = nn.Parameter(torch.zeros(len(self.grids), width))
        self.register_buffer("armed", torch.tensor(False))
        self._norms = norms  # a function, not a module: the weights live in the supernet

    def z(self) -> torch.Tensor:
        """log ‖w_outer‖² − t: an indicator is on where z ≥ 0."""
        return self._norms().to(self.t) - self.t

    @torch.no_grad()
    def arm(self, margin: float) -> None:
        """Set t so that every indicator starts on, `margin` above its threshold (the
        paper starts from the largest super-kernel: t = 0 < ‖w‖²)."""
        self.t.copy_(self._norms().to(self.t) - margin)
        self.armed.fill_(True)  # type: ignore[operator]

    def switches(self, temperature: float = 1.0, hard: bool = True) -> torch.Tensor:
        """Indicator values [layers x n]: hard 0/1 with σ(z/τ)'s gradient, or σ(z/τ)."""
        z = self.z()
        soft = torch.sigmoid(z / temperature)
        if not hard:
            return soft
        return (z >= 0).to(soft) + soft - soft.detach()

    def probs(self, temperature: float = 1.0) -> torch.Tensor:
        return chain_probs(self.switches(temperature, hard=False), self.grids, self.legal.shape[1])

    def decided(self, temperature: float = 1.0) -> torch.Tensor:
        """The decided architecture as one-hot rows, differentiable straight through."""
        return chain_probs(self.switches(temperature), self.grids, self.legal.shape[1])

    def argmax(self) -> list[int]:
        return [int(i) for i in self.decided().detach().argmax(dim=1)]

    def sample(self, gen: torch.Generator | None = None) -> list[int]:
        p = self.switches(hard=False).detach().cpu()
        drawn = torch.bernoulli(p, generator=gen)
        return [int(i) for i in chain_probs(drawn, self.grids, self.legal.shape[1]).argmax(1)]

    def plan(self, d: torch.Tensor) -> list[Indicators]:
        """Per layer the super-kernel's indicators from switch values d [layers x n]."""
        out = []
        for row, g in zip(d, self.grids, strict=True):
            n = g.n_kernel
            out.append(Indicators(list(row[:n]), list(row[n : n + len(g.expansions)])))
        return out


def hard_plan(grids: Sequence[Grid], columns: Sequence[int]) -> list[Indicators]:
    """The indicators that run one candidate (a table column) per layer."""
    plan = []
    for g, col in zip(grids, columns, strict=True):
        if col != g.skip and col not in g.column.values():
            raise ValueError(f"column {col} is not a candidate of this super-kernel")
        kernel, channel = g.decisions(col)
        if g.skip is None:
            channel[0] = 1.0
        plan.append(Indicators(kernel, channel))
    return plan
