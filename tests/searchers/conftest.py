"""A small proxyless-mobile supernet setting with a synthetic table, for fast searches."""

from __future__ import annotations

import pytest

from profiler.features import features
from searchers import data as datasets
from searchers.latency import LatencyTable
from searchers.spaces import SearchSpace, create_space


def flops_table(space: SearchSpace) -> LatencyTable:
    """A roofline-like synthetic table: 5 µs per op + 1 ms per 50 MFLOP."""
    ops = space.fixed_ops() + space.distinct_ops()
    return LatencyTable.from_cells(
        space, {op.key: (0.005 + features(op).flops * 2e-8, "measured") for op in ops}
    )


@pytest.fixture(scope="session")
def small_space() -> SearchSpace:
    return create_space("proxyless-mobile", resolution=16, width=0.25, classes=10)


@pytest.fixture(scope="session")
def small_table(small_space: SearchSpace) -> LatencyTable:
    return flops_table(small_space)


@pytest.fixture(scope="session")
def small_data() -> datasets.Data:
    return datasets.load("digits", 16, batch_size=32, seed=0, limit=320)
