"""One-Shot (Bender et al., ICML 2018): train the whole supernet with path dropout, then
rank sampled architectures with the shared weights.

Training and search are apart, as in SPOS (this subclasses it for the training counts,
`evaluate` and the evolution), but every weight step trains the whole supernet, thinned
by *scheduled path dropout*:

    r_t = drop_rate · min(1, t / (ramp · T))        t: weight steps so far, T: all of them
    in every layer, each of its k legal candidates is dropped independently with
    probability r_t^(1/k)                           (so the whole layer drops with r_t)
    if all k are dropped, one of them, uniform, is kept (at least one path per layer)

The kept candidates run and their outputs are averaged (`Paths` in core/mixed.py: the
paper sums them inside a cell whose residual is outside the ops; a chain candidate
carries its own residual, and a sum would scale it by the number of kept paths). With
the rescue a candidate's keep probability is 1 − r_t^(1/k) + r_t/k. Draws use the
searcher's generator, so a run is deterministic under its seed, and the position in the
schedule comes from (epoch, step), which a checkpoint keeps.

`ghost_batch` (Bender's variant of ghost BN, Hoffer et al. 2017): the batch is split
into chunks of that many examples, each run forward separately with its own dropout draw
(so every BN normalises over one ghost batch), the losses weighted by chunk size into
one step. Off by default (0): it shapes the batch statistics only while training, and
was not measured to help here; scoring re-estimates every path's BN statistics anyway
(core/evaluate.py).

After training, `selector=random` (default, the paper's): `random_archs` architectures
drawn uniformly *inside the latency constraint* (the paper samples the whole space:
here the hard target is what a search is for), each scored with the shared weights
after BN recalibration, the best kept (the fastest of equals); `selector=evolution`:
SPOS's. Either way `selection` carries the `topk` best rows and the accuracy–latency
Pareto front. Paths are not drawn inside a latency window during training (the whole
supernet trains); a soft latency loss is refused, as in SPOS.

Departures: L2 on all weights, not only the kept ones (SGD's weight decay). Averaging
the kept paths divides each one's gradient by their number: early in the ramp, with
most paths kept, a candidate learns at about 1/k of a single path's rate. The paper
finds r must be tuned (too little and the ranking follows co-adaptation, too much and
the supernet does not learn); the value of its main runs was not checked here (the seed
summary does not give it), and the default 0.5 is a middle value, not the paper's.

Per epoch, besides SPOS's `sampled_acc` (single paths uniform over the whole space:
there is no training window), `sampled_ms`, `fairness`: `drop_rate` (r_t at the epoch's
end) and `mean_paths` (mean kept candidates per layer over the epoch). The per-op rate
thins fast: proxyless-mobile (6-7 candidates a layer) kept 2.5, 1.6, 1.2 paths a layer
in the three epochs of a drop_rate=0.5 run, so late training is nearly single-path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F

from searchers.algorithms.spos import SPOS, OneShotConfig
from searchers.core.config import option
from searchers.core.mixed import Mode, Paths
from searchers.core.selectors import RandomSelector, Selector
from searchers.registry import register_searcher


@dataclass
class BenderConfig(OneShotConfig):
    lr: float = option(
        0.005, "weights: SGD learning rate (cosine to 0); 0.05 was no better after one epoch "
        "on digits (both 22% sampled accuracy)",
    )  # fmt: skip
    drop_rate: float = option(
        0.5, "path dropout r at the end of the ramp (a layer drops all with r)",
        "One-Shot (tuned per space; 0.5 is hwlat's)",
    )  # fmt: skip
    ramp: float = option(
        1.0, "fraction of training over which r_t rises linearly from 0 to drop_rate",
        "One-Shot (over all of training)",
    )  # fmt: skip
    ghost_batch: int = option(
        0, "ghost BN: examples per chunk run forward separately (0: off)", "One-Shot"
    )
    selector: Literal["random", "evolution"] = option(
        "random", "after training: best of random archs in the constraint, or evolution",
        "One-Shot (random), SPOS (evolution)",
    )  # fmt: skip
    random_archs: int = option(100, "selector=random: architectures scored")
    topk: int = option(10, "rows kept in selection['topk']; evolution: parents kept", "SPOS")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 <= self.drop_rate < 1:
            raise ValueError(f"drop_rate: must be in [0, 1), got {self.drop_rate}")
        if not 0 < self.ramp <= 1:
            raise ValueError(f"ramp: must be in (0, 1], got {self.ramp}")
        if self.ghost_batch == 1 or self.ghost_batch < 0:
            raise ValueError(f"ghost_batch: 0 (off) or >= 2 (BN needs 2), got {self.ghost_batch}")
        if self.random_archs < 1:
            raise ValueError(f"random_archs: must be >= 1, got {self.random_archs}")


@register_searcher
class OneShot(SPOS):
    name = "oneshot"
    paper = "One-Shot (Bender et al., ICML 2018)"
    Config = BenderConfig
    config: BenderConfig

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        g = self.config.ghost_batch
        if g and self.data.batch_size % g == 1:
            raise ValueError(
                f"ghost_batch: {g} leaves a chunk of one example from batches of "
                f"{self.data.batch_size} (BN needs 2); pick another ghost_batch"
            )
        if g and self.dist.active:  # each chunk would need its own draw on its own rank
            raise ValueError(
                f"ghost_batch: ghost BN runs on one process only; drop --nproc or set "
                f"ghost_batch=0 (got {g} with {self.dist.world} processes)"
            )
        self.kept = [0.0, 0.0]  # this epoch: Σ mean kept paths per layer, draws

    # --- training -----------------------------------------------------------------------
    def drop_rate(self, step: int | None = None) -> float:
        """r_t at global weight step `step` (default: the current one)."""
        c, per_epoch = self.config, self.data.steps_per_epoch()
        t = self.epoch * per_epoch + self.step if step is None else step
        total = max(c.ramp * c.epochs * per_epoch, 1e-9)
        return c.drop_rate * min(1.0, t / total)

    def drop(self, rate: float) -> list[tuple[int, ...]]:
        """Kept candidates (indices into each layer's legal ones) under drop rate `rate`."""
        kept = []
        for mixed in self.net.mixed():
            k = len(mixed.columns)
            keep = torch.rand(k, generator=self.gen) >= rate ** (1.0 / k)
            if not keep.any():  # never a layer without a path
                keep[int(torch.randint(k, (1,), generator=self.gen))] = True
            kept.append(tuple(int(i) for i in keep.nonzero()[:, 0]))
        return kept

    def weight_plan(self, warmup: bool) -> Sequence[Mode | None]:
        kept = self.drop(self.drop_rate())
        for layer, (mixed, idx) in enumerate(zip(self.net.mixed(), kept, strict=True)):
            for i in idx:
                self.trained[layer, mixed.columns[i]] += 1
        self.kept[0] += sum(len(i) for i in kept) / len(kept)
        self.kept[1] += 1
        return [Paths(i) for i in kept]

    def weight_step(self, x: torch.Tensor, y: torch.Tensor, warmup: bool) -> float:
        """One step; with ghost BN the chunks run separately, each with its own draw, and
        their losses (weighted by size) accumulate into one gradient."""
        n = len(x)
        size = self.config.ghost_batch or n
        self.w_opt.zero_grad(set_to_none=True)
        total = 0.0
        for xs, ys in zip(x.split(size), y.split(size), strict=True):
            loss = F.cross_entropy(self.forward(xs, self.weight_plan(warmup)), ys) * (len(xs) / n)
            loss.backward()
            total += float(loss.detach())
        self.step_weights()
        return total

    # --- per epoch and after ----------------------------------------------------------
    def epoch_record(self, warmup: bool, seconds: float) -> dict[str, Any]:
        row = super().epoch_record(warmup, seconds)
        row["drop_rate"] = round(self.drop_rate(), 6)  # self.step is the epoch's end here
        row["mean_paths"] = self.kept[0] / max(self.kept[1], 1)
        self.kept = [0.0, 0.0]
        return row

    def selector(self) -> Selector:
        c = self.config
        if c.selector == "evolution":
            return super().selector()
        return RandomSelector(c.random_archs, c.topk)

    def extra_state(self) -> dict[str, Any]:
        return {**super().extra_state(), "kept": list(self.kept)}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        super().load_extra_state(state)
        self.kept = list(state["kept"])
