"""DARTS (Liu et al., ICLR 2019): a continuous relaxation of the cell, α by gradient.

Every edge of the supernet computes Σ_o softmax(α)_o · o(x) over the 8 ops (the mixed op
in `Weighted` mode), the weights w are trained on the train split with α fixed, and α
on the search-validation split with w fixed:

- `order=first`: ∇_α L_val(w, α), w taken as it is (the paper's "first order");
- `order=second`: ∇_α L_val(w', α) through one unrolled weight step
  w' = w − ξ∇_w L_train(w, α), the Hessian-vector product by finite differences
  (core/unrolled.py); ξ is the weights' current learning rate unless set.

The latency term joins the validation loss (core/losses.py): with a hard target it acts
on the genotype's exact latency through a straight-through gradient, with `--soft` on
E[LAT] = fixed + Σ cells Σ edges Σ ops softmax(α)·T (core/cell_search.py). The genotype
keeps, per node, the two incoming edges whose strongest non-`none` op weighs most.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from searchers.core.cell_search import CellConfig, CellSearcher
from searchers.core.config import option
from searchers.core.mixed import Mode, Weighted
from searchers.core.unrolled import unrolled_arch_grads
from searchers.registry import register_searcher

Batch = tuple[torch.Tensor, torch.Tensor]


@dataclass
class DartsConfig(CellConfig):
    order: Literal["first", "second"] = option(
        "first", "architecture gradient: w as it is, or through one unrolled step", "DARTS"
    )
    xi: float = option(0.0, "ξ of the unrolled step; 0: the weights' learning rate", "DARTS")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.xi < 0:
            raise ValueError(f"xi: must be >= 0, got {self.xi}")


@register_searcher
class DARTS(CellSearcher):
    name = "darts"
    paper = "DARTS (Liu et al., ICLR 2019)"
    Config = DartsConfig
    config: DartsConfig

    def weighted_plan(self, w: torch.Tensor) -> list[Mode | None]:
        """Every edge as Σ_o w[d, o]·o(x), d the edge's decision."""
        return [
            Weighted(w[d, mixed.columns])
            for d, mixed in zip(self.net.layer_of(), self.net.mixed(), strict=True)
        ]

    def weight_plan(self, warmup: bool) -> Sequence[Mode | None]:
        with torch.no_grad():
            return self.weighted_plan(self.arch.probs())

    def arch_loss(self, batch: Batch) -> torch.Tensor:
        x, y = batch
        w = self.arch.probs()
        ce = F.cross_entropy(self.forward(x, self.weighted_plan(w)), y)
        return ce if self.latency is None else self.latency(ce, self.latency_ms(w))

    def train_loss(self, batch: Batch) -> torch.Tensor:
        x, y = batch
        return F.cross_entropy(self.forward(x, self.weighted_plan(self.arch.probs())), y)

    def arch_step(self, train: Batch, val: Batch) -> None:
        if self.config.order == "first":
            self.arch_update(self.arch_loss(val))
            return
        xi = self.config.xi or float(self.w_sched.get_last_lr()[0])
        grads = unrolled_arch_grads(
            list(self.net.parameters()),
            self.arch_params(),
            lambda: self.train_loss(train),
            lambda: self.arch_loss(val),
            xi,
            reduce=self.dist.average,  # N ranks: every gradient the global batch's
        )
        self.apply_arch_grads(grads)

    def evaluate(self) -> dict[str, float]:
        return {**super().evaluate(), "mixed_acc": self.plan_accuracy(self.weight_plan(False))}
