"""DARTS' second-order architecture gradient (Liu et al., ICLR 2019, eq. 7-8).

The architecture should minimise the validation loss of the weights it leads to. One
unrolled weight step stands in for "the weights it leads to":

    w' = w − ξ·∇_w L_train(w, α)
    ∇_α L_val(w', α) = ∂_α L_val(w', α) − ξ · ∇²_{α,w} L_train(w, α) · ∇_{w'} L_val(w', α)

The Hessian-vector product is a central finite difference (no second derivatives), with
v = ∇_{w'} L_val(w', α) and ε = r/‖v‖ (r = 0.01):

    ∇²_{α,w} L_train · v ≈ (∇_α L_train(w + εv, α) − ∇_α L_train(w − εv, α)) / (2ε)

The weights are moved in place and restored bit for bit afterwards, so the unrolled
model costs no copy of the network. DARTS' reference code also folds the optimiser's
momentum and weight decay into w'; here w' is the plain gradient step of the paper's
equation (what the tests check against exact autograd).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

Loss = Callable[[], torch.Tensor]
Reduce = Callable[[Sequence[torch.Tensor | None]], list[torch.Tensor | None]]


def _grads(
    loss: torch.Tensor, params: Sequence[torch.Tensor], reduce: Reduce
) -> list[torch.Tensor]:
    grads = reduce(torch.autograd.grad(loss, list(params), allow_unused=True))
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads, strict=True)]


@torch.no_grad()
def _set(
    params: Sequence[torch.Tensor],
    base: Sequence[torch.Tensor],
    *moves: tuple[float, Sequence[torch.Tensor]],
) -> None:
    """params ← base + Σ scale·direction."""
    for i, p in enumerate(params):
        p.copy_(base[i])
        for scale, direction in moves:
            p.add_(direction[i], alpha=scale)


def unrolled_arch_grads(
    weights: Sequence[torch.Tensor],
    arch: Sequence[torch.Tensor],
    train_loss: Loss,
    val_loss: Loss,
    xi: float,
    r: float = 0.01,
    reduce: Reduce = list,
) -> list[torch.Tensor]:
    """∇_α L_val(w − ξ∇_w L_train(w, α), α) by the finite-difference Hessian-vector
    product; the weights end where they started. `train_loss` and `val_loss` run a
    forward pass with the current weights each time they are called. `reduce` turns
    each gradient into the global batch's (N ranks: the mean over them); every term is
    linear in those, so the result is one process's."""
    weights = [w for w in weights if w.requires_grad]
    base = [w.detach().clone() for w in weights]
    try:
        g_train = _grads(train_loss(), weights, reduce)
        _set(weights, base, (-xi, g_train))  # w'
        grads = _grads(val_loss(), [*arch, *weights], reduce)
        d_alpha, v = grads[: len(arch)], grads[len(arch) :]
        norm = torch.sqrt(sum((g.double() ** 2).sum() for g in v))  # type: ignore[arg-type]
        if not float(norm) > 0:  # the validation loss does not depend on the weights
            return d_alpha
        eps = r / float(norm)
        _set(weights, base, (eps, v))  # w + εv
        g_plus = _grads(train_loss(), arch, reduce)
        _set(weights, base, (-eps, v))  # w − εv
        g_minus = _grads(train_loss(), arch, reduce)
    finally:
        _set(weights, base)
    return [
        da - xi * (gp - gm) / (2 * eps) for da, gp, gm in zip(d_alpha, g_plus, g_minus, strict=True)
    ]
