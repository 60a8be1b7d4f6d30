"""Selectors: every candidate they score is inside the latency constraint; evolution
improves on its first population; sample-and-export keeps what it repaired from."""

from __future__ import annotations

import torch

from searchers.core.arch import Alpha, Uniform
from searchers.core.evolution import EvolutionSelector
from searchers.core.losses import HardTarget
from searchers.core.selectors import (
    RandomSelector,
    SampleSelector,
    SelectContext,
)
from searchers.latency import LatencyTable


def _context(table: LatencyTable, target: HardTarget | None, alpha: bool = False) -> SelectContext:
    goal = [int(torch.nonzero(row)[-1]) for row in table.mask]  # the last legal column

    def score(cols: list[int]) -> float:  # an accuracy that peaks at `goal`
        return sum(a == b for a, b in zip(cols, goal, strict=True)) / len(goal)

    arch = Alpha(table.mask) if alpha else Uniform(table.mask)
    return SelectContext(table, arch, score, target, torch.Generator().manual_seed(0))


def _target(table: LatencyTable, where: float = 0.5) -> HardTarget:
    lo, hi = table.bounds()
    return HardTarget(lo + where * (hi - lo), "eq", 0.05)


def test_random_candidates_are_all_inside_the_window(small_table: LatencyTable) -> None:
    hard = _target(small_table)
    ctx = _context(small_table, hard)
    sel = RandomSelector(20).select(ctx)
    assert len(sel.considered) >= 15  # a few may repeat
    assert all(hard.satisfied(r["table_ms"]) for r in sel.considered)
    assert sel.columns == max(sel.considered, key=lambda r: r["val_acc"])["columns"]


def test_evolution_beats_its_first_population_inside_the_window(
    small_table: LatencyTable,
) -> None:
    hard = _target(small_table, 0.7)
    ctx = _context(small_table, hard)
    first = max(ctx.value(ctx.random(torch.Generator().manual_seed(0))) for _ in range(10))
    sel = EvolutionSelector(population=10, topk=4, generations=6, mutations=8, crossovers=8).select(
        ctx
    )
    assert ctx.value(sel.columns) > first
    assert all(hard.satisfied(r["table_ms"]) for r in sel.considered)


def test_sample_and_export_scores_repaired_draws(small_table: LatencyTable) -> None:
    hard = _target(small_table, 0.2)
    ctx = _context(small_table, hard, alpha=True)
    sel = SampleSelector(samples=5).select(ctx)
    assert all(hard.satisfied(r["table_ms"]) for r in sel.considered)
    assert sel.proposed is not None and hard.satisfied(small_table.exact(sel.columns))
    assert any(r.get("repaired") for r in sel.considered)  # uniform draws sit far off 20%


def test_without_a_constraint_anything_goes(small_table: LatencyTable) -> None:
    ctx = _context(small_table, None)
    sel = RandomSelector(5).select(ctx)
    assert len(sel.considered) == 5


def test_evolution_beats_random_search_at_the_same_number_of_evaluations(
    small_table: LatencyTable,
) -> None:
    """On a synthetic objective (a hidden per-layer preference, summed), over five seeds:
    SPOS's evolution with its defaults against the best of as many random architectures
    inside the same window; every candidate either scores is inside it."""
    hard = _target(small_table, 0.5)
    wins = []
    for seed in range(5):
        pref = torch.rand(small_table.mask.shape, generator=torch.Generator().manual_seed(seed))

        def score(cols: list[int], pref: torch.Tensor = pref) -> float:
            return float(sum(pref[layer, c] for layer, c in enumerate(cols))) / len(cols)

        ctx = SelectContext(small_table, Uniform(small_table.mask), score, hard,
                            torch.Generator().manual_seed(seed))  # fmt: skip
        evo = EvolutionSelector().select(ctx)
        n = evo.details["evaluated"]
        assert n == len(ctx.scored) > 500
        rnd_ctx = SelectContext(small_table, Uniform(small_table.mask), score, hard,
                                torch.Generator().manual_seed(100 + seed))  # fmt: skip
        rnd = RandomSelector(n).select(rnd_ctx)
        for sel in (evo, rnd):
            assert all(hard.satisfied(r["table_ms"]) for r in sel.considered)
        wins.append(ctx.value(evo.columns) > rnd_ctx.value(rnd.columns))
        gens = evo.details["generations"]
        assert gens[-1]["best_val_acc"] >= gens[0]["best_val_acc"]
    assert all(wins), wins
