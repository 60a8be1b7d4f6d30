"""DenseNAS (Fang et al., CVPR 2020): widths and depths searched as routes through densely
connected routing blocks (`--space densenas`; the route maths in core/routing.py).

Architecture parameters: β per connection, normalised over the connections *leaving* a
block (the reference's `beta_weights`), so a route is a Markov chain from the stem to the
last block; α per searchable layer (heads and layers) over its candidates, `none` never
one of them (whether a layer runs is the route's decision).

- Weight step (train batch): every block runs; its input is the mix of its heads with
  weights P(in → block | block on the route) (detached), each layer one candidate
  sampled from softmax(α) (uniform in the warm-up), as the reference's weight step.
  The reference weighs a head by its source's w_e, so a block's head weights sum to
  anything from ~0.3 to ~3; the conditional probabilities sum to 1, are the latency
  formula's, and tend to the one-hot route that is exported.
- Architecture step (search-validation batch), as the reference's: per layer two
  candidates sampled from softmax(α), their weighted sum by softmax(α) over the two;
  the heads mixed by the same route weights, with gradients to α and β; then the two
  α are shifted by a common offset so that their total probability is what it was
  (`paths=0`: every candidate, the exact mixture). This keeps the others' probabilities
  against the CE gradient of that step only: the latency term reaches every α, and
  Adam's momentum moves α it has moved before.
- Latency: E[LAT] = fixed + Σ_b P(b)·(Σ_in P(in → b | b)·E[head] + Σ_layers E[layer])
  (`LatencyTable.expected` of the route-aware marginals); a hard target acts on it
  sharpened by the controller's temperature (α/τ and β/τ), its dual step on the exact
  latency of the architecture exported now.
- Export: the Viterbi route (largest product of route probabilities, the reference's
  `derive_chs`) with each of its layers' most probable candidate; into a hard target by
  the route-aware repair (fewest layers changed on the route, then the most probable),
  trying the next most probable routes when the Viterbi one cannot reach it.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from searchers.core.arch import keep_sampled_mass
from searchers.core.config import SearchConfig, option
from searchers.core.loop import Searcher, SearchResult
from searchers.core.mixed import Mode, Single, Weighted
from searchers.core.routing import (
    RouteAlpha,
    RouteGraph,
    RoutePlan,
    RoutingSupernet,
    columns,
    fit_route,
    route_bounds,
    row_probs,
)
from searchers.latency import LatencyTable
from searchers.registry import register_searcher
from searchers.spaces.densenas import DenseNas


@dataclass
class DenseNASConfig(SearchConfig):
    paths: int = option(
        2, "candidates per layer an architecture step runs (0: all of them)", "DenseNAS"
    )
    max_routes: int = option(
        64, "routes the repair tries, most probable first, when a hard target is out of reach "
        "of the Viterbi route"
    )  # fmt: skip

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.paths < 0 or self.paths == 1:
            raise ValueError(f"paths: 0 (all) or at least 2, got {self.paths}")
        if self.max_routes < 1:
            raise ValueError(f"max_routes: must be >= 1, got {self.max_routes}")


@register_searcher
class DenseNAS(Searcher):
    name = "densenas"
    paper = "DenseNAS (Fang et al., CVPR 2020)"
    Config = DenseNASConfig
    config: DenseNASConfig
    space_kind = DenseNas
    net: RoutingSupernet
    arch: RouteAlpha

    @classmethod
    def table_bounds(cls, table: LatencyTable) -> tuple[float, float]:
        """Over valid architectures only: a route and a non-`none` candidate per layer."""
        cls.check_space(table.space)
        assert isinstance(table.space, DenseNas)  # check_space passed
        return route_bounds(table, RouteGraph.of(table.space))

    def build_supernet(self) -> RoutingSupernet:
        assert isinstance(self.space, DenseNas)  # check_space ran first
        return RoutingSupernet(self.space)

    def build_arch(self) -> RouteAlpha:
        return RouteAlpha(self.net.mask(), self.net.graph)

    def weight_plan(self, warmup: bool) -> RoutePlan:
        p = self.arch.legal.cpu().float() if warmup else self.arch.probs().detach().cpu()
        picks = torch.multinomial(p, 1, generator=self.gen).squeeze(1).tolist()
        modes = [Single(m.columns.index(c)) for m, c in zip(self.net.mixed(), picks, strict=True)]
        with torch.no_grad():
            return RoutePlan(modes, self.arch.head_weights())

    def arch_step(
        self, train: tuple[torch.Tensor, torch.Tensor], val: tuple[torch.Tensor, torch.Tensor]
    ) -> None:
        x, y = val
        plan, before = self.sampled_paths()
        ce = F.cross_entropy(self.forward(x, plan), y)
        self.arch_update(ce if self.latency is None else self.latency(ce, self.expected_ms()))
        keep_sampled_mass(self.alpha, before)

    def sampled_paths(self) -> tuple[RoutePlan, dict[int, tuple[list[int], torch.Tensor]]]:
        """Per layer `paths` candidates from softmax(α) weighted by softmax(α) over them
        (all when `paths` is 0); also the sampled columns and their α before the step."""
        alpha, k = self.alpha, self.config.paths
        modes: list[Mode | None] = []
        only, before = {}, {}
        for row, m in enumerate(self.net.mixed()):
            n = len(m.columns)
            if k == 0 or k >= n:
                modes.append(Weighted(F.softmax(alpha[row, m.columns], dim=0)))
                continue
            p = F.softmax(alpha[row, m.columns].detach(), dim=0).cpu()
            picked = sorted(torch.multinomial(p, k, generator=self.gen).tolist())
            cols = [m.columns[i] for i in picked]
            index = torch.tensor(picked, device=alpha.device)
            w = alpha.new_zeros(n).index_put((index,), F.softmax(alpha[row, cols], dim=0))
            modes.append(Weighted(w))
            only[row], before[row] = tuple(picked), (cols, alpha[row, cols].detach().clone())
        return RoutePlan(modes, self.arch.head_weights(), only), before

    def epoch_record(self, warmup: bool, seconds: float) -> dict[str, Any]:
        """The loop's record, with the Viterbi route and each block's P(on the route)."""
        with torch.no_grad():
            p_row = row_probs(self.net.graph, self.arch.edge_weights()).cpu()
        blocks = [1.0] + [float(p_row[rows[0]]) if rows else None
                          for rows in self.net.graph.layer_rows[1:]]  # fmt: skip
        return {
            **super().epoch_record(warmup, seconds),
            "route": self.arch.route(),
            "block_probs": [None if p is None else round(p, 4) for p in blocks],
        }

    # --- the result ------------------------------------------------------------------------
    def finish(self) -> SearchResult:
        proposed = self.arch.argmax()
        final, tried = self.fit(proposed)
        assert isinstance(self.space, DenseNas)
        arch = self.space.columns_arch(final)
        selection = {
            "how": "Viterbi route, argmax per layer",
            "considered": [],
            "route": list(arch.blocks),  # the exported one (another after a repair)
            "viterbi_route": self.arch.route(),
            "routes_tried": tried,
        }
        return self.result(list(proposed), final, selection, self.score(final), arch)

    def fit(self, proposed: Sequence[int]) -> tuple[list[int], int]:
        """`proposed` repaired into a hard target (and how many routes were tried): on the
        Viterbi route first, then on the next most probable ones, up to `max_routes`."""
        h, graph = self.hard, self.net.graph
        if h is None or h.satisfied(self.table.exact(list(proposed))):
            return list(proposed), 0
        logp = torch.log(self.arch.probs().detach().double().clamp_min(1e-12))
        best = self.arch.best_candidates()
        routes = itertools.islice(self.arch.routes(), self.config.max_routes)
        for n, route in enumerate(routes, start=1):
            fitted = fit_route(self.table, graph, logp, route, columns(graph, route, best), h)
            if fitted is not None:
                return fitted, n
        lo, hi = self.table_bounds(self.table)
        raise ValueError(
            f"repair: none of the {self.config.max_routes} most probable routes reaches "
            f"{h.target_ms:g} ms ({h.constraint}, tolerance {h.tolerance:.1%}); valid "
            f"architectures span {lo:.4g}..{hi:.4g} ms: change --target-ms or --set max_routes"
        )
