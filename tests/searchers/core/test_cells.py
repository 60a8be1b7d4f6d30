"""The DARTS cell supernet: every mode runs, a genotype's plan equals its child network's
ops, decisions are shared per cell type and edge."""

from __future__ import annotations

import pytest
import torch

from searchers.core.arch import Alpha, EdgeAlpha
from searchers.core.cells import EDGES, CellSupernet
from searchers.core.memory import step_memory
from searchers.core.mixed import Mode, Partial, Single, Weighted
from searchers.spaces import create_space
from searchers.spaces.darts import Darts


@pytest.fixture(scope="module")
def space() -> Darts:
    s = create_space("darts", resolution=8, classes=10, C=8, cells=3)
    assert isinstance(s, Darts)
    return s


def test_decisions_are_per_cell_type_and_edge(space: Darts) -> None:
    net = CellSupernet(space)
    assert len(net.mixed()) == len(space.layers()) == 3 * EDGES
    assert net.mask().shape == (2 * EDGES, len(space.candidates))  # normal + reduce
    layer_of = net.layer_of()
    assert layer_of[:EDGES] == list(range(EDGES))  # cell 0 is normal
    assert layer_of[EDGES : 2 * EDGES] == list(range(EDGES, 2 * EDGES))  # cell 1 reduces
    assert net.decisions[EDGES] == "reduce.edge0"
    assert net.node_of()[:5] == [0, 0, 1, 1, 1]  # node 0 has 2 inputs, node 1 three


def test_weighted_forward_and_backward_reach_alpha(space: Darts) -> None:
    torch.manual_seed(0)
    net = CellSupernet(space)
    arch = Alpha(net.mask(), net.layer_of())
    x = torch.randn(4, 3, 8, 8)
    probs = arch.layer_probs()
    plan: list[Mode | None] = [Weighted(probs[i, m.columns]) for i, m in enumerate(net.mixed())]
    out = net(x, plan)
    assert out.shape == (4, 10)
    out.sum().backward()
    assert arch.alpha.grad is not None and bool(arch.alpha.grad.abs().sum() > 0)


def test_a_genotype_plan_keeps_two_edges_per_node(space: Darts) -> None:
    net = CellSupernet(space)
    g = space.random_arch(0)
    plan: list[Mode | None] = []
    for cell in range(space.cells):
        pairs = g.reduce if cell in space.reductions() else g.normal
        kept = {}
        for node, (a, b) in enumerate(zip(pairs[::2], pairs[1::2], strict=True)):
            for op, src in (a, b):
                kept[(node, src)] = space.candidates.index(op)
        for node in range(4):
            for j in range(node + 2):
                col = kept.get((node, j))
                plan.append(None if col is None else Single(col))
    assert net(torch.randn(2, 3, 8, 8), plan).shape == (2, 10)
    with pytest.raises(ValueError, match="every incoming edge is dropped"):
        net(torch.randn(2, 3, 8, 8), [None] * len(plan))


def test_partial_channels_and_edge_normalisation(space: Darts) -> None:
    net = CellSupernet(space, channels_div=2)
    arch = EdgeAlpha(net.mask(), net.node_of(), net.layer_of())
    probs = arch.layer_probs()
    plan: list[Mode | None] = [Partial(probs[i, m.columns], 2) for i, m in enumerate(net.mixed())]
    edge = arch.edge_weights()[torch.tensor(net.layer_of())]
    out = net(torch.randn(2, 3, 8, 8), plan, edge)
    out.sum().backward()
    assert arch.beta.grad is not None and bool(arch.beta.grad.abs().sum() > 0)
    with pytest.raises(ValueError, match="even parts"):
        CellSupernet(space, channels_div=3)


def test_partial_channels_keep_less_memory(space: Darts) -> None:
    x = torch.randn(8, 3, 8, 8)

    def memory(k: int) -> int:
        torch.manual_seed(0)
        net = CellSupernet(space, channels_div=k)
        n = len(space.candidates)
        mode: Mode = (
            Weighted(torch.full((n,), 1 / n)) if k == 1 else Partial(torch.full((n,), 1 / n), k)
        )
        return step_memory(lambda: net(x, [mode] * len(net.mixed())).sum().backward(), net)

    assert memory(4) < 0.6 * memory(1)
