"""The route maths of DenseNAS against brute force over every route of a small space:
the expected latency is the exact one for one-hot routes and choices and the true
expectation otherwise, Viterbi is the most probable route, the routes come out in order,
the bounds are those of valid architectures, the repair keeps the route, and the
supernet runs exactly a route's layers for its plan."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from searchers.core.losses import HardTarget
from searchers.core.routing import (
    RouteAlpha,
    RouteGraph,
    RoutingSupernet,
    edge_weights,
    fit_route,
    head_weights,
    marginals,
    route_bounds,
    route_probs,
    routes_by_probability,
    viterbi,
)
from searchers.latency import LatencyTable
from searchers.spaces.densenas import DenseNas
from tests.searchers.conftest import all_routes


def _space(table: LatencyTable) -> DenseNas:
    assert isinstance(table.space, DenseNas)
    return table.space


def _route_logp(graph: RouteGraph, route: list[int], log_w: list[float]) -> float:
    return sum(log_w[graph.edge(a, b)] for a, b in zip([0, *route[:-1]], route, strict=True))


def _one_hot(graph: RouteGraph, route: list[int], space: DenseNas, cols: list[int]):  # type: ignore[no-untyped-def]
    """Edge weights that follow `route` (off it: each block's first edge), and q one-hot
    on `cols` (off the route: the first candidate)."""
    w = torch.zeros(len(graph.src), dtype=torch.float64)
    nxt = dict(zip([0, *route[:-1]], route, strict=True))
    for a in range(graph.last):
        out = graph.out_of(a)
        w[graph.edge(a, nxt[a]) if a in nxt else out[0]] = 1.0
    q = torch.zeros(graph.n_rows, len(space.candidates), dtype=torch.float64)
    for row, c in enumerate(cols):
        q[row, 0 if c == graph.none else c] = 1.0
    return w, q


def test_expected_latency_is_exact_for_one_hot_routes(tiny_dense_table: LatencyTable) -> None:
    space, table = _space(tiny_dense_table), tiny_dense_table
    graph = RouteGraph.of(space)
    for seed in range(20):
        arch = space.random_arch(seed)
        cols = space.arch_columns(arch)
        w, q = _one_hot(graph, list(arch.blocks), space, cols)
        got = float(table.expected(marginals(graph, w, q)))
        assert got == pytest.approx(table.exact(cols), rel=1e-12, abs=1e-15)
        assert table.exact(cols) == pytest.approx(
            math.fsum(table.table[row, c].item() for row, c in enumerate(cols)) + table.fixed_ms
        )


def test_expected_latency_is_the_expectation_over_routes(tiny_dense_table: LatencyTable) -> None:
    """Σ_routes P(route)·(fixed + Σ its layers' E_q) equals the marginals' E[LAT], and the
    block probabilities are the routes' through it."""
    space, table = _space(tiny_dense_table), tiny_dense_table
    graph = RouteGraph.of(space)
    gen = torch.Generator().manual_seed(0)
    beta = torch.randn(len(graph.src), generator=gen, dtype=torch.float64)
    logits = torch.randn(graph.n_rows, len(space.candidates), generator=gen, dtype=torch.float64)
    legal = table.mask.clone()
    legal[:, graph.none] = False
    q = F.softmax(logits.masked_fill(~legal, -math.inf), dim=1)
    w = edge_weights(graph, beta)
    per_row = (q * table.table).sum(1)
    log_w = torch.log(w).tolist()
    routes = all_routes(space)
    assert len(routes) == space.n_routes() == 55
    probs = [math.exp(_route_logp(graph, r, log_w)) for r in routes]
    assert sum(probs) == pytest.approx(1.0)
    brute = sum(
        p * (table.fixed_ms + float(per_row[graph.route_rows(r)].sum()))
        for p, r in zip(probs, routes, strict=True)
    )
    assert float(table.expected(marginals(graph, w, q))) == pytest.approx(brute, rel=1e-10)
    _, p_block = route_probs(graph, w)
    for b in range(1, graph.last + 1):
        through = sum(p for p, r in zip(probs, routes, strict=True) if b in r)
        assert float(p_block[b]) == pytest.approx(through, rel=1e-10)
    hw = head_weights(graph, w)
    for b in range(1, graph.last + 1):
        assert float(hw[graph.into(b)].sum()) == pytest.approx(1.0)


def test_viterbi_and_routes_in_order(tiny_dense_table: LatencyTable) -> None:
    space = _space(tiny_dense_table)
    graph = RouteGraph.of(space)
    for seed in range(5):
        beta = torch.randn(len(graph.src), generator=torch.Generator().manual_seed(seed))
        log_w = torch.log(edge_weights(graph, beta.double())).tolist()
        routes = all_routes(space)
        best = max(routes, key=lambda r: _route_logp(graph, r, log_w))
        assert viterbi(graph, log_w) == best
        ordered = list(routes_by_probability(graph, log_w))
        assert ordered[0] == best and sorted(map(tuple, ordered)) == sorted(map(tuple, routes))
        logps = [_route_logp(graph, r, log_w) for r in ordered]
        assert all(a >= b - 1e-12 for a, b in itertools.pairwise(logps))


def test_bounds_are_those_of_valid_architectures(tiny_dense_table: LatencyTable) -> None:
    table, space = tiny_dense_table, _space(tiny_dense_table)
    graph = RouteGraph.of(space)
    legal = table.mask.clone()
    legal[:, graph.none] = False
    lo_row = torch.where(legal, table.table, math.inf).min(1).values
    hi_row = torch.where(legal, table.table, -math.inf).max(1).values
    totals = [
        (float(lo_row[graph.route_rows(r)].sum()), float(hi_row[graph.route_rows(r)].sum()))
        for r in all_routes(space)
    ]
    lo, hi = route_bounds(table, graph)
    assert lo == pytest.approx(table.fixed_ms + min(t[0] for t in totals))
    assert hi == pytest.approx(table.fixed_ms + max(t[1] for t in totals))
    assert table.bounds()[0] < lo < hi < table.bounds()[1]  # `none` everywhere is not a net


def test_fit_route_keeps_the_route(tiny_dense_table: LatencyTable) -> None:
    space, table = _space(tiny_dense_table), tiny_dense_table
    graph = RouteGraph.of(space)
    arch = space.random_arch(3)
    cols = space.arch_columns(arch)
    logp = torch.zeros(graph.n_rows, len(space.candidates))
    here, fits = table.exact(cols), 0
    for factor in (0.9, 0.95, 1.05, 1.1):
        hard = HardTarget(here * factor, "eq", 0.02)
        fitted = fit_route(table, graph, logp, list(arch.blocks), cols, hard)
        if fitted is None:  # out of this route's reach
            continue
        fits += 1
        assert hard.satisfied(table.exact(fitted))
        assert space.columns_arch(fitted).blocks == arch.blocks
        changed = [r for r, (a, b) in enumerate(zip(cols, fitted, strict=True)) if a != b]
        assert changed and set(changed) <= set(space.kept_rows(arch.blocks))
    assert fits >= 2
    lo, _ = route_bounds(table, graph)
    assert fit_route(table, graph, logp, list(arch.blocks), cols, HardTarget(lo / 2)) is None


def test_supernet_runs_exactly_the_route(tiny_dense_table: LatencyTable) -> None:
    space = _space(tiny_dense_table)
    net = RoutingSupernet(space)
    arch = space.random_arch(5)
    cols = space.arch_columns(arch)
    plan = net.single_plan(cols)
    on = set(space.kept_rows(arch.blocks))
    assert [i for i, mode in enumerate(plan) if mode is not None] == sorted(on)
    net(torch.randn(2, 3, 16, 16), plan).sum().backward()
    for row, mixed in enumerate(net.mixed()):
        grads = [p.grad is not None for p in mixed.parameters()]
        assert any(grads) == (row in on and cols[row] != space.candidates.index("skip")), row


def test_supernet_refuses_columns_that_are_no_route(tiny_dense_table: LatencyTable) -> None:
    from searchers.spaces import ArchError

    space = _space(tiny_dense_table)
    net = RoutingSupernet(space)
    none = space.candidates.index("none")
    with pytest.raises(ArchError, match="columns"):
        net.single_plan([none] * len(space.layers()))  # no route at all
    cols = space.arch_columns(space.random_arch(5))
    extra = cols.index(none)  # a layer off the route, switched on
    on = next(c.name for c in space.layers()[extra].legal if c.name != "none")
    cols[extra] = space.candidates.index(on)
    with pytest.raises(ArchError, match="columns"):
        net.single_plan(cols)  # a layer off the route switched on


def test_route_alpha_exports_the_viterbi_route(tiny_dense_table: LatencyTable) -> None:
    space = _space(tiny_dense_table)
    net = RoutingSupernet(space)
    arch = RouteAlpha(net.mask(), net.graph)
    with torch.no_grad():
        arch.beta.normal_(generator=torch.Generator().manual_seed(1))
        arch.alpha.normal_(generator=torch.Generator().manual_seed(2))
    cols = arch.argmax()
    assert list(space.columns_arch(cols).blocks) == arch.route()
    sampled = arch.sample(torch.Generator().manual_seed(0))
    space.columns_arch(sampled)  # a valid route
    p = arch.layer_probs()
    assert torch.allclose(p.sum(1), torch.ones(len(p)))
    assert bool((p[:, net.graph.none] < 1).all())  # every layer is on some route
