"""One-Shot (Bender et al.): scheduled path dropout keeps a path per layer, follows its
schedule and the per-op formula, ghost BN normalises over chunks, every scored candidate
meets the constraint, the contract holds, and a resume keeps the schedule position."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F

import searchers.algorithms.oneshot  # noqa: F401  registers "oneshot"
from searchers import data as datasets
from searchers.algorithms.oneshot import OneShot
from searchers.core.checkpoint import Checkpoint
from searchers.core.losses import HardTarget, SoftLatency
from searchers.core.mixed import Mode, Paths
from searchers.data import Data
from searchers.latency import LatencyTable
from searchers.registry import create_searcher, searcher_class
from tests.searchers import test_registry


@pytest.fixture(scope="module")
def data() -> Data:
    """84 train images: two steps an epoch."""
    return datasets.load("digits", 16, batch_size=32, data_seed=0, limit=120)


def _make(table: LatencyTable, data: Data, hard: HardTarget | None = None, **opts: Any) -> OneShot:
    opts = {"epochs": 2, "bn_calib_batches": 1, "eval_paths": 1, **opts}
    config = replace(OneShot.Config(), **opts)
    s = create_searcher("oneshot", table=table, data=data, config=config, latency=hard)
    assert isinstance(s, OneShot)
    return s


def _record_plans(s: OneShot) -> list[Sequence[Mode | None]]:
    """Every plan the searcher's weight steps run, in order."""
    plans: list[Sequence[Mode | None]] = []
    draw = s.weight_plan

    def recorded(warmup: bool) -> Sequence[Mode | None]:
        plans.append(draw(warmup))
        return plans[-1]

    s.weight_plan = recorded  # type: ignore[method-assign]
    return plans


def test_path_dropout_keeps_a_path_in_every_layer_on_every_step(
    tiny_table: LatencyTable, data: Data
) -> None:
    s = _make(tiny_table, data, drop_rate=0.999, ramp=0.1)
    plans = _record_plans(s)
    s.train_epochs(2, None, None)
    assert len(plans) == 2 * s.data.steps_per_epoch() == 4
    kept = [len(m.indices) for plan in plans for m in plan if isinstance(m, Paths)]
    assert len(kept) == len(plans) * len(s.net.mixed()) and min(kept) >= 1
    late = [len(m.indices) for plan in plans[1:] for m in plan if isinstance(m, Paths)]
    assert sum(late) / len(late) < 1.1  # r ≈ 1: nearly always the rescued single path
    legal = tiny_table.mask
    assert int(s.trained[~legal].sum()) == 0
    assert int(s.trained.sum()) == sum(kept)  # every kept candidate is counted


