"""Selectors: how a searcher turns what it learnt into one architecture.

A selector gets a `SelectContext` (the table, the architecture parameters, a `score`
function that returns a path's search-validation accuracy with the shared weights,
the latency constraint and a generator) and returns a `Selection`. Architectures are
table columns per layer. Every candidate a selector scores is inside the constraint
(the hard target's window, or at or under it for `le`): random ones drawn uniformly
among the architectures inside it, a learnt one by the repair.

| selector | what | papers |
|---|---|---|
| `argmax` | the most probable candidate per decision | ProxylessNAS, DARTS |
| `sample` | the argmax and N draws from p, best validation accuracy | FBNet |
| `random` | N random architectures inside the constraint, the best | One-Shot, SMASH |
| `evolution` | SPOS's evolution inside the constraint (core/evolution.py) | SPOS, FairNAS |

Random architectures are exactly uniform over those inside the constraint
(core/window.py); a window too narrow for that sampler falls back to rejection, then
the repair of the last draw.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from searchers.core.arch import ArchParams
from searchers.core.losses import HardTarget
from searchers.core.repair import repair
from searchers.core.window import WindowSampler
from searchers.latency import LatencyTable

Arch = list[int]


@dataclass
class SelectContext:
    table: LatencyTable
    arch: ArchParams
    score: Callable[[Arch], float]
    constraint: HardTarget | None
    gen: torch.Generator
    scored: dict[tuple[int, ...], float] = field(default_factory=dict)
    _sampler: WindowSampler | None = field(default=None, repr=False)

    def accepts(self, cols: Arch) -> bool:
        return self.constraint is None or self.constraint.satisfied(self.table.exact(cols))

    def fit(self, cols: Arch) -> Arch:
        """`cols`, repaired into the constraint when it is outside (fewest changes, most
        probable under the architecture parameters)."""
        if self.accepts(cols):
            return list(cols)
        h = self.constraint
        assert h is not None  # accepts() is True without a constraint
        logp = torch.log(self.arch.layer_probs().detach().double().clamp_min(1e-12))
        return repair(self.table, logp, cols, h.target_ms, h.tolerance, h.constraint)

    def sampler(self) -> WindowSampler:
        if self._sampler is None:
            h = self.constraint
            assert h is not None  # only asked for with a constraint
            self._sampler = WindowSampler(self.table, *h.window(), h.satisfied)
        return self._sampler

    def value(self, cols: Arch) -> float:
        key = tuple(cols)
        if key not in self.scored:
            self.scored[key] = self.score(list(cols))
        return self.scored[key]

    def random(self, gen: torch.Generator, tries: int = 200) -> Arch:
        """A uniformly random architecture inside the constraint (core/window.py; for a
        window too narrow for it, rejection, and after `tries` misses the last draw
        repaired)."""
        if self.constraint is not None:
            try:
                return self.sampler().sample(gen)
            except ValueError:
                pass
        legal = self.table.mask
        for _ in range(tries):
            cols = uniform_arch(legal, gen)
            if self.accepts(cols):
                return cols
        return self.fit(cols)


@dataclass
class Selection:
    columns: Arch  # the choice (the loop repairs it into the constraint if it is outside)
    how: str
    considered: list[dict[str, Any]]
    proposed: Arch | None = None  # the learnt choice before any repair, when it differs
    details: dict[str, Any] = field(default_factory=dict)  # top-k, Pareto front, generations


class Selector(ABC):
    name: ClassVar[str]

    @abstractmethod
    def select(self, ctx: SelectContext) -> Selection:
        """One architecture inside the constraint."""

    def _best(
        self, ctx: SelectContext, pool: list[Arch], how: str, raw: list[Arch] | None = None
    ) -> Selection:
        """The best-scoring of `pool` (first wins ties); `raw[i]` is what `pool[i]` was
        repaired from."""
        first = {tuple(c): i for i, c in reversed(list(enumerate(pool)))}
        order = sorted(first.values())
        rows = [
            {
                "columns": pool[i],
                "table_ms": ctx.table.exact(pool[i]),
                "val_acc": ctx.value(pool[i]),
                **({"repaired": True} if raw and raw[i] != pool[i] else {}),
            }
            for i in order
        ]
        best = max(range(len(rows)), key=lambda k: (rows[k]["val_acc"], -k))
        i = order[best]
        return Selection(pool[i], how, rows, raw[i] if raw else None)


class ArgmaxSelector(Selector):
    name = "argmax"

    def select(self, ctx: SelectContext) -> Selection:
        return Selection(ctx.arch.to_layers(ctx.arch.argmax()), "argmax", [])


class SampleSelector(Selector):
    name = "sample"

    def __init__(self, samples: int = 6):
        self.samples = samples

    def select(self, ctx: SelectContext) -> Selection:
        raw = [ctx.arch.to_layers(ctx.arch.argmax())]
        raw += [ctx.arch.to_layers(ctx.arch.sample(ctx.gen)) for _ in range(self.samples)]
        pool = [ctx.fit(c) for c in raw]  # scored as they would be exported
        return self._best(ctx, pool, f"argmax + {self.samples} samples", raw)


class RandomSelector(Selector):
    """The best of n random architectures inside the constraint (the fastest of equals,
    as the evolution), with the top k rows, the Pareto front and the seconds it took."""

    name = "random"

    def __init__(self, n: int = 50, topk: int = 10):
        self.n, self.topk = n, topk

    def select(self, ctx: SelectContext) -> Selection:
        started = time.perf_counter()
        pool = [ctx.random(ctx.gen) for _ in range(self.n)]
        sel = self._best(ctx, pool, f"best of {self.n} random")
        sel.columns = top_rows(sel.considered, 1)[0]["columns"]  # ties: the fastest
        sel.details = {
            "pareto": pareto_front(sel.considered),
            "topk": top_rows(sel.considered, self.topk),
            "evaluated": len(sel.considered),
            "seconds": round(time.perf_counter() - started, 2),
        }
        return sel


def uniform_arch(legal: torch.Tensor, gen: torch.Generator) -> Arch:
    """A uniformly random legal column per layer."""
    p = legal.double()
    return [int(i) for i in torch.multinomial(p / p.sum(1, keepdim=True), 1, generator=gen)[:, 0]]


def pareto_front(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The scored rows no other row beats on both accuracy (higher) and table latency
    (lower), fastest first."""
    front: list[dict[str, Any]] = []
    for row in sorted(rows, key=lambda r: (r["table_ms"], -r["val_acc"])):
        if not front or row["val_acc"] > front[-1]["val_acc"]:
            front.append(row)
    return front


def top_rows(rows: list[dict[str, Any]], k: int) -> list[dict[str, Any]]:
    """The k best-scoring rows, best first (faster first on ties)."""
    return sorted(rows, key=lambda r: (-r["val_acc"], r["table_ms"]))[:k]
