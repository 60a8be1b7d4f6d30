"""SPOS's evolutionary search over a trained supernet, inside the latency constraint.

As the SPOS reference: a random population inside the constraint; each generation keeps
the top k of everything scored so far and breeds `mutations` children (each decision
redrawn with probability `prob`) and `crossovers` (each decision from either of two
parents); a child already scored, or outside the constraint, is not kept (bounded
retries), and random architectures fill the population up when breeding falls short.
Every candidate is checked against the constraint before it is scored, and scoring is
the searcher's: the shared weights, BN statistics re-estimated on the path first.

The result is the best scored architecture (the fastest of equals, so it is on the
front), with the top k, the accuracy–latency Pareto
front of everything scored, and one row per generation (best, mean of the top k, how
many scored, seconds) in `Selection.details`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch

from searchers.core.selectors import (
    Arch,
    SelectContext,
    Selection,
    Selector,
    pareto_front,
    top_rows,
    uniform_arch,
)

RETRIES = 10  # breeding attempts per child wanted


class EvolutionSelector(Selector):
    name = "evolution"

    def __init__(
        self,
        population: int = 50,
        topk: int = 10,
        generations: int = 20,
        mutations: int = 25,
        crossovers: int = 25,
        prob: float = 0.1,
        progress: Callable[[dict[str, Any]], None] | None = None,
    ):
        if min(population, topk, generations) < 1 or min(mutations, crossovers) < 0:
            raise ValueError("evolution: population, topk, generations >= 1, offspring >= 0")
        if mutations + crossovers < 1 or not 0 < prob <= 1:
            raise ValueError("evolution: some offspring, mutation probability in (0, 1]")
        self.population, self.topk, self.generations = population, topk, generations
        self.mutations, self.crossovers, self.prob = mutations, crossovers, prob
        self.progress = progress  # called with each generation's row

    def select(self, ctx: SelectContext) -> Selection:
        seen: set[tuple[int, ...]] = set()
        started = time.perf_counter()
        pop = self._fill(ctx, [], seen)
        history, top = list(pop), list[Arch]()
        log = [self._record(ctx, 0, pop, pop, started)]
        for g in range(1, self.generations + 1):
            started = time.perf_counter()
            top = self._top(ctx, top + pop)
            pop = self._fill(ctx, self._offspring(ctx, top, seen), seen)
            history += pop
            log.append(self._record(ctx, g, pop, self._top(ctx, top + pop), started))
        how = f"evolution ({self.generations} generations, population {self.population})"
        sel = self._best(ctx, history, how)
        sel.columns = top_rows(sel.considered, 1)[0]["columns"]  # ties: the fastest, on the front
        sel.details = {
            "evaluated": len(sel.considered),
            "topk": top_rows(sel.considered, self.topk),
            "pareto": pareto_front(sel.considered),
            "generations": log,
        }
        return sel

    def _top(self, ctx: SelectContext, pool: list[Arch]) -> list[Arch]:
        unique = list({tuple(c): c for c in pool}.values())
        return sorted(unique, key=lambda c: -ctx.value(c))[: self.topk]

    def _record(
        self, ctx: SelectContext, g: int, pop: list[Arch], top: list[Arch], started: float
    ) -> dict[str, Any]:
        scores = [ctx.value(c) for c in pop]  # scored here, so the time is this generation's
        best = [ctx.value(c) for c in top]
        row = {
            "generation": g,
            "scored": len(pop),
            "best_val_acc": max(best, default=0.0),
            "topk_mean_val_acc": sum(best) / max(len(best), 1),
            "population_mean_val_acc": sum(scores) / max(len(scores), 1),
            "seconds": round(time.perf_counter() - started, 3),
        }
        if self.progress is not None:
            self.progress(row)
        return row

    def _fill(self, ctx: SelectContext, pop: list[Arch], seen: set[tuple[int, ...]]) -> list[Arch]:
        """`pop` topped up with new random architectures inside the constraint."""
        for _ in range(RETRIES * self.population):
            if len(pop) >= self.population:
                break
            self._keep(ctx.random(ctx.gen), pop, seen, ctx)
        return pop

    def _offspring(
        self, ctx: SelectContext, top: list[Arch], seen: set[tuple[int, ...]]
    ) -> list[Arch]:
        out: list[Arch] = []
        legal = ctx.table.mask
        for want, breed in ((self.mutations, self._mutate), (self.crossovers, self._cross)):
            made = len(out)
            for _ in range(RETRIES * want):
                if len(out) - made >= want:
                    break
                self._keep(breed(top, legal, ctx.gen), out, seen, ctx)
        return out

    @staticmethod
    def _keep(
        child: Arch, into: list[Arch], seen: set[tuple[int, ...]], ctx: SelectContext
    ) -> None:
        """Keep a child that is new and inside the constraint (checked before scoring)."""
        key = tuple(child)
        if key not in seen and ctx.accepts(child):
            seen.add(key)
            into.append(child)

    def _mutate(self, top: list[Arch], legal: torch.Tensor, gen: torch.Generator) -> Arch:
        parent = top[int(torch.randint(len(top), (1,), generator=gen))]
        fresh = uniform_arch(legal, gen)
        flip = torch.rand(len(parent), generator=gen) < self.prob
        return [fresh[i] if bool(flip[i]) else c for i, c in enumerate(parent)]

    def _cross(self, top: list[Arch], legal: torch.Tensor, gen: torch.Generator) -> Arch:
        a, b = (top[int(i)] for i in torch.randint(len(top), (2,), generator=gen))
        pick = torch.rand(len(a), generator=gen) < 0.5
        return [a[i] if bool(pick[i]) else b[i] for i in range(len(a))]
