"""FairNAS (Chu et al., ICCV 2021): a single-path supernet trained with strict fairness.

SPOS's uniform sampling trains every candidate equally often only on average; FairNAS
argues that the early gap biases the ranking. Each weight step here draws m paths such
that every candidate of every layer is in exactly one of them (m = the most candidates
of a layer; core/arch.py `Fair`), runs them one after another on the same batch,
accumulates the m gradients and takes one optimiser step: every candidate's training
count is the same after every step. A layer with fewer legal candidates fills its
spare paths with candidates run with frozen weights (`Single(i, learn=False)`), so they
pass a signal through without being trained a second time. Fairness and a latency
window cannot both hold (the window would leave some candidates out), so the paths
ignore the constraint; the search after training is SPOS's evolution inside it.

Gradients are summed, as the paper accumulates them, so a step moves the weights about m
times as far as a SPOS step at the same learning rate; `reduce=mean` divides by m.
FairNAS never released its search code; the evolution here is SPOS's (the paper used
NSGA-II over accuracy, latency and FLOPs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from searchers.algorithms.spos import SPOS, OneShotConfig
from searchers.core.arch import ArchParams, Fair
from searchers.core.config import option
from searchers.core.mixed import Single
from searchers.registry import register_searcher


@dataclass
class FairNASConfig(OneShotConfig):
    lr: float = option(
        0.05,
        "weights: SGD learning rate (cosine to 0), on the sum of the m paths' gradients; "
        "82% sampled accuracy after 4 epochs on proxyless-mobile@32, digits-hard",
    )
    reduce: Literal["sum", "mean"] = option(
        "sum", "how the m paths' gradients combine into one step", "FairNAS (accumulate)"
    )


@register_searcher
class FairNAS(SPOS):
    name = "fairnas"
    paper = "FairNAS (Chu et al., ICCV 2021)"
    Config = FairNASConfig
    config: FairNASConfig

    def build_arch(self) -> ArchParams:
        return Fair(self.net.mask())

    def weight_step(self, x: torch.Tensor, y: torch.Tensor, warmup: bool) -> float:
        assert isinstance(self.arch, Fair)  # build_arch
        paths, learn = self.arch.sample_fair(self.gen)
        scale = 1.0 / len(paths) if self.config.reduce == "mean" else 1.0
        self.w_opt.zero_grad(set_to_none=True)
        total = 0.0
        for cols, keep in zip(paths, learn, strict=True):
            plan = [
                Single(mixed.columns.index(col), k)
                for mixed, col, k in zip(self.net.mixed(), cols, keep, strict=True)
            ]
            loss = F.cross_entropy(self.forward(x, plan), y)
            (loss * scale).backward()  # the m gradients accumulate in .grad
            total += float(loss.detach())
            self.count(cols, keep)
        self.step_weights()
        return total / len(paths)
