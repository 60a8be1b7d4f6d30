"""ENAS (macro `enas`, micro `enas-cell`): the hard `filter` reward, an export that only
scores architectures inside the constraint, the registry contract (deterministic under
the seed), and a checkpoint that carries the baseline and the epoch's sums."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

import searchers.algorithms.enas  # (registers enas)
import searchers.algorithms.enas_cell  # noqa: F401  (registers enas-cell)
from searchers.algorithms.enas import ENAS, EnasConfig
from searchers.algorithms.enas_cell import EnasCell
from searchers.core.loop import Searcher
from searchers.core.losses import HardTarget, SoftLatency
from searchers.core.reinforce import Reward
from searchers.data import Data
from searchers.latency import LatencyTable
from searchers.registry import create_searcher
from tests.searchers.test_registry import _tiny


def test_the_filter_reward_is_acc_inside_and_zero_outside() -> None:
    hard = HardTarget(1.0, "eq", 0.05)
    r = Reward(hard, hard="filter")
    assert r(0.8, 1.04) == 0.8 and r(0.8, 0.96) == 0.8
    assert r(0.8, 1.06) == 0.0 and r(0.8, 0.9) == 0.0
    assert r.inside(1.0) and not r.inside(1.2)
    lag = Reward(hard, hard="lagrangian")
    assert lag(0.8, 1.0) == pytest.approx(0.8) and lag(0.8, 1.05) == pytest.approx(0.3, abs=1e-5)
    soft = Reward(SoftLatency("mul#log", target_ms=0.5), exponent=-0.07)
    assert soft(0.8, 1.0) == pytest.approx(0.8 * 2.0**-0.07)
    assert Reward(None)(0.8, 9.0) == 0.8


def _hard(table: LatencyTable, cls: type[Searcher]) -> HardTarget:
    lo, hi = cls.table_bounds(table)
    return HardTarget(lo + 0.3 * (hi - lo), "eq", 0.05)


@pytest.mark.parametrize("name", ["enas", "enas-cell"])
def test_the_export_scores_inside_the_target_and_epochs_report_rewards(
    name: str, request: pytest.FixtureRequest
) -> None:
    cell = name == "enas-cell"
    table = request.getfixturevalue("tiny_cell_table" if cell else "tiny_table")
    data = request.getfixturevalue("tiny_cell_data" if cell else "tiny_data")
    result = _tiny(name, table, data)
    space = table.space
    arch = space.arch_to_json(result.arch)
    assert space.build_child(arch).specs == space.arch_ops(arch)
    assert table.exact(result.columns) == pytest.approx(result.table_ms)
    assert all(0.0 <= row["argmax_acc"] <= 1.0 for row in result.history)
    hard = _hard(table, EnasCell if cell else ENAS)  # what `_tiny` searched under
    rows = result.selection["considered"]  # greedy + samples, each repaired first
    assert len(rows) >= 2 and all(hard.satisfied(r["table_ms"]) for r in rows)
    assert result.val_acc == pytest.approx(max(r["val_acc"] for r in rows))
    for row in result.history:
        assert {"reward", "baseline", "sampled_ms", "inside"} <= set(row)
        assert 0.0 <= row["inside"] <= 1.0 and row["sampled_ms"] > 0
    assert result.history[0]["reward"] is None  # warm-up: no controller update
    assert isinstance(result.history[-1]["reward"], float)


def test_a_checkpoint_carries_the_baseline_and_the_sums(
    tiny_table: LatencyTable, tiny_data: Data
) -> None:
    config = EnasConfig(epochs=2, warmup_epochs=0, bn_calib_batches=1)
    s = create_searcher("enas", table=tiny_table, data=tiny_data, config=config, latency=None)
    assert isinstance(s, ENAS)
    x, y = next(tiny_data.val.batches(32))
    for _ in range(3):
        s.arch_step((x, y), (x, y))
    state = s.state()
    assert state["extra"]["baseline"] is not None and state["extra"]["tally"][1] == 12
    fresh = create_searcher("enas", table=tiny_table, data=tiny_data, config=config, latency=None)
    assert isinstance(fresh, ENAS)
    fresh.load_state(state)
    assert fresh.rl.state() == s.rl.state()
    mine, theirs = fresh.arch.state_dict(), s.arch.state_dict()
    assert all(torch.equal(mine[k], theirs[k]) for k in theirs)
    assert fresh.rl.record() == s.rl.record()


def test_bad_options_are_one_line() -> None:
    with pytest.raises(ValueError, match="hard_reward: filter or lagrangian"):
        EnasConfig(hard_reward="both")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="baseline_decay"):
        replace(EnasConfig(), baseline_decay=1.0)
