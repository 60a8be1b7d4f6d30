"""ProxylessNAS on the core: the search itself (before any repair) lands near a hard
target far from what accuracy alone would pick, the supernet learns, `two` keeps the
unsampled probabilities, and an architecture step computes no weight gradient."""

from __future__ import annotations

import pytest
import torch

from searchers.core.losses import HardTarget
from searchers.data import Data
from searchers.latency import LatencyTable
from searchers.registry import create_searcher, searcher_class


@pytest.mark.parametrize("mode", ["full_v2", "two"])
def test_the_search_itself_lands_near_the_target_and_learns(
    tiny_table: LatencyTable, tiny_data: Data, mode: str
) -> None:
    lo, hi = tiny_table.bounds()
    hard = HardTarget(lo + 0.25 * (hi - lo), "eq", 0.03)
    config = searcher_class("proxyless").Config(
        epochs=6,
        warmup_epochs=2,
        mode=mode,
        bn_calib_batches=2,  # type: ignore[call-arg]
    )
    s = create_searcher("proxyless", table=tiny_table, data=tiny_data, config=config, latency=hard)
    result = s.run()
    # what the search chose, before the repair could help it
    assert abs(result.proposed_ms / hard.target_ms - 1) <= 2 * hard.tolerance, result.proposed_ms
    assert result.repair is None or len(result.repair["changed"]) <= 2
    first, last = result.history[0], result.history[-1]
    assert last["argmax_acc"] > max(0.3, first["argmax_acc"] + 0.1)  # chance is 0.1
    assert last["entropy"] < first["entropy"]  # p decided something
    lams = [row["latency_weight"] for row in result.history[2:]]
    assert max(lams) - min(lams) < 2.0  # settled, not swinging by ±10


def test_two_mode_keeps_the_unsampled_probabilities(
    tiny_table: LatencyTable, tiny_data: Data
) -> None:
    config = searcher_class("proxyless").Config(mode="two")  # type: ignore[call-arg]
    s = create_searcher(
        "proxyless",
        table=tiny_table,
        data=tiny_data,
        config=config,
        latency=None,  # the accuracy gradient alone reaches only the sampled pair
    )
    with torch.no_grad():
        s.alpha.normal_()
    before = s.arch.probs().detach().clone()
    gen_state = s.gen.get_state()
    _, involved = s.gates()  # the pairs the step will sample, from the same generator
    s.gen.set_state(gen_state)
    x, y = next(tiny_data.val.batches(32))
    s.arch_step((x, y), (x, y))
    after = s.arch.probs().detach()
    assert not torch.allclose(before, after)
    for layer, (cols, _) in involved.items():
        others = [
            c for c in range(after.shape[1]) if c not in cols and bool(s.arch.legal[layer, c])
        ]
        assert len(cols) == 2
        assert torch.allclose(before[layer, others], after[layer, others], atol=1e-6)


def test_an_architecture_step_leaves_the_weight_gradients_alone(
    tiny_table: LatencyTable, tiny_data: Data
) -> None:
    s = create_searcher(
        "proxyless", table=tiny_table, data=tiny_data, latency=HardTarget(tiny_table.bounds()[1])
    )
    x, y = next(tiny_data.val.batches(32))
    s.arch_step((x, y), (x, y))
    assert all(p.grad is None for p in s.net.parameters())  # never computed
    assert s.alpha.grad is not None and bool(s.alpha.grad.abs().sum() > 0)
