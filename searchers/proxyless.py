"""ProxylessNAS (Cai et al., ICLR 2019): binary gates, one path in memory.

Weight step: per layer one path is sampled from the architecture distribution p and
only it runs, so training memory is that of one compact network whatever the number of
candidates. Architecture step: binary gates g (one-hot, sampled from p) with
∂L/∂α_i = Σ_j ∂L/∂g_j · p_j(δ_ij − p_i), where ∂L/∂g_j = <∂L/∂out, o_j(x)>:

- `full_v2`: every legal path enters the sum; the forward runs the hot path only and
  the backward recomputes the others under no_grad (supernet.py, _GatedPaths);
- `two`: two paths are sampled per layer, p is renormalised over them, and after the
  update their α are shifted by a common offset so that the probabilities of the
  paths not sampled do not change.

The gradient formula is softmax's own backward with ∂L/∂p_j := ∂L/∂g_j, so the gates
are built as one-hot + p − p.detach(): value one-hot, derivative the identity.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F

from searchers._registry import register_searcher
from searchers.base import Searcher, cross_entropy

MODES = ("full_v2", "two")


@register_searcher
class ProxylessNAS(Searcher):
    name = "proxyless"

    def __init__(self, *args: Any, mode: Literal["full_v2", "two"] = "full_v2", **kw: Any):
        if mode not in MODES:
            raise ValueError(f"mode: one of {', '.join(MODES)}, got {mode!r}")
        super().__init__(*args, **kw)
        self.mode = mode

    def weight_step(self, x: torch.Tensor, y: torch.Tensor, warmup: bool) -> float:
        probs = self.net.probs().detach()
        for layer, mixed in enumerate(self.net.mixed()):
            p = probs[layer, mixed.columns]
            p = torch.ones_like(p) if warmup else p  # warm-up: uniform paths
            mixed.active, mixed.gates, mixed.weights = int(torch.multinomial(p, 1)), None, None
        return self.train_weights(x, y)

    def arch_step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        before = self.set_gates()
        loss = self.objective(cross_entropy(self.net(x), y), self.expected_ms())
        self.a_opt.zero_grad()
        loss.backward()
        self.a_opt.step()
        if self.mode == "two":
            self.rescale(before)
        for mixed in self.net.mixed():
            mixed.gates = None

    def set_gates(self) -> dict[int, tuple[list[int], torch.Tensor]]:
        """Sample binary gates per layer; returns the involved columns and their α."""
        alpha, involved = self.net.alpha, {}
        for layer, mixed in enumerate(self.net.mixed()):
            n = len(mixed.columns)
            if self.mode == "two" and n > 2:
                p_all = F.softmax(alpha[layer, mixed.columns].detach(), dim=0)
                paths = sorted(int(i) for i in torch.multinomial(p_all, 2))
            else:
                paths = list(range(n))
            cols = [mixed.columns[i] for i in paths]
            p = F.softmax(alpha[layer, cols], dim=0)
            hot = int(torch.multinomial(p.detach(), 1))
            gates = F.one_hot(torch.tensor(hot), len(paths)).to(p) + p - p.detach()
            mixed.paths, mixed.hot, mixed.gates = paths, hot, gates
            involved[layer] = (cols, alpha[layer, cols].detach().clone())
        return involved

    @torch.no_grad()
    def rescale(self, before: dict[int, tuple[list[int], torch.Tensor]]) -> None:
        """Keep Σ exp(α) over the sampled paths: the others' probabilities stay put."""
        alpha = self.net.alpha
        for layer, (cols, old) in before.items():
            offset = torch.logsumexp(alpha[layer, cols], 0) - torch.logsumexp(old, 0)
            alpha[layer, cols] -= offset
