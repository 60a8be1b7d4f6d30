"""The DARTS family on a tiny cell space: GDAS runs one op per edge, PC-DARTS holds at
most half of DARTS' activations, P-DARTS keeps its op counts per stage and at most M
skip-connects, second-order DARTS moves α and leaves the weights as they were, P-DARTS
resumes across a stage, the soft latency forms run."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
import torch

from searchers.algorithms.darts import DARTS
from searchers.algorithms.gdas import GDAS
from searchers.algorithms.pdarts import PDARTS
from searchers.core.cell_search import CellSearcher
from searchers.core.genotype import derive
from searchers.core.losses import HardTarget, SoftLatency
from searchers.core.memory import step_memory
from searchers.data import Data
from searchers.latency import LatencyTable
from searchers.registry import create_searcher, searcher_class
from searchers.spaces.darts import OPS

SMALL_PDARTS = {"stages": "3,4", "ops": "8,4", "skip_dropout": "0.2,0.3"}


def _make(name: str, table: LatencyTable, data: Data, latency: Any = None, **opts: Any) -> Any:
    config = replace(searcher_class(name).Config(), bn_calib_batches=1, **opts)
    return create_searcher(name, table=table, data=data, config=config, latency=latency)


def _batches(s: CellSearcher) -> tuple[Any, Any]:
    return next(iter(s.data.train_batches(0, 0))), next(iter(s.data.val.batches(32)))


def _count_calls(s: CellSearcher) -> list[int]:
    """A forward hook per candidate; returns per mixed op how many candidates ran."""
    counts: list[int] = []
    for m, mixed in enumerate(s.net.mixed()):
        counts.append(0)
        for op in mixed.candidates:
            op.register_forward_hook(lambda *_, m=m: counts.__setitem__(m, counts[m] + 1))
    return counts


def test_gdas_runs_exactly_one_op_per_edge(
    tiny_cell_table: LatencyTable, tiny_cell_data: Data
) -> None:
    s = _make("gdas", tiny_cell_table, tiny_cell_data, HardTarget(1.0))
    assert isinstance(s, GDAS)
    counts = _count_calls(s)
    train, val = _batches(s)
    s.weight_step(*train, warmup=False)
    assert counts == [1] * len(counts)
    counts[:] = [0] * len(counts)
    before = s.alpha.detach().clone()
    s.arch_step(train, val)
    assert counts == [1] * len(counts)
    assert not torch.equal(before, s.alpha.detach())  # the straight-through gradient moved α


def test_gdas_temperature_falls_linearly_from_10_to_01(
    tiny_cell_table: LatencyTable, tiny_cell_data: Data
) -> None:
    s = _make("gdas", tiny_cell_table, tiny_cell_data, epochs=5, warmup_epochs=0)
    taus = []
    for epoch in range(5):
        s.epoch = epoch
        taus.append(s.tau())
    assert taus == pytest.approx([10.0, 7.525, 5.05, 2.575, 0.1])


def test_pcdarts_holds_at_most_half_of_darts_activations(
    tiny_cell_table: LatencyTable, tiny_cell_data: Data
) -> None:
    darts = _make("darts", tiny_cell_table, tiny_cell_data)
    pc = _make("pcdarts", tiny_cell_table, tiny_cell_data)
    train, _ = _batches(darts)
    mem = {
        name: step_memory(lambda s=s: s.weight_step(*train, warmup=False), s.net)
        for name, s in (("darts", darts), ("pcdarts", pc))
    }
    assert mem["pcdarts"] <= 0.5 * mem["darts"], mem


def test_pcdarts_genotype_follows_alpha_times_beta(
    tiny_cell_table: LatencyTable, tiny_cell_data: Data
) -> None:
    s = _make("pcdarts", tiny_cell_table, tiny_cell_data)
    with torch.no_grad():
        s.arch.beta[0] = 5.0  # normal.edge0 (input 0 of node 0) and edge2 (input 0 of node 1)
        s.arch.alpha[2, OPS.index("sep_conv_5x5")] = 0.5  # strongest op on normal.edge2 ...
        s.arch.beta[3] = 3.0  # ... but β favours normal.edge3 (input 1 of node 1)
        s.arch.alpha[3, OPS.index("max_pool_3x3")] = 0.1
    g = s.genotype()
    assert g == derive(s.op_weights() * s.edge_scale()[:, None])
    assert ("max_pool_3x3", 1) in g.normal[2:4]


@pytest.mark.slow
def test_pdarts_keeps_the_op_counts_per_stage(
    tiny_cell_table: LatencyTable, tiny_cell_data: Data
) -> None:
    opts = {"stages": "3,4,5", "ops": "8,5,3", "skip_dropout": "0.1,0.4,0.7"}
    s = _make("pdarts", tiny_cell_table, tiny_cell_data, HardTarget(1.0), epochs=1,
              warmup_epochs=0, **opts)  # fmt: skip
    assert isinstance(s, PDARTS)
    seen = []
    for stage, (cells, ops) in enumerate(((3, 8), (4, 5), (5, 3))):
        assert s.stage == stage and len(s.net.cells) == cells
        assert [len(m.candidates) for m in s.net.mixed()] == [ops] * (cells * 14)
        assert bool((s.arch.legal.sum(dim=1) == ops).all())
        if stage:  # each stage's ops are the strongest of the stage before
            assert bool((s.arch.legal.cpu() <= seen[-1]).all())
        seen.append(s.arch.legal.cpu().clone())
        s.train_epochs(stage + 1, None, None)
        if stage < 2:
            s.enter_stage(stage + 1, s.cut())


def test_pdarts_allows_at_most_m_skip_connects(
    tiny_cell_table: LatencyTable, tiny_cell_data: Data
) -> None:
    s = _make("pdarts", tiny_cell_table, tiny_cell_data, **SMALL_PDARTS)
    with torch.no_grad():
        s.arch.alpha[:, OPS.index("skip_connect")] = 3.0  # skip wins every edge
    assert sum(op == "skip_connect" for op, _ in s.genotype().normal) == 8
    for m in (0, 1, 2):
        s.config = replace(s.config, max_skips=m)
        g = s.final_genotype()
        assert sum(op == "skip_connect" for op, _ in g.normal) == m
        assert all(op == "skip_connect" for op, _ in g.reduce)  # the rule is the normal cell's


def test_pdarts_skip_dropout_decays_within_a_stage(
    tiny_cell_table: LatencyTable, tiny_cell_data: Data
) -> None:
    s = _make("pdarts", tiny_cell_table, tiny_cell_data, epochs=4, warmup_epochs=2, **SMALL_PDARTS)
    rates = []
    for epoch in range(4):
        s.epoch = epoch
        rates.append(s.skip_drop())
    assert rates[0] == pytest.approx(0.2 * 3 / 4) and rates[1] == pytest.approx(0.2 * 2 / 4)
    assert rates[2] == pytest.approx(0.2) and rates[3] == pytest.approx(0.2 * 2.718281828**-0.2)


def test_second_order_darts_moves_alpha_and_restores_the_weights(
    tiny_cell_table: LatencyTable, tiny_cell_data: Data
) -> None:
    s = _make("darts", tiny_cell_table, tiny_cell_data, HardTarget(1.0), order="second")
    assert isinstance(s, DARTS)
    train, val = _batches(s)
    s.net.eval()  # BN without running-statistics updates: the weights alone are compared
    before = {k: v.clone() for k, v in s.net.state_dict().items()}
    alpha = s.alpha.detach().clone()
    s.arch_step(train, val)
    after = s.net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not torch.equal(alpha, s.alpha.detach())


@pytest.mark.slow
def test_pdarts_resumes_across_a_stage(tiny_cell_table: LatencyTable, tiny_cell_data: Data) -> None:
    lo, hi = PDARTS.table_bounds(tiny_cell_table)
    opts = {"epochs": 1, "warmup_epochs": 0, **SMALL_PDARTS}
    whole = _make(
        "pdarts", tiny_cell_table, tiny_cell_data, HardTarget((lo + hi) / 2), **opts
    ).run()
    first = _make("pdarts", tiny_cell_table, tiny_cell_data, HardTarget((lo + hi) / 2), **opts)
    first.train_epochs(1, None, None)
    first.enter_stage(1, first.cut())
    state = first.state()
    again = _make("pdarts", tiny_cell_table, tiny_cell_data, HardTarget((lo + hi) / 2), **opts)
    again.load_state(state)
    assert again.stage == 1 and len(again.net.cells) == 4
    resumed = again.run()
    assert resumed.arch == whole.arch and resumed.table_ms == whole.table_ms


@pytest.mark.parametrize("form", ["mul#log", "add#linear", "fbnet"])
@pytest.mark.parametrize("name", ["darts", "gdas", "pcdarts"])
def test_soft_latency_forms_move_alpha(
    name: str, form: str, tiny_cell_table: LatencyTable, tiny_cell_data: Data
) -> None:
    lo, hi = CellSearcher.table_bounds(tiny_cell_table)
    s = _make(name, tiny_cell_table, tiny_cell_data, SoftLatency(form, (lo + hi) / 2))
    assert isinstance(s, CellSearcher)
    train, val = _batches(s)
    params = [p.detach().clone() for p in s.arch_params()]
    s.arch_step(train, val)
    assert any(not torch.equal(a, b.detach()) for a, b in zip(params, s.arch_params(), strict=True))
    # E[LAT] is a relaxation over all 14 edges (PC-DARTS: weighted by α·β), not a genotype's
    fixed = tiny_cell_table.fixed_ms
    assert fixed < s.relaxed_ms() <= fixed + float(s.costs.max(dim=1).values.sum())


@pytest.mark.parametrize("name", ["darts", "gdas", "pcdarts", "pdarts"])
def test_the_controlled_latency_is_the_genotypes_and_has_a_gradient(
    name: str, tiny_cell_table: LatencyTable, tiny_cell_data: Data
) -> None:
    opts = SMALL_PDARTS if name == "pdarts" else {}
    s = _make(name, tiny_cell_table, tiny_cell_data, HardTarget(1.0), **opts)
    assert isinstance(s, CellSearcher)
    for seed in range(3):
        with torch.no_grad():  # a learnt-looking α (and β)
            for p in s.arch_params():
                p.copy_(torch.randn(p.shape, generator=torch.Generator().manual_seed(seed)))
        lat = s.expected_ms()
        assert float(lat.detach()) == pytest.approx(s.exported_ms(), rel=1e-5)
        grads = torch.autograd.grad(lat, s.arch_params(), allow_unused=True)
        assert any(g is not None and bool(g.abs().sum() > 0) for g in grads)
