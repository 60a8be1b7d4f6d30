"""SMASH (Brock et al., ICLR 2018): one-shot architecture search through a hypernetwork.

A hypernetwork H maps an architecture encoding c to weights W = H(c) of that child. Each
training step samples one random architecture, generates its weights, and trains the
hypernetwork (and the freely learnt weights) end to end by back-propagating the child's
cross-entropy through W. After training, random architectures are scored on the
search-validation split with their generated weights, and the best is exported (to be
trained from scratch: `--retrain-epochs`). The ranking rests on the paper's claim that
validation error with generated weights correlates with that after normal training.

The hypernetwork and the supernet that runs a child on generated weights are in
core/hyper.py (its docstring says what is generated and how that departs from the
paper). Here, on a chain space:

- training: every weight step runs ONE architecture drawn uniformly over the legal
  candidates (the paper's random sampling; SPOS's `sampling=window|bins` stay
  available), CE back-propagated through the generated 1x1 weights into the
  hypernetwork's MLP and basis, and into the depthwise / BN / stem / tail weights;
- search: `random_archs` architectures drawn uniformly among those inside the latency
  constraint (core/selectors.py), each scored with its generated weights after BN
  recalibration (core/evaluate.py; SMASH's ops have no BN by default — `batchnorm=False`,
  weight-normalised generated weights instead — so its `evaluate.py` scores in eval mode
  without this; our candidates carry BN, whose shared statistics fit no single child), the best
  exported; `selection` carries the top `topk` and the accuracy–latency Pareto front.
  `selector=evolution` runs SPOS's evolution on the same scores instead.

Departures: the paper optimises with Adam (lr 1e-3, β1 0.5, no weight decay on the
hypernet); here the loop's SGD + cosine, shared by every searcher, trains it, at lr 0.05
rather than the searchers' 0.005, which learnt far slower through the generated
weights (figures in the `lr` option's help). Measured there too: the coefficients h
moved ~0.08 from (1, 0, 0, 0) and their spread across architectures stayed ~0.016, so
the generated weights depend on the rest of the architecture only weakly; most of the
learning is in the bases (shared by slicing) and the free weights. A soft latency loss
is refused: the search is under a constraint, as in SPOS. The paper's space (memory-bank
read/write patterns) is not a chain space; this searches the chain spaces' table columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from searchers.algorithms.spos import SPOS, SposConfig
from searchers.core.config import SearchConfig, option
from searchers.core.hyper import SmashNet
from searchers.core.selectors import (
    RandomSelector,
    Selector,
)
from searchers.core.supernet import Supernet
from searchers.registry import register_searcher


@dataclass
class SmashConfig(SposConfig):
    sampling: Literal["uniform", "window", "bins"] = option(
        "uniform", "training architectures: uniform (SMASH), or SPOS's window / bins", "SMASH"
    )
    lr: float = option(
        0.05,
        "weights and hypernet: SGD lr (cosine to 0). digits@32, proxyless-mobile w0.35, 6 "
        "epochs, mean val acc of 8 fixed random children: 0.005 -> 41.5%, 0.02 -> 87.1%, "
        "0.05 -> 93.5%",
    )
    basis: int = option(4, "hypernet: basis tensors per 1x1 weight (d in W = Σ h_k B_k)")
    hyper_hidden: int = option(128, "hypernet: hidden units of the MLP on the encoding")
    selector: Literal["random", "evolution"] = option(
        "random", "search: best of `random_archs` random architectures, or SPOS's evolution",
        "SMASH",
    )  # fmt: skip
    random_archs: int = option(100, "search: random architectures scored inside the constraint")
    topk: int = option(10, "rows reported in selection.topk; evolution: parents kept", "SPOS")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.basis < 1 or self.hyper_hidden < 1 or self.random_archs < 1:
            raise ValueError(
                f"basis, hyper_hidden and random_archs must be >= 1, got {self.basis}, "
                f"{self.hyper_hidden}, {self.random_archs}"
            )


@register_searcher
class Smash(SPOS):
    name = "smash"
    paper = "SMASH (Brock et al., ICLR 2018)"
    Config: ClassVar[type[SearchConfig]] = SmashConfig
    config: SmashConfig

    def build_supernet(self) -> Supernet:
        return SmashNet(self.space, self.config.basis, self.config.hyper_hidden)

    def selector(self) -> Selector:
        if self.config.selector == "evolution":
            return super().selector()
        return RandomSelector(self.config.random_archs, self.config.topk)
