"""ProxylessNAS-REINFORCE (Cai et al., ICLR 2019): the binary gates learnt from a reward
that need not be differentiable, such as a latency measured on the device.

Weight step: ProxylessNAS's own (one path per layer sampled from p, uniform in warm-up).
Architecture step, on a search-validation batch: K architectures are sampled from
p = softmax(α) over each layer's legal candidates; each is run with the shared weights
(no gradient, train mode as the weight steps run) for its accuracy on the batch, and
its latency LAT is looked up; then

    ∇_α J = mean_k (R_k − b) · ∇_α log p(arch_k),   log p(arch) = Σ_l log p_l[choice_l]

(per layer (δ_choice − p)·(R − b)), applied as Adam's descent on −∇_α J. b is an
exponential moving average of the mean reward per step (decay `baseline_decay`, started
at the first step's mean); a step uses the b from before its own rewards, so the
baseline does not depend on the samples it is subtracted from (ProxylessNAS's code
folds the step's rewards in first).

The reward:
- no latency term (`latency` None): R = acc;
- soft (a `SoftLatency`, whatever its form): MnasNet's R = acc·(LAT/T)^w, T its target,
  w = `latency_exponent` (−0.07); a soft loss without a target is refused;
- hard (`HardTarget`): R = acc − [λ·u + (ρ/2)·q²], the augmented Lagrangian every other
  searcher minimises, in the target's own units of the sample's LAT; λ's dual step stays
  the loop's, on the argmax's table latency, and the argmax is repaired into the target
  at the end.

LAT is the table sum (`latency=table`) or, with `latency=measured`, the device's
end-to-end measurement from an injected `measure` callable (columns per layer for each
architecture → ms each): the step's new architectures go to it in one call and every
answer is cached per architecture (kept in checkpoints, so a resume measures nothing
twice). The hard target stays a table constraint: the dual step and the final repair
read the table sum, while the reward's penalty compares the measured LAT with the same
target, so the two agree only where the table sum predicts the measurement.

The reward, the baseline and the batch accuracy are core/reinforce.py's (shared with ENAS).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F

from searchers.algorithms.proxyless import ProxylessNAS
from searchers.core.arch import Alpha
from searchers.core.config import SearchConfig, option
from searchers.core.losses import LatencyLoss
from searchers.core.reinforce import (
    Baseline,
    Reward,
    batch_accuracies,
    batch_accuracy,
    check_latency,
)
from searchers.data import Data
from searchers.latency import LatencyTable
from searchers.registry import register_searcher

Measure = Callable[[list[list[int]]], list[float]]
Batch = tuple[torch.Tensor, torch.Tensor]
LATENCIES = ("table", "measured")


@dataclass
class ProxylessRLConfig(SearchConfig):
    samples: int = option(
        4,
        "architectures sampled per architecture step (4 forwards of the val batch; "
        "affordable on 2 CPU cores)",
        "ProxylessNAS (10)",
    )
    baseline_decay: float = option(
        0.9, "decay of the reward's moving-average baseline", "ProxylessNAS (rl baseline)"
    )
    latency_exponent: float = option(
        -0.07, "w of the soft reward acc·(LAT/T)^w", "MnasNet (soft constraint)"
    )
    latency: Literal["table", "measured"] = option(
        "table",
        "LAT of a sampled architecture: the table sum, or measured end to end on the "
        "device (cached per architecture; raise arch_every to measure less)",
        "ProxylessNAS (non-differentiable objectives)",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.samples < 1:
            raise ValueError(f"samples: must be >= 1, got {self.samples}")
        if not 0 <= self.baseline_decay < 1:
            raise ValueError(f"baseline_decay: must be in [0, 1), got {self.baseline_decay}")
        if self.latency not in LATENCIES:
            raise ValueError(f"latency: table or measured, got {self.latency!r}")


def log_prob(arch: Alpha, picks: Sequence[Sequence[int]]) -> torch.Tensor:
    """log p(arch_k) = Σ_decisions log softmax(α over the legal candidates)[pick]: [K]."""
    logp = F.log_softmax(arch.alpha.masked_fill(~arch.legal, -math.inf), dim=1)
    idx = torch.tensor([list(p) for p in picks], device=logp.device)  # [K x decisions]
    # [decisions x K] -> [K x decisions]: each pick's log-probability per decision
    chosen = logp.gather(1, idx.T).T
    return chosen.sum(dim=1)


def reinforce_grad(
    arch: Alpha, picks: Sequence[Sequence[int]], rewards: Sequence[float], baseline: float
) -> torch.Tensor:
    """The ascent direction ∇_α mean_k (R_k − b)·log p(arch_k), through autograd."""
    logp = log_prob(arch, picks)
    advantage = torch.tensor([r - baseline for r in rewards], dtype=logp.dtype).to(logp.device)
    (grad,) = torch.autograd.grad((advantage * logp).mean(), arch.alpha)
    return grad


@register_searcher
class ProxylessRL(ProxylessNAS):
    name = "proxyless-rl"
    paper = "ProxylessNAS (Cai et al., ICLR 2019), REINFORCE variant"
    Config = ProxylessRLConfig  # type: ignore[assignment]  # no `mode`: the gates are not used
    config: ProxylessRLConfig
    takes_measure: ClassVar[bool] = True  # `hwlat search` passes `measure=` when asked to

    def __init__(
        self,
        table: LatencyTable,
        data: Data,
        config: SearchConfig,
        latency: LatencyLoss | None,
        device: str = "cpu",
        measure: Measure | None = None,
    ):
        super().__init__(table, data, config, latency, device)
        if self.config.latency == "measured" and measure is None:
            raise ValueError(
                "latency=measured: pass measure= (columns per architecture -> end-to-end "
                "ms each; `hwlat search` builds it from --device or --lut)"
            )
        if self.config.latency == "measured" and self.dist.active:
            raise ValueError(
                f"latency=measured: measuring on the device runs in one process; drop --nproc "
                f"(got {self.dist.world} processes) or use latency=table"
            )
        check_latency(self.name, latency)
        self.measure = measure
        self.measured: dict[tuple[int, ...], float] = {}  # end-to-end ms per architecture
        self.ema = Baseline(self.config.baseline_decay)
        self.shaped = Reward(latency, self.config.latency_exponent, "lagrangian")
        self.reward_sum, self.reward_n = 0.0, 0  # this epoch's, for its record

    def arch_step(self, train: Batch, val: Batch) -> None:
        x, y = val
        picks = [self.arch.sample(self.gen) for _ in range(self.config.samples)]
        columns = [self.arch.to_layers(p) for p in picks]
        lats = self.latencies(columns)
        accs = self.accuracies(columns, x, y)
        rewards = [self.reward(acc, ms) for acc, ms in zip(accs, lats, strict=True)]
        b = self.ema.use(sum(rewards) / len(rewards))
        assert isinstance(self.arch, Alpha), "proxyless-rl learns per-decision logits"
        self.apply_arch_grads([-reinforce_grad(self.arch, picks, rewards, b)])  # ascent
        self.reward_sum += sum(rewards)
        self.reward_n += len(rewards)

    @property
    def baseline(self) -> float | None:
        return self.ema.value

    def batch_accuracy(self, columns: Sequence[int], x: torch.Tensor, y: torch.Tensor) -> float:
        """Accuracy of one architecture on a batch, train-mode BN (core/reinforce.py)."""
        return batch_accuracy(self.forward, self.plan_for(columns), x, y)

    def accuracies(self, columns: Sequence[Sequence[int]], x: torch.Tensor,
                   y: torch.Tensor) -> list[float]:  # fmt: skip
        """`batch_accuracy` of each; on N ranks over the global batch (counts summed)."""
        if not self.dist.active:
            return [self.batch_accuracy(c, x, y) for c in columns]
        plans = [self.plan_for(c) for c in columns]
        return batch_accuracies(self.forward, plans, x, y, self.dist)

    def reward(self, acc: float, lat_ms: float) -> float:
        """core/reinforce.py's shaping; a hard target: the augmented Lagrangian."""
        return self.shaped(acc, lat_ms)

    def latencies(self, columns: Sequence[Sequence[int]]) -> list[float]:
        """LAT per architecture: the table sum, or the measurement (new ones in one call)."""
        if self.config.latency == "table":
            return [self.table.exact(list(c)) for c in columns]
        new = list(dict.fromkeys(tuple(c) for c in columns if tuple(c) not in self.measured))
        if new:
            assert self.measure is not None, "checked in __init__"
            got = [float(ms) for ms in self.measure([list(c) for c in new])]
            if len(got) != len(new) or not all(ms > 0 and math.isfinite(ms) for ms in got):
                raise ValueError(f"measure: expected {len(new)} positive latencies (ms), got {got}")
            self.measured.update(zip(new, got, strict=True))
        return [self.measured[tuple(c)] for c in columns]

    def epoch_record(self, warmup: bool, seconds: float) -> dict[str, Any]:
        row = super().epoch_record(warmup, seconds)
        row["reward"] = self.reward_sum / self.reward_n if self.reward_n else None
        row["baseline"] = self.baseline
        self.reward_sum, self.reward_n = 0.0, 0
        return row

    def extra_state(self) -> dict[str, Any]:
        return {
            "measured": [[*cols, ms] for cols, ms in self.measured.items()],
            "baseline": self.baseline,
            "rewards": [self.reward_sum, self.reward_n],
        }

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.measured = {
            tuple(int(c) for c in row[:-1]): float(row[-1]) for row in state["measured"]
        }
        self.ema.value = state["baseline"]
        self.reward_sum, self.reward_n = state["rewards"]
