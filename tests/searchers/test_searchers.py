"""Short real searches on digits with a synthetic table: the hard target is met, FBNet's
schedule is the paper's, and the registry builds searchers by name."""

from __future__ import annotations

import pytest
import torch

from searchers._registry import create_searcher, list_searchers
from searchers.base import SearchConfig
from searchers.data import Data
from searchers.latency import LatencyTable
from searchers.losses import HardTarget, SoftLatency


def _search(name: str, table: LatencyTable, data: Data, latency, epochs=2, **kw):  # type: ignore[no-untyped-def]
    s = create_searcher(
        name,
        table=table,
        data=data,
        config=SearchConfig(epochs=epochs, arch_lr=0.1, seed=0),
        latency=latency,
        **kw,
    )
    return s, s.run()


@pytest.mark.parametrize("mode", ["full_v2", "two"])
def test_hard_target_lands_within_tolerance_against_accuracy(
    small_table: LatencyTable, small_data: Data, mode: str
) -> None:
    lo, hi = small_table.bounds()
    target = lo + 0.15 * (hi - lo)  # far below what accuracy alone would pick
    hard = HardTarget(target, "eq", 0.03)
    _, result = _search("proxyless", small_table, small_data, hard, mode=mode)
    assert abs(result.table_ms / target - 1) <= 0.03
    assert small_table.exact(list(result.choices)) == pytest.approx(result.table_ms)
    assert hard.lam > 0  # the multiplier had to push latency down
    # E[LAT] moved toward the target during the search (not only in the repair)
    probs0 = torch.where(small_table.mask, 1.0, 0.0).double()
    e0 = float(small_table.expected(probs0 / probs0.sum(1, keepdim=True)))
    assert abs(result.history[-1]["expected_ms"] - target) < abs(e0 - target)


def test_le_constraint_ends_at_or_under_the_budget(
    small_table: LatencyTable, small_data: Data
) -> None:
    lo, hi = small_table.bounds()
    target = lo + 0.3 * (hi - lo)
    hard = HardTarget(target, "le")
    _, result = _search("fbnet", small_table, small_data, hard, epochs=1, samples=2)
    assert result.table_ms <= target


def test_fbnet_temperature_schedule(small_table: LatencyTable, small_data: Data) -> None:
    _, result = _search("fbnet", small_table, small_data, SoftLatency("fbnet"), epochs=2, samples=0)
    temps = [row["temperature"] for row in result.history]
    assert temps == pytest.approx([5.0, 5.0 * 0.956])
    assert result.repair is None  # soft mode never repairs


def test_registry_names_and_errors(small_table: LatencyTable, small_data: Data) -> None:
    assert {"proxyless", "fbnet"} <= set(list_searchers())
    with pytest.raises(ValueError, match="searcher: unknown"):
        create_searcher("enas")
    with pytest.raises(ValueError, match="mode"):
        create_searcher(
            "proxyless",
            table=small_table,
            data=small_data,
            config=SearchConfig(),
            latency=HardTarget(1.0),
            mode="one",
        )


def test_two_mode_keeps_the_unsampled_probabilities(
    small_table: LatencyTable, small_data: Data
) -> None:
    s = create_searcher(
        "proxyless",
        table=small_table,
        data=small_data,
        config=SearchConfig(epochs=1, arch_lr=0.5),
        latency=HardTarget(small_table.bounds()[0]),
        mode="two",
    )
    with torch.no_grad():
        s.net.alpha.normal_()
    before = s.net.probs().detach().clone()
    x, y = next(iter(small_data.val))
    s.arch_step(x, y)  # samples a pair per layer: the mixed ops keep it in `paths`
    after = s.net.probs().detach()
    assert not torch.allclose(before, after)
    for layer, mixed in enumerate(s.net.mixed()):
        sampled = {mixed.columns[i] for i in mixed.paths}
        others = [c for c in mixed.columns if c not in sampled]
        assert len(sampled) == 2
        assert torch.allclose(before[layer, others], after[layer, others], atol=1e-6)
