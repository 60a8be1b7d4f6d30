"""DenseNAS on the core: the search itself lands near a hard target, the latency it
controls is the exported architecture's once the routes are decided, an architecture
step moves only α and β and keeps the unsampled probabilities, and the repair walks to
the next routes when the Viterbi route cannot reach the target."""

from __future__ import annotations

import pytest
import torch

from searchers.core.losses import HardTarget
from searchers.core.routing import RouteGraph, viterbi
from searchers.data import Data
from searchers.latency import LatencyTable
from searchers.registry import create_searcher, searcher_class
from searchers.spaces.densenas import DenseNas
from tests.searchers.conftest import all_routes


def _searcher(table: LatencyTable, data: Data, hard: HardTarget | None = None, **kw: object):  # type: ignore[no-untyped-def]
    config = searcher_class("densenas").Config(**kw)  # type: ignore[arg-type]
    return create_searcher("densenas", table=table, data=data, config=config, latency=hard)


def test_the_search_itself_lands_near_the_target(
    tiny_dense_table: LatencyTable, tiny_dense_data: Data
) -> None:
    lo, hi = searcher_class("densenas").table_bounds(tiny_dense_table)
    hard = HardTarget(lo + 0.25 * (hi - lo), "eq", 0.03)
    s = _searcher(tiny_dense_table, tiny_dense_data, hard, epochs=4, warmup_epochs=1,
                  bn_calib_batches=1)  # fmt: skip
    result = s.run()
    assert abs(result.proposed_ms / hard.target_ms - 1) <= 2 * hard.tolerance, result.proposed_ms
    assert hard.satisfied(result.table_ms)
    first, last = result.history[0], result.history[-1]
    assert last["entropy"] < first["entropy"]
    assert first["block_probs"] != last["block_probs"]  # the routes moved
    assert list(result.arch.blocks) == result.selection["route"]  # the exported route
    assert result.selection["viterbi_route"] == s.arch.route()
    if result.selection["routes_tried"] <= 1:  # repaired (if at all) on the Viterbi route
        assert result.selection["route"] == result.selection["viterbi_route"]
    assert max(abs(row["latency_weight"]) for row in result.history) < 2.0


def test_controlled_latency_is_the_exported_one_when_decided(
    tiny_dense_table: LatencyTable, tiny_dense_data: Data
) -> None:
    hard = HardTarget(searcher_class("densenas").table_bounds(tiny_dense_table)[1])
    s = _searcher(tiny_dense_table, tiny_dense_data, hard)
    gen, graph = torch.Generator().manual_seed(0), s.net.graph
    with torch.no_grad():  # one candidate per layer and one edge out of each block ahead
        noise = torch.randn(s.arch.alpha.shape, generator=gen).masked_fill(~s.arch.legal, -1)
        s.arch.alpha.copy_(30 * (noise == noise.max(dim=1, keepdim=True).values).float())
        for a in range(graph.last):
            out = graph.out_of(a)
            s.arch.beta[out[int(torch.randint(len(out), (1,), generator=gen))]] = 30.0
    assert float(s.expected_ms().detach()) == pytest.approx(s.exported_ms(), rel=1e-6)
    assert s.relaxed_ms() == pytest.approx(s.exported_ms(), rel=1e-3)


def test_an_architecture_step_moves_alpha_and_beta_and_keeps_the_rest(
    tiny_dense_table: LatencyTable, tiny_dense_data: Data
) -> None:
    s = _searcher(tiny_dense_table, tiny_dense_data)  # no latency: only sampled α move
    with torch.no_grad():
        s.arch.alpha.normal_(generator=torch.Generator().manual_seed(1))
    alpha, beta, before = s.alpha.detach().clone(), s.arch.beta.detach().clone(), s.arch.probs()
    state = s.gen.get_state()
    _, sampled = s.sampled_paths()
    s.gen.set_state(state)
    x, y = next(tiny_dense_data.val.batches(32))
    s.arch_step((x, y), (x, y))
    assert all(p.grad is None for p in s.net.parameters())  # never computed
    assert not torch.equal(alpha, s.alpha) and not torch.equal(beta, s.arch.beta)
    after = s.arch.probs().detach()
    for row, (cols, _) in sampled.items():
        others = [c for c in range(after.shape[1]) if c not in cols and bool(s.arch.legal[row, c])]
        assert len(cols) == 2
        assert torch.allclose(before[row, others].detach(), after[row, others], atol=1e-6)


def test_the_repair_tries_the_next_routes(
    tiny_dense_table: LatencyTable, tiny_dense_data: Data
) -> None:
    space = tiny_dense_table.space
    assert isinstance(space, DenseNas)
    graph = RouteGraph.of(space)
    s = _searcher(tiny_dense_table, tiny_dense_data, None, max_routes=60)
    shortest = min(all_routes(space), key=len)
    with torch.no_grad():  # the shortest route is the most probable one
        for a, b in zip([0, *shortest[:-1]], shortest, strict=True):
            s.arch.beta[graph.edge(a, b)] = 5.0
    assert s.arch.route() == shortest == viterbi(graph, s.arch.log_w())
    _, hi = s.table_bounds(tiny_dense_table)
    s.hard = HardTarget(hi * 0.98, "eq", 0.02)  # only long routes reach it
    final, tried = s.fit(s.arch.argmax())
    assert tried > 1 and s.hard.satisfied(tiny_dense_table.exact(final))
    assert len(space.columns_arch(final).blocks) > len(shortest)
    s.hard = HardTarget(s.table_bounds(tiny_dense_table)[0] / 2)
    with pytest.raises(ValueError, match="none of the 60 most probable routes reaches"):
        s.fit(s.arch.argmax())
