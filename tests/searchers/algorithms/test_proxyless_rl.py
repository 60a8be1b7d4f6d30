"""ProxylessNAS-REINFORCE: the gradient is REINFORCE's own on a toy bandit and a step
follows it; measured latencies are asked for in one batch per step and never twice (a
resume included); a short search lands on a hard target; bad configs are one line."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
import torch

from searchers.algorithms.proxyless_rl import ProxylessRL, ProxylessRLConfig, reinforce_grad
from searchers.core.arch import Alpha
from searchers.core.config import apply_sets
from searchers.core.losses import HardTarget, SoftLatency
from searchers.data import Data
from searchers.latency import LatencyTable
from searchers.registry import create_searcher


def test_the_gradient_is_reinforce_with_a_baseline() -> None:
    mask = torch.ones(2, 5, dtype=torch.bool)
    mask[1, 3] = False  # an illegal candidate gets no gradient and is never drawn
    arch = Alpha(mask)
    with torch.no_grad():
        arch.alpha.normal_(generator=torch.Generator().manual_seed(0))
    picks, rewards, b = [[0, 1], [4, 1], [2, 4]], [0.9, 0.2, 0.5], 0.4
    grad = reinforce_grad(arch, picks, rewards, b)
    p = arch.probs().detach()
    want = torch.zeros_like(p)
    for pick, r in zip(picks, rewards, strict=True):
        onehot = torch.zeros_like(p)
        onehot[[0, 1], pick] = 1.0
        want += (r - b) * (onehot - p) / len(picks)  # (δ − p)·(R − b), averaged
    assert torch.allclose(grad, want, atol=1e-6)
    assert float(grad[1, 3]) == 0.0


class Bandit(ProxylessRL):
    """Pays 1 when layer 0 runs candidate column `arm`, else 0, whatever the network does."""

    arm = 2

    def batch_accuracy(self, columns: Sequence[int], x: torch.Tensor, y: torch.Tensor) -> float:
        return float(columns[0] == self.arm)


def test_steps_on_a_bandit_raise_the_paying_arm(tiny_table: LatencyTable, tiny_data: Data) -> None:
    s = Bandit(tiny_table, tiny_data, ProxylessRLConfig(arch_lr=0.1), latency=None)
    x, y = next(tiny_data.val.batches(32))
    before = float(s.arch.probs().detach()[0, Bandit.arm])
    for _ in range(60):
        s.arch_step((x, y), (x, y))
    after = s.arch.probs().detach()
    assert before == pytest.approx(1 / int(s.arch.legal[0].sum()))  # uniform at the start
    assert float(after[0, Bandit.arm]) > 0.9
    assert s.baseline is not None and 0.5 < s.baseline <= 1.0  # follows the mean reward
    assert all(p.grad is None for p in s.net.parameters())  # no weight gradient computed


class Counting:
    """A fake device: measures at 0.7 x the table sum, and records every call."""

    def __init__(self, table: LatencyTable, scale: float = 0.7):
        self.table, self.scale, self.calls = table, scale, list[list[list[int]]]()

    def __call__(self, batch: list[list[int]]) -> list[float]:
        self.calls.append(batch)
        return [self.scale * self.table.exact(c) for c in batch]


def _measured(table: LatencyTable, data: Data, measure: Counting) -> ProxylessRL:
    config = ProxylessRLConfig(epochs=2, warmup_epochs=1, bn_calib_batches=1, latency="measured")
    hard = HardTarget(sum(table.bounds()) / 2, "eq", 0.05)  # a table constraint
    s = create_searcher(
        "proxyless-rl", table=table, data=data, config=config, latency=hard, measure=measure
    )
    assert isinstance(s, ProxylessRL)
    return s


def test_measured_latency_is_batched_and_cached(tiny_table: LatencyTable, tiny_data: Data) -> None:
    measure = Counting(tiny_table)
    s = _measured(tiny_table, tiny_data, measure)
    s.run()
    steps = tiny_data.steps_per_epoch()  # one architecture step per weight step after warm-up
    seen = [tuple(c) for batch in measure.calls for c in batch]
    assert 0 < len(measure.calls) <= steps
    assert all(0 < len(batch) <= 4 for batch in measure.calls)
    assert len(seen) == len(set(seen))  # nothing measured twice
    assert set(seen) == set(s.measured)
    assert all(s.measured[c] == pytest.approx(0.7 * tiny_table.exact(list(c))) for c in seen)
    fresh = Counting(tiny_table)
    again = _measured(tiny_table, tiny_data, fresh)
    again.load_state(s.state())  # a resume keeps the measurements
    assert again.measured == s.measured and again.baseline == s.baseline
    assert again.latencies([list(c) for c in seen]) == [s.measured[c] for c in seen]
    assert not fresh.calls


def test_a_measurement_equal_to_the_table_searches_as_the_table_does(
    tiny_table: LatencyTable, tiny_data: Data
) -> None:
    measured = _measured(tiny_table, tiny_data, Counting(tiny_table, scale=1.0)).run()
    config = ProxylessRLConfig(epochs=2, warmup_epochs=1, bn_calib_batches=1)
    hard = HardTarget(sum(tiny_table.bounds()) / 2, "eq", 0.05)
    table = create_searcher(
        "proxyless-rl", table=tiny_table, data=tiny_data, config=config, latency=hard
    ).run()
    assert measured.columns == table.columns
    assert [r["reward"] for r in measured.history] == [r["reward"] for r in table.history]


def test_a_short_search_lands_on_a_hard_target_and_learns(
    tiny_table: LatencyTable, tiny_data: Data
) -> None:
    lo, hi = tiny_table.bounds()
    hard = HardTarget(lo + 0.25 * (hi - lo), "eq", 0.03)
    config = ProxylessRLConfig(epochs=6, warmup_epochs=2, bn_calib_batches=2)
    s = create_searcher(
        "proxyless-rl", table=tiny_table, data=tiny_data, config=config, latency=hard
    )
    result = s.run()
    # what the search chose, before the repair could help it
    assert abs(result.proposed_ms / hard.target_ms - 1) <= 2 * hard.tolerance, result.proposed_ms
    assert hard.satisfied(result.table_ms)
    first, last = result.history[0], result.history[-1]
    assert last["argmax_acc"] > max(0.3, first["argmax_acc"] + 0.1)  # chance is 0.1
    assert last["entropy"] < first["entropy"]
    assert first["reward"] is None and first["baseline"] is None  # warm-up: no arch step
    assert isinstance(last["reward"], float) and isinstance(last["baseline"], float)


def test_the_soft_reward_is_mnasnets(tiny_table: LatencyTable, tiny_data: Data) -> None:
    soft = SoftLatency("mul#log", target_ms=0.05)
    config = ProxylessRLConfig(latency_exponent=-0.07)
    s = create_searcher(
        "proxyless-rl", table=tiny_table, data=tiny_data, config=config, latency=soft
    )
    assert isinstance(s, ProxylessRL)
    assert s.reward(0.8, 0.1) == pytest.approx(0.8 * 2.0**-0.07)
    assert s.reward(0.8, 0.05) == pytest.approx(0.8)
    plain = create_searcher("proxyless-rl", table=tiny_table, data=tiny_data, latency=None)
    assert isinstance(plain, ProxylessRL) and plain.reward(0.8, 0.1) == 0.8
    hard = HardTarget(0.05, "eq", 0.1)
    h = create_searcher("proxyless-rl", table=tiny_table, data=tiny_data, latency=hard)
    assert isinstance(h, ProxylessRL)
    assert h.reward(0.8, 0.05) == pytest.approx(0.8)  # on the setpoint: no penalty
    assert h.reward(0.8, 0.055) == pytest.approx(0.8 - 0.5)  # one half-band off: ρ/2·1²


def test_config_errors_are_one_line(tiny_table: LatencyTable, tiny_data: Data) -> None:
    with pytest.raises(ValueError, match="latency: table or measured, got 'device'"):
        ProxylessRLConfig(latency="device")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="--set latency: one of table, measured"):
        apply_sets(ProxylessRLConfig, ["latency=device"])
    with pytest.raises(ValueError, match="samples: must be >= 1"):
        ProxylessRLConfig(samples=0)
    with pytest.raises(ValueError, match="baseline_decay: must be in"):
        ProxylessRLConfig(baseline_decay=1.0)
    measured = ProxylessRLConfig(latency="measured")
    with pytest.raises(ValueError, match="latency=measured: pass measure="):
        create_searcher(
            "proxyless-rl", table=tiny_table, data=tiny_data, config=measured, latency=None
        )
    with pytest.raises(ValueError, match="needs a target T"):
        create_searcher(
            "proxyless-rl", table=tiny_table, data=tiny_data, latency=SoftLatency("fbnet")
        )
    bad = ProxylessRL(tiny_table, tiny_data, measured, latency=None, measure=lambda b: [1.0])
    with pytest.raises(ValueError, match="measure: expected 2 positive latencies"):
        bad.latencies([[0] * 6, [1] * 6])
