"""Single-Path NAS (Stamoulis et al., 2019): one super-kernel per layer, thresholds.

Every MBConv candidate of a layer is a subset of one weight, the super-kernel at the
largest kernel and expansion (core/superkernel.py): the 3x3 is the centre of the 5x5,
the 5x5 the centre of the 7x7, e3 the first half of e6's hidden channels, and the
identity is the block switched off. A layer decides by indicators on the norms of the
outer subsets, d = 1(‖w_outer‖² > t) (core/thresholds.py, thresholds in log space), so
the supernet has ONE path and ONE set of weights: a step costs one compact network's
forward and backward, whatever the number of candidates.

Training (one level, as the paper: the thresholds and the weights descend the same
loss on the same training batch):

    loss = CE(net(x; d)) + latency term(E[LAT](d))

The thresholds step with SGD (momentum): a threshold moves with its gradient, so the
subsets that save the most latency for the least accuracy switch off first. Adam (an
option) moves every threshold by about its learning rate whatever the gradient's size;
all start at the same margin, so they switched off and came back by gradient signs
alone and chose a worse network (docs/BENCHMARKS.md).

with d hard in the forward pass and σ((log‖w‖² − t)/τ) in the backward, and E[LAT] the
nested runtime through the device's table (exactly the table latency of the decided
architecture, core/thresholds.py). The latency term is the paper's λ·log E[LAT]
(`--soft --loss singlepath`) or, with a hard target, the core's augmented Lagrangian
(`HardTarget`, τ = its sharpening temperature) whose dual step follows every
`arch_every` weight steps on the decided architecture's exact latency; the export is
the decided architecture, repaired into the target by the core if it is outside.

Warm-up (`warmup_epochs`): no thresholds yet; each step trains one uniformly drawn
candidate per layer, so every nested subset learns before the norms are compared. At
the first search step the thresholds are set `margin` under the current log-norms:
every indicator starts on, from the largest super-kernel, as the paper's t = 0 does.

Candidates a super-kernel cannot hold (FBNet's grouped blocks) are left out: the
searcher runs on the table restricted to what it can express (`LatencyTable.restricted`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from searchers.core.arch import ArchParams
from searchers.core.config import SearchConfig, option
from searchers.core.init import zero_residual_bn
from searchers.core.loop import Searcher
from searchers.core.losses import LatencyLoss
from searchers.core.superkernel import SuperKernelNet, grid_mask, space_grids
from searchers.core.thresholds import Thresholds, chain_probs, hard_plan
from searchers.data import Data
from searchers.latency import LatencyTable
from searchers.registry import register_searcher
from searchers.spaces import SearchSpace
from searchers.spaces._chain import ChainSpace


@dataclass
class SinglePathConfig(SearchConfig):
    arch_lr: float = option(0.01, "thresholds: learning rate (log-norm units)", "hwlat")
    arch_beta1: float = option(0.9, "thresholds: SGD momentum, or Adam's β1", "hwlat")
    margin: float = option(
        1.0, "thresholds start this far under the log-norms: every indicator on", "hwlat"
    )
    threshold_optimizer: str = option(
        "sgd",
        "thresholds: sgd (momentum β1; a threshold moves with its gradient, so a subset "
        "switches off by the latency it saves against the accuracy it costs) or adam "
        "(every threshold ~arch_lr a step: on digits-hard it chose a worse network)",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.threshold_optimizer not in ("adam", "sgd"):
            raise ValueError(f"threshold_optimizer: adam or sgd, got {self.threshold_optimizer!r}")
        if not self.margin > 0:
            raise ValueError(f"margin: must be > 0 (indicators start on), got {self.margin}")


@register_searcher
class SinglePathNAS(Searcher):
    name = "singlepath"
    paper = "Single-Path NAS (Stamoulis et al., 2019)"
    Config = SinglePathConfig
    config: SinglePathConfig
    net: SuperKernelNet  # type: ignore[assignment]
    arch: Thresholds

    def __init__(
        self,
        table: LatencyTable,
        data: Data,
        config: SearchConfig,
        latency: LatencyLoss | None,
        device: str = "cpu",
    ):
        super().__init__(self.usable_table(table), data, config, latency, device)

    @classmethod
    def check_space(cls, space: SearchSpace) -> None:
        super().check_space(space)
        assert isinstance(space, ChainSpace)  # the base check refused the others
        space_grids(space)

    @classmethod
    def usable_table(cls, table: LatencyTable) -> LatencyTable:
        """The table restricted to the candidates a super-kernel holds."""
        cls.check_space(table.space)
        assert isinstance(table.space, ChainSpace)  # check_space refused the others
        grids = space_grids(table.space)
        return table.restricted(grid_mask(grids, len(table.space.candidates)))

    @classmethod
    def table_bounds(cls, table: LatencyTable) -> tuple[float, float]:
        return cls.usable_table(table).bounds()

    def build_supernet(self) -> nn.Module:  # type: ignore[override]
        assert isinstance(self.space, ChainSpace)  # check_space refused the others
        return SuperKernelNet(self.space)

    def build_arch(self) -> ArchParams:
        return Thresholds(self.net.mask(), self.net.grids(), self.net.log_norms)

    def arch_optimizer(self) -> torch.optim.Optimizer:
        c = self.config
        if c.threshold_optimizer == "sgd":
            return torch.optim.SGD(self.arch.parameters(), lr=c.arch_lr, momentum=c.arch_beta1)
        return super().arch_optimizer()

    def init_weights(self) -> None:
        if self.config.zero_residual_bn:  # residual blocks start as the identity
            zero_residual_bn(k.block for k in self.net.kernels())

    def weight_plan(self, warmup: bool) -> Sequence[Any]:
        """Warm-up (and the plan of a fixed architecture): one uniformly drawn candidate
        per layer, its indicators constants."""
        cols = torch.multinomial(self.arch.legal.cpu().float(), 1, generator=self.gen)
        return hard_plan(self.net.grids(), cols.squeeze(1).tolist())

    def plan_for(self, columns: Sequence[int]) -> Sequence[Any]:
        return hard_plan(self.net.grids(), columns)

    def tau(self) -> float:
        return self.hard.temperature if self.hard is not None else 1.0

    def weight_step(self, x: torch.Tensor, y: torch.Tensor, warmup: bool) -> float:
        if warmup:
            return super().weight_step(x, y, warmup)
        if not bool(self.arch.armed):
            self.arch.arm(self.config.margin)
        d = self.arch.switches(self.tau())  # hard values, sigmoid gradients
        loss = F.cross_entropy(self.net(x, self.arch.plan(d)), y)
        if self.latency is not None:
            loss = self.latency(loss, self.runtime(d))
        self.w_opt.zero_grad(set_to_none=True)
        assert self.a_opt is not None  # Thresholds are learnable
        self.a_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.dist.average_grads(self.arch_params())  # N ranks: the global batch's gradient
        self.step_weights()
        self.a_opt.step()
        return float(loss.detach())

    def runtime(self, d: torch.Tensor) -> torch.Tensor:
        """E[LAT] along the indicator chain: the nested runtime of the paper, equal to
        the table latency of the decided architecture for hard indicators."""
        probs = chain_probs(d, self.net.grids(), len(self.space.candidates))
        return self.table.expected(probs.to(torch.float64))

    def arch_step(
        self, train: tuple[torch.Tensor, torch.Tensor], val: tuple[torch.Tensor, torch.Tensor]
    ) -> None:
        """Nothing: the thresholds moved with the weights (one level); the loop's dual
        step on the decided architecture follows."""

    def expected_ms(self) -> torch.Tensor:
        return self.runtime(self.arch.switches(self.tau()))

    def evaluate(self) -> dict[str, float]:
        return {"argmax_acc": self.score(self.arch.argmax())}
