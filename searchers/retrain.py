"""Train an architecture from scratch, as the papers do after a search.

The accuracy a searched architecture is known by is that of the standalone child trained
here: SGD (Nesterov momentum 0.9, weight decay 4e-5) with a cosine schedule on the train
split, the last BN of each residual block starting at γ = 0 (Goyal et al., 2017); the
test split read once at the end (the search-validation split, which the search read to
choose, shows the curve, and `hwlat search --retrain-top` picks among its finalists by
its last value). Deterministic under `seed`
(torch's CPU kernels; the batch order is a function of the seed and the epoch).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from searchers.core.init import zero_residual_bn
from searchers.data import Data, Split
from searchers.spaces import SearchSpace

DEFAULT_LR = 0.05


@dataclass
class Retrained:
    epochs: int
    lr: float
    seed: int
    val_acc: list[float] = field(default_factory=list)  # per epoch, search-validation split
    test_acc: float | None = None  # once, after the last epoch

    def to_json(self) -> dict[str, Any]:
        return {
            "epochs": self.epochs,
            "lr": self.lr,
            "seed": self.seed,
            "val_acc": self.val_acc,
            "test_acc": self.test_acc,
        }


def retrain(
    space: SearchSpace,
    arch: Any,
    data: Data,
    epochs: int = 2,
    lr: float = DEFAULT_LR,
    seed: int = 0,
    device: str = "cpu",
    progress: Callable[[int, float], None] | None = None,
) -> Retrained:
    """Train `arch` for `epochs` and measure it: per-epoch validation accuracy, final test
    accuracy (None when epochs = 0: nothing was trained)."""
    if not lr > 0:
        raise ValueError(f"retrain-lr: must be positive, got {lr}")
    out = Retrained(epochs, lr, seed)
    if epochs < 1:
        return out
    torch.manual_seed(seed)
    net = space.build_child(arch).to(device).train()
    # Residual blocks start as the identity, as the supernet's did: with PyTorch's default
    # init a 21-layer child sat near chance for a seed-dependent number of epochs, so a
    # short retrain of one architecture scored far apart by seed (docs/BENCHMARKS.md,
    # "Search vs random at the same latency"; bench/search_vs_random.py).
    zero_residual_bn(net.modules())
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=4e-5)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs * data.steps_per_epoch())
    for epoch in range(epochs):
        net.train()
        for x, y in data.train_batches(seed, epoch):
            logits = net(x.to(device)).flatten(1)  # (N, classes[, 1, 1]) -> (N, classes)
            loss = F.cross_entropy(logits, y.to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        out.val_acc.append(evaluate(net, data.val, device))
        if progress:
            progress(epoch + 1, out.val_acc[-1])
    out.test_acc = evaluate(net, data.test, device)
    return out


@torch.no_grad()
def evaluate(net: torch.nn.Module, split: Split, device: str = "cpu") -> float:
    net.eval()
    correct = 0
    for x, y in split.batches(256):
        correct += int((net(x.to(device)).flatten(1).argmax(1) == y.to(device)).sum())
    return correct / max(len(split), 1)
