"""Random training configurations: valid, distinct, seeded, covering the spaces."""

from __future__ import annotations

import pytest

from profiler.ops import OpSpec
from profiler.sampling import DRAWS, KERNEL_DRAWS, MOVES, SIDES, refine_ops, sample_ops
from searchers.spaces import create_space


@pytest.mark.parametrize("kind", sorted(DRAWS))
def test_samples_are_valid_distinct_and_seeded(kind: str) -> None:
    ops = sample_ops(kind, 60, seed=3)
    assert len(ops) == 60 == len({op.key for op in ops})
    kinds = {"shuffle": {"shuffle", "xception"}}.get(kind, {kind})
    assert {op.kind for op in ops} <= kinds
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


@pytest.mark.parametrize("kind", sorted(KERNEL_DRAWS))
def test_kernel_samples_are_valid_distinct_seeded_convs(kind: str) -> None:
    ops = sample_ops(kind, 60, seed=3, kernels=True)
    assert len(ops) == 60 == len({op.key for op in ops}) and {op.kind for op in ops} == {"conv"}
    assert ops == sample_ops(kind, 60, seed=3, kernels=True)


def test_only_kinds_that_decompose_have_kernel_samples() -> None:
    with pytest.raises(ValueError, match="kind: no kernel sampler for 'shuffle'"):
        sample_ops("shuffle", 10, kernels=True)


def test_mbconv_kernels_are_the_convolutions_of_mbconv_blocks() -> None:
    ops = sample_ops("mbconv", 600, seed=1, kernels=True)
    dw = [op for op in ops if op.num("g") == op.num("cin") == op.num("cout") > 2]
    pw = [op for op in ops if op.num("k") == 1]
    assert len(dw) + len(pw) == len(ops)  # nothing else: no dense k x k convs
    assert {op.num("k") for op in dw} == {3, 5, 7} and {op.num("s") for op in dw} == {1, 2}
    assert {op.num("g") for op in pw} == {1, 2} and {op.num("s") for op in pw} == {1}
    assert "none" in {op.p["act"] for op in pw}  # the projections: no activation
    assert max(op.num("cin") for op in dw) > 640  # expanded widths, beyond the block prior


def test_bad_requests() -> None:
    with pytest.raises(ValueError, match=r"^kind: no sampler for 'head'"):
        sample_ops("head", 10)
    with pytest.raises(ValueError, match=r"^n: between 1 and 100000"):
        sample_ops("mbconv", 0)


def changed(a: OpSpec, b: OpSpec) -> set[str]:
    """The parameters (and 'side', 'dtype') in which two ops of a kind differ."""
    out = {name for name, value in a.params if b.p.get(name) != value}
    out |= {"side"} if a.shape[2:] != b.shape[2:] else set()
    return out | ({"dtype"} if a.dtype != b.dtype else set())


def near(op: OpSpec, w: OpSpec) -> bool:
    """`op` is `w` with 1-2 parameters moved as refine_ops moves them."""
    moved = changed(op, w)
    if op.kind != w.kind or not 1 <= len(moved) <= 2:
        return False
    for name in moved & {"cin", "cout", "c"}:  # ±25% or one step, on the multiple-of-8 grid
        a, b = op.num(name), w.num(name)
        if a % 8 or not (abs(a - b) == 8 or 0.75 * b - 4 <= a <= 1.25 * b + 4):
            return False
    i = SIDES.index(w.shape[2])
    return "side" not in moved or op.shape[2] in SIDES[max(0, i - 1) : i + 2]


@pytest.mark.parametrize("kind", sorted(set(DRAWS) & set(MOVES)))  # kinds a predictor has
def test_refined_ops_are_new_valid_and_near_the_worst(kind: str) -> None:
    worst = sample_ops(kind, 6, seed=11)
    ops = refine_ops(kind, worst, 80, seed=2)
    assert len(ops) == 80 == len({op.key for op in ops})
    assert not {op.key for op in ops} & {op.key for op in worst}
    for op in ops:
        assert OpSpec.from_key(op.key) == op  # valid and canonical
        assert op.kind in ({"shuffle", "xception"} if kind == "shuffle" else {kind})
        assert any(near(op, w) for w in worst), f"{op.key} is near no worst op"


def test_refinement_is_seeded_and_keeps_or_sets_the_dtype() -> None:
    worst = sample_ops("mbconv", 5, seed=1, dtype="float16")
    ops = refine_ops("mbconv", worst, 40, seed=3)
    assert [op.key for op in refine_ops("mbconv", worst, 40, seed=3)] == [op.key for op in ops]
    assert [op.key for op in refine_ops("mbconv", worst, 40, seed=4)] != [op.key for op in ops]
    assert {op.dtype for op in ops} == {"float16"}
    int8 = refine_ops("mbconv", worst, 40, seed=3, dtype="int8")
    assert {op.dtype for op in int8} == {"int8"}
    assert not {op.key for op in int8} & {w.replace(dtype="int8").key for w in worst}


def test_samples_are_spread_by_weight_or_evenly() -> None:
    worst = [  # three, 3 parameters apart: each new op is near exactly one
        OpSpec.make("conv", (1, c, h, h), cin=c, cout=c * 3 // 2, k=3, s=1)
        for c, h in ((16, 1), (128, 16), (512, 112))
    ]

    def spread(ops: list[OpSpec]) -> list[int]:
        return [sum(near(op, w) for op in ops) for w in worst]

    assert spread(refine_ops("conv", worst, 30, seed=0)) == [10, 10, 10]
    weighted = refine_ops("conv", worst, 30, seed=0, weights=[0.5, 0.0, 0.25])
    assert spread(weighted) == [20, 0, 10]
    assert spread(refine_ops("conv", worst, 2)) == [1, 1, 0]  # fewer than seeds: worst first


def test_a_used_up_neighbourhood_yields_fewer_ops() -> None:
    [tiny] = sample_ops("sep_conv", 1, seed=2)
    ops = refine_ops("sep_conv", [tiny], 5000)
    assert 10 < len(ops) < 5000 and tiny.key not in {op.key for op in ops}


def test_bad_refine_requests() -> None:
    worst = sample_ops("mbconv", 2)
    with pytest.raises(ValueError, match=r"^kind: cannot refine 'head'"):
        refine_ops("head", worst, 10)
    with pytest.raises(ValueError, match=r"^worst\[0\]: a mbconv op, not one of kind 'conv'"):
        refine_ops("conv", worst, 10)
    with pytest.raises(ValueError, match=r"^worst: give at least one op"):
        refine_ops("mbconv", [], 10)
    with pytest.raises(ValueError, match=r"^n: between 1 and 100000"):
        refine_ops("mbconv", worst, 0)
    with pytest.raises(ValueError, match=r"^weights: one finite, non-negative weight"):
        refine_ops("mbconv", worst, 10, weights=[1.0])
    with pytest.raises(ValueError, match=r"^weights: one finite, non-negative weight"):
        refine_ops("mbconv", worst, 10, weights=[1.0, float("nan")])
