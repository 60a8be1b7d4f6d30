"""Single-Path NAS's super-kernel: nested subsets of one weight, and its runtime chain."""

from __future__ import annotations

import itertools

import pytest
import torch

from profiler.blocks import MBConv
from searchers.core.superkernel import Indicators, SuperKernel, SuperKernelNet, space_grids
from searchers.core.thresholds import Thresholds, chain_probs, hard_plan
from searchers.latency import LatencyTable
from searchers.spaces import create_space
from tests.searchers.conftest import TinyChain, flops_table


def _residual_layer(space: TinyChain | None = None) -> tuple[SuperKernel, object]:
    space = space or TinyChain()
    layer = space.layers()[1]  # 24 -> 24, stride 1: residual, `zero` legal
    return SuperKernel(layer, space.candidates), layer


def _plain_from(sk: SuperKernel, k: int, e: int, layer: object) -> MBConv:
    """The plain k x k, e MBConv holding the super-kernel's inner weights."""
    spec = next(c.op for c in layer.legal if c.name == f"{k}x{k}_MBConv{e}")  # type: ignore[attr-defined]
    plain = MBConv(spec)
    mid, big = spec.num("cin") * e, sk.block
    lo = (big.depthwise[0].weight.shape[-1] - k) // 2
    with torch.no_grad():
        for mine, theirs, cut in (
            (plain.expand, big.expand, slice(0, mid)),
            (plain.depthwise, big.depthwise, slice(0, mid)),
        ):
            w = theirs[0].weight[cut]
            mine[0].weight.copy_(w[..., lo : lo + k, lo : lo + k] if w.shape[-1] > 1 else w)
            for name in ("weight", "bias", "running_mean", "running_var"):
                getattr(mine[1], name).copy_(getattr(theirs[1], name)[cut])
        plain.project[0].weight.copy_(big.project[0].weight[:, :mid])
        plain.project[1].load_state_dict(big.project[1].state_dict())
    return plain


def _randomise(module: torch.nn.Module) -> None:
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
        for m in module.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)


@pytest.mark.parametrize("train", [False, True])
def test_inner_kernel_is_the_plain_smallest_mbconv(train: bool) -> None:
    sk, layer = _residual_layer()
    _randomise(sk)
    plain = _plain_from(sk, 3, 3, layer)
    sk.train(train), plain.train(train)
    x = torch.randn(4, 24, 4, 4, generator=torch.Generator().manual_seed(0))
    inner = Indicators(kernel=[0.0], channel=[1.0, 0.0])
    torch.testing.assert_close(sk(x, inner), plain(x), rtol=1e-5, atol=1e-6)


def test_inner_kernel_of_a_seven_by_seven_layer() -> None:
    space = create_space("proxyless-mobile", resolution=16, width=0.25, classes=10)
    layer = next(layer for layer in space.layers() if any(c.name == "zero" for c in layer.legal))
    sk = SuperKernel(layer, space.candidates)
    assert sk.grid.kernels == (3, 5, 7) and sk.grid.expansions == (3, 6)
    _randomise(sk)
    sk.eval()
    plain = _plain_from(sk, 3, 3, layer).eval()
    x = torch.randn(2, *layer.legal[0].op.shape[1:])  # type: ignore[union-attr]
    off = Indicators(kernel=[0.0, 1.0], channel=[1.0, 0.0])  # d_k2 on but nested under d_k1
    torch.testing.assert_close(sk(x, off), plain(x), rtol=1e-5, atol=1e-6)


def test_the_five_by_five_ring_adds_exactly_the_outer_weights() -> None:
    sk, _ = _residual_layer()
    _randomise(sk)
    on, off = Indicators([1.0], [1.0, 1.0]), Indicators([0.0], [1.0, 1.0])
    ring = sk.rings[1]  # type: ignore[index]
    w = sk.block.depthwise[0].weight
    torch.testing.assert_close(sk.kernel(on) - sk.kernel(off), w * ring)
    # the outer weights only matter when the ring is on
    x = torch.randn(2, 24, 4, 4)
    sk.eval()
    before_on, before_off = sk(x, on), sk(x, off)
    with torch.no_grad():
        w.add_(ring * 0.5)
    assert torch.equal(sk(x, off), before_off)
    assert not torch.allclose(sk(x, on), before_on)


