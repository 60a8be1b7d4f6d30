"""Supernets: what every one offers (`Supernet`), and the one of chain spaces.

`net(x, plan)` runs the network with mixed op l in mode `plan[l]` (core/mixed.py). A
supernet holds no architecture parameters and no run state: the plan is the whole of
how it runs, built by the searcher for each forward. The chain supernet is the fixed
stem, one mixed op per searchable layer, the fixed tail; the DARTS cell supernet is in
cells.py.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence

import torch
from torch import nn

from profiler.blocks import build_module
from searchers.core.mixed import MixedOp, Mode, Single
from searchers.spaces import SearchSpace
from searchers.spaces._chain import ChainSpace


class Supernet(nn.Module):
    """The mixed ops in table-layer order, the decision mask, and plans."""

    @abstractmethod
    def mixed(self) -> list[MixedOp]:
        """Every mixed op, in `space.layers()` order."""

    @abstractmethod
    def mask(self) -> torch.Tensor:
        """[decisions x candidates]: True where a decision holds the candidate."""

    @abstractmethod
    def layer_of(self) -> list[int] | None:
        """The decision each table layer follows (None: one decision per layer)."""

    def single_plan(self, columns: Sequence[int]) -> list[Mode | None]:
        """The plan that runs one candidate (a table column) per layer."""
        plan: list[Mode | None] = []
        for mixed, col in zip(self.mixed(), columns, strict=True):
            if col not in mixed.columns:
                raise ValueError(f"{mixed.name}: column {col} is illegal here")
            plan.append(Single(mixed.columns.index(col)))
        return plan


class ChainSupernet(Supernet):
    def __init__(self, space: SearchSpace):
        super().__init__()
        if not isinstance(space, ChainSpace):
            raise ValueError(f"space: {space.name} is not a chain space; use CellSupernet")
        fixed, n = space.fixed_ops(), space.n_stem
        self.space = space
        self.stem = nn.Sequential(*(build_module(op) for op in fixed[:n]))
        self.layers = nn.ModuleList(MixedOp(layer, space.candidates) for layer in space.layers())
        self.tail = nn.Sequential(*(build_module(op) for op in fixed[n:]))
        self.train()

    def forward(self, x: torch.Tensor, plan: Sequence[Mode | None]) -> torch.Tensor:
        x = self.stem(x)
        for layer, mode in zip(self.layers, plan, strict=True):
            x = layer(x, mode)
        return self.tail(x).flatten(1)  # (N, classes, [1, 1]) -> (N, classes)

    def mixed(self) -> list[MixedOp]:
        return list(self.layers)  # type: ignore[arg-type]

    def mask(self) -> torch.Tensor:
        width = len(self.space.candidates)
        legal = torch.zeros(len(self.layers), width, dtype=torch.bool)
        for row, mixed in enumerate(self.mixed()):
            legal[row, mixed.columns] = True
        return legal

    def layer_of(self) -> list[int] | None:
        return None

    def keep_first(self, k: int) -> ChainSupernet:
        """Cut every layer to its first k candidates (benchmarks and tests of how a step
        scales with the number of candidates); build the arch params from `mask()` after."""
        for mixed in self.mixed():
            mixed.columns = mixed.columns[:k]
            mixed.candidates = nn.ModuleList(list(mixed.candidates)[:k])
        return self
