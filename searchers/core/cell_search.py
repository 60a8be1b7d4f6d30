"""What the DARTS family shares on the cell space: the supernet, the latency of a
genotype, how a genotype is derived, scored and repaired into a target.

The architecture is α [2·14 x 8] (one row per cell type and edge, `CellSupernet.decisions`
order). What is exported is a genotype (core/genotype.py), not an argmax per layer, so
the latency the search reports and controls is the genotype's:

- `relaxed_ms`: the papers' E[LAT] = fixed + Σ cells Σ edges Σ ops w·T with w the op
  weights (DARTS: softmax(α); GDAS: its hard sample; PC-DARTS: softmax(α)·β), `none`
  free. A soft latency loss (`--soft`) uses it, as a relaxation of the supernet.
- `controlled_ms` (hard target): the exact table latency of the genotype derived now,
  with a straight-through gradient: per kept edge the expected cost under the sharpened
  non-`none` op distribution softmax(α/τ_s), and per node a soft top-2 of the edge
  strengths. The value is what will be exported; the gradient says which way to move.

The controller's dual step reads the exact genotype latency (`exported_ms`); after the
search the derived genotype is repaired into the target with the fewest edge changes
(`repair_genotype`). A genotype is scored with the shared weights on the supernet: the
kept edges run their op, the other edges are dropped, BN re-estimated first.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import torch
import torch.nn.functional as F

from searchers.core.arch import masked_softmax
from searchers.core.cells import CellSupernet
from searchers.core.config import SearchConfig, option
from searchers.core.genotype import (
    NONE,
    bounds,
    decision,
    derive,
    edge_costs,
    edge_ops,
    edges_changed,
    genotype_ms,
    layer_columns,
    repair_genotype,
)
from searchers.core.loop import Searcher, SearchResult
from searchers.core.mixed import Mode, Single
from searchers.latency import LatencyTable
from searchers.spaces.darts import STEPS, Darts, Genotype


@dataclass
class CellConfig(SearchConfig):
    """DARTS' schedule and optimisers (CIFAR-10 search: 50 epochs, batch 64)."""

    epochs: int = option(10, "search epochs over the train split (DARTS: 50)")
    warmup_epochs: int = option(0, "epochs of weights only before α moves", "DARTS (none)")
    lr: float = option(0.025, "weights: SGD learning rate (cosine to 0)", "DARTS")
    weight_decay: float = option(3e-4, "weights: L2", "DARTS")
    arch_lr: float = option(3e-4, "architecture: Adam learning rate", "DARTS")
    arch_beta1: float = option(0.5, "architecture: Adam β1 (β2 0.999)", "DARTS")
    arch_weight_decay: float = option(1e-3, "architecture: Adam weight decay", "DARTS")


