"""Selectors: how a searcher turns what it learnt into one architecture.

A selector gets a `SelectContext` (the table, the architecture parameters, a `score`
function that returns a path's search-validation accuracy with the shared weights,
the latency constraint and a generator) and returns a `Selection`. Architectures are
table columns per layer. Every candidate a selector scores is inside the constraint
(the hard target's window, or at or under it for `le`): random ones by rejection from
the uniform distribution, then by the fewest-changes repair when rejection is too
slow; a learnt one by the repair.

| selector | what | papers |
|---|---|---|
| `argmax` | the most probable candidate per decision | ProxylessNAS, DARTS |
| `sample` | the argmax and N draws from p, best validation accuracy | FBNet |
| `random` | N random architectures inside the constraint, the best | One-Shot, SMASH |
| `evolution` | SPOS's evolutionary search inside the constraint | SPOS, FairNAS, One-Shot |
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from searchers.core.arch import ArchParams
from searchers.core.losses import HardTarget
from searchers.core.repair import repair
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

    def value(self, cols: Arch) -> float:
        key = tuple(cols)
        if key not in self.scored:
            self.scored[key] = self.score(list(cols))
        return self.scored[key]

    def random(self, gen: torch.Generator, tries: int = 200) -> Arch:
        """A uniformly random architecture inside the constraint (rejection sampling;
        after `tries` misses, the last draw repaired)."""
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
    name = "random"

    def __init__(self, n: int = 50):
        self.n = n

    def select(self, ctx: SelectContext) -> Selection:
        pool = [ctx.random(ctx.gen) for _ in range(self.n)]
        return self._best(ctx, pool, f"best of {self.n} random")


class EvolutionSelector(Selector):
    """SPOS: a population inside the constraint; each generation keeps the top k and
    breeds mutations (each decision redrawn with probability `prob`) and crossovers
    (each decision from either parent) that stay inside it."""

    name = "evolution"

    def __init__(
        self,
        population: int = 50,
        topk: int = 10,
        generations: int = 20,
        mutations: int = 25,
        crossovers: int = 25,
        prob: float = 0.1,
    ):
        if min(population, topk, generations) < 1 or mutations + crossovers < 1:
            raise ValueError("evolution: population, topk, generations >= 1 and some offspring")
        self.population, self.topk, self.generations = population, topk, generations
        self.mutations, self.crossovers, self.prob = mutations, crossovers, prob

    def select(self, ctx: SelectContext) -> Selection:
        pop = [ctx.random(ctx.gen) for _ in range(self.population)]
        history: list[Arch] = list(pop)
        for _ in range(self.generations):
            top = sorted(pop, key=lambda c: -ctx.value(c))[: self.topk]
            pop = top + self._offspring(ctx, top)
            history += pop
        how = f"evolution ({self.generations} generations, population {self.population})"
        return self._best(ctx, history, how)

    def _offspring(self, ctx: SelectContext, top: list[Arch]) -> list[Arch]:
        legal, gen, out = ctx.table.mask, ctx.gen, []
        for want, breed in ((self.mutations, self._mutate), (self.crossovers, self._cross)):
            made = 0
            for _ in range(10 * want):
                child = breed(top, legal, gen)
                if ctx.accepts(child):
                    out.append(child)
                    made += 1
                    if made == want:
                        break
        return out

    def _mutate(self, top: list[Arch], legal: torch.Tensor, gen: torch.Generator) -> Arch:
        parent = top[int(torch.randint(len(top), (1,), generator=gen))]
        fresh = uniform_arch(legal, gen)
        flip = torch.rand(len(parent), generator=gen) < self.prob
        return [fresh[i] if bool(flip[i]) else c for i, c in enumerate(parent)]

    def _cross(self, top: list[Arch], legal: torch.Tensor, gen: torch.Generator) -> Arch:
        a, b = (top[int(i)] for i in torch.randint(len(top), (2,), generator=gen))
        pick = torch.rand(len(a), generator=gen) < 0.5
        return [a[i] if bool(pick[i]) else b[i] for i in range(len(a))]


def uniform_arch(legal: torch.Tensor, gen: torch.Generator) -> Arch:
    """A uniformly random legal column per layer."""
    p = legal.double()
    return [int(i) for i in torch.multinomial(p / p.sum(1, keepdim=True), 1, generator=gen)[:, 0]]


SELECTORS: dict[str, type[Selector]] = {
    s.name: s for s in (ArgmaxSelector, SampleSelector, RandomSelector, EvolutionSelector)
}
