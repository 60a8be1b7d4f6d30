"""The supernet's mixed ops: binary-gate gradients (ProxylessNAS's formula) and memory."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from searchers.base import SearchConfig
from searchers.data import Data
from searchers.fbnet import FBNet
from searchers.latency import LatencyTable
from searchers.losses import HardTarget
from searchers.memory import step_memory
from searchers.proxyless import ProxylessNAS
from searchers.spaces import SearchSpace
from searchers.supernet import MixedOp, SuperNet


def test_binary_gate_gradient_matches_the_formula(small_space: SearchSpace) -> None:
    torch.manual_seed(0)
    layer = small_space.layers()[5]  # a residual layer: 6 MBConvs + zero
    mixed = MixedOp(layer, small_space.candidates).eval()
    n = len(mixed.columns)
    alpha = torch.randn(n, dtype=torch.float32, requires_grad=True)
    x = torch.randn(2, *layer.legal[0].op.shape[1:])  # type: ignore[union-attr]
    w = torch.randn_like(mixed.candidates[0](x))  # L = <w, out>
    p = F.softmax(alpha, 0)
    hot = 2
    mixed.paths, mixed.hot = list(range(n)), hot
    mixed.gates = F.one_hot(torch.tensor(hot), n).float() + p - p.detach()
    out = mixed(x)
    assert torch.allclose(out, mixed.candidates[hot](x))  # only the hot path's value
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


def test_gated_path_passes_the_input_gradient_of_the_hot_path(small_space: SearchSpace) -> None:
    layer = small_space.layers()[5]
    mixed = MixedOp(layer, small_space.candidates).eval()
    x1 = torch.randn(2, *layer.legal[0].op.shape[1:], requires_grad=True)  # type: ignore[union-attr]
    x2 = x1.detach().clone().requires_grad_()
    mixed.paths, mixed.hot = list(range(len(mixed.columns))), 1
    mixed.gates = F.one_hot(torch.tensor(1), len(mixed.columns)).float()
    mixed(x1).sum().backward()
    mixed.candidates[1](x2).sum().backward()
    assert x1.grad is not None and x2.grad is not None
    assert torch.allclose(x1.grad, x2.grad)


def _weight_step_memory(cls: type, table: LatencyTable, data: Data, k: int) -> int:
    searcher = cls(table, data, SearchConfig(epochs=1), HardTarget(1.0))
    searcher.net = searcher.net.keep_first(k)
    searcher.w_opt = torch.optim.SGD(searcher.net.weight_parameters(), lr=0.01)
    x, y = next(iter(data.train))
    torch.manual_seed(1)
    return step_memory(lambda: searcher.weight_step(x, y, False), searcher.net)


def test_proxyless_weight_step_memory_does_not_grow_with_candidates(
    small_table: LatencyTable, small_data: Data
) -> None:
    two = _weight_step_memory(ProxylessNAS, small_table, small_data, 2)
    seven = _weight_step_memory(ProxylessNAS, small_table, small_data, 7)
    all_two = _weight_step_memory(FBNet, small_table, small_data, 2)
    all_seven = _weight_step_memory(FBNet, small_table, small_data, 7)
    assert seven <= 1.3 * two, (two, seven)
    assert all_seven >= 2.0 * all_two, (all_two, all_seven)  # every path's activations
    assert all_seven > 2.0 * seven


def test_probs_are_zero_on_illegal_cells() -> None:
    from searchers.spaces import create_space

    net = SuperNet(create_space("fbnet", resolution=32, width=0.25, classes=10))
    with torch.no_grad():
        net.alpha.normal_()
    p = net.probs()
    assert torch.all(p[~net.mask] == 0)
    assert torch.allclose(p.sum(1), torch.ones(p.shape[0]))
    assert all(net.mask[i, c] for i, c in enumerate(net.argmax()))
