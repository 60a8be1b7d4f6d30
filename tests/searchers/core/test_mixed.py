"""Mixed ops by mode: binary-gate gradients (ProxylessNAS's formula), hard Gumbel, partial
channels, and the memory each mode keeps."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from searchers.core.memory import step_memory
from searchers.core.mixed import Gates, HardGumbel, MixedOp, Partial, Paths, Single, Weighted
from searchers.core.supernet import ChainSupernet
from searchers.spaces import SearchSpace, create_space


@pytest.fixture(scope="module")
def layer_and_input(small_space: SearchSpace) -> tuple[MixedOp, torch.Tensor]:
    torch.manual_seed(0)
    layer = small_space.layers()[5]  # a residual layer: 6 MBConvs + zero
    mixed = MixedOp(layer, small_space.candidates).eval()
    x = torch.randn(2, *layer.legal[0].op.shape[1:])  # type: ignore[union-attr]
    return mixed, x


def test_single_and_weighted_modes(layer_and_input: tuple[MixedOp, torch.Tensor]) -> None:
    mixed, x = layer_and_input
    assert torch.allclose(mixed(x, Single(3)), mixed.candidates[3](x))
    w = torch.softmax(torch.randn(len(mixed.candidates)), 0)
    want = sum(wi * op(x) for wi, op in zip(w, mixed.candidates, strict=True))
    assert torch.allclose(mixed(x, Weighted(w)), want)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="unknown mode"):
        mixed(x, "single")  # type: ignore[arg-type]


def test_binary_gate_gradient_matches_the_formula(
    layer_and_input: tuple[MixedOp, torch.Tensor],
) -> None:
    mixed, x = layer_and_input
    n = len(mixed.columns)
    alpha = torch.randn(n, requires_grad=True)
    w = torch.randn_like(mixed.candidates[0](x))  # L = <w, out>
    p = F.softmax(alpha, 0)
    sampled = 2
    gates = F.one_hot(torch.tensor(sampled), n).float() + p - p.detach()
    out = mixed(x, Gates(tuple(range(n)), sampled, gates))
    assert torch.allclose(out, mixed.candidates[sampled](x))  # only the sampled path's value
    (out * w).sum().backward()
    with torch.no_grad():
        dg = torch.stack([(op(x) * w).sum() for op in mixed.candidates])  # dL/dg_j
        p = F.softmax(alpha, 0)
        want = torch.stack(
            [sum(dg[j] * p[j] * (float(i == j) - p[i]) for j in range(n)) for i in range(n)]
        )
    assert alpha.grad is not None
    assert torch.allclose(alpha.grad, want, rtol=1e-4, atol=1e-6)
    assert not torch.allclose(want, torch.zeros_like(want))


def test_gated_path_passes_the_input_gradient_of_the_sampled_path(
    layer_and_input: tuple[MixedOp, torch.Tensor],
) -> None:
    mixed, x = layer_and_input
    x1 = x.clone().requires_grad_()
    x2 = x.clone().requires_grad_()
    n = len(mixed.columns)
    mixed(x1, Gates(tuple(range(n)), 1, F.one_hot(torch.tensor(1), n).float())).sum().backward()
    mixed.candidates[1](x2).sum().backward()
    assert x1.grad is not None and x2.grad is not None
    assert torch.allclose(x1.grad, x2.grad)


def test_hard_gumbel_runs_one_path_and_sends_its_gradient(
    layer_and_input: tuple[MixedOp, torch.Tensor],
) -> None:
    mixed, x = layer_and_input
    n = len(mixed.columns)
    logits = torch.randn(n, requires_grad=True)
    soft = torch.softmax(logits, 0)
    w = F.one_hot(torch.tensor(4), n).float() + soft - soft.detach()
    out = mixed(x, HardGumbel(4, w))
    assert torch.allclose(out, mixed.candidates[4](x))
    out.sum().backward()
    assert logits.grad is not None and bool(logits.grad.abs().sum() > 0)


def _memory(space: SearchSpace, k: int, weighted: bool, x: torch.Tensor) -> int:
    torch.manual_seed(0)
    net = ChainSupernet(space).keep_first(k)
    if weighted:
        plan = [Weighted(torch.full((len(m.candidates),), 1 / k)) for m in net.mixed()]
    else:
        plan = [Single(len(m.candidates) - 1) for m in net.mixed()]  # the widest kept

    def step() -> None:
        net(x, plan).sum().backward()

    return step_memory(step, net)


def test_single_path_memory_is_flat_in_the_candidates_weighted_sum_grows(
    small_space: SearchSpace,
) -> None:
    x = torch.randn(8, 3, 16, 16)
    single = {k: _memory(small_space, k, False, x) for k in (2, 6)}
    weighted = {k: _memory(small_space, k, True, x) for k in (2, 6)}
    assert single[6] <= 1.3 * single[2], single  # one path's activations, whatever k
    assert weighted[6] >= 2.0 * weighted[2], weighted  # every path's activations
    assert weighted[6] > 2.0 * single[6]


def test_partial_channels_keep_the_shape_and_mix_both_parts() -> None:
    space = create_space("darts", resolution=8, classes=10, C=8, cells=3)
    layer = space.layers()[0]
    mixed = MixedOp(layer, space.candidates, channels_div=2).eval()
    x = torch.randn(2, *layer.legal[0].op.shape[1:])  # type: ignore[union-attr]
    w = torch.softmax(torch.randn(len(mixed.candidates)), 0)
    out = mixed(x, Partial(w, 2))
    assert out.shape == x.shape  # 1/2 through the ops, 1/2 bypassed, then shuffled
    assert torch.allclose(out[:, 1::2], x[:, 4:])  # the bypassed half, interleaved
    with pytest.raises(ValueError, match="built for 1/2"):
        mixed(x, Partial(w, 4))


def test_paths_runs_the_mean_of_the_kept_candidates_and_one_path_is_single(
    layer_and_input: tuple[MixedOp, torch.Tensor],
) -> None:
    mixed, x = layer_and_input
    kept = (0, 2, 5)
    want = sum(mixed.candidates[i](x) for i in kept) / 3  # the mean, not the paper's sum
    out = mixed(x, Paths(kept))
    assert torch.allclose(out, want)
    assert not torch.allclose(out, sum(mixed.candidates[i](x) for i in kept))
    for i in range(len(mixed.candidates)):
        assert torch.equal(mixed(x, Paths((i,))), mixed(x, Single(i)))  # bit for bit
    with pytest.raises(ValueError, match="at least one candidate"):
        mixed(x, Paths(()))
