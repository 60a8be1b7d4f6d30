"""features(): the analytic counts agree with torch's flop counter and the built modules."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from torch.utils.flop_counter import FlopCounterMode

from profiler.blocks import build
from profiler.features import features
from profiler.ops import OpSpec
from tests.profiler.strategies import EXAMPLES, mk, valid_specs


def measured_flops(spec: OpSpec) -> int:
    """FLOPs torch counts for one forward pass of the float32 version of the block."""
    module, x = build(spec.replace(dtype="float32"))
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        module(x)
    return counter.get_total_flops()


def check_against_torch(spec: OpSpec) -> None:
    f = features(spec)
    measured = measured_flops(spec)
    if measured == 0:
        assert f.flops == 0, spec.key
    else:
        assert f.flops == pytest.approx(measured, rel=0.01), spec.key

    module, x = build(spec)
    assert f.params == sum(p.numel() for p in module.parameters()), spec.key
    assert f.weight_bytes == f.params * spec.itemsize
    assert f.flops == 2 * f.macs
    if spec.dtype == "float32":
        with torch.inference_mode():
            y = module(x)
        assert f.input_bytes == x.numel() * x.element_size()
        assert f.output_bytes == y.numel() * y.element_size()
    moved = f.input_bytes + f.output_bytes + f.weight_bytes
    assert moved > 0
    assert math.isclose(f.arithmetic_intensity, f.flops / moved)


@pytest.mark.parametrize("spec", EXAMPLES, ids=str)
def test_examples_match_torch(spec: OpSpec) -> None:
    check_against_torch(spec)


@settings(max_examples=40, deadline=None)
@given(valid_specs(dtypes=("float32",)))
def test_random_specs_match_torch(spec: OpSpec) -> None:
    check_against_torch(spec)


@settings(max_examples=15, deadline=None)
@given(valid_specs(dtypes=("float16", "bfloat16", "int8")))
def test_other_dtypes_scale_bytes_not_counts(spec: OpSpec) -> None:
    f, f32 = features(spec), features(spec.replace(dtype="float32"))
    assert (f.macs, f.flops, f.params) == (f32.macs, f32.flops, f32.params)
    size = {"float16": 2, "bfloat16": 2, "int8": 1}[spec.dtype]
    assert f.input_bytes * 4 == f32.input_bytes * size
    assert f.output_bytes * 4 == f32.output_bytes * size
    assert f.weight_bytes * 4 == f32.weight_bytes * size
    if spec.dtype != "int8":
        module, x = build(spec)
        assert f.input_bytes == x.numel() * x.element_size()
        assert f.weight_bytes == sum(p.numel() * p.element_size() for p in module.parameters())


def test_known_values() -> None:
    # 3x3 conv, 3 -> 16 channels, stride 2 on 16x16: 8x8 outputs, BN scale + shift
    f = features(mk("conv", 3, 16, cin=3, cout=16, k=3, s=2))
    assert f.macs == 8 * 8 * 16 * 3 * 9
    assert f.params == 16 * 3 * 9 + 2 * 16
    assert (f.input_bytes, f.output_bytes) == (3 * 16 * 16 * 4, 16 * 8 * 8 * 4)
    # linear 32 -> 10 on a batch of 3: weights + bias
    f = features(mk("linear", 32, 1, n=3, cin=32, cout=10))
    assert (f.macs, f.params, f.output_bytes) == (3 * 32 * 10, 32 * 10 + 10, 3 * 10 * 4)
    # identity, zero and pooling have no weights and no multiply-accumulates
    for spec in (
        mk("skip", 8, 7, cin=8, cout=8, s=1),
        mk("zero", 4, c=4, s=2),
        mk("pool", 4, c=4, k=3, mode="avg", s=1),
    ):
        f = features(spec)
        assert (f.macs, f.flops, f.params, f.weight_bytes) == (0, 0, 0, 0)
        assert f.arithmetic_intensity == 0.0
    assert set(features(EXAMPLES[0]).to_dict()) == {
        "macs",
        "flops",
        "params",
        "input_bytes",
        "output_bytes",
        "weight_bytes",
        "arithmetic_intensity",
    }
