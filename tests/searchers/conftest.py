"""Small search settings with synthetic tables: a proxyless-mobile supernet at 16x16, and
a six-layer chain space (`TinyChain`) cheap enough for whole searches in tests."""

from __future__ import annotations

import pytest

from profiler.features import features
from profiler.ops import OpSpec
from searchers import data as datasets
from searchers.latency import LatencyTable
from searchers.spaces import SearchSpace, create_space
from searchers.spaces._chain import ChainSpace
from searchers.spaces.base import Choice, Layer
from searchers.spaces.densenas import DenseNas

BLOCKS = ((3, 3), (3, 6), (5, 3), (5, 6))


class TinyChain(ChainSpace):
    """Stem to 16 channels at 8x8, six MBConv layers (16 -> 24 at 4x4 -> 32 at 2x2; the
    first of each width without a residual), a head. Not registered: tests only."""

    name = "tiny-chain"
    candidates = (*(f"{k}x{k}_MBConv{e}" for k, e in BLOCKS), "zero")
    default_resolution = 16
    default_classes = 10

    def _plan(self) -> tuple[list[OpSpec], list[Layer]]:
        n, r = self.batch, self.resolution
        stem = OpSpec.make("conv", (n, 3, r, r), cin=3, cout=16, k=3, s=2, act="relu6")
        h, cin, layers = stem.out_shape[2], 16, []
        for cout, stride in ((24, 2), (24, 1), (24, 1), (32, 2), (32, 1), (32, 1)):
            res = int(stride == 1 and cin == cout)
            shape = (n, cin, h, h)
            choices = [
                Choice(
                    f"{k}x{k}_MBConv{e}",
                    OpSpec.make("mbconv", shape, cin=cin, cout=cout, e=e, k=k, s=stride, res=res),
                )
                for k, e in BLOCKS
            ]
            zero = OpSpec.make("skip", shape, cin=cin, cout=cout, s=1) if res else None
            layers.append(Layer(f"layer{len(layers)}", (*choices, Choice("zero", zero))))
            h, cin = choices[0].op.out_shape[2], cout  # type: ignore[union-attr]
        head = OpSpec.make("head", (n, cin, h, h), cin=cin, cmid=64, cout=self.classes)
        return [stem, head], layers


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
    return datasets.load("digits", 16, batch_size=32, data_seed=0, limit=320)


@pytest.fixture(scope="session")
def tiny_table() -> LatencyTable:
    return flops_table(TinyChain())


@pytest.fixture(scope="session")
def tiny_data() -> datasets.Data:
    return datasets.load("digits", 16, batch_size=32, data_seed=0, limit=900)


@pytest.fixture(scope="session")
def tiny_cell_table() -> LatencyTable:
    """The DARTS cell space at 8x8, C=8 (PC-DARTS splits it in 4 even parts), 3 cells."""
    return flops_table(create_space("darts", resolution=8, classes=10, C=8, cells=3))


@pytest.fixture(scope="session")
def tiny_cell_data() -> datasets.Data:
    return datasets.load("digits", 8, batch_size=32, data_seed=0, limit=300)


@pytest.fixture(scope="session")
def tiny_dense_table() -> LatencyTable:
    """The DenseNAS space at 16x16, width 0.25, one layer a block and two connections:
    ten routing blocks, 28 searchable layers, 55 routes."""
    space = create_space("densenas", resolution=16, width=0.25, classes=10, layers=1, connections=2)
    return flops_table(space)


@pytest.fixture(scope="session")
def tiny_dense_data() -> datasets.Data:
    return datasets.load("digits", 16, batch_size=32, data_seed=0, limit=300)


def all_routes(space: DenseNas) -> list[list[int]]:
    """Every route of a densenas space by brute force (the blocks after the stem, in
    order, ending at the last): what the route maths are tested against."""

    def walk(at: int) -> list[list[int]]:
        if at == len(space.blocks) - 1:
            return [[]]
        return [[t, *rest] for t in space.outputs(at) for rest in walk(t)]

    return walk(0)