def test_identity_when_the_first_channel_indicator_is_off() -> None:
    sk, _ = _residual_layer()
    _randomise(sk)
    x = torch.randn(2, 24, 4, 4)
    assert torch.equal(sk(x, Indicators([1.0], [0.0, 1.0])), x)


def test_runtime_is_the_table_latency_for_every_hard_setting() -> None:
    space = TinyChain()
    table = flops_table(space)
    net = SuperKernelNet(space)
    grids = net.grids()
    width = len(space.candidates)
    per_layer = [list(itertools.product((0.0, 1.0), repeat=3)) for _ in grids]
    gen = torch.Generator().manual_seed(0)
    for _ in range(50):
        picks = [opts[int(torch.randint(len(opts), (1,), generator=gen))] for opts in per_layer]
        d = torch.tensor(picks, dtype=torch.float64)  # [layers x (d_k5, d_e3, d_e6)]
        probs = chain_probs(d, grids, width)
        assert bool(((probs == 0) | (probs == 1)).all()) and bool((probs.sum(1) == 1).all())
        cols = probs.argmax(1).tolist()
        assert float(table.expected(probs)) == pytest.approx(table.exact(cols), abs=1e-12)
        plan = hard_plan(grids, cols)  # and back: the columns give the same decisions
        back = chain_probs(
            torch.tensor([[*p.kernel, *p.channel] for p in plan], dtype=torch.float64),
            grids,
            width,
        )
        assert back.argmax(1).tolist() == cols


def test_relaxed_chain_is_a_distribution_on_the_legal_cells() -> None:
    space = TinyChain()
    net = SuperKernelNet(space)
    arch = Thresholds(net.mask(), net.grids(), net.log_norms)
    with torch.no_grad():
        arch.t.copy_(torch.randn(arch.t.shape) + net.log_norms())
    p = arch.probs()
    torch.testing.assert_close(p.sum(1), torch.ones(len(p)))
    assert bool((p[~arch.legal] == 0).all())


def test_latency_gradient_raises_thresholds() -> None:
    """Raising a threshold switches subsets off, so the runtime falls: dLAT/dt <= 0."""
    space = TinyChain()
    table = flops_table(space)
    net = SuperKernelNet(space)
    arch = Thresholds(net.mask(), net.grids(), net.log_norms)
    arch.arm(0.5)
    d = arch.switches()
    lat = table.expected(chain_probs(d, net.grids(), len(space.candidates)).double())
    (grad,) = torch.autograd.grad(lat, arch.t)
    assert bool((grad <= 0).all()) and float(grad.sum()) < 0


def test_grids_hold_only_what_a_super_kernel_can_be() -> None:
    fbnet = create_space("fbnet", resolution=32, width=0.25, classes=10)
    grids = space_grids(fbnet)  # type: ignore[arg-type]
    held = {fbnet.candidates[c] for g in grids for c in g.column.values()}
    assert held == {f"ir_k{k}_e{e}" for k in (3, 5) for e in (3, 6)}  # no grouped, no e1
    table = flops_table(fbnet)
    mask = SuperKernelNet(fbnet).mask()  # type: ignore[arg-type]
    narrow = table.restricted(mask)
    assert narrow.bounds()[0] >= table.bounds()[0] and narrow.bounds()[1] <= table.bounds()[1]
    assert "illegal" in narrow.source[0] and narrow.mask.sum() < table.mask.sum()
    with pytest.raises(ValueError, match="no MBConv candidate"):
        space_grids(create_space("spos-shufflenet", resolution=32, classes=10))  # type: ignore[arg-type]
    # HW-NAS-Bench's e1 keeps its 1x1 expansion: a subset of e3's weights, so it is held
    bench = space_grids(create_space("hwnasbench-fbnet", resolution=32, classes=10))  # type: ignore[arg-type]
    assert {g.expansions for g in bench} == {(1, 3, 6)}


def test_restricted_table_refuses_a_bad_mask() -> None:
    table: LatencyTable = flops_table(TinyChain())
    with pytest.raises(ValueError, match="mask"):
        table.restricted(torch.ones(2, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match="every layer"):
        table.restricted(torch.zeros_like(table.mask))
