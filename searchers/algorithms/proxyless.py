"""ProxylessNAS (Cai et al., ICLR 2019): binary gates, one path in memory.

Weight step: per layer one path is sampled from the architecture distribution p
(uniformly during warm-up) and only it runs, so training memory is that of one compact
network whatever the number of candidates. Architecture step, on a search-validation
batch: binary gates g (one-hot, sampled from p) with
∂L/∂α_i = Σ_j ∂L/∂g_j · p_j(δ_ij − p_i), where ∂L/∂g_j = <∂L/∂out, o_j(x)>:

- `full_v2`: every legal path enters the sum; the forward runs the sampled path only and
  the backward recomputes the others under no_grad (core/mixed.py, `Gates`);
- `two`: two paths are sampled per layer, p is renormalised over them, and after the
  update their α are shifted by a common offset so that the probabilities of the paths
  not sampled do not change.

The gradient formula is softmax's own backward with ∂L/∂p_j := ∂L/∂g_j, so the gates are
built as one-hot + p − p.detach(): value one-hot, derivative the identity.

Per epoch it reports the search-validation accuracy of the argmax path and the mean
over paths sampled from p (what the weights were trained on), each with its BN
statistics re-estimated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from searchers.core.arch import keep_sampled_mass
from searchers.core.config import SearchConfig, option
from searchers.core.loop import Searcher
from searchers.core.mixed import Gates, Mode
from searchers.registry import register_searcher

SAMPLED_PATHS = 3  # paths from p scored per epoch for `sampled_acc`


@dataclass
class ProxylessConfig(SearchConfig):
    mode: Literal["full_v2", "two"] = option(
        "full_v2", "architecture gradient over all paths, or two sampled ones", "ProxylessNAS"
    )


@register_searcher
class ProxylessNAS(Searcher):
    name = "proxyless"
    paper = "ProxylessNAS (Cai et al., ICLR 2019)"
    Config = ProxylessConfig

    def weight_plan(self, warmup: bool) -> Sequence[Mode | None]:
        p = self.arch.probs().detach().cpu()
        if warmup:
            p = self.arch.legal.cpu().float()  # uniform over the legal paths
        cols = torch.multinomial(p, 1, generator=self.gen).squeeze(1).tolist()
        return self.plan_for(cols)

    def arch_step(
        self, train: tuple[torch.Tensor, torch.Tensor], val: tuple[torch.Tensor, torch.Tensor]
    ) -> None:
        x, y = val
        plan, involved = self.gates()
        ce = F.cross_entropy(self.forward(x, plan), y)
        loss = ce if self.latency is None else self.latency(ce, self.expected_ms())
        self.arch_update(loss)
        if self.config.mode == "two":  # type: ignore[attr-defined]
            keep_sampled_mass(self.alpha, involved)

    def gates(self) -> tuple[list[Mode], dict[int, tuple[list[int], torch.Tensor]]]:
        """Binary gates per layer; also the columns involved and their α before the step."""
        alpha = self.alpha
        plan: list[Mode] = []
        involved: dict[int, tuple[list[int], torch.Tensor]] = {}
        for layer, mixed in enumerate(self.net.mixed()):
            n = len(mixed.columns)
            paths = list(range(n))
            if self.config.mode == "two" and n > 2:  # type: ignore[attr-defined]
                p_all = F.softmax(alpha[layer, mixed.columns].detach(), dim=0).cpu()
                paths = sorted(torch.multinomial(p_all, 2, generator=self.gen).tolist())
            cols = [mixed.columns[i] for i in paths]
            p = F.softmax(alpha[layer, cols], dim=0)
            sampled = int(torch.multinomial(p.detach().cpu(), 1, generator=self.gen))
            gates = F.one_hot(torch.tensor(sampled), len(paths)).to(p) + p - p.detach()
            plan.append(Gates(tuple(paths), sampled, gates))
            involved[layer] = (cols, alpha[layer, cols].detach().clone())
        return plan, involved

    def evaluate(self) -> dict[str, float]:
        gen = torch.Generator().manual_seed(self.config.seed + 1000 + self.epoch)
        sampled = [self.arch.sample(gen) for _ in range(SAMPLED_PATHS)]
        return {
            "argmax_acc": self.score(self.arch.argmax()),
            "sampled_acc": sum(self.score(c) for c in sampled) / SAMPLED_PATHS,
        }
