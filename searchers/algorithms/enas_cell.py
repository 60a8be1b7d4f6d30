"""ENAS's micro search (Pham et al., ICML 2018) on the DARTS cell space (`enas-cell`).

The controller (core/cell_controller.py) samples a whole genotype, normal and reduce
cell: per node two distinct inputs and an op for each. The search is `enas`'s
(enas.py): a weight step trains one sampled genotype (its kept edges run their op, the
other edges are dropped), an architecture step scores `samples` genotypes on a
search-validation batch with the shared weights and applies REINFORCE with the EMA
baseline; LAT is the genotype's exact table latency (fixed ops + its kept edges).

The genotype reported each epoch is the greedy decode; there are no α, so the latency
the loop reports as controlled (`expected_ms`) is that genotype's exact latency, and
`expected_ms` in the record (E[LAT]) is under the controller's marginal frequencies.
Export: the greedy genotype and `export_samples` sampled ones, each repaired into the
constraint (fewest edge changes) before it is scored with the shared weights on the
search-validation split (BN recalibrated), the best exported. ENAS' micro defaults:
Adam lr 0.0035, β1 0; the departures are enas.py's and the controller's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from searchers.algorithms.enas import EnasOptions, EnasSearch
from searchers.core.arch import ArchParams
from searchers.core.cell_controller import CellController
from searchers.core.cell_search import CellConfig, CellSearcher
from searchers.core.config import option
from searchers.core.genotype import genotype_ms
from searchers.core.loop import SearchResult
from searchers.core.reinforce import Draw
from searchers.registry import register_searcher
from searchers.spaces.darts import Genotype


@dataclass
class EnasCellConfig(CellConfig, EnasOptions):
    warmup_epochs: int = option(
        1, "epochs of weights only (children from the untrained controller)", "ENAS (none)"
    )
    arch_lr: float = option(0.0035, "controller: Adam learning rate", "ENAS (micro)")
    arch_beta1: float = option(0.0, "controller: Adam β1", "ENAS")
    arch_weight_decay: float = option(0.0, "controller: Adam weight decay", "ENAS (none)")

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check()


@register_searcher
class EnasCell(EnasSearch, CellSearcher):
    name = "enas-cell"
    paper = "ENAS (Pham et al., ICML 2018), micro (cell) space"
    Config = EnasCellConfig  # type: ignore[assignment]  # a CellConfig with ENAS' options
    config: EnasCellConfig

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.considered: list[dict[str, Any]] = []

    def build_arch(self) -> ArchParams:
        c = self.config
        return CellController(self.net.mask(), self.net.layer_of(), c.controller_hidden,
                              c.temperature, c.tanh_c)  # fmt: skip

    @property
    def controller(self) -> CellController:
        assert isinstance(self.arch, CellController)
        return self.arch

    def draw(self) -> Draw:
        g, logp, entropy = self.controller.sample_with_logp(self.gen)
        return Draw(self.genotype_plan(g), genotype_ms(self.table, self.costs, g), logp, entropy)

    def genotype(self) -> Genotype:
        """The greedy decode."""
        return self.controller.genotype(greedy=True)

    def expected_ms(self) -> torch.Tensor:
        """No α to differentiate: the greedy genotype's exact table latency."""
        return torch.tensor(self.exported_ms(), dtype=torch.float64)

    def final_genotype(self) -> Genotype:
        """The best-scoring of the greedy and sampled genotypes, each scored as repaired
        into the constraint; returned as proposed (`finish` repairs it the same way)."""
        raw = [self.genotype()]
        raw += [self.controller.genotype(self.gen) for _ in range(self.config.export_samples)]
        rows, best, best_acc = [], raw[0], -1.0
        seen: set[Genotype] = set()
        for g in raw:
            fitted = self.fit(g)
            if fitted in seen:
                continue
            seen.add(fitted)
            acc = self.score_genotype(fitted)
            rows.append({
                "genotype": [list(fitted.normal), list(fitted.reduce)],
                "table_ms": genotype_ms(self.table, self.costs, fitted),
                "val_acc": acc,
                **({"repaired": True} if fitted != g else {}),
            })  # fmt: skip
            if acc > best_acc:  # the first wins ties: the greedy decode
                best, best_acc = g, acc
        self.considered = rows
        return best

    def selection_how(self) -> str:
        return f"greedy + {self.config.export_samples} samples, best val accuracy"

    def finish(self) -> SearchResult:
        result = super().finish()
        result.selection["considered"] = self.considered
        return result
