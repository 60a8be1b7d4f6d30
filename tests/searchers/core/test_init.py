"""Supernet initialisation: a layer's candidates start as one function, residual
candidates start as the identity."""

from __future__ import annotations

import torch

from searchers.core.init import share_candidate_init, zero_residual_bn
from searchers.core.mixed import MixedOp
from searchers.spaces import SearchSpace, create_space


def _outputs(mixed: MixedOp, x: torch.Tensor) -> list[torch.Tensor]:
    mixed.train()  # batch statistics, as in supernet training
    with torch.no_grad():
        return [op(x) for op in mixed.candidates]


def test_proxyless_candidates_start_as_one_function(small_space: SearchSpace) -> None:
    torch.manual_seed(0)
    layer = small_space.layers()[0]  # no residual: six MBConvs k{3,5,7} x e{3,6}
    mixed = MixedOp(layer, small_space.candidates)
    x = torch.randn(8, *layer.legal[0].op.shape[1:])  # type: ignore[union-attr]
    before = _outputs(mixed, x)
    assert not torch.allclose(before[0], before[5], atol=1e-3)
    assert share_candidate_init(mixed.candidates) == 5
    after = _outputs(mixed, x)
    for out in after[1:]:
        assert torch.allclose(out, after[0], atol=1e-4)
    assert torch.allclose(after[0], before[0])  # the smallest keeps its own weights


def test_other_structures_keep_their_own_weights() -> None:
    space = create_space("fbnet", resolution=16, width=0.25, classes=10)
    layer = space.layers()[2]  # e1, e1_g2, e3, e6 at k3 and k5, and skip
    mixed = MixedOp(layer, space.candidates)
    # three structures: e3/e6 at k3/k5 (3 copied from e3 k3), e1 at k3/k5 (1), the
    # grouped e1_g2 at k3/k5 (1); a grouped 1x1 is never tiled into a dense one
    assert share_candidate_init(mixed.candidates) == 5
    x = torch.randn(8, *layer.legal[0].op.shape[1:])  # type: ignore[union-attr]
    out = _outputs(mixed, x)
    assert torch.allclose(out[0], out[4], atol=1e-4)  # ir_k3_e1 and ir_k5_e1
    assert torch.allclose(out[2], out[7], atol=1e-4)  # ir_k3_e3 and ir_k5_e6
    assert not torch.allclose(out[0], out[2], atol=1e-3)


def test_zero_residual_bn_makes_residual_candidates_the_identity(
    small_space: SearchSpace,
) -> None:
    layer = small_space.layers()[5]
    mixed = MixedOp(layer, small_space.candidates)
    assert zero_residual_bn(mixed.candidates) == 6  # the six MBConvs; zero has no BN
    x = torch.randn(4, *layer.legal[0].op.shape[1:])  # type: ignore[union-attr]
    for out in _outputs(mixed, x):
        assert torch.allclose(out, x)
