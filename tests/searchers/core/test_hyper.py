"""SMASH's hypernetwork: it generates exactly the chosen candidates' 1x1 weights (dense
and grouped), the weights depend on the whole architecture, the candidates hold no dead
1x1 parameters, gradients reach the hypernetwork, and anything but one Single per layer
is refused."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from searchers.core.hyper import SmashNet
from searchers.core.mixed import Single, Weighted
from searchers.core.selectors import uniform_arch
from searchers.core.supernet import ChainSupernet
from searchers.spaces import SearchSpace, create_space
from tests.searchers.conftest import TinyChain


def _pointwise(net: ChainSupernet, layer: int, index: int) -> dict[str, nn.Conv2d]:
    """A plain supernet's 1x1 convs of one candidate: the weights to generate."""
    cand = net.mixed()[layer].candidates[index]
    return {
        f"{name}.weight": m
        for name, m in cand.named_modules()
        if isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1)
    }


@pytest.mark.parametrize("space", [TinyChain(), "proxyless-mobile", "fbnet"])
def test_generated_weights_have_exactly_the_chosen_candidates_shapes(
    space: SearchSpace | str,
) -> None:
    if isinstance(space, str):  # fbnet: grouped 1x1s (in / groups) and e1 without expansion
        space = create_space(space, resolution=16, width=0.25, classes=10)
    plain, net = ChainSupernet(space), SmashNet(space, basis=3, hidden=16)
    gen = torch.Generator().manual_seed(0)
    shapes: dict[int, set[tuple[tuple[int, ...], ...]]] = {}
    groups = set()
    for _ in range(30):
        cols = uniform_arch(net.mask(), gen)
        weights = net.generate(net.single_plan(cols))
        for layer, (col, generated) in enumerate(zip(cols, weights, strict=True)):
            index = net.mixed()[layer].columns.index(col)
            want = _pointwise(plain, layer, index)
            got = {k: tuple(w.shape) for k, w in generated.items()}
            assert got == {k: tuple(m.weight.shape) for k, m in want.items()}
            shapes.setdefault(layer, set()).add(tuple(got.values()))
            groups |= {m.groups for m in want.values()}
    assert max(len(s) for s in shapes.values()) >= 3  # e3, e6, ... of one layer were drawn
    assert groups == ({1, 2} if space.name == "fbnet" else {1})  # fbnet's g2 blocks too
    if space.name == "fbnet":  # a grouped 1x1 reads other channels: a basis of its own
        both = [set(bases) for bases in net.hyper.bases]
        assert any({"expand_0_weight_g1", "expand_0_weight_g2"} <= keys for keys in both)


def test_no_candidate_keeps_a_1x1_parameter_and_the_forward_leaves_none_behind() -> None:
    net = SmashNet(TinyChain(), basis=2, hidden=8)
    for mixed in net.mixed():
        for cand in mixed.candidates:
            for name, p in cand.named_parameters():
                assert not (p.dim() == 4 and p.shape[2:] == (1, 1)), name
    plan = net.single_plan([0] * len(net.layers))
    assert net(torch.randn(2, 3, 16, 16), plan).shape == (2, 10)
    conv = net.targets[0][0][0].module
    assert not hasattr(conv, "weight")  # no generated tensor (and graph) outlives a forward


def test_weights_depend_on_the_whole_architecture_and_start_from_the_first_basis() -> None:
    net = SmashNet(TinyChain(), basis=4, hidden=16)
    a = [0, 1, 2, 3, 0, 1]
    b = [0, 1, 2, 3, 0, 4]  # only the last layer differs
    wa = net.generate(net.single_plan(a))[0]["expand.0.weight"]
    wb = net.generate(net.single_plan(b))[0]["expand.0.weight"]
    assert wa.shape == wb.shape and not torch.allclose(wa, wb)
    h = net.hyper.coefficients(a)
    assert torch.allclose(h, torch.eye(4)[0].expand_as(h), atol=0.3)  # close to (1, 0, 0, 0)
    with torch.no_grad():
        net.hyper.out.weight.zero_()  # h = (1, 0, 0, 0) exactly: W = B[0] sliced
    w = net.generate(net.single_plan(a))[2]["project.0.weight"]  # MBConv5: 24 -> 5·24 wide
    bases = net.hyper.bases[2]
    assert isinstance(bases, nn.ParameterDict)
    basis = bases["project_0_weight_g1"]
    assert torch.equal(w.flatten(1), basis[0, : w.shape[0], : w.shape[1]])


def test_gradients_reach_the_hypernetwork_and_the_chosen_bases() -> None:
    net = SmashNet(TinyChain(), basis=3, hidden=16)
    cols = [1, 3, 0, 2, 1, 3]
    net(torch.randn(4, 3, 16, 16), net.single_plan(cols)).sum().backward()
    mlp = [*net.hyper.inp.parameters(), *net.hyper.out.parameters()]
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in mlp)
    for layer, bases in enumerate(net.hyper.bases):
        assert isinstance(bases, nn.ParameterDict)
        for key, basis in bases.items():
            assert basis.grad is not None and basis.grad.abs().sum() > 0, (layer, key)


def test_a_plan_that_is_not_one_single_per_layer_is_refused() -> None:
    net = SmashNet(TinyChain(), basis=2, hidden=8)
    x, n = torch.randn(2, 3, 16, 16), len(net.layers)
    weights = torch.full((5,), 0.2)
    bad = [
        [Single(0)] * (n - 1),
        [Single(0)] * (n - 1) + [Weighted(weights)],
        [Single(0)] * (n - 1) + [Single(0, learn=False)],
        [Single(0)] * (n - 1) + [None],
    ]
    for plan in bad:
        with pytest.raises(ValueError, match="plan: SMASH runs one child"):
            net(x, plan)
