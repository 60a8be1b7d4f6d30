"""Channel choices sharing one max-width unit (core/sliced.py): a view computes what a
unit of its own width with the sliced weights computes, parameters stay flat in the
number of widths, and a narrow view trains only its slice."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from profiler.blocks import ShuffleUnit, build_module
from profiler.ops import OpSpec
from searchers.core.init import share_candidate_init, zero_residual_bn
from searchers.core.mixed import MixedOp, Single
from searchers.core.sliced import SlicedUnit, build_candidates, mid_of
from searchers.core.supernet import ChainSupernet
from searchers.spaces import create_space


def _widths(kind: str, s: int, mids: tuple[int, ...]) -> list[OpSpec]:
    """One op per mid width (the default width written as mid=0)."""
    cin, cout = (16, 16) if s == 1 else (8, 16)
    extra = {"k": 5} if kind == "shuffle" else {}
    base = OpSpec.make(kind, (2, cin, 8, 8), cin=cin, cout=cout, s=s, **extra)
    return [base.replace(mid=0 if m == cout // 2 else m) for m in mids]


def _randomise(module: nn.Module) -> None:
    """Non-trivial BN affine and running statistics, so eval mode tests the slicing."""
    torch.manual_seed(1)
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            for t in (m.weight, m.bias, m.running_mean):
                t.data.normal_()
            m.running_var.data.uniform_(0.5, 2.0)  # type: ignore[union-attr]


def _sliced_copy(op: OpSpec, unit: nn.Module) -> nn.Module:
    """A plain unit of `op`'s width holding the first channels of `unit`'s weights."""
    plain = build_module(op)
    shared = unit.state_dict()
    with torch.no_grad():
        for name, t in plain.state_dict().items():
            t.copy_(shared[name][tuple(slice(0, d) for d in t.shape)])
    return plain


@pytest.mark.parametrize("kind", ["shuffle", "xception"])
@pytest.mark.parametrize("s", [1, 2])
@pytest.mark.parametrize("train", [False, True])
def test_views_compute_units_of_their_width(kind: str, s: int, train: bool) -> None:
    ops = _widths(kind, s, (3, 8, 16))
    views = build_candidates(ops)
    assert all(isinstance(v, SlicedUnit) for v in views)
    unit = views[0].unit  # type: ignore[union-attr]
    assert all(v.unit is unit for v in views)  # type: ignore[union-attr]
    assert mid_of(ops[2]) == 16 and unit.main[0][0].out_channels == (16 if kind == "shuffle" else 8)
    _randomise(unit)
    x = torch.randn(2, *ops[0].shape[1:])
    for v in views:
        v.train(train)
    assert torch.equal(views[2](x), unit(x))  # the widest view is the unit itself
    for op, view in zip(ops[:2], views[:2], strict=True):
        plain = _sliced_copy(op, unit).train(train)
        assert torch.allclose(view(x), plain(x), atol=1e-5)
        bn, mid = plain.main[1][1], mid_of(op)  # type: ignore[index]
        # the shared running statistics move through the slices as the plain unit's do
        assert torch.allclose(unit.main[1][1].running_mean[:mid], bn.running_mean, atol=1e-6)


def test_other_ops_and_single_widths_are_built_as_before() -> None:
    ops = [*_widths("shuffle", 1, (8,)), *_widths("xception", 1, (8,))]
    ops.append(OpSpec.make("skip", (2, 16, 8, 8), cin=16, cout=16, s=1))
    built = build_candidates(ops)
    assert [type(m) for m in built] == [ShuffleUnit, ShuffleUnit, nn.Identity]
    assert not any(m.training for m in built)  # eval, as build_module gives them
    assert not build_candidates(_widths("shuffle", 1, (3, 8)))[0].training


def _channel_layer(channels: int) -> tuple[MixedOp, list[OpSpec]]:
    space = create_space("spos-shufflenet", resolution=32, width=0.5, classes=10, channels=channels)
    layer = space.layers()[1]
    return MixedOp(layer, space.candidates), [c.op for c in layer.legal if c.op]


def test_parameters_are_flat_in_the_number_of_widths() -> None:
    counts = []
    for n in (2, 10):
        mixed, ops = _channel_layer(n)
        assert len(mixed.candidates) == 4 * n
        widest = [build_module(op) for op in ops if op.num("mid") == op.num("cout")]
        assert len(widest) == 4  # one per (kind, k): scale 2.0
        counts.append(sum(p.numel() for p in mixed.parameters()))
        assert counts[-1] == sum(p.numel() for m in widest for p in m.parameters())
    assert counts[0] == counts[1]


def test_a_narrow_view_trains_only_its_slice() -> None:
    views = build_candidates(_widths("shuffle", 1, (3, 16)))
    unit = views[1].unit  # type: ignore[union-attr]
    views[0].train()(torch.randn(2, 16, 8, 8)).square().sum().backward()
    first, dw, last = (unit.main[i][0].weight.grad for i in range(3))
    assert first[:3].abs().sum() > 0 and not first[3:].any()
    assert dw[:3].abs().sum() > 0 and not dw[3:].any()
    assert last[:, :3].abs().sum() > 0 and not last[:, 3:].any()
    assert not unit.main[0][1].weight.grad[3:].any()


def test_frozen_single_path_and_init_leave_the_views_sound() -> None:
    mixed, ops = _channel_layer(4)
    mixed.train()
    x = torch.randn(2, *ops[0].shape[1:], requires_grad=True)
    mixed(x, Single(5, learn=False)).sum().backward()
    assert x.grad is not None and all(p.grad is None for p in mixed.parameters())
    assert share_candidate_init(mixed.candidates) > 0  # must not raise on views
    assert zero_residual_bn(mixed.candidates) == 0
    units = {id(v.unit): v.unit for v in mixed.candidates}  # type: ignore[union-attr]
    k3, k5 = (u.main[1][0].weight for u in list(units.values())[:2])
    assert torch.equal(k5[:, :, 1:4, 1:4], k3) and not k5[:, :, 0].any()  # 3x3 inside 5x5


def test_chain_supernet_with_channel_search_runs_a_single_path() -> None:
    space = create_space("spos-shufflenet", resolution=32, width=0.5, classes=10, channels=4)
    net = ChainSupernet(space)
    assert net.mask().shape == (20, 16) and bool(net.mask().all())
    gen = torch.Generator().manual_seed(0)
    columns = torch.randint(0, 16, (20,), generator=gen).tolist()
    y = net(torch.randn(2, 3, 32, 32), net.single_plan(columns))
    assert tuple(y.shape) == (2, 10)
    y.logsumexp(1).sum().backward()
    assert all(p.grad is not None for p in net.stem.parameters())
