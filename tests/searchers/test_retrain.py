from __future__ import annotations

from collections.abc import Iterable

import pytest
import torch
from torch import nn

import searchers.retrain as retrain_module
from profiler.blocks import MBConv
from searchers.core.init import zero_residual_bn
from searchers.data import Data
from searchers.retrain import retrain
from searchers.spaces import SearchSpace


def test_a_child_starts_with_its_residual_blocks_as_the_identity(
    small_space: SearchSpace,
) -> None:
    torch.manual_seed(0)
    net = small_space.build_child(small_space.random_arch(seed=1))
    residual = [m for m in net.modules() if isinstance(m, MBConv) and m.residual]
    assert residual, "the test needs an architecture with residual blocks"
    assert zero_residual_bn(net.modules()) == len(residual)
    block = residual[0].eval()
    x = torch.randn(2, block.project[0].out_channels, 4, 4)
    assert torch.allclose(block(x), x)


def test_retrain_starts_the_child_with_zeroed_residual_bn(
    small_space: SearchSpace, small_data: Data, monkeypatch: pytest.MonkeyPatch
) -> None:
    zeroed: list[int] = []

    def spy(modules: Iterable[nn.Module]) -> int:
        zeroed.append(zero_residual_bn(modules))
        return zeroed[-1]

    monkeypatch.setattr(retrain_module, "zero_residual_bn", spy)
    arch = small_space.random_arch(seed=1)
    retrain(small_space, arch, small_data, epochs=1, lr=0.05)
    net = small_space.build_child(arch)
    assert zeroed == [sum(isinstance(m, MBConv) and m.residual for m in net.modules())]
    assert zeroed[0] > 0


def test_retrain_reports_a_curve_and_a_test_accuracy(
    small_space: SearchSpace, small_data: Data
) -> None:
    arch = small_space.random_arch(seed=0)
    first = retrain(small_space, arch, small_data, epochs=2, lr=0.05, seed=3)
    again = retrain(small_space, arch, small_data, epochs=2, lr=0.05, seed=3)
    assert len(first.val_acc) == 2 and first.test_acc is not None
    assert 0.0 <= first.test_acc <= 1.0
    assert (first.val_acc, first.test_acc) == (again.val_acc, again.test_acc)  # seeded


def test_retrain_refuses_a_bad_learning_rate_and_trains_nothing_at_zero_epochs(
    small_space: SearchSpace, small_data: Data
) -> None:
    arch = small_space.random_arch(seed=0)
    with pytest.raises(ValueError, match="retrain-lr"):
        retrain(small_space, arch, small_data, epochs=1, lr=0.0)
    assert retrain(small_space, arch, small_data, epochs=0).test_acc is None
