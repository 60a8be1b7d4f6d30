"""The window samplers: every draw inside the window, and uniform over what is inside
(checked against an enumeration of a small table)."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest
import torch

from searchers.core.losses import HardTarget
from searchers.core.window import BinnedSampler, WindowSampler
from searchers.latency import LatencyTable
from tests.searchers.conftest import TinyChain, flops_table


def _inside(table: LatencyTable, lo: float, hi: float) -> list[tuple[int, ...]]:
    rows = [torch.nonzero(r).flatten().tolist() for r in table.mask[:3]]
    fixed = [int(torch.nonzero(r)[0]) for r in table.mask[3:]]
    return [c for c in itertools.product(*rows) if lo <= table.exact([*c, *fixed]) <= hi]


def _three_layer_table() -> LatencyTable:
    """TinyChain with only its first three layers free (the rest pinned to one op)."""
    space = TinyChain()
    table = flops_table(space)
    for layer in range(3, len(space.layers())):
        keep = int(torch.nonzero(table.mask[layer])[0])
        table.mask[layer] = False
        table.mask[layer, keep] = True
    return table


def test_draws_are_uniform_over_the_architectures_inside_the_window() -> None:
    table = _three_layer_table()
    lo, hi = table.bounds()
    a, b = lo + 0.35 * (hi - lo), lo + 0.6 * (hi - lo)
    inside = _inside(table, a, b)
    assert 4 <= len(inside) < 125 // 2  # a real cut of the 5 x 5 x 5 space
    s = WindowSampler(table, a, b)
    gen = torch.Generator().manual_seed(0)
    n = 400 * len(inside)
    counts = Counter(tuple(s.sample(gen)[:3]) for _ in range(n))
    assert set(counts) == set(inside)  # nothing outside, everything inside reachable
    expected = n / len(inside)
    chi2 = sum((counts[c] - expected) ** 2 / expected for c in inside)
    assert chi2 < len(inside) + 6 * len(inside) ** 0.5  # df = k - 1: far below a bias


def test_a_hard_target_window_and_the_constraint_agree(tiny_table: LatencyTable) -> None:
    lo, hi = tiny_table.bounds()
    hard = HardTarget(lo + 0.3 * (hi - lo), "eq", 0.02)
    s = WindowSampler(tiny_table, *hard.window(), hard.satisfied)
    gen = torch.Generator().manual_seed(1)
    draws = [s.sample(gen) for _ in range(200)]
    assert all(hard.satisfied(tiny_table.exact(c)) for c in draws)
    assert len({tuple(c) for c in draws}) > 150  # spread, not one architecture
    le = HardTarget(lo + 0.1 * (hi - lo), "le")
    s = WindowSampler(tiny_table, *le.window(), le.satisfied)
    assert all(le.satisfied(tiny_table.exact(s.sample(gen))) for _ in range(50))


def test_window_between_is_the_window_it_was_given() -> None:
    h = HardTarget.between(2.0, 3.0)
    assert h.window() == pytest.approx((2.0, 3.0))
    assert h.satisfied(2.0 + 1e-9) and h.satisfied(3.0 - 1e-9)
    assert not h.satisfied(1.99) and not h.satisfied(3.01)
    with pytest.raises(ValueError, match="0 < min < max"):
        HardTarget.between(3.0, 2.0)


def test_bins_spread_draws_over_the_latency_range(tiny_table: LatencyTable) -> None:
    lo, hi = tiny_table.bounds()
    a, b = lo + 0.1 * (hi - lo), lo + 0.7 * (hi - lo)
    s = BinnedSampler(tiny_table, a, b, bins=4)
    gen = torch.Generator().manual_seed(2)
    ms = [tiny_table.exact(s.sample(gen)) for _ in range(400)]
    assert all(a <= m <= b for m in ms)
    edges = [a + k * (b - a) / 4 for k in range(5)]
    per_bin = [sum(e0 <= m < e1 for m in ms) for e0, e1 in itertools.pairwise(edges)]
    assert min(per_bin) > 60  # each bin about a quarter, whatever the density there


def test_an_empty_window_is_refused(tiny_table: LatencyTable) -> None:
    lo, _ = tiny_table.bounds()
    with pytest.raises(ValueError, match="no architecture"):
        WindowSampler(tiny_table, lo * 0.5, lo * 0.9)
    # every architecture costs the same: a window above that holds none
    one = LatencyTable.from_cells(
        TinyChain(), {op.key: (1.0, "measured") for op in TinyChain().distinct_ops()}
    )
    total = one.bounds()[0]
    with pytest.raises(ValueError, match="no architecture"):
        WindowSampler(one, total + 0.25, total + 0.5)
