"""What the REINFORCE searchers share (ENAS, ProxylessNAS-REINFORCE): the reward of a
sampled architecture, the moving-average baseline, and one policy-gradient step.

For K architectures sampled from the policy, each run with the shared weights on one
search-validation batch,

    R_k  = shaped(acc_k, LAT_k) + β_H · H_k             (β_H: ENAS' entropy weight)
    loss = −mean_k (R_k − b) · log p(arch_k)             (descent = REINFORCE ascent)
    b   ← d·b + (1 − d)·mean_k R_k                       (after the step's use of b)

b is an exponential moving average (decay d) started at the first step's mean; a step
uses the b from before its own rewards, so the baseline does not depend on the samples
it is subtracted from (ENAS' and ProxylessNAS' code fold the step's rewards in first).

The accuracy is measured in train mode, BN on the batch's own statistics, as the weight
steps run the supernet (ENAS' `valid_rl` reads the child in training mode too): a
sampled path has no running statistics of its own. The latency shaping:

- no latency term: R = acc;
- soft (`SoftLatency`, whatever its form): MnasNet's R = acc·(LAT/T)^w, T its target;
  a soft loss without a target is refused (`check_latency`);
- hard (`HardTarget`), `filter`: R = acc inside the constraint, 0 outside (a reward the
  policy cannot earn outside); `lagrangian`: R = acc − [λ·u + (ρ/2)·q²], the augmented
  Lagrangian every other searcher minimises, in the target's units of LAT.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import torch
from torch import nn

from searchers.core.distributed import Dist
from searchers.core.losses import HardTarget, LatencyLoss, SoftLatency
from searchers.core.mixed import Mode

HardReward = Literal["filter", "lagrangian"]
HARD_REWARDS = ("filter", "lagrangian")
Forward = Callable[[torch.Tensor, Sequence[Mode | None]], torch.Tensor]


def check_latency(name: str, latency: LatencyLoss | None) -> None:
    """Refuse a soft latency loss without the target T the reward needs."""
    if isinstance(latency, SoftLatency) and latency.target_ms is None:
        raise ValueError(f"{name}: the soft reward acc·(LAT/T)^w needs a target T (--target-ms)")


@dataclass
class Reward:
    """acc and the architecture's LAT (ms) -> its reward (the module doc's shaping)."""

    latency: LatencyLoss | None
    exponent: float = -0.07  # MnasNet's w
    hard: HardReward = "lagrangian"

    def __call__(self, acc: float, lat_ms: float) -> float:
        if isinstance(self.latency, HardTarget):
            if self.hard == "filter":
                return acc if self.latency.satisfied(lat_ms) else 0.0
            return acc - float(self.latency(torch.tensor(0.0), torch.tensor(lat_ms)))
        if self.latency is None:
            return acc
        assert isinstance(self.latency, SoftLatency) and self.latency.target_ms is not None
        return acc * (lat_ms / self.latency.target_ms) ** self.exponent

    def inside(self, lat_ms: float) -> bool:
        """Whether LAT satisfies the hard constraint (always, without one)."""
        return not isinstance(self.latency, HardTarget) or self.latency.satisfied(lat_ms)


@torch.no_grad()
def batch_accuracy(forward: Forward, plan: Sequence[Mode | None], x: torch.Tensor,
                   y: torch.Tensor) -> float:  # fmt: skip
    """Accuracy of one path on a batch with the shared weights, in train mode (BN on the
    batch's statistics) as the weight steps run it."""
    out = forward(x, plan)
    return float((out.argmax(dim=1) == y).float().mean())


@torch.no_grad()
def batch_accuracies(forward: Forward, plans: Sequence[Sequence[Mode | None]], x: torch.Tensor,
                     y: torch.Tensor, dist: Dist) -> list[float]:  # fmt: skip
    """`batch_accuracy` of each plan on the global batch whose shard this rank holds: the
    correct counts summed over the ranks (BN synced, so each row is scored as on one
    process), divided in float32 as one process's mean is."""
    if not dist.active:
        return [batch_accuracy(forward, p, x, y) for p in plans]
    correct = [int((forward(x, p).argmax(dim=1) == y).sum()) for p in plans]
    total = dist.sum(torch.tensor([*correct, len(y)], dtype=torch.float32))
    return [float(c / total[-1]) for c in total[:-1]]


@dataclass
class Baseline:
    """The EMA baseline: `use(mean)` returns the b a step subtracts, then folds `mean` in."""

    decay: float
    value: float | None = None

    def use(self, mean: float) -> float:
        b = mean if self.value is None else self.value
        self.value = self.decay * b + (1 - self.decay) * mean
        return b


class Draw(NamedTuple):
    """One sampled architecture: how the supernet runs it, its LAT, and its policy terms."""

    plan: Sequence[Mode | None]
    lat_ms: float
    logp: torch.Tensor  # Σ log p of its decisions, differentiable in the policy
    entropy: torch.Tensor  # Σ entropy of the decisions' distributions


@dataclass
class Tally:
    """An epoch's sums for its record: rewards, and the sampled architectures' LAT."""

    reward: float = 0.0
    rewards: int = 0
    ms: float = 0.0
    inside: int = 0
    samples: int = 0

    def note(self, lat_ms: float, inside: bool) -> None:
        self.ms, self.inside, self.samples = (
            self.ms + lat_ms,
            self.inside + inside,
            self.samples + 1,
        )

    def record(self) -> dict[str, float | None]:
        n, s = self.rewards, self.samples
        return {
            "reward": self.reward / n if n else None,
            "sampled_ms": self.ms / s if s else None,
            "inside": self.inside / s if s else None,
        }

    def state(self) -> list[float]:
        return [self.reward, self.rewards, self.ms, self.inside, self.samples]

    @classmethod
    def load(cls, state: Sequence[float]) -> Tally:
        r, n, ms, inside, s = state
        return cls(float(r), int(n), float(ms), int(inside), int(s))


class Reinforce:
    """The arch step of a REINFORCE searcher: rewards, baseline, loss (module doc)."""

    def __init__(self, reward: Reward, decay: float, entropy_weight: float = 0.0):
        self.reward, self.baseline, self.entropy_weight = reward, Baseline(decay), entropy_weight
        self.tally = Tally()

    def loss(self, draws: Sequence[Draw], accs: Sequence[float]) -> torch.Tensor:
        """−mean_k (R_k − b)·log p_k; R_k with the entropy bonus, b before this step."""
        rewards = [
            self.reward(acc, d.lat_ms) + self.entropy_weight * float(d.entropy.detach())
            for d, acc in zip(draws, accs, strict=True)
        ]
        b = self.baseline.use(sum(rewards) / len(rewards))
        self.tally.reward += sum(rewards)
        self.tally.rewards += len(rewards)
        logp = torch.stack([d.logp for d in draws])  # [K]
        advantage = torch.tensor([r - b for r in rewards]).to(logp)
        return -(advantage * logp).mean()

    def note(self, lat_ms: float) -> None:
        self.tally.note(lat_ms, self.reward.inside(lat_ms))

    def record(self) -> dict[str, float | None]:
        """The epoch's figures; the sums start again."""
        row = {**self.tally.record(), "baseline": self.baseline.value}
        self.tally = Tally()
        return row

    def state(self) -> dict[str, Any]:
        return {"baseline": self.baseline.value, "tally": self.tally.state()}

    def load_state(self, state: dict[str, Any]) -> None:
        self.baseline.value, self.tally = state["baseline"], Tally.load(state["tally"])


def policy_grads(
    loss: torch.Tensor, params: Sequence[nn.Parameter], clip: float = 0.0
) -> list[torch.Tensor]:
    """∂loss/∂params (the policy's only: no weight gradient), norm-clipped when clip > 0."""
    raw = torch.autograd.grad(loss, list(params), allow_unused=True)
    grads = [torch.zeros_like(p) if g is None else g for p, g in zip(params, raw, strict=True)]
    if clip > 0:
        norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
        scale = min(1.0, clip / (float(norm) + 1e-6))
        grads = [g * scale for g in grads]
    return grads
