"""DARTS genotypes through the latency table: `none` is free, a genotype's latency is the
sum of its child's ops, the parse keeps two non-`none` inputs per node, the bounds hold,
the repair lands inside the target with the fewest edge changes."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from profiler.features import features
from searchers.core.genotype import (
    NONE,
    bounds,
    decision,
    derive,
    edge_costs,
    edges_changed,
    genotype_ms,
    layer_columns,
    random_genotype,
    repair_genotype,
)
from searchers.latency import LatencyTable
from searchers.spaces import create_space
from searchers.spaces.darts import OPS, Darts, Genotype


def _ms(op: object) -> float:
    return 0.005 + features(op).flops * 2e-8  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def table() -> LatencyTable:
    space = create_space("darts", resolution=8, classes=10, C=8, cells=4)
    ops = space.fixed_ops() + space.distinct_ops()
    return LatencyTable.from_cells(space, {op.key: (_ms(op), "measured") for op in ops})


def test_none_is_free_in_the_table(table: LatencyTable) -> None:
    assert all(row[NONE] == "free" for row in table.source)
    assert float(table.table[:, NONE].abs().sum()) == 0.0
    assert table.summary()["cells"]["free"] == len(table.space.layers())
    table.check()  # free cells are neither missing nor predicted


def test_a_genotype_costs_its_child_ops(table: LatencyTable) -> None:
    space, costs = table.space, edge_costs(table)
    assert isinstance(space, Darts)
    for seed in range(20):
        g = space.random_arch(seed)
        ms = genotype_ms(table, costs, g)
        assert ms == pytest.approx(sum(_ms(op) for op in space.arch_ops(g)), rel=1e-12)
        assert table.exact(layer_columns(space, g)) == pytest.approx(ms, rel=1e-12)


def test_derive_keeps_two_non_none_inputs_per_node() -> None:
    w = torch.full((28, len(OPS)), 0.1)
    w[:, NONE] = 0.9  # none dominates everywhere: never part of a genotype
    w[decision(0, 3, 4), OPS.index("dil_conv_5x5")] = 0.5  # node 3: inputs 4 and 1 strongest
    w[decision(0, 3, 1), OPS.index("max_pool_3x3")] = 0.3
    g = derive(w)
    assert g.normal[6:] == (("max_pool_3x3", 1), ("dil_conv_5x5", 4))
    for pairs in (g.normal, g.reduce):
        assert all(op != "none" for op, _ in pairs)
        nodes = [pairs[i : i + 2] for i in range(0, 8, 2)]
        assert all(a[1] != b[1] and max(a[1], b[1]) < i + 2 for i, (a, b) in enumerate(nodes))
    Darts().parse_arch(g)  # a valid genotype


def test_bounds_hold_and_are_reached(table: LatencyTable) -> None:
    costs = edge_costs(table)
    lo, hi = bounds(costs, table.fixed_ms)
    gen = torch.Generator().manual_seed(0)
    seen = [genotype_ms(table, costs, random_genotype(gen)) for _ in range(300)]
    assert lo <= min(seen) and max(seen) <= hi
    cheapest = costs.clone()
    cheapest[:, NONE] = math.inf
    w = 1.0 / cheapest  # derive picks the strongest: the cheapest op, the cheapest edges
    assert genotype_ms(table, costs, derive(w)) == pytest.approx(lo)


@pytest.mark.parametrize("constraint", ["eq", "le"])
def test_repair_changes_the_fewest_edges(table: LatencyTable, constraint: str) -> None:
    costs = edge_costs(table)
    logp = torch.zeros(28, len(OPS))
    gen = torch.Generator().manual_seed(3)
    for _ in range(5):
        start = random_genotype(gen)
        was = genotype_ms(table, costs, start)
        target = was * (0.99 if constraint == "le" else 1.04)
        g = repair_genotype(table, costs, logp, start, target, 0.03, constraint)  # type: ignore[arg-type]
        ms = genotype_ms(table, costs, g)
        assert ms <= target if constraint == "le" else abs(ms / target - 1) <= 0.03
        n = len(edges_changed(start, g))
        assert 0 < n == _fewest(table, costs, start, target, constraint)
        Darts().parse_arch(g)


def _fewest(table: LatencyTable, costs: torch.Tensor, start: Genotype, t: float, c: str) -> int:
    """The fewest edges to change, by brute force over k-edge changes (k <= 3)."""
    lo, hi = (-math.inf, t) if c == "le" else (t * 0.97, t * 1.03)
    base = genotype_ms(table, costs, start)
    # per edge slot: the latency deltas reachable by changing that slot's op or input
    slots = []
    for kind, pairs in enumerate((start.normal, start.reduce)):
        for idx, (op, src) in enumerate(pairs):
            node, other = idx // 2, pairs[idx ^ 1][1]
            now = float(costs[decision(kind, node, src), OPS.index(op)])
            deltas = {
                float(costs[decision(kind, node, s), o]) - now
                for s in range(node + 2)
                if s != other
                for o in range(1, len(OPS))
                if (s, o) != (src, OPS.index(op))
            }
            slots.append(sorted(deltas))
    for k in range(1, 4):
        for combo in itertools.combinations(range(len(slots)), k):
            extremes = [(min(slots[i]), max(slots[i])) for i in combo]
            span = (base + sum(e[0] for e in extremes), base + sum(e[1] for e in extremes))
            if span[1] >= lo and span[0] <= hi and _hits(base, [slots[i] for i in combo], lo, hi):
                return k
    return 99


def _hits(base: float, options: list[list[float]], lo: float, hi: float) -> bool:
    return any(lo <= base + sum(p) <= hi for p in itertools.product(*options))


def test_repair_refuses_an_unreachable_target(table: LatencyTable) -> None:
    costs = edge_costs(table)
    lo, _ = bounds(costs, table.fixed_ms)
    start = Darts().random_arch(0)
    with pytest.raises(ValueError, match=r"no genotype has a table latency .*achievable"):
        repair_genotype(table, costs, torch.zeros(28, len(OPS)), start, lo * 0.5, 0.03, "eq")


def test_random_genotypes_are_valid_and_seeded() -> None:
    a = [random_genotype(torch.Generator().manual_seed(7)) for _ in range(2)]
    assert a[0] == a[1]
    allowed = torch.ones(28, len(OPS), dtype=torch.bool)
    allowed[:, OPS.index("skip_connect")] = False
    g = random_genotype(torch.Generator().manual_seed(1), allowed)
    Darts().parse_arch(g)
    assert all(op not in ("none", "skip_connect") for op, _ in g.normal + g.reduce)
