"""PC-DARTS (Xu et al., ICLR 2020): partial channels and edge normalisation.

Each edge sends only 1/K of its channels (K = 4) through the weighted ops and lets the
rest bypass (max-pooled on a reducing edge), then shuffles the channels so the next
edge sees a different share (`Partial` mode, core/mixed.py): the mixed op's activations
and compute shrink by about K, which is what lets PC-DARTS search with larger batches.
Because a partial edge is a noisier signal, each edge's output is also scaled by
softmax(β) over the edges entering the same node (`EdgeAlpha`), and the genotype is
parsed from α·β: edges ranked by max_o softmax(α)_o·β_e.

With `--soft` the latency term is E[LAT] with the weights α·β (an edge's op weights
times its normalised edge weight); with a hard target the genotype's exact latency
(core/cell_search.py). Weights-only warm-up before α and β move (PC-DARTS: 15 of 50
epochs); the architecture optimiser is PC-DARTS' Adam(6e-4, β (0.5, 0.999), wd 1e-3).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from searchers.core.arch import ArchParams, EdgeAlpha
from searchers.core.cell_search import CellConfig, CellSearcher
from searchers.core.cells import CellSupernet
from searchers.core.config import option
from searchers.core.mixed import Mode, Partial
from searchers.registry import register_searcher


@dataclass
class PcDartsConfig(CellConfig):
    k: int = option(4, "1/K of an edge's channels go through its ops", "PC-DARTS")
    warmup_epochs: int = option(3, "epochs of weights only (PC-DARTS: 15 of 50)", "PC-DARTS")
    arch_lr: float = option(6e-4, "architecture: Adam learning rate", "PC-DARTS")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.k < 1:
            raise ValueError(f"k: must be >= 1, got {self.k}")


@register_searcher
class PCDARTS(CellSearcher):
    name = "pcdarts"
    paper = "PC-DARTS (Xu et al., ICLR 2020)"
    Config = PcDartsConfig
    config: PcDartsConfig

    def build_supernet(self) -> CellSupernet:
        return CellSupernet(self.space, self.config.k)  # type: ignore[arg-type]

    def build_arch(self) -> ArchParams:
        net = self.net
        assert isinstance(net, CellSupernet)
        return EdgeAlpha(net.mask(), net.node_of(), net.layer_of())

    def edge_scale(self) -> torch.Tensor:
        assert isinstance(self.arch, EdgeAlpha)
        return self.arch.edge_weights()

    def forward(self, x: torch.Tensor, plan: Sequence[Mode | None]) -> torch.Tensor:
        per_layer = self.edge_scale()[self.net.layer_of()]  # β of each layer's decision
        out: torch.Tensor = self.net(x, plan, per_layer)
        return out

    def partial_plan(self, w: torch.Tensor) -> list[Mode | None]:
        k = self.config.k
        return [
            Partial(w[d, mixed.columns], k)
            for d, mixed in zip(self.net.layer_of(), self.net.mixed(), strict=True)
        ]

    def weight_plan(self, warmup: bool) -> Sequence[Mode | None]:
        with torch.no_grad():
            return self.partial_plan(self.arch.probs())

    def arch_step(
        self, train: tuple[torch.Tensor, torch.Tensor], val: tuple[torch.Tensor, torch.Tensor]
    ) -> None:
        x, y = val
        w = self.arch.probs()
        ce = F.cross_entropy(self.forward(x, self.partial_plan(w)), y)
        lat = self.latency_ms(w * self.edge_scale()[:, None])
        self.arch_update(ce if self.latency is None else self.latency(ce, lat))

    def single(self, index: int, n: int) -> Mode:
        """A kept edge runs its op on its channel share, the rest bypass, as trained."""
        return Partial(F.one_hot(torch.tensor(index), n).float().to(self.device), self.config.k)

    def evaluate(self) -> dict[str, float]:
        return {**super().evaluate(), "mixed_acc": self.plan_accuracy(self.weight_plan(False))}
