"""Scoring a path of a supernet with its shared weights.

The shared BN running statistics belong to no single path (every candidate trains in
train mode, on batch statistics), so before a path is scored its BN statistics are
re-estimated: reset, then a cumulative average over a few train batches run through
that path (SPOS's recalibration), then evaluation mode. Without it a path is scored
with statistics of the mixture; batch statistics at test time would make a prediction
depend on the rest of its batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from torch import nn

Forward = Callable[[torch.Tensor, Sequence[Any]], torch.Tensor]


@torch.no_grad()
def recalibrate_bn(
    net: nn.Module,
    forward: Forward,
    plan: Sequence[Any],
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
) -> None:
    """Reset every BN's running statistics and re-estimate them on `plan` from `batches`
    (a cumulative average: BN momentum None while it runs)."""
    bns = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [bn.momentum for bn in bns]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None
    net.train()
    for x, _ in batches:
        forward(x, plan)
    for bn, momentum in zip(bns, momenta, strict=True):
        bn.momentum = momentum


@torch.no_grad()
def accuracy(
    net: nn.Module,
    forward: Forward,
    plan: Sequence[Any],
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    calibration: Iterable[tuple[torch.Tensor, torch.Tensor]] | None = None,
    totals: Callable[[int, int], tuple[int, int]] | None = None,
) -> float:
    """Top-1 accuracy of `plan` on `batches`, after BN recalibration on `calibration`
    (none: batch statistics). The supernet is left in train mode. `totals` turns this
    process's (correct, seen) into the run's (N ranks: summed over their batches)."""
    if calibration is not None:
        recalibrate_bn(net, forward, plan, calibration)
        net.eval()
    correct = total = 0
    try:
        for x, y in batches:
            correct += int((forward(x, plan).argmax(1) == y).sum())
            total += len(y)
    finally:
        net.train()
    if totals is not None:
        correct, total = totals(correct, total)
    return correct / max(total, 1)
