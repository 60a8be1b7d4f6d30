"""ENAS (Pham et al., ICML 2018): an LSTM controller samples child networks that share
the supernet's weights, and learns from their validation accuracy by REINFORCE.

Weight step: one child sampled from the controller (no gradient), trained with CE on a
train batch; warm-up epochs (weights only) sample from the controller too, which starts
near uniform (c·tanh(·/T) logits, weights in ±0.1). Architecture step, every
`arch_every` weight steps on the loop's search-validation batch: K = `samples` children
drawn with their log-probability, each scored with the shared weights in train-mode BN
(ENAS' `valid_rl`), and

    R_k  = shaped(acc_k, LAT_k) + entropy_weight · H_k
    loss = −mean_k (R_k − b) · log p(arch_k),    b ← d·b + (1 − d)·mean_k R_k

(core/reinforce.py: b from before the step, first step b = the mean; shaped: no latency
R = acc; soft MnasNet acc·(LAT/T)^w; hard `filter` acc inside the constraint else 0, or
`lagrangian` acc − the augmented-Lagrangian penalty). LAT is the table sum. The
controller's optimiser is the loop's Adam (β1 0 as ENAS) with `arch_lr`, its gradient
norm clipped at `controller_clip` (0: off).

Export: the greedy decode plus `export_samples` samples from the controller, each
repaired into the constraint before it is scored (SampleSelector), the best by
search-validation accuracy with the shared weights after BN recalibration. ENAS instead
samples 10 children and keeps the best on one validation batch; scoring repaired
candidates on the whole split is what every hwlat selector does.

Departures from ENAS, and why:
- the loop interleaves steps (weights, then K children, per train batch); ENAS trains
  the children one epoch, then the controller 50 steps of 20 children (macro). Same
  objective, a finer schedule that the shared loop (and checkpoints) already runs.
- K = 4 children per update (ENAS: 20 macro, 10 micro) and every weight step: 4
  forwards of a batch without gradient, about 1.3x the cost of the weight step itself
  on CPU; more children cut the variance but not the search's wall time.
- the macro space is the table's chain space (a candidate per layer); ENAS' macro
  space also samples skip connections between layers, which no chain table prices.
- no skip-connection KL penalty (`skip_weight`): there are no such decisions here.

The cell form (`enas-cell`, ENAS' micro space on DARTS' cell) is enas_cell.py.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch

from searchers.core.arch import ArchParams
from searchers.core.config import SearchConfig, option
from searchers.core.controller import Controller
from searchers.core.loop import Searcher
from searchers.core.mixed import Mode
from searchers.core.reinforce import (
    HARD_REWARDS,
    Draw,
    Reinforce,
    Reward,
    batch_accuracies,
    check_latency,
    policy_grads,
)
from searchers.core.selectors import SampleSelector, Selector
from searchers.registry import register_searcher

Batch = tuple[torch.Tensor, torch.Tensor]


@dataclass
class EnasOptions:
    """The controller's and REINFORCE's options (`enas` and `enas-cell` share them)."""

    controller_hidden: int = option(64, "LSTM hidden size of the controller", "ENAS (64)")
    temperature: float = option(5.0, "T of the logits c·tanh(l/T)", "ENAS (5.0)")
    tanh_c: float = option(2.5, "c of the logits c·tanh(l/T)", "ENAS (2.5)")
    samples: int = option(
        4, "children scored per controller update (4 val-batch forwards a weight step)",
        "ENAS (controller_num_aggregate 20 macro, 10 micro)",
    )  # fmt: skip
    baseline_decay: float = option(0.99, "decay of the reward's EMA baseline", "ENAS (bl_dec)")
    entropy_weight: float = option(
        1e-4, "weight of the sample's entropy added to its reward", "ENAS (entropy_weight)"
    )
    latency_exponent: float = option(
        -0.07, "w of the soft reward acc·(LAT/T)^w", "MnasNet (soft constraint)"
    )
    hard_reward: Literal["filter", "lagrangian"] = option(
        "filter",
        "a hard target's reward: acc inside the constraint else 0, or acc − the "
        "augmented-Lagrangian penalty (proxyless-rl's)",
    )
    controller_clip: float = option(0.0, "controller gradient norm clip (0: none)")
    export_samples: int = option(
        20, "children sampled at the end besides the greedy decode, the best exported",
        "ENAS (10)",
    )  # fmt: skip

    def check(self) -> None:
        if self.controller_hidden < 1 or self.temperature <= 0 or self.tanh_c <= 0:
            raise ValueError("controller: controller_hidden >= 1, temperature > 0, tanh_c > 0")
        if self.samples < 1 or self.export_samples < 0:
            raise ValueError("samples: must be >= 1 (export_samples >= 0)")
        if not 0 <= self.baseline_decay < 1:
            raise ValueError(f"baseline_decay: must be in [0, 1), got {self.baseline_decay}")
        if self.entropy_weight < 0 or self.controller_clip < 0:
            raise ValueError("entropy_weight and controller_clip: must be >= 0")
        if self.hard_reward not in HARD_REWARDS:
            raise ValueError(f"hard_reward: filter or lagrangian, got {self.hard_reward!r}")


@dataclass
class EnasConfig(SearchConfig, EnasOptions):
    lr: float = option(
        0.05,
        "weights: SGD learning rate (cosine to 0); the core's 0.005 left the shared weights "
        "at 23% greedy accuracy after 3 epochs on digits@32",
        "ENAS (0.05 micro, 0.1 macro)",
    )
    warmup_epochs: int = option(
        1, "epochs of weights only (children from the untrained controller)", "ENAS (none)"
    )
    arch_lr: float = option(
        0.001,
        "controller: Adam learning rate; measured on a 21x7 chain, 200 steps of K=4 with an "
        "accuracy-sized signal: 1e-3 raised the paid choice 0.14 -> 0.73 keeping the other "
        "decisions near uniform, 3.5e-3 collapsed them on noise (entropy 1.95 -> 0.63)",
        "ENAS (0.001 macro)",
    )
    arch_beta1: float = option(0.0, "controller: Adam β1", "ENAS")

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check()


class EnasSearch(Searcher):
    """What `enas` and `enas-cell` share: the REINFORCE step and its records."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        check_latency(self.name, self.latency)
        o = self.options
        self.rl = Reinforce(
            Reward(self.latency, o.latency_exponent, o.hard_reward),
            o.baseline_decay,
            o.entropy_weight,
        )

    @property
    def options(self) -> EnasOptions:
        assert isinstance(self.config, EnasOptions), "an ENAS config"
        return self.config

    @abstractmethod
    def draw(self) -> Draw:
        """One child sampled from the controller, with its log-probability."""

    def weight_plan(self, warmup: bool) -> Sequence[Mode | None]:
        with torch.no_grad():
            child = self.draw()
        self.rl.note(child.lat_ms)
        return child.plan

    def arch_step(self, train: Batch, val: Batch) -> None:
        x, y = val
        draws = [self.draw() for _ in range(self.options.samples)]
        accs = batch_accuracies(self.forward, [d.plan for d in draws], x, y, self.dist)
        for d in draws:
            self.rl.note(d.lat_ms)
        loss = self.rl.loss(draws, accs)
        self.apply_arch_grads(policy_grads(loss, self.arch_params(), self.options.controller_clip))

    def after_arch_step(self) -> None:
        """The dual step only when the reward reads λ (`hard_reward=lagrangian`): the
        filter never does, and a λ moving beside it would be reported for nothing."""
        if self.options.hard_reward == "lagrangian":
            super().after_arch_step()

    def epoch_record(self, warmup: bool, seconds: float) -> dict[str, Any]:
        return {**super().epoch_record(warmup, seconds), **self.rl.record()}

    def extra_state(self) -> dict[str, Any]:
        return self.rl.state()

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.rl.load_state(state)


@register_searcher
class ENAS(EnasSearch):
    name = "enas"
    paper = "ENAS (Pham et al., ICML 2018), macro space"
    Config = EnasConfig
    config: EnasConfig

    def build_arch(self) -> ArchParams:
        c = self.config
        return Controller(self.net.mask(), self.net.layer_of(), c.controller_hidden,
                          c.temperature, c.tanh_c)  # fmt: skip

    def draw(self) -> Draw:
        assert isinstance(self.arch, Controller)
        choices, logp, entropy = self.arch.sample_with_logp(self.gen)
        cols = self.arch.to_layers(choices)
        return Draw(self.plan_for(cols), self.table.exact(cols), logp, entropy)

    def selector(self) -> Selector:
        return SampleSelector(self.config.export_samples)
