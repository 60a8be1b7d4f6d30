"""blocks.build: every kind builds, runs, and returns `spec.out_shape` in the spec's dtype."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from torch.utils.flop_counter import FlopCounterMode

from profiler._kinds import KINDS
from profiler.blocks import build, example_input
from profiler.decompose import conv_ops, conv_slots
from profiler.features import features, kernels
from profiler.ops import OpSpec
from tests.profiler.strategies import EXAMPLES, mk, valid_specs

TORCH_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16}


def run(spec: OpSpec, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    module, x = build(spec, seed)
    with torch.inference_mode():
        return x, module(x)


def test_every_kind_has_an_example() -> None:
    assert {spec.kind for spec in EXAMPLES} == set(KINDS)


@pytest.mark.parametrize("spec", EXAMPLES, ids=str)
def test_output_shape(spec: OpSpec) -> None:
    module, x = build(spec)
    assert not module.training
    assert tuple(x.shape) == spec.shape
    assert x.dtype == torch.float32
    with torch.inference_mode():
        y = module(x)
    assert tuple(y.shape) == spec.out_shape
    assert y.dtype == torch.float32
    assert torch.isfinite(y).all()


@settings(max_examples=30, deadline=None)
@given(valid_specs(dtypes=("float32",)))
def test_output_shape_of_random_specs(spec: OpSpec) -> None:
    _, y = run(spec)
    assert tuple(y.shape) == spec.out_shape


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("spec", [EXAMPLES[0], EXAMPLES[5], EXAMPLES[-1]], ids=str)
def test_half_precision_modules_and_inputs(spec: OpSpec, dtype: str) -> None:
    module, x = build(spec.replace(dtype=dtype))
    assert x.dtype == TORCH_DTYPES[dtype]
    params = list(module.parameters())
    assert params
    assert all(p.dtype == TORCH_DTYPES[dtype] for p in params)
    assert all(b.dtype == TORCH_DTYPES[dtype] for b in module.buffers() if b.is_floating_point())


def test_bfloat16_conv_runs_on_cpu() -> None:
    spec = mk("conv", 8, 9, dtype="bfloat16", cin=8, cout=16, k=3, s=2)
    torch.manual_seed(0)
    x, y = run(spec)
    assert y.dtype == torch.bfloat16
    assert tuple(y.shape) == spec.out_shape == (1, 16, 5, 5)
    torch.manual_seed(0)  # the same weights, in float32
    x32, y32 = run(spec.replace(dtype="float32"))
    assert torch.equal(x32.to(torch.bfloat16), x)
    assert torch.allclose(y.float(), y32, atol=0.05, rtol=0.05)


def test_float16_conv_runs_on_cpu_when_supported() -> None:
    spec = mk("conv", 8, 9, dtype="float16", cin=8, cout=16, k=3, s=1)
    try:
        _, y = run(spec)
    except (RuntimeError, NotImplementedError) as exc:
        pytest.skip(f"float16 conv is not supported on this CPU build: {exc}")
    assert y.dtype == torch.float16
    assert tuple(y.shape) == spec.out_shape


def test_int8_specs_build_float32() -> None:
    module, x = build(EXAMPLES[0].replace(dtype="int8"))
    assert x.dtype == torch.float32
    assert all(p.dtype == torch.float32 for p in module.parameters())


@pytest.mark.parametrize("spec", [EXAMPLES[0], EXAMPLES[-1]], ids=str)
def test_example_input_is_seeded(spec: OpSpec) -> None:
    a, b, c = example_input(spec, 0), example_input(spec, 0), example_input(spec, 1)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert torch.equal(build(spec, seed=1)[1], c)
    assert torch.equal(build(spec)[1], a)
    assert a.std() > 0.5  # random normal values, not a constant


def _pair(spec: OpSpec, **changes: object) -> tuple[torch.nn.Module, torch.nn.Module]:
    """Two modules with identical initial weights, the second built from spec + changes."""
    torch.manual_seed(0)
    first = build(spec)[0]
    torch.manual_seed(0)
    return first, build(spec.replace(**changes))[0]


def test_residual_adds_the_input() -> None:
    spec = mk("mbconv", 16, cin=16, cout=16, e=3, k=5, s=1, res=1)
    with_res, without = _pair(spec, res=0)
    x = example_input(spec)
    with torch.inference_mode():
        assert torch.allclose(with_res(x), x + without(x), atol=1e-6)
        assert not torch.allclose(with_res(x), without(x))


def test_identity_zero_and_pool_semantics() -> None:
    x, y = run(mk("skip", 8, 7, cin=8, cout=8, s=1))
    assert torch.equal(x, y)
    _, y = run(mk("zero", 4, 9, c=4, s=2))
    assert tuple(y.shape) == (1, 4, 5, 5)
    assert not y.any()
    x, y = run(mk("pool", 5, 9, c=5, k=1, mode="max", s=1))
    assert torch.equal(x, y)
    x, y = run(mk("pool", 3, 9, c=3, k=3, mode="max", s=1))
    assert (y >= x).all()
    # avg excludes the padding: the corner averages the 2x2 window it covers
    x, y = run(mk("pool", 3, 9, c=3, k=3, mode="avg", s=1))
    assert torch.allclose(y[:, :, 0, 0], x[:, :, :2, :2].mean((2, 3)))


def test_stride_one_shuffle_passes_half_the_channels_through() -> None:
    x, y = run(mk("shuffle", 16, cin=16, cout=16, k=3, s=1))
    assert torch.equal(y[:, :8], x[:, 0::2])  # even channels go straight through
    x, y = run(mk("xception", 16, cin=16, cout=16, s=1))
    assert torch.equal(y[:, :8], x[:, 0::2])


def test_head_without_cmid_is_pool_then_linear() -> None:
    spec = mk("head", 16, 7, n=2, cin=16, cout=10)
    module, x = build(spec)
    with torch.inference_mode():
        expected = module.fc(x.mean((2, 3)))
        assert torch.allclose(module(x), expected)


def test_factorized_reduce_reads_two_offset_grids() -> None:
    spec = mk("skip", 4, 6, cin=4, cout=8, s=2)
    module, x = build(spec)
    with torch.inference_mode():
        y = module(x)
        for (i, j), half in (((0, 0), 0), ((1, 1), 1)):
            x2 = x.clone()
            x2[:, :, i, j] = 10.0  # positive, so it survives the leading ReLU
            changed = (module(x2) - y).abs().sum((0, 2, 3)) > 0
            assert changed.tolist() == [half == 0] * 4 + [half == 1] * 4


def test_pw_keeps_the_1x1_expansion_at_e1() -> None:
    """FBNet's IRF / HW-NAS-Bench's ConvBlock: a 1x1 conv + BN + ReLU even at e=1."""
    plain = mk("mbconv", 16, cin=16, cout=24, e=1, k=3, s=1, act="relu")
    pw = plain.replace(pw=1)
    without, with_pw = build(plain)[0], build(pw)[0]
    assert isinstance(without.expand, torch.nn.Identity)
    conv = with_pw.expand[0]
    assert isinstance(conv, torch.nn.Conv2d) and conv.kernel_size == (1, 1)
    assert (conv.in_channels, conv.out_channels, conv.groups) == (16, 16, 1)
    assert isinstance(with_pw.expand[2], torch.nn.ReLU)
    # features and the kernel decomposition count it: 16 x 16 weights + BN's 2 x 16
    added = 16 * 16 + 2 * 16
    assert features(pw).params - features(plain).params == added
    assert features(pw).params == sum(p.numel() for p in with_pw.parameters())
    assert features(pw).macs - features(plain).macs == 8 * 8 * 16 * 16  # (H, W, cin, mid)
    assert [c.kernel for c in kernels(pw)] == ["pw", "dw", "pw"]
    assert conv_slots(plain)[0] is None
    expand = conv_slots(pw)[0]
    assert expand is not None and expand.p["act"] == "relu" and expand.num("cout") == 16
    assert len(conv_ops(pw)) == 3
    counter = FlopCounterMode(display=False)
    x = example_input(pw)
    with torch.inference_mode(), counter:
        with_pw(x)
    assert counter.get_total_flops() == features(pw).flops
