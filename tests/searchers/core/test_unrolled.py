"""DARTS' second-order architecture gradient against exact autograd through one unrolled
step, on a tiny mixed model where both can be computed."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from searchers.core.unrolled import unrolled_arch_grads


class TinyMixed(nn.Module):
    """Two candidate linear maps mixed by softmax(α), then a linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.head = nn.Linear(5, 6), nn.Linear(5, 6), nn.Linear(6, 3)

    def forward(self, x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        w = F.softmax(alpha, dim=0)
        return self.head(torch.tanh(w[0] * self.a(x) + w[1] * torch.sin(self.b(x))))


def _setup() -> tuple[TinyMixed, nn.Parameter, tuple[torch.Tensor, ...]]:
    torch.manual_seed(0)
    net = TinyMixed().double()
    alpha = nn.Parameter(torch.tensor([0.3, -0.2], dtype=torch.float64))
    g = torch.Generator().manual_seed(1)
    xt, xv = (torch.randn(16, 5, generator=g, dtype=torch.float64) for _ in range(2))
    yt, yv = (torch.randint(0, 3, (16,), generator=g) for _ in range(2))
    return net, alpha, (xt, yt, xv, yv)


def test_second_order_gradient_matches_exact_autograd() -> None:
    net, alpha, (xt, yt, xv, yv) = _setup()
    xi = 0.5
    names = [n for n, _ in net.named_parameters()]
    w = [p.detach().clone().requires_grad_(True) for p in net.parameters()]

    # exact: w' = w - xi * dL_train/dw (kept in the graph), then dL_val(w', alpha)/dalpha
    def loss(params: list[torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        out = functional_call(net, dict(zip(names, params, strict=True)), (x, alpha))
        return F.cross_entropy(out, y)

    g_train = torch.autograd.grad(loss(w, xt, yt), w, create_graph=True)
    w_prime = [p - xi * g for p, g in zip(w, g_train, strict=True)]
    (exact,) = torch.autograd.grad(loss(w_prime, xv, yv), [alpha])

    before = [p.detach().clone() for p in net.parameters()]
    (approx,) = unrolled_arch_grads(
        list(net.parameters()),
        [alpha],
        lambda: F.cross_entropy(net(xt, alpha), yt),
        lambda: F.cross_entropy(net(xv, alpha), yv),
        xi,
    )
    # finite differences with ε = 0.01/‖v‖ in float64: agreement to ~1e-5 relative
    assert torch.allclose(approx, exact, rtol=1e-4, atol=1e-7), (approx, exact)
    first_order = torch.autograd.grad(F.cross_entropy(net(xv, alpha), yv), [alpha])[0]
    assert not torch.allclose(first_order, exact, rtol=1e-2)  # the unrolled step matters
    for p, b in zip(net.parameters(), before, strict=True):
        assert torch.equal(p.detach(), b)  # the weights end where they started


def test_xi_zero_is_the_first_order_gradient() -> None:
    net, alpha, (xt, yt, xv, yv) = _setup()
    (g,) = unrolled_arch_grads(
        list(net.parameters()),
        [alpha],
        lambda: F.cross_entropy(net(xt, alpha), yt),
        lambda: F.cross_entropy(net(xv, alpha), yv),
        0.0,
    )
    first = torch.autograd.grad(F.cross_entropy(net(xv, alpha), yv), [alpha])[0]
    assert torch.allclose(g, first, rtol=1e-6)
