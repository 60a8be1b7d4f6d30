"""What every differentiable searcher shares: the alternating loop, history and export.

Weights are trained on the train split, architecture parameters on the validation split
every `arch_every` weight steps (after `warmup_epochs` of weights only, with uniformly
sampled paths). After the last epoch the searcher proposes a discrete architecture;
in hard-target mode a repair step then changes the fewest layers needed to put its
table latency within the tolerance of the target.
"""

from __future__ import annotations

import itertools
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from searchers.data import Data
from searchers.latency import LatencyTable
from searchers.losses import HardTarget, LatencyLoss
from searchers.repair import repair
from searchers.supernet import SuperNet


@dataclass
class SearchConfig:
    epochs: int = 3
    warmup_epochs: int = 0
    arch_every: int = 1  # an architecture step every k weight steps
    lr: float = 0.02  # weights: SGD, momentum 0.9, cosine schedule
    weight_decay: float = 4e-5
    arch_lr: float = 0.05  # architecture: Adam(betas=(0, 0.999)), as ProxylessNAS
    seed: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 1 or not 0 <= self.warmup_epochs < self.epochs:
            raise ValueError("epochs: need epochs >= 1 and 0 <= warmup-epochs < epochs")
        if self.arch_every < 1 or self.lr <= 0 or self.arch_lr <= 0:
            raise ValueError("arch-every, lr and arch-lr must be positive")


@dataclass
class SearchResult:
    columns: list[int]
    choices: tuple[str, ...]
    table_ms: float
    history: list[dict[str, Any]]
    repair: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


Progress = Callable[[dict[str, Any]], None]


class Searcher(ABC):
    name: ClassVar[str]

    def __init__(
        self,
        table: LatencyTable,
        data: Data,
        config: SearchConfig,
        latency: LatencyLoss,
    ):
        torch.manual_seed(config.seed)
        self.table, self.data, self.config, self.latency = table, data, config, latency
        self.space = table.space
        if self.space.classes != data.classes:
            raise ValueError(
                f"classes: the space has {self.space.classes} outputs, the dataset "
                f"{data.classes} classes; pass --classes {data.classes}"
            )
        self.net = SuperNet(self.space)
        self.w_opt = torch.optim.SGD(
            self.net.weight_parameters(),
            lr=config.lr,
            momentum=0.9,
            nesterov=True,
            weight_decay=config.weight_decay,
        )
        steps = config.epochs * len(data.train)
        self.w_sched = torch.optim.lr_scheduler.CosineAnnealingLR(self.w_opt, steps)
        self.a_opt = torch.optim.Adam([self.net.alpha], lr=config.arch_lr, betas=(0.0, 0.999))
        self.epoch = 0
        self.hard = latency if isinstance(latency, HardTarget) else None

    # --- what a searcher defines ------------------------------------------------------
    @abstractmethod
    def weight_step(self, x: torch.Tensor, y: torch.Tensor, warmup: bool) -> float:
        """One update of the supernet's weights; returns the loss."""

    @abstractmethod
    def arch_step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """One update of the architecture parameters."""

    def propose(self) -> list[int]:
        """The discrete architecture after the search (table column per layer)."""
        return self.net.argmax()

    def on_epoch_end(self) -> dict[str, Any]:
        return {}

    # --- shared --------------------------------------------------------------------------
    def expected_ms(self) -> torch.Tensor:
        return self.table.expected(self.net.probs())

    def objective(self, ce: torch.Tensor, lat_ms: torch.Tensor) -> torch.Tensor:
        return self.latency(ce, lat_ms)

    def train_weights(self, x: torch.Tensor, y: torch.Tensor) -> float:
        """One SGD step of the weights on the paths the mixed ops are set to run."""
        loss = cross_entropy(self.net(x), y)
        self.w_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.w_opt.step()
        return loss.item()

    def after_arch_step(self) -> None:
        if self.hard is not None:
            self.hard.update(self.expected_ms().item())

    def run(self, progress: Progress | None = None) -> SearchResult:
        history: list[dict[str, Any]] = []
        val = _cycle(self.data.val)
        for epoch in range(self.config.epochs):
            self.epoch = epoch
            warmup = self.epoch < self.config.warmup_epochs
            losses = []
            for step, (x, y) in enumerate(self.data.train):
                losses.append(self.weight_step(x, y, warmup))
                self.w_sched.step()
                if not warmup and step % self.config.arch_every == 0:
                    self.arch_step(*next(val))
                    self.after_arch_step()
            row = self.epoch_record(sum(losses) / len(losses), warmup)
            history.append(row)
            if progress:
                progress(row)
        return self.finish(history)

    def epoch_record(self, loss: float, warmup: bool) -> dict[str, Any]:
        arch = self.net.argmax()
        return {
            "epoch": self.epoch + 1,
            "warmup": warmup,
            "train_loss": loss,
            "val_acc": self.accuracy(arch),
            "expected_ms": self.expected_ms().item(),
            "argmax_ms": self.table.exact(arch),
            "latency_weight": self.latency.weight(),
            "alpha": [[round(float(a), 5) for a in row] for row in self.net.alpha.detach()],
            **self.on_epoch_end(),
        }

    @torch.no_grad()
    def accuracy(self, columns: list[int]) -> float:
        """Validation accuracy of one architecture with the supernet's shared weights
        (batch statistics: the shared BN running statistics belong to no single path)."""
        self.net.set_arch(columns)
        correct = total = 0
        for x, y in self.data.val:
            correct += int((self.net(x).argmax(1) == y).sum())
            total += len(y)
        return correct / total

    def finish(self, history: list[dict[str, Any]]) -> SearchResult:
        cols = self.propose()
        fixed = None
        if self.hard is not None and not self.hard.satisfied(self.table.exact(cols)):
            logp = torch.log(self.net.probs().detach().clamp_min(1e-12))
            new = repair(
                self.table,
                logp,
                cols,
                self.hard.target_ms,
                self.hard.tolerance,
                self.hard.constraint,
            )
            fixed = {
                "before_ms": self.table.exact(cols),
                "after_ms": self.table.exact(new),
                "changed": [
                    {
                        "layer": self.space.layers()[i].name,
                        "from": self.table.names(cols)[i],
                        "to": self.table.names(new)[i],
                    }
                    for i in range(len(cols))
                    if cols[i] != new[i]
                ],
            }
            cols = new
        return SearchResult(cols, self.table.names(cols), self.table.exact(cols), history, fixed)


def cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits, y)


def _cycle(loader: Any) -> Iterator[Any]:
    """Batches forever (a fresh shuffle each pass)."""
    for _ in itertools.count():
        yield from loader
