"""Train the exported architecture from scratch, as the papers do after a search.

The supernet's shared weights say little about a child after a short search (on digits
for a few epochs they are near chance: every step trains a different random path per
layer), so the accuracy reported for a searched architecture is that of the
standalone child trained here, with the same data split.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from searchers.data import Data
from searchers.spaces import SearchSpace


def retrain(
    space: SearchSpace, arch: Any, data: Data, epochs: int = 2, lr: float = 0.01, seed: int = 0
) -> list[float]:
    """Validation accuracy after each epoch of SGD on the train split."""
    torch.manual_seed(seed)
    net = space.build_child(arch).train()
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, nesterov=True)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs * len(data.train))
    history = []
    for _ in range(epochs):
        net.train()
        for x, y in data.train:
            loss = F.cross_entropy(net(x).flatten(1), y)  # (N, classes[, 1, 1]) -> (N, classes)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        history.append(_accuracy(net, data))
    return history


@torch.no_grad()
def _accuracy(net: torch.nn.Module, data: Data) -> float:
    net.eval()
    correct = total = 0
    for x, y in data.val:
        correct += int((net(x).flatten(1).argmax(1) == y).sum())
        total += len(y)
    return correct / total
