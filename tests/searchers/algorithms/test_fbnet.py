"""FBNet on the core: the temperature schedule fits the run, the mixed supernet is what
is reported, hard Gumbel runs one path, the search itself lands near the target."""

from __future__ import annotations

import itertools

import pytest

from searchers.core.losses import HardTarget, SoftLatency
from searchers.data import Data
from searchers.latency import LatencyTable
from searchers.registry import create_searcher, searcher_class


def test_temperature_goes_from_start_to_end_over_the_searched_epochs(
    tiny_table: LatencyTable, tiny_data: Data
) -> None:
    config = searcher_class("fbnet").Config(epochs=12, warmup_epochs=2)
    s = create_searcher("fbnet", table=tiny_table, data=tiny_data, config=config, latency=None)
    taus = []
    for epoch in range(12):
        s.epoch = epoch
        taus.append(s.tau())  # type: ignore[attr-defined]
    assert taus[0] == taus[2] == pytest.approx(5.0)  # held through warm-up
    assert taus[-1] == pytest.approx(config.tau_end)  # type: ignore[attr-defined]
    assert all(a > b for a, b in itertools.pairwise(taus[2:]))
    fixed = searcher_class("fbnet").Config(epochs=12, warmup_epochs=2, decay=0.956)  # type: ignore[call-arg]
    s = create_searcher("fbnet", table=tiny_table, data=tiny_data, config=fixed, latency=None)
    s.epoch = 4
    assert s.tau() == pytest.approx(5.0 * 0.956**2)  # type: ignore[attr-defined]


@pytest.mark.slow
def test_the_search_itself_lands_near_the_target(tiny_table: LatencyTable, tiny_data: Data) -> None:
    lo, hi = tiny_table.bounds()
    hard = HardTarget(lo + 0.7 * (hi - lo), "eq", 0.03)
    config = searcher_class("fbnet").Config(
        epochs=5, warmup_epochs=1, samples=2, bn_calib_batches=2
    )  # type: ignore[call-arg]
    s = create_searcher("fbnet", table=tiny_table, data=tiny_data, config=config, latency=hard)
    result = s.run()
    assert abs(result.proposed_ms / hard.target_ms - 1) <= 2 * hard.tolerance, result.proposed_ms
    last = result.history[-1]
    assert {"mixed_acc", "argmax_acc", "temperature"} <= set(last)
    assert last["mixed_acc"] > 0.3  # the trained (mixed) supernet learnt; chance is 0.1


def test_hard_gumbel_and_the_soft_fbnet_loss_run(tiny_table: LatencyTable, tiny_data: Data) -> None:
    config = searcher_class("fbnet").Config(epochs=2, warmup_epochs=1, hard=True, samples=1)  # type: ignore[call-arg]
    s = create_searcher(
        "fbnet", table=tiny_table, data=tiny_data, config=config, latency=SoftLatency("fbnet")
    )
    result = s.run()
    assert result.repair is None  # a soft loss never repairs
    assert len(result.history) == 2