class CellSearcher(Searcher):
    net: CellSupernet
    space_kind = Darts
    Config = CellConfig

    @classmethod
    def table_bounds(cls, table: LatencyTable) -> tuple[float, float]:
        return bounds(edge_costs(table), table.fixed_ms)

    def build_supernet(self) -> CellSupernet:
        assert isinstance(self.space, Darts)  # check_space ran first
        return CellSupernet(self.space)

    @cached_property
    def costs(self) -> torch.Tensor:
        """[2·14 x candidates] ms of each (cell type, edge, op) over the table's network."""
        return edge_costs(self.table)

    # --- what a genotype is made of ----------------------------------------------------
    def op_weights(self) -> torch.Tensor:
        """[2·14 x candidates]: the weights the genotype is parsed from (DARTS: softmax α)."""
        return self.arch.probs()

    def edge_scale(self) -> torch.Tensor | None:
        """Per decision, a factor on its edge's strength (PC-DARTS: normalised β)."""
        return None

    def parse_weights(self) -> torch.Tensor:
        """The op weights with each edge's strength factor (PC-DARTS: α·β)."""
        w, scale = self.op_weights(), self.edge_scale()
        return w if scale is None else w * scale[:, None]

    def genotype(self) -> Genotype:
        return derive(self.parse_weights())

    def exported_ms(self) -> float:
        return genotype_ms(self.table, self.costs, self.genotype())

    def relaxed_ms(self) -> float:
        return float(self.relaxed(self.parse_weights().detach()))

    def relaxed(self, w: torch.Tensor) -> torch.Tensor:
        """fixed + Σ_d Σ_o w[d, o]·cost[d, o] (= Σ cells Σ edges Σ ops w·T)."""
        return (w * self.costs.to(w)).sum() + self.table.fixed_ms

    def latency_ms(self, w: torch.Tensor) -> torch.Tensor:
        """What the latency loss sees: the genotype's for a hard target, else E[LAT]."""
        return self.expected_ms() if self.hard is not None else self.relaxed(w)

    def expected_ms(self) -> torch.Tensor:
        """The derived genotype's exact latency, with a straight-through gradient."""
        tau = self.hard.temperature if self.hard is not None else 1.0
        alpha = self.arch.logits()
        ops_ok = self.arch.legal.clone()
        ops_ok[:, NONE] = False
        q = masked_softmax(alpha / tau, ops_ok)  # op choice on a kept edge, sharpened
        costs = self.costs.to(q)
        soft_c = (q * costs).sum(dim=1)
        hard_c = costs.gather(1, q.detach().argmax(dim=1, keepdim=True)).squeeze(1)
        cost = hard_c + soft_c - soft_c.detach()
        keep = self.kept_edges(self.parse_weights())
        return (keep * cost).sum() + self.table.fixed_ms

    def kept_edges(self, w: torch.Tensor) -> torch.Tensor:
        """[2·14]: 1 on the genotype's edges (value), gradient of a soft top-2 per node."""
        ok = self.arch.legal.clone()
        ok[:, NONE] = False
        strength = w.masked_fill(~ok, 0.0).max(dim=1).values
        keep = torch.zeros_like(strength)
        for node in range(2 * STEPS):
            rows = [decision(node // STEPS, node % STEPS, j) for j in range(node % STEPS + 2)]
            s = strength[rows]
            hard = torch.zeros_like(s)
            values = s.detach().tolist()  # ties as `derive` breaks them: the earlier input
            hard[sorted(range(len(rows)), key=lambda j: (-values[j], j))[:2]] = 1.0
            soft = 2 * F.softmax(s / (s.detach().std() + 1e-6), dim=0)
            index = torch.tensor(rows, device=keep.device)
            keep = keep.index_put((index,), hard + soft - soft.detach())
        return keep

    # --- scoring -----------------------------------------------------------------------
    def genotype_plan(self, g: Genotype) -> list[Mode | None]:
        """Kept edges run their op, the others are dropped (`None`)."""
        kept = edge_ops(g)
        plan: list[Mode | None] = []
        for d, mixed in zip(self.net.layer_of(), self.net.mixed(), strict=True):
            col = kept.get(d)
            if col is not None and col not in mixed.columns:
                raise ValueError(f"{mixed.name}: {self.space.candidates[col]} is not searched here")
            plan.append(
                None if col is None else self.single(mixed.columns.index(col), len(mixed.columns))
            )
        return plan

    def single(self, index: int, n: int) -> Mode:
        """How a kept edge runs its one op (PC-DARTS: on its channel share)."""
        return Single(index)

    def score_genotype(self, g: Genotype, split: str = "val") -> float:
        return self.plan_accuracy(self.genotype_plan(g), split)

    def evaluate(self) -> dict[str, float]:
        return {"argmax_acc": self.score_genotype(self.genotype())}

    def epoch_record(self, warmup: bool, seconds: float) -> dict[str, Any]:
        g = self.genotype()
        return {
            **super().epoch_record(warmup, seconds),
            "genotype": [list(g.normal), list(g.reduce)],
        }

    # --- the result --------------------------------------------------------------------
    def final_genotype(self) -> Genotype:
        """What the search proposes (P-DARTS adds its skip-connect rule)."""
        return self.genotype()

    def finish(self) -> SearchResult:
        proposed = self.final_genotype()
        final = self.fit(proposed)
        assert isinstance(self.table.space, Darts)
        columns = layer_columns(self.table.space, final)
        changed = edges_changed(proposed, final)
        before = genotype_ms(self.table, self.costs, proposed)
        after = genotype_ms(self.table, self.costs, final)
        repair = None
        if changed:
            repair = {"before_ms": before, "after_ms": after, "changed": changed,
                      "edges": 4 * STEPS}  # fmt: skip
        return SearchResult(
            columns=columns,
            choices=self.table.names(columns),
            table_ms=after,
            proposed_ms=before,
            history=self.history,
            selection={"how": self.selection_how(), "considered": []},
            repair=repair,
            val_acc=self.score_genotype(final),
            test_acc=self.score_genotype(final, split="test"),
            arch=final,
        )

    def selection_how(self) -> str:
        return "top-2 incoming edges per node by the strongest non-none op"

    def fit(self, g: Genotype) -> Genotype:
        h = self.hard
        if h is None or h.satisfied(genotype_ms(self.table, self.costs, g)):
            return g
        logp = torch.log(self.parse_weights().detach().double().cpu().clamp_min(1e-12))
        legal = self.arch.legal.cpu()
        return repair_genotype(self.table, self.costs, logp, g, h.target_ms, h.tolerance,
                               h.constraint, legal)  # fmt: skip
