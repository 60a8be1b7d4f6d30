"""P-DARTS (Chen et al., ICCV 2019): progressive depth, a shrinking op set, fewer skips.

DARTS searches a shallow supernet (8 cells) for a deep network (20): the depth gap. And
skip-connects take over as the search goes on: a collapse. P-DARTS searches in stages of
growing depth (5 → 11 → 17 cells by default), each a fresh supernet trained as DARTS'
(first order), and between stages keeps on each edge only the ops α weighs most
(8 → 5 → 3), so the deeper supernets fit in memory. Against the collapse, dropout on
skip-connect's output (rates 0.1, 0.4, 0.7 at the start of the three stages, decaying
within a stage: linearly during the stage's warm-up, then by e^(-0.2·epoch)), and at
most M = 2 skip-connects in the final normal cell: while there are more, the
skip-connect of least weight is struck from its edge and the genotype derived again.

`epochs` and `warmup_epochs` are per stage (P-DARTS: 25 and 10). The latency term is
always that of the table's network (the space passed in), whatever the stage's depth:
the genotype is shared by every cell, so its cost is known at any depth
(core/cell_search.py).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from searchers.algorithms.darts import DARTS, DartsConfig
from searchers.core.cells import CellSupernet
from searchers.core.checkpoint import Checkpoint
from searchers.core.config import option
from searchers.core.genotype import decision, derive
from searchers.core.loop import Progress, SearchResult
from searchers.core.mixed import Mode, Weighted
from searchers.registry import register_searcher
from searchers.spaces import create_space
from searchers.spaces.darts import OPS, Darts, Genotype

SKIP = OPS.index("skip_connect")
DECAY = 0.2  # P-DARTS' scale factor of the skip dropout after warm-up


def _numbers(field: str, text: str, kind: type) -> list[Any]:
    try:
        values = [kind(v) for v in text.split(",")]
    except ValueError:
        raise ValueError(f"{field}: expected comma-separated numbers, got {text!r}") from None
    return values


@dataclass
class PDartsConfig(DartsConfig):
    stages: str = option("5,11,17", "cells of the supernet in each stage", "P-DARTS")
    ops: str = option("8,5,3", "ops per edge in each stage (`none` counts)", "P-DARTS")
    skip_dropout: str = option(
        "0.1,0.4,0.7", "skip-connect dropout at each stage's start", "P-DARTS"
    )
    max_skips: int = option(2, "M: skip-connects allowed in the final normal cell", "P-DARTS")
    epochs: int = option(4, "epochs per stage (P-DARTS: 25)")
    warmup_epochs: int = option(1, "weights-only epochs per stage (P-DARTS: 10 of 25)", "P-DARTS")
    arch_lr: float = option(6e-4, "architecture: Adam learning rate", "P-DARTS")

    def __post_init__(self) -> None:
        super().__post_init__()
        cells, ops, drops = self.stage_cells(), self.stage_ops(), self.stage_dropout()
        if not len(cells) == len(ops) == len(drops):
            raise ValueError("stages, ops, skip_dropout: one value per stage each")
        if min(cells) < 3:
            raise ValueError(f"stages: a supernet needs at least 3 cells, got {self.stages}")
        if ops[0] != len(OPS) or any(b > a for a, b in itertools.pairwise(ops)) or ops[-1] < 2:
            raise ValueError(
                f"ops: start at {len(OPS)} and shrink to no fewer than 2 per edge, got {self.ops}"
            )
        if not all(0 <= p < 1 for p in drops) or self.max_skips < 0:
            raise ValueError("skip_dropout: rates in [0, 1); max_skips >= 0")

    def stage_cells(self) -> list[int]:
        return _numbers("stages", self.stages, int)

    def stage_ops(self) -> list[int]:
        return _numbers("ops", self.ops, int)

    def stage_dropout(self) -> list[float]:
        return _numbers("skip_dropout", self.skip_dropout, float)


@register_searcher
class PDARTS(DARTS):
    name = "pdarts"
    paper = "P-DARTS (Chen et al., ICCV 2019)"
    Config = PDartsConfig
    config: PDartsConfig
    stage = 0
    keep: torch.Tensor | None = None  # [decisions x candidates]: the stage's op sets
    stage_log: list[dict[str, Any]]

    def stage_space(self) -> Darts:
        s = self.space
        assert isinstance(s, Darts)
        cells = self.config.stage_cells()[self.stage]
        space = create_space("darts", resolution=s.resolution, width=s.width, classes=s.classes,
                             batch=s.batch, dtype=s.dtype, C=s.C, cells=cells)  # fmt: skip
        assert isinstance(space, Darts)
        return space

    def build_supernet(self) -> CellSupernet:
        net = CellSupernet(self.stage_space())
        return net if self.keep is None else net.keep_only(self.keep)

    def total_epochs(self) -> int:
        return self.config.epochs * len(self.config.stage_cells())

    def in_warmup(self) -> bool:
        return self.epoch - self.stage * self.config.epochs < self.config.warmup_epochs

    def skip_drop(self) -> float:
        c = self.config
        rate, e = c.stage_dropout()[self.stage], self.epoch - self.stage * c.epochs
        if e < c.warmup_epochs:
            return rate * (c.epochs - e - 1) / c.epochs
        return rate * math.exp(-(e - c.warmup_epochs) * DECAY)

    def weighted_plan(self, w: torch.Tensor) -> list[Mode | None]:
        p = self.skip_drop()
        return [Weighted(m.weights, p) for m in super().weighted_plan(w)]  # type: ignore[union-attr]

    def run(
        self, progress: Progress | None = None, checkpoint: Checkpoint | None = None
    ) -> SearchResult:
        last = len(self.config.stage_cells()) - 1
        while True:
            self.train_epochs((self.stage + 1) * self.config.epochs, progress, checkpoint)
            if self.stage == last:
                return self.finish()
            self.enter_stage(self.stage + 1, self.cut())

    def cut(self) -> torch.Tensor:
        """Per edge, the next stage's op count of the ops α weighs most."""
        n = self.config.stage_ops()[self.stage + 1]
        probs, legal = self.arch.probs().detach().cpu(), self.arch.legal.cpu()
        keep = torch.zeros_like(legal)
        for d in range(len(legal)):
            cols = torch.nonzero(legal[d]).flatten().tolist()
            keep[d, sorted(cols, key=lambda c: (-float(probs[d, c]), c))[:n]] = True
        return keep

    def enter_stage(self, stage: int, keep: torch.Tensor | None) -> None:
        """A fresh supernet of the stage's depth on the kept ops, fresh α and optimisers."""
        self.stage, self.keep = stage, keep
        torch.manual_seed(self.config.seed + 1000 * stage)
        net = self.new_supernet()
        assert isinstance(net, CellSupernet)  # build_supernet
        self.net = net
        self.init_weights()
        self.arch = self.build_arch().to(self.device)
        self.share_start()
        self.setup_optimizers()

    def epoch_record(self, warmup: bool, seconds: float) -> dict[str, Any]:
        row = super().epoch_record(warmup, seconds)
        ops = sorted({int(n) for n in self.arch.legal.sum(dim=1).tolist()})
        return {**row, "stage": self.stage + 1, "cells": self.config.stage_cells()[self.stage],
                "ops_per_edge": ops, "skip_dropout": round(self.skip_drop(), 4)}  # fmt: skip

    def final_genotype(self) -> Genotype:
        """DARTS' parse, then strike the weakest skip-connect until M remain (normal cell)."""
        w = self.parse_weights().detach().cpu().clone()
        g = derive(w)
        while sum(op == "skip_connect" for op, _ in g.normal) > self.config.max_skips:
            skips = [(float(w[d, SKIP]), d) for d in self._normal_decisions(g, "skip_connect")]
            w[min(skips)[1], SKIP] = 0.0
            g = derive(w)
        return g

    @staticmethod
    def _normal_decisions(g: Genotype, op: str) -> Sequence[int]:
        return [decision(0, i // 2, src) for i, (o, src) in enumerate(g.normal) if o == op]

    def selection_how(self) -> str:
        return (
            f"top-2 edges per node by the strongest non-none op, at most "
            f"{self.config.max_skips} skip-connects in the normal cell"
        )

    def extra_state(self) -> dict[str, Any]:
        return {"stage": self.stage, "keep": None if self.keep is None else self.keep.tolist()}

    def load_state(self, s: dict[str, Any]) -> None:
        extra = s["extra"]
        if extra["stage"] != self.stage:
            keep = None if extra["keep"] is None else torch.tensor(extra["keep"], dtype=torch.bool)
            self.enter_stage(extra["stage"], keep)
        super().load_state(s)
