"""Random training configurations: valid, distinct, seeded, covering the spaces."""

from __future__ import annotations

import pytest

from profiler.sampling import DRAWS, sample_ops
from searchers.spaces import create_space


@pytest.mark.parametrize("kind", sorted(DRAWS))
def test_samples_are_valid_distinct_and_seeded(kind: str) -> None:
    ops = sample_ops(kind, 60, seed=3)
    assert len(ops) == 60 == len({op.key for op in ops})
    assert all(op.kind == kind or (kind == "shuffle" and op.kind == "xception") for op in ops)
    assert [op.key for op in sample_ops(kind, 60, seed=3)] == [op.key for op in ops]
    assert [op.key for op in sample_ops(kind, 60, seed=4)] != [op.key for op in ops]


def test_priors_cover_the_fbnet_space() -> None:
    ops = sample_ops("mbconv", 3000, seed=0)
    space = create_space("fbnet", resolution=224)
    seen = {(op.num("k"), op.num("e"), op.num("g"), op.num("s")) for op in ops}
    blocks = [c.op for layer in space.layers() for c in layer.legal if c.op is not None]
    needed = {
        (b.num("k"), b.num("e"), b.num("g"), b.num("s")) for b in blocks if b.kind == "mbconv"
    }
    assert needed <= seen  # every block shape of the space is in the prior
    sides = {op.shape[2] for op in ops}
    assert {112, 56, 28, 14, 7} <= sides


def test_bad_requests() -> None:
    with pytest.raises(ValueError, match=r"^kind: no sampler for 'head'"):
        sample_ops("head", 10)
    with pytest.raises(ValueError, match=r"^n: between 1 and 100000"):
        sample_ops("mbconv", 0)
