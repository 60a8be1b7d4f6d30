"""The supernet of the DARTS cell space: stem, cells of 4 nodes, a mixed op per edge.

Node i of a cell sums one mixed op per earlier state (the two cell inputs after their
fixed preprocessing, and nodes 0..i-1): 2 + 3 + 4 + 5 = 14 edges; the cell's output
concatenates the 4 nodes. `net(x, plan, edge_weights)` takes one mode per table layer
(cell-major, `space.layers()` order); `None` drops an edge (a discrete genotype keeps
two inputs per node). `edge_weights` (one per layer) scale the edges' outputs: PC-DARTS'
edge normalisation β.

Architecture decisions are per cell *type* and edge (all normal cells share one
genotype, all reduction cells another): `mask()` is [28 x 8] and `layer_of()` maps each
of the `cells x 14` layers to its decision.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from profiler.blocks import build_module
from profiler.ops import OpSpec
from searchers.core.mixed import MixedOp, Mode
from searchers.core.supernet import Supernet
from searchers.spaces.base import Layer
from searchers.spaces.darts import EDGE_OFFSET, EDGES, STEPS, Darts


class SearchCell(nn.Module):
    def __init__(
        self, pre0: OpSpec, pre1: OpSpec, layers: list[Layer], columns: Sequence[str], k: int
    ):
        super().__init__()
        self.pre0, self.pre1 = build_module(pre0), build_module(pre1)
        self.edges = nn.ModuleList(MixedOp(layer, columns, k) for layer in layers)

    def forward(
        self,
        s0: torch.Tensor,
        s1: torch.Tensor,
        plan: Sequence[Mode | None],
        edge_weights: torch.Tensor | None,
    ) -> torch.Tensor:
        states = [self.pre0(s0), self.pre1(s1)]
        for node in range(STEPS):
            terms = []
            for j, state in enumerate(states):
                e = EDGE_OFFSET[node] + j
                if plan[e] is None:
                    continue
                out = self.edges[e](state, plan[e])
                terms.append(out if edge_weights is None else edge_weights[e] * out)
            if not terms:
                raise ValueError(f"node {node}: every incoming edge is dropped")
            states.append(torch.stack(terms).sum(dim=0))
        return torch.cat(states[2:], dim=1)  # (N, 4C, H, W): the four nodes


class CellSupernet(Supernet):
    def __init__(self, space: Darts, channels_div: int = 1):
        super().__init__()
        if not isinstance(space, Darts):
            raise ValueError(f"space: {space.name} is not a cell space; use ChainSupernet")
        if channels_div < 1 or space.c_eff % (2 * channels_div):
            raise ValueError(
                f"channels_div: C={space.c_eff} must split into {channels_div} even parts"
            )
        self.space = space
        fixed, layers = space.fixed_ops(), space.layers()
        self.stem = build_module(fixed[0])
        self.cells = nn.ModuleList(
            SearchCell(
                fixed[1 + 2 * i],
                fixed[2 + 2 * i],
                layers[i * EDGES : (i + 1) * EDGES],
                space.candidates,
                channels_div,
            )
            for i in range(space.cells)
        )
        self.head = build_module(fixed[-1])
        groups = [layer.group for layer in layers]
        self.decisions = list(dict.fromkeys(groups))  # normal.edge0..13, reduce.edge0..13
        self._layer_of = [self.decisions.index(g) for g in groups]
        self.train()

    def forward(
        self,
        x: torch.Tensor,
        plan: Sequence[Mode | None],
        edge_weights: torch.Tensor | None = None,
    ) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        for i, cell in enumerate(self.cells):
            part = slice(i * EDGES, (i + 1) * EDGES)
            weights = None if edge_weights is None else edge_weights[part]
            s0, s1 = s1, cell(s0, s1, plan[part], weights)
        return self.head(s1)  # (N, classes)

    def mixed(self) -> list[MixedOp]:
        return [edge for cell in self.cells for edge in cell.edges]  # type: ignore[union-attr]

    def keep_only(self, keep: torch.Tensor) -> CellSupernet:
        """Cut every edge to the candidates `keep[decision]` allows (P-DARTS' op sets);
        build the architecture parameters from `mask()` after."""
        for d, mixed in zip(self._layer_of, self.mixed(), strict=True):
            kept = [i for i, col in enumerate(mixed.columns) if bool(keep[d, col])]
            if not kept:
                raise ValueError(f"{mixed.name}: keep leaves no candidate")
            mixed.columns = [mixed.columns[i] for i in kept]
            mixed.candidates = nn.ModuleList(mixed.candidates[i] for i in kept)
            mixed.identity = [mixed.identity[i] for i in kept]
        return self

    def mask(self) -> torch.Tensor:
        """[decisions x candidates], from the first layer of each decision."""
        width = len(self.space.candidates)
        legal = torch.zeros(len(self.decisions), width, dtype=torch.bool)
        for decision, mixed in zip(self._layer_of, self.mixed(), strict=True):
            legal[decision, mixed.columns] = True
        return legal

    def layer_of(self) -> list[int]:
        return list(self._layer_of)

    def node_of(self) -> list[int]:
        """Per decision, the node (of its cell type) its edge enters."""
        nodes = []
        for name in self.decisions:
            kind, edge = name.split(".edge")
            node = max(i for i in range(STEPS) if EDGE_OFFSET[i] <= int(edge))
            nodes.append(node + (STEPS if kind == "reduce" else 0))
        return nodes
