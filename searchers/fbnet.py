"""FBNet (Wu et al., CVPR 2019): Gumbel-softmax over all paths, latency in the loss.

Each layer's output is Σ_i m_i · o_i(x) with m = GumbelSoftmax(θ, τ); the temperature
starts at 5.0 and is multiplied by 0.956 (= e^−0.045) after every epoch. The soft loss is
CE · α · log(LAT)^β with LAT = Σ_l Σ_i m_{l,i} · T_{l,i} under the same masks (α 0.2,
β 0.6). After the search, architectures are sampled from P_θ and the one with the best
validation accuracy on the shared weights is exported (sample-and-export); in
hard-target mode every sample is repaired to the target first.
"""

from __future__ import annotations

from typing import Any

import torch

from searchers._registry import register_searcher
from searchers.base import Searcher, cross_entropy
from searchers.losses import SoftLatency
from searchers.repair import repair


@register_searcher
class FBNet(Searcher):
    name = "fbnet"

    def __init__(
        self,
        *args: Any,
        temperature: float = 5.0,
        decay: float = 0.956,
        samples: int = 6,
        **kw: Any,
    ):
        if not (temperature > 0 and 0 < decay <= 1 and samples >= 0):
            raise ValueError("temperature > 0, 0 < decay <= 1 and samples >= 0 are required")
        super().__init__(*args, **kw)
        self.tau, self.decay, self.samples = temperature, decay, samples

    def masks(self, warmup: bool = False) -> torch.Tensor:
        """Gumbel-softmax weights [layers x candidates], 0 on illegal cells."""
        theta = torch.zeros_like(self.net.alpha) if warmup else self.net.alpha
        u = torch.rand_like(theta).clamp(1e-10, 1 - 1e-10)
        noisy = (theta - torch.log(-torch.log(u))) / self.tau  # + Gumbel(0, 1) noise
        return self.net.probs(noisy)

    def use(self, masks: torch.Tensor) -> None:
        for layer, mixed in enumerate(self.net.mixed()):
            mixed.weights, mixed.gates = masks[layer, mixed.columns], None

    def weight_step(self, x: torch.Tensor, y: torch.Tensor, warmup: bool) -> float:
        with torch.no_grad():
            self.use(self.masks(warmup))
        return self.train_weights(x, y)

    def arch_step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        m = self.masks()
        self.use(m)
        ce = cross_entropy(self.net(x), y)
        fbnet_form = isinstance(self.latency, SoftLatency) and self.latency.form == "fbnet"
        lat = self.table.expected(m) if fbnet_form else self.expected_ms()
        loss = self.objective(ce, lat)
        self.a_opt.zero_grad()
        loss.backward()
        self.a_opt.step()

    def on_epoch_end(self) -> dict[str, Any]:
        used, self.tau = self.tau, self.tau * self.decay
        return {"temperature": used}

    def propose(self) -> list[int]:
        """Sample-and-export: the argmax and `samples` draws from P_θ, each repaired to a
        hard target if there is one; the best validation accuracy wins."""
        probs = self.net.probs().detach()
        gen = torch.Generator().manual_seed(self.config.seed)
        draws = [self.net.argmax()] + [
            [int(i) for i in torch.multinomial(probs, 1, generator=gen).squeeze(1)]
            for _ in range(self.samples)
        ]
        if self.hard is not None:
            logp = torch.log(probs.clamp_min(1e-12))
            h = self.hard
            draws = [
                repair(self.table, logp, d, h.target_ms, h.tolerance, h.constraint) for d in draws
            ]
        unique = list(dict.fromkeys(tuple(d) for d in draws))
        scored = [(self.accuracy(list(d)), -i, list(d)) for i, d in enumerate(unique)]
        self.exported_from = len(unique)
        return max(scored)[2]
