"""SPOS and FairNAS: strict fairness holds after every step, the training paths stay in
the latency window, every scored candidate meets the constraint, BN recalibration moves
the running statistics and does not lower accuracy, and the result carries the top k and
the Pareto front."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest
import torch

from searchers import data as datasets
from searchers.algorithms.fairnas import FairNAS
from searchers.algorithms.spos import SPOS
from searchers.core.evaluate import accuracy, recalibrate_bn
from searchers.core.losses import HardTarget, SoftLatency
from searchers.core.mixed import Single
from searchers.data import Data
from searchers.latency import LatencyTable
from searchers.registry import create_searcher, searcher_class
from searchers.spaces import create_space
from tests.searchers.conftest import flops_table

QUICK = {"population": 8, "topk": 3, "generations": 2, "mutations": 4, "crossovers": 4}


def _make(
    name: str, table: LatencyTable, data: Data, hard: HardTarget | None, **opts: object
) -> SPOS:
    config = replace(searcher_class(name).Config(), epochs=1, bn_calib_batches=2, **opts)
    s = create_searcher(name, table=table, data=data, config=config, latency=hard)
    assert isinstance(s, SPOS)
    return s


def _window(table: LatencyTable, at: float = 0.3) -> HardTarget:
    lo, hi = table.bounds()
    return HardTarget(lo + at * (hi - lo), "eq", 0.05)


def test_fairnas_trains_every_candidate_equally_often_after_every_step(
    tiny_table: LatencyTable, tiny_data: Data
) -> None:
    s = _make("fairnas", tiny_table, tiny_data, None)
    assert isinstance(s, FairNAS)
    legal = tiny_table.mask
    assert not bool(legal.all())  # some layers have fewer candidates: fillers are needed
    batches = iter(s.data.train_batches(0, 0))
    for step in range(1, 6):
        x, y = next(batches)
        s.weight_step(x, y, warmup=False)
        for row, ok in zip(s.trained, legal, strict=True):
            assert row[ok].tolist() == [step] * int(ok.sum())
            assert int(row[~ok].sum()) == 0
    assert s.fairness() == 0.0


def test_a_frozen_filler_passes_gradient_through_but_is_not_trained(
    tiny_table: LatencyTable, tiny_data: Data
) -> None:
    s = _make("fairnas", tiny_table, tiny_data, None)
    mixed = s.net.mixed()[1]
    x = torch.randn(2, 24, 4, 4, requires_grad=True)
    mixed(x, Single(0, learn=False)).sum().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0
    assert all(p.grad is None for p in mixed.candidates[0].parameters())
    mixed(x, Single(0)).sum().backward()
    assert any(p.grad is not None for p in mixed.candidates[0].parameters())


def test_spos_training_paths_stay_in_the_window(tiny_table: LatencyTable, tiny_data: Data) -> None:
    hard = _window(tiny_table)
    for sampling in ("window", "bins"):
        s = _make("spos", tiny_table, tiny_data, hard, sampling=sampling)
        paths = [s.draw(s.gen) for _ in range(100)]
        assert all(hard.satisfied(tiny_table.exact(p)) for p in paths)
        assert len({tuple(p) for p in paths}) > 50
    s = _make("spos", tiny_table, tiny_data, hard, sampling="uniform")
    draws = [s.draw(s.gen) for _ in range(100)]
    outside = [p for p in draws if not hard.satisfied(tiny_table.exact(p))]
    assert len(outside) > 50  # uniform ignores the window: most of the space is outside it


def test_every_scored_candidate_meets_the_constraint_and_the_front_is_reported(
    tiny_table: LatencyTable, tiny_data: Data
) -> None:
    for name in ("spos", "fairnas"):
        lo, hi = tiny_table.bounds()
        hard = HardTarget.between(lo + 0.2 * (hi - lo), lo + 0.4 * (hi - lo))
        result = _make(name, tiny_table, tiny_data, hard, **QUICK).run()
        scored = result.selection["considered"]
        assert len(scored) == result.selection["evaluated"] >= 8
        assert all(hard.satisfied(r["table_ms"]) for r in scored)
        front = result.selection["pareto"]
        assert [r["table_ms"] for r in front] == sorted(r["table_ms"] for r in front)
        assert all(a["val_acc"] < b["val_acc"] for a, b in itertools.pairwise(front))
        for row in scored:  # nothing scored beats a front member on both axes
            assert not any(
                row["val_acc"] > f["val_acc"] and row["table_ms"] < f["table_ms"] for f in front
            )
        assert result.selection["topk"][0]["val_acc"] == result.val_acc
        chosen = (result.table_ms, result.val_acc)  # the fastest of the best: on the front
        assert chosen in [(f["table_ms"], f["val_acc"]) for f in front]
        assert [g["generation"] for g in result.selection["generations"]] == [0, 1, 2]


def test_bn_recalibration_moves_the_statistics_and_keeps_or_raises_accuracy(
    tiny_table: LatencyTable, tiny_data: Data
) -> None:
    s = _make("spos", tiny_table, tiny_data, None, sampling="uniform")
    s.config.epochs = 3
    s.train_epochs(3, None, None)
    gen = torch.Generator().manual_seed(5)
    plain, recal = [], []
    for _ in range(4):
        plan = s.plan_for(s.draw(gen))
        val = list(tiny_data.val.batches(256))
        s.net.eval()  # the running statistics training left: a mixture of every path
        plain.append(accuracy(s.net, s.forward, plan, val))
        before = [m.running_mean.clone() for m in s.net.modules() if hasattr(m, "running_mean")]
        recalibrate_bn(s.net, s.forward, plan, s.calibration)
        after = [m.running_mean for m in s.net.modules() if hasattr(m, "running_mean")]
        assert any(not torch.allclose(a, b) for a, b in zip(after, before, strict=True))
        s.net.eval()
        recal.append(accuracy(s.net, s.forward, plan, val))
    assert sum(recal) >= sum(plain), (plain, recal)


def test_spos_refuses_a_soft_loss(tiny_table: LatencyTable, tiny_data: Data) -> None:
    with pytest.raises(ValueError, match="under a constraint"):
        create_searcher(
            "spos", table=tiny_table, data=tiny_data,
            config=searcher_class("spos").Config(), latency=SoftLatency("mul#log", 1.0),
        )  # fmt: skip


@pytest.mark.slow
def test_spos_searches_channel_widths_on_one_sliced_weight() -> None:
    """spos-shufflenet with channel search: the supernet's weights are those of the widest
    choice whatever the number of widths, and the search exports widths that rebuild."""
    data = datasets.load("digits", 16, batch_size=32, data_seed=0, limit=300)
    nets = {}
    for n in (1, 3):
        space = create_space("spos-shufflenet", resolution=16, width=0.25, classes=10, channels=n)
        table = flops_table(space)
        s = _make("spos", table, data, _window(table, 0.5), **QUICK)
        nets[n] = s
    params = {n: sum(p.numel() for p in s.net.parameters()) for n, s in nets.items()}
    assert params[1] == params[3]  # every width slices the widest unit
    s = nets[3]
    result = s.run()
    assert all("_c" in name for name in result.choices)
    arch = s.space.arch_to_json(result.arch)
    child = s.space.build_child(arch)
    assert child.specs == s.space.arch_ops(arch)  # type: ignore[attr-defined]
    assert child(torch.randn(2, 3, 16, 16)).flatten(1).shape == (2, 10)
