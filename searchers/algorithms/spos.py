"""SPOS (Guo et al., ECCV 2020): train a single-path supernet, then search it by evolution.

Training and search are apart. Each weight step runs one candidate per layer, drawn

- `uniform`: uniformly over the legal candidates (the paper's supernet);
- `window` (default): uniformly over the architectures whose table latency lies in the
  training window — the constraint's, unless `window_lo_ms`/`window_hi_ms` say
  otherwise — so training effort goes where the constraint allows (core/window.py: an
  exact draw, not rejection with a timeout and an unconstrained fallback);
- `bins`: SPOS's reference: the window cut into `bins` equal latency bins, a bin chosen
  uniformly, an architecture uniform within it.

Without a constraint `window` and `bins` draw uniformly. After training, the
evolutionary search (core/evolution.py) scores candidates inside the constraint with the
shared weights after BN recalibration (core/evaluate.py: running statistics reset, then
a cumulative average over `bn_calib_batches` train batches through the path) and exports
the best; the top k and the accuracy–latency Pareto front come with it. The NNI port
has no recalibration and exports a random sample; this follows the paper.

Per epoch: `sampled_acc`, the mean search-validation accuracy of `eval_paths` paths drawn
as in training (a fixed draw per epoch), and `fairness`, the largest spread of the
per-layer training counts over their mean (0: every candidate trained equally often).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch

from searchers.core.arch import ArchParams, Uniform
from searchers.core.config import SearchConfig, option
from searchers.core.evolution import EvolutionSelector
from searchers.core.loop import Searcher
from searchers.core.losses import SoftLatency
from searchers.core.mixed import Mode
from searchers.core.selectors import Selector, uniform_arch
from searchers.core.window import BinnedSampler, WindowSampler
from searchers.registry import register_searcher

Draw = Callable[[torch.Generator], list[int]]
Accepts = Callable[[float], bool]


@dataclass
class OneShotConfig(SearchConfig):
    """Train-then-search: no architecture step, SPOS's evolution afterwards."""

    epochs: int = option(
        120, "supernet training epochs over the train split", "SPOS (120 on ImageNet)"
    )
    warmup_epochs: int = option(0, "none needed: there is no architecture step")
    population: int = option(50, "evolution: population size", "SPOS")
    topk: int = option(10, "evolution: parents kept per generation", "SPOS")
    generations: int = option(20, "evolution: generations", "SPOS")
    mutations: int = option(25, "evolution: mutated children per generation", "SPOS")
    crossovers: int = option(25, "evolution: crossed children per generation", "SPOS")
    mutation_prob: float = option(0.1, "evolution: per-layer mutation probability", "SPOS")
    eval_paths: int = option(3, "paths scored per epoch for sampled_acc")

    def __post_init__(self) -> None:
        super().__post_init__()
        EvolutionSelector(self.population, self.topk, self.generations, self.mutations,
                          self.crossovers, self.mutation_prob)  # fmt: skip
        if self.eval_paths < 1:
            raise ValueError(f"eval_paths: must be >= 1, got {self.eval_paths}")


@dataclass
class SposConfig(OneShotConfig):
    sampling: Literal["uniform", "window", "bins"] = option(
        "window", "training paths: uniform, uniform in the latency window, or SPOS's bins"
    )
    bins: int = option(7, "latency bins of sampling=bins", "SPOS (FLOPs 290..360 M by 10)")
    window_lo_ms: float = option(0.0, "training window's low end (0: the constraint's)")
    window_hi_ms: float = option(0.0, "training window's high end (0: the constraint's)")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.bins < 1 or self.window_lo_ms < 0 or self.window_hi_ms < 0:
            raise ValueError("bins >= 1, window_lo_ms and window_hi_ms >= 0")


@register_searcher
class SPOS(Searcher):
    name = "spos"
    paper = "SPOS (Guo et al., ECCV 2020)"
    Config: ClassVar[type[SearchConfig]] = SposConfig  # FairNAS has another
    config: OneShotConfig

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if isinstance(self.latency, SoftLatency):
            raise ValueError(
                f"latency: {self.name} searches under a constraint (--max-ms [--min-ms] or "
                "--target-ms), not a soft loss"
            )
        self.trained = torch.zeros(self.table.mask.shape, dtype=torch.long)
        self._draw: Draw | None = None

    def build_arch(self) -> ArchParams:
        return Uniform(self.net.mask())

    # --- training -----------------------------------------------------------------------
    def training_window(self) -> tuple[float, float, Accepts | None] | None:
        """[lo, hi] ms the training paths are drawn from, and the test of a latency (the
        constraint's own when the window is its own); None: all of the space."""
        c = self.config
        if not isinstance(c, SposConfig) or c.sampling == "uniform":
            return None
        lo, hi = self.hard.window() if self.hard is not None else (0.0, float("inf"))
        if c.window_lo_ms or c.window_hi_ms:  # set here: a plain [lo, hi] test
            return c.window_lo_ms or lo, c.window_hi_ms or hi, None
        return None if self.hard is None else (lo, hi, self.hard.satisfied)

    def draw(self, gen: torch.Generator) -> list[int]:
        """One training path (a table column per layer)."""
        if self._draw is None:
            self._draw = self._make_draw()
        return self._draw(gen)

    def _make_draw(self) -> Draw:
        window = self.training_window()
        if window is None:
            return lambda gen: uniform_arch(self.table.mask, gen)
        lo, hi, accepts = window
        c = self.config
        if isinstance(c, SposConfig) and c.sampling == "bins":
            return BinnedSampler(self.table, lo, hi, c.bins, accepts).sample
        return WindowSampler(self.table, lo, hi, accepts).sample

    def weight_plan(self, warmup: bool) -> Sequence[Mode | None]:
        cols = self.draw(self.gen)
        self.count(cols)
        return self.plan_for(cols)

    def count(self, cols: Sequence[int], learn: Sequence[bool] | None = None) -> None:
        for layer, col in enumerate(cols):
            self.trained[layer, col] += 1 if learn is None or learn[layer] else 0

    def fairness(self) -> float:
        """Largest (max − min) / mean of a layer's training counts over its legal cells."""
        spread = 0.0
        for row, legal in zip(self.trained, self.table.mask, strict=True):
            counts = row[legal].double()
            if counts.sum() > 0:
                spread = max(spread, float((counts.max() - counts.min()) / counts.mean()))
        return spread

    # --- per epoch and after ----------------------------------------------------------
    def evaluate(self) -> dict[str, float]:
        gen = torch.Generator().manual_seed(self.config.seed + 1000 + self.epoch)
        paths = [self.draw(gen) for _ in range(self.config.eval_paths)]
        return {
            "sampled_acc": sum(self.score(p) for p in paths) / len(paths),
            "sampled_ms": sum(self.table.exact(p) for p in paths) / len(paths),
            "fairness": self.fairness(),
        }

    def selector(self) -> Selector:
        c = self.config
        return EvolutionSelector(c.population, c.topk, c.generations, c.mutations,
                                 c.crossovers, c.mutation_prob, self.select_progress)  # fmt: skip

    def extra_state(self) -> dict[str, Any]:
        return {"trained": self.trained.tolist()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.trained = torch.tensor(state["trained"], dtype=torch.long)