def test_the_rate_follows_the_schedule(tiny_table: LatencyTable, data: Data) -> None:
    s = _make(tiny_table, data, drop_rate=0.4, epochs=4)
    total = 4 * s.data.steps_per_epoch()
    assert s.drop_rate(0) == 0.0
    assert s.drop_rate(total // 2) == pytest.approx(0.2)
    assert s.drop_rate(total) == pytest.approx(0.4)
    half = _make(tiny_table, data, drop_rate=0.4, epochs=4, ramp=0.5)
    assert half.drop_rate(total // 4) == pytest.approx(0.2)
    assert half.drop_rate(total // 2) == half.drop_rate(total) == pytest.approx(0.4)
    s = _make(tiny_table, data, drop_rate=0.4)  # the record: r_t at each epoch's end
    s.train_epochs(2, None, None)
    assert [row["drop_rate"] for row in s.history] == pytest.approx([0.2, 0.4])
    assert s.history[0]["mean_paths"] > s.history[1]["mean_paths"] >= 1.0


def test_each_candidate_is_kept_with_the_per_op_probability(
    tiny_table: LatencyTable, data: Data
) -> None:
    s = _make(tiny_table, data)
    r, n = 0.5, 3000
    counts = [torch.zeros(len(m.columns)) for m in s.net.mixed()]
    for _ in range(n):
        for layer, idx in enumerate(s.drop(r)):
            counts[layer][list(idx)] += 1
    for c in counts:
        k = len(c)
        # dropped with r^(1/k); the rescue of an emptied layer adds r/k
        want = 1 - r ** (1 / k) + r / k
        assert torch.allclose(c / n, torch.full_like(c, want), atol=0.03), (k, c / n, want)
        assert abs(float(c.sum() / n) - 1) > 0.05  # not one path a layer: several are kept


def test_ghost_batches_normalise_over_their_own_chunk(tiny_table: LatencyTable, data: Data) -> None:
    s = _make(tiny_table, data, ghost_batch=16)
    x, y = next(iter(s.data.train_batches(0, 0)))
    assert len(x) == 32
    everything = [Paths(tuple(range(len(m.columns)))) for m in s.net.mixed()]  # r_0 = 0
    with torch.no_grad():
        chunks = [
            F.cross_entropy(s.forward(x[i : i + 16], everything), y[i : i + 16]) for i in (0, 16)
        ]
        whole = F.cross_entropy(s.forward(x, everything), y)
    loss = s.weight_step(x, y, warmup=False)
    assert loss == pytest.approx(float(sum(chunks)) / 2, rel=1e-5)
    assert abs(loss - float(whole)) > 1e-4  # BN over the whole batch would differ


def test_every_scored_candidate_meets_the_constraint(tiny_table: LatencyTable, data: Data) -> None:
    lo, hi = tiny_table.bounds()
    hard = HardTarget.between(lo + 0.2 * (hi - lo), lo + 0.4 * (hi - lo))
    result = _make(tiny_table, data, hard, epochs=1, random_archs=12, topk=4).run()
    sel = result.selection
    assert sel["how"] == "best of 12 random" and sel["evaluated"] == len(sel["considered"]) > 4
    assert all(hard.satisfied(r["table_ms"]) for r in sel["considered"])
    assert len(sel["topk"]) == 4 and sel["topk"][0]["val_acc"] == result.val_acc
    accs = [r["val_acc"] for r in sel["topk"]]
    assert accs == sorted(accs, reverse=True)
    assert result.columns == sel["topk"][0]["columns"] and sel["pareto"] and sel["seconds"] >= 0
    evolution = {"selector": "evolution", **test_registry.EVOLUTION}
    sel = _make(tiny_table, data, hard, epochs=1, **evolution).run().selection
    assert sel["how"].startswith("evolution") and len(sel["generations"]) == 3
    assert all(hard.satisfied(r["table_ms"]) for r in sel["considered"])


def test_resume_keeps_the_schedule_position(
    tmp_path: Path, tiny_table: LatencyTable, data: Data
) -> None:
    s = _make(tiny_table, data, drop_rate=0.6, epochs=3)
    s.train_epochs(1, None, None)
    x, y = next(iter(s.data.train_batches(s.config.seed, 1)))
    s.weight_step(x, y, warmup=False)
    s.step = 1  # stopped mid-epoch, as the loop leaves it
    Checkpoint(tmp_path).save(s.state())
    again = _make(tiny_table, data, drop_rate=0.6, epochs=3)
    again.resume(Checkpoint(tmp_path))
    assert again.drop_rate() == s.drop_rate() == pytest.approx(0.6 * 3 / 6)
    assert again.kept == s.kept and torch.equal(again.trained, s.trained)
    assert again.weight_plan(False) == s.weight_plan(False)  # the same generator state


def test_options_are_validated_and_a_soft_loss_is_refused(
    tiny_table: LatencyTable, data: Data
) -> None:
    for bad in ({"drop_rate": 1.0}, {"ramp": 0.0}, {"ghost_batch": 1}, {"random_archs": 0}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            OneShot.Config(**bad)
    with pytest.raises(ValueError, match="chunk of one example"):
        _make(tiny_table, data, ghost_batch=31)  # batches of 32
    with pytest.raises(ValueError, match="oneshot searches under a constraint"):
        create_searcher(
            "oneshot", table=tiny_table, data=data,
            config=searcher_class("oneshot").Config(), latency=SoftLatency("mul#log", 1.0),
        )  # fmt: skip
