"""FBNet (Wu et al., CVPR 2019): Gumbel-softmax over all paths, latency in the loss.

Each layer's output is Σ_i m_i · o_i(x) with m = GumbelSoftmax(θ, τ) (`hard`: the
straight-through one-hot, only the sampled path runs). The soft loss is
CE · α · log(LAT)^β with LAT = Σ_l Σ_i m_{l,i} · T_{l,i} (α 0.2, β 0.6); a hard target uses
the expected latency under softmax(θ).

Temperature: the paper starts at τ = 5.0 and multiplies by 0.956 after each of 90 epochs
(ending near 0.09). A search of a few epochs with that decay never leaves the soft
regime (τ 3.3 after 10 epochs), so the searched and the exported networks differ; here
the same start and end are kept and the decay is fitted to the epochs after warm-up
(`decay` sets the per-epoch factor instead).

What the weights were trained on is the mixture, so per epoch it reports the accuracy
of the mixed supernet (weights softmax(θ/τ), no noise) beside that of the argmax path;
as τ falls the two meet. After the search, architectures are sampled from P_θ (each
repaired into a hard target first) and the best search-validation accuracy with the
shared weights is exported (sample-and-export).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from searchers.core.arch import masked_softmax
from searchers.core.config import SearchConfig, option
from searchers.core.loop import Searcher
from searchers.core.losses import SoftLatency
from searchers.core.mixed import HardGumbel, Mode, Weighted
from searchers.core.selectors import SampleSelector, Selector
from searchers.registry import register_searcher

PAPER_EPOCHS = 90


@dataclass
class FBNetConfig(SearchConfig):
    temperature: float = option(5.0, "Gumbel-softmax τ at the first epoch", "FBNet")
    tau_end: float = option(
        round(5.0 * 0.956 ** (PAPER_EPOCHS - 1), 4), "τ at the last epoch", "FBNet (5.0·0.956^89)"
    )
    decay: float = option(0.0, "τ factor per epoch; 0: fitted from temperature to tau_end")
    samples: int = option(6, "architectures sampled from P_θ for sample-and-export", "FBNet")
    hard: bool = option(False, "straight-through one-hot Gumbel (one path runs)")
    arch_beta1: float = option(0.9, "architecture: Adam β1", "FBNet (Adam defaults)")
    arch_weight_decay: float = option(5e-4, "architecture: Adam weight decay", "FBNet")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not (self.temperature > 0 and self.tau_end > 0 and 0 <= self.decay <= 1):
            raise ValueError("temperature and tau_end must be > 0, decay in [0, 1]")
        if self.samples < 0:
            raise ValueError(f"samples: must be >= 0, got {self.samples}")


@register_searcher
class FBNet(Searcher):
    name = "fbnet"
    paper = "FBNet (Wu et al., CVPR 2019)"
    Config = FBNetConfig
    config: FBNetConfig

    def tau(self) -> float:
        c = self.config
        searched = max(self.epoch - c.warmup_epochs, 0)
        span = max(c.epochs - c.warmup_epochs - 1, 1)
        decay = c.decay or (c.tau_end / c.temperature) ** (1 / span)
        return c.temperature * decay**searched

    def masks(self, uniform: bool = False) -> torch.Tensor:
        """Gumbel-softmax weights [layers x candidates], 0 on illegal cells."""
        theta = torch.zeros_like(self.alpha) if uniform else self.alpha
        u = torch.rand(theta.shape, generator=self.gen).to(theta).clamp(1e-10, 1 - 1e-10)
        noisy = (theta - torch.log(-torch.log(u))) / self.tau()  # + Gumbel(0, 1) noise
        return masked_softmax(noisy, self.arch.legal)

    def plan(self, masks: torch.Tensor) -> list[Mode]:
        plan: list[Mode] = []
        for layer, mixed in enumerate(self.net.mixed()):
            w = masks[layer, mixed.columns]
            if self.config.hard:
                i = int(w.detach().argmax())
                onehot = F.one_hot(torch.tensor(i), len(w)).to(w)
                plan.append(HardGumbel(i, onehot + w - w.detach()))
            else:
                plan.append(Weighted(w))
        return plan

    def weight_plan(self, warmup: bool) -> list[Mode]:
        with torch.no_grad():
            return self.plan(self.masks(uniform=warmup))

    def arch_step(
        self, train: tuple[torch.Tensor, torch.Tensor], val: tuple[torch.Tensor, torch.Tensor]
    ) -> None:
        x, y = val
        m = self.masks()
        ce = F.cross_entropy(self.forward(x, self.plan(m)), y)
        fbnet_form = isinstance(self.latency, SoftLatency) and self.latency.form == "fbnet"
        lat = self.table.expected(m) if fbnet_form else self.expected_ms()
        self.arch_update(ce if self.latency is None else self.latency(ce, lat))

    def mixed_plan(self) -> Sequence[Mode]:
        """The supernet as trained, without the noise: weights softmax(θ/τ)."""
        with torch.no_grad():
            return self.plan(self.arch.probs(temperature=self.tau()))

    def evaluate(self) -> dict[str, float]:
        return {
            "mixed_acc": self.plan_accuracy(self.mixed_plan()),
            "argmax_acc": self.score(self.arch.argmax()),
            "temperature": self.tau(),
        }

    def selector(self) -> Selector:
        return SampleSelector(self.config.samples)
