"""A block's convolutions as standalone conv ops: the same modules, on the same inputs."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from profiler.blocks import build, build_module
from profiler.decompose import SLOTS, can_decompose, conv_ops, conv_slots
from profiler.ops import OpSpec
from profiler.sampling import sample_ops


def convs_seen(spec: OpSpec) -> list[tuple[int, int, int, int, int, tuple[int, ...]]]:
    """(cin, cout, k, stride, groups, input shape) of every conv the block runs, in order,
    leaving out SE's two 1x1 convs (they run on a 1x1 map)."""
    module, x = build(spec)
    seen: list[tuple[int, int, int, int, int, tuple[int, ...]]] = []

    def hook(m: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        assert isinstance(m, nn.Conv2d)
        k, s = m.kernel_size[0], m.stride[0]
        seen.append((m.in_channels, m.out_channels, k, s, m.groups, tuple(args[0].shape)))

    for name, m in module.named_modules():
        if isinstance(m, nn.Conv2d) and not name.startswith("se."):
            m.register_forward_pre_hook(hook)
    with torch.no_grad():
        module(x)
    return seen


@pytest.mark.parametrize("spec", sample_ops("mbconv", 40, seed=8), ids=lambda s: s.key)
def test_mbconv_kernels_are_the_blocks_own_convs(spec: OpSpec) -> None:
    ops = conv_ops(spec)
    expected = [
        (op.num("cin"), op.num("cout"), op.num("k"), op.num("s"), op.num("g"), op.shape)
        for op in ops
    ]
    assert convs_seen(spec) == expected
    assert len(conv_slots(spec)) == SLOTS["mbconv"]
    acts = [op.p["act"] for op in ops]
    assert acts[-1] == "none" and set(acts[:-1]) == {spec.p["act"]}  # project: no activation


def test_a_kernel_is_built_as_a_conv_op_of_the_same_module() -> None:
    spec = OpSpec.make("mbconv", (1, 16, 28, 28), cin=16, cout=24, e=6, k=5, s=2, act="hswish")
    expand, dw, project = conv_ops(spec)
    assert expand.out_shape == (1, 96, 28, 28) and expand.p["act"] == "hswish"
    assert dw.out_shape == (1, 96, 14, 14) and project.shape == dw.out_shape
    assert isinstance(build_module(dw)[0], nn.Conv2d) and build_module(dw)[0].groups == 96
    no_expand = OpSpec.make("mbconv", (1, 16, 8, 8), cin=16, cout=16, e=1, k=3, s=1)
    assert conv_slots(no_expand)[0] is None and len(conv_ops(no_expand)) == 2


def test_kinds_without_a_decomposition() -> None:
    assert can_decompose("mbconv") and not can_decompose("shuffle")
    with pytest.raises(ValueError, match=r"^kind: no kernel decomposition for 'shuffle'"):
        conv_slots(sample_ops("shuffle", 1)[0])
