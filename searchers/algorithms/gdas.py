"""GDAS (Dong & Yang, CVPR 2019): one op per edge, sampled by a hard Gumbel-softmax.

Per cell type and edge, h = one_hot(argmax(p̃)) − p̃.detach() + p̃ with
p̃ = softmax((log softmax(α) + g)/τ), g ~ Gumbel(0, 1): the value is one-hot, so only
the sampled op runs forward (`HardGumbel` mode), and the gradient is the soft one
(straight-through), so α learns from every step. Cells of a type share one sample per
forward. Weights and α alternate on train and search-validation batches, each with a
fresh sample. τ falls linearly from 10 to 0.1 over the epochs (GDAS).

With `--soft` the latency term is E[LAT] under the hard sample h (one op per edge, its
gradient straight through); with a hard target, the genotype's exact latency
(core/cell_search.py). The genotype is DARTS': top-2 edges per node by the strongest
non-`none` op of softmax(α).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from searchers.core.arch import masked_softmax
from searchers.core.cell_search import CellConfig, CellSearcher
from searchers.core.config import option
from searchers.core.mixed import HardGumbel, Mode, Single
from searchers.registry import register_searcher


@dataclass
class GdasConfig(CellConfig):
    tau_max: float = option(10.0, "Gumbel-softmax τ at the first epoch", "GDAS")
    tau_min: float = option(0.1, "τ at the last epoch (linear in between)", "GDAS")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 < self.tau_min <= self.tau_max:
            raise ValueError(
                f"tau: need 0 < tau_min <= tau_max, got {self.tau_min}, {self.tau_max}"
            )


@register_searcher
class GDAS(CellSearcher):
    name = "gdas"
    paper = "GDAS (Dong & Yang, CVPR 2019)"
    Config = GdasConfig
    config: GdasConfig

    def tau(self) -> float:
        c, span = self.config, max(self.total_epochs() - 1, 1)
        return c.tau_max - (c.tau_max - c.tau_min) * min(self.epoch, span) / span

    def sample(self) -> tuple[torch.Tensor, list[int]]:
        """(h [decisions x candidates]: one-hot value, soft gradient; the sampled column)."""
        legal = self.arch.legal
        logp = torch.log_softmax(self.arch.logits().masked_fill(~legal, float("-inf")), dim=1)
        u = torch.rand(legal.shape, generator=self.gen).to(logp).clamp(1e-10, 1 - 1e-10)
        soft = masked_softmax((logp - torch.log(-torch.log(u))) / self.tau(), legal)
        index = soft.detach().argmax(dim=1)
        hard = F.one_hot(index, legal.shape[1]).to(soft) - soft.detach() + soft
        return hard, index.tolist()

    def plan(self, h: torch.Tensor, index: list[int], grad: bool) -> list[Mode | None]:
        plan: list[Mode | None] = []
        for d, mixed in zip(self.net.layer_of(), self.net.mixed(), strict=True):
            i = mixed.columns.index(index[d])
            plan.append(HardGumbel(i, h[d, mixed.columns]) if grad else Single(i))
        return plan

    def weight_plan(self, warmup: bool) -> Sequence[Mode | None]:
        with torch.no_grad():
            h, index = self.sample()
        return self.plan(h, index, grad=False)

    def arch_step(
        self, train: tuple[torch.Tensor, torch.Tensor], val: tuple[torch.Tensor, torch.Tensor]
    ) -> None:
        x, y = val
        h, index = self.sample()
        ce = F.cross_entropy(self.forward(x, self.plan(h, index, grad=True)), y)
        self.arch_update(ce if self.latency is None else self.latency(ce, self.latency_ms(h)))

    def evaluate(self) -> dict[str, float]:
        return {**super().evaluate(), "temperature": self.tau()}
