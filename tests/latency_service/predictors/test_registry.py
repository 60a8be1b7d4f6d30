"""The predictor registry: every candidate keeps the contract (fits, predicts positive
finite latencies, refits to the same bits), and requests resolve to the default set,
every candidate, or the ones named with their blends' parts."""

from __future__ import annotations

import numpy as np
import pytest

from latency_service.predictors.kernel_table import KERNEL_MIN, KernelTable
from latency_service.predictors.registry import (
    NET_MIN,
    candidate,
    default_candidates,
    list_candidates,
    make,
    resolve,
    without_superseded,
)
from latency_service.predictors.training import one_thread, train
from profiler.features import features
from profiler.ops import OpSpec
from profiler.sampling import sample_ops


def law(spec: OpSpec) -> float:
    return 1e-9 * features(spec).flops ** 0.95 + 0.01


SPECS = sample_ops("mbconv", 40, seed=5)
FRESH = sample_ops("mbconv", 8, seed=6)
CONVS = sample_ops("mbconv", KERNEL_MIN, seed=7, kernels=True)


@pytest.fixture(scope="module")
def table() -> KernelTable:
    with one_thread():
        return KernelTable(CONVS, np.array([law(c) for c in CONVS]))


@pytest.mark.parametrize("name", list_candidates())
def test_contract(name: str, table: KernelTable) -> None:
    y = np.array([law(s) for s in SPECS])
    with one_thread():
        first = make(name, table).fit(SPECS, y).predict(FRESH)
        again = make(name, table).fit(SPECS, y).predict(FRESH)
    assert first.shape == (len(FRESH),)
    assert np.isfinite(first).all() and (first > 0).all()
    assert np.array_equal(first, again)  # stored as a recipe: a refit is the same
    c = candidate(name)
    assert c.about and (c.build is None) == bool(c.parts)
    if c.needs_kernels:
        with pytest.raises(ValueError, match=f"{name}: needs the device's measured kernels"):
            make(name)


def test_the_default_set_is_the_winners_with_their_parts() -> None:
    defaults = default_candidates()
    assert set(defaults) == {
        "kernel_roofline",
        "kernel_forest",
        "kernel_gbm_mlas",
        "kernel_table_gbm",
        "kernel_table_blend",
        "kernel_net",
        "kernel_net_joint",
        "kernel_net_blend",
        "kernel_net_table_blend",
    }
    assert resolve(None) == defaults
    for name in defaults:  # a blend's parts are cross-validated first
        for part in candidate(name).parts:
            assert part in defaults and defaults.index(part) < defaults.index(name)
    ablations = ("kernel_gbm", "kernel_gbm_layout", "kernel_gbm_nchwc")
    assert not set(ablations) & set(defaults) and set(ablations) <= set(resolve(["all"]))


def test_requests_resolve_to_candidates_in_registration_order() -> None:
    assert resolve(["all"]) == list_candidates() and len(list_candidates()) == 16
    assert resolve(["kernel_net_blend", "roofline"]) == (
        "roofline",
        "kernel_gbm_mlas",
        "kernel_net",
        "kernel_net_blend",
    )
    blend = candidate("kernel_net_table_blend")  # needs what its parts need
    assert blend.needs_kernels and blend.min_rows == NET_MIN
    with pytest.raises(ValueError, match=r"^models: unknown candidate 'xgboost' \(candidates: all"):
        resolve(["roofline", "xgboost"])
    with pytest.raises(ValueError, match="models: give at least one candidate, or all"):
        resolve([])
    with pytest.raises(ValueError, match="unknown candidate 'xgboost'"):
        resolve(["all", "xgboost"])


def test_the_joint_network_supersedes_the_plain_one_in_the_default_set() -> None:
    """Where the device's kernels let kernel_net_joint in, kernel_net and its blend stay
    out of the default set; without the kernels, or when asked for, they stay in."""
    with_kernels = without_superseded(default_candidates())
    assert "kernel_net_joint" in with_kernels
    assert not {"kernel_net", "kernel_net_blend"} & set(with_kernels)
    no_kernels = tuple(n for n in default_candidates() if not candidate(n).needs_kernels)
    assert {"kernel_net", "kernel_net_blend"} <= set(without_superseded(no_kernels))


def test_candidates_that_do_not_apply_are_left_out() -> None:
    """40 rows and no kernels: the networks (NET_MIN rows) and the kernel-table ones are
    not offered; the default set falls back to the kernel law with trees."""
    y = [law(s) for s in SPECS]
    trained = train("mbconv", SPECS, y)
    assert set(trained.cv) == {"kernel_roofline", "kernel_forest", "kernel_gbm_mlas"}
    with pytest.raises(
        ValueError, match=r"kernel_net: at least 200 measured mbconv ops needed, there are 40"
    ):
        train("mbconv", SPECS, y, models=["kernel_net"])
    with pytest.raises(ValueError, match="jobs sample --kind mbconv --kernels"):
        train("mbconv", SPECS, y, models=["kernel_table_gbm"])
