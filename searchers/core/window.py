"""Architectures drawn uniformly among those whose table latency lies in a window.

SPOS trains its supernet on paths that meet the constraint and starts its evolution
from random architectures that meet it. Its reference draws inside FLOPs bins by
rejection with a timeout and, when the timeout hits, falls back to an unconstrained
path; rejection from the uniform distribution also gets slow when the window holds a
small share of the space (a 3% band around a target often holds < 1%). Here the draw is
exact and fast:

1. Each layer's latencies, minus the layer's cheapest, are rounded to a grid of step q.
   A counting DP gives, for layer l and a rounded partial sum s, how many completions of
   layers l.. land in the window widened by the worst rounding error (L·q/2 each side).
2. A path drawn layer by layer with probabilities proportional to those counts is
   uniform over that slightly wider set.
3. A draw whose exact latency is outside the window is drawn again, so what is returned
   is exactly uniform over the architectures inside the window.

q = (hi − lo) / (8L) keeps the wider set within (hi − lo)/16 of the window on each side,
so few draws are rejected. `BinnedSampler` is SPOS's variant: the window cut into equal
latency bins, a bin chosen uniformly, an architecture uniform within it.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import numpy as np
import torch

from searchers.latency import LatencyTable

GRID_PER_LAYER = 8  # q = (hi - lo) / (GRID_PER_LAYER * L)
MAX_GRID = 2_000_000  # grid points; a narrower window than this allows is refused
MAX_TRIES = 1000


class WindowSampler:
    """`sample(gen)`: a table column per layer, uniform over the architectures whose
    table latency is in [lo, hi] (and that `accepts`, the constraint's own test)."""

    def __init__(
        self,
        table: LatencyTable,
        lo: float,
        hi: float,
        accepts: Callable[[float], bool] | None = None,
    ):
        t_lo, t_hi = table.bounds()
        lo, hi = max(lo, t_lo), min(hi, t_hi)
        if not (math.isfinite(hi) and lo <= hi):
            raise ValueError(
                f"window: no architecture of this table lies in [{lo:.4g}, {hi:.4g}] ms "
                f"(the table spans {t_lo:.4g}..{t_hi:.4g} ms)"
            )
        self.table, self.lo, self.hi = table, lo, hi
        self.accepts = accepts or (lambda ms: lo <= ms <= hi)
        legal = table.mask.numpy()
        ms = np.where(legal, table.table.double().numpy(), np.inf)
        base = ms.min(axis=1)
        n_layers = len(ms)
        self.q = max(hi - lo, 1e-9 * max(hi, 1.0)) / (GRID_PER_LAYER * n_layers)
        offset = table.fixed_ms + float(base.sum())  # latency of the all-cheapest path
        slack = n_layers * self.q / 2
        self.a = max(0, math.floor((lo - offset - slack) / self.q))
        self.b = math.ceil((hi - offset + slack) / self.q)
        if self.b > MAX_GRID:
            raise ValueError(
                f"window: [{lo:.4g}, {hi:.4g}] ms is too narrow for this table to sample "
                "exactly; widen it"
            )
        steps = np.where(legal, ms - base[:, None], 0.0) / self.q
        self.steps = np.where(legal, np.rint(steps), -1).astype(np.int64)
        self.cum = self._counts()

    def _counts(self) -> list[np.ndarray]:
        """cum[l][v]: completions of layers l.. with rounded sum < v, relative units
        (each layer's counts are rescaled to max 1: only ratios are used)."""
        size = self.b + 1
        n = np.zeros(size)
        n[0] = 1.0
        cums = [np.concatenate(([0.0], np.cumsum(n)))]
        for row in self.steps[::-1]:
            nxt = np.zeros(size)
            for step in row[row >= 0]:
                if step < size:
                    nxt[step:] += n[: size - step]
            n = nxt / max(nxt.max(), 1e-300)
            cums.append(np.concatenate(([0.0], np.cumsum(n))))
        return cums[::-1]

    def count(self) -> float:
        """Relative mass of the widened window (0: no architecture in it)."""
        return float(self._between(0, 0))

    def _between(self, layer: int, s: int) -> float:
        """Completions of layers `layer`.. landing in [a, b] given partial sum s."""
        cum = self.cum[layer]
        lo, hi = max(self.a - s, 0), self.b - s
        if hi < 0:
            return 0.0
        return float(cum[min(hi, len(cum) - 2) + 1] - cum[lo]) if lo <= hi else 0.0

    def draw(self, gen: torch.Generator) -> list[int]:
        """One path uniform over the widened window (before the exact check)."""
        cols, s = [], 0
        for layer, row in enumerate(self.steps):
            weights = np.zeros(len(row))
            for j, step in enumerate(row):
                if step >= 0:
                    weights[j] = self._between(layer + 1, s + int(step))
            if weights.sum() <= 0:
                raise ValueError("window: no architecture lies in it")
            p = torch.from_numpy(weights / weights.sum())
            j = int(torch.multinomial(p, 1, generator=gen))
            cols.append(j)
            s += int(row[j])
        return cols

    def sample(self, gen: torch.Generator) -> list[int]:
        for _ in range(MAX_TRIES):
            cols = self.draw(gen)
            if self.accepts(self.table.exact(cols)):
                return cols
        raise ValueError(
            f"window: {MAX_TRIES} draws near [{self.lo:.4g}, {self.hi:.4g}] ms and none "
            "inside it; the window is too narrow for this table, widen it"
        )


class BinnedSampler:
    """SPOS's bins: [lo, hi] cut into `bins` equal latency bins; a bin with architectures
    chosen uniformly, then an architecture uniform within it."""

    def __init__(
        self,
        table: LatencyTable,
        lo: float,
        hi: float,
        bins: int,
        accepts: Callable[[float], bool] | None = None,
    ):
        if bins < 1:
            raise ValueError(f"bins: must be >= 1, got {bins}")
        whole = WindowSampler(table, lo, hi, accepts)  # clamps to the table, checks
        edges = np.linspace(whole.lo, whole.hi, bins + 1)
        self.samplers = []
        for a, b in itertools.pairwise(edges):
            s = WindowSampler(table, float(a), float(b), _both(whole.accepts, float(a), float(b)))
            if s.count() > 0:
                self.samplers.append(s)

    def sample(self, gen: torch.Generator) -> list[int]:
        while self.samplers:
            k = int(torch.randint(len(self.samplers), (1,), generator=gen))
            try:
                return self.samplers[k].sample(gen)
            except ValueError:  # a bin whose wider set held none inside it: drop the bin
                del self.samplers[k]
        raise ValueError("bins: no architecture lies in the window")


def _both(accepts: Callable[[float], bool], a: float, b: float) -> Callable[[float], bool]:
    return lambda ms: a <= ms <= b and accepts(ms)
