"""The standalone networks of the spaces' architectures, in torch: a chain of blocks, and
the DARTS network of a genotype (NetworkCIFAR without auxiliary head). Only `build_child`
imports this module, so listing a space's ops (what the service does) needs no torch."""

from __future__ import annotations

import torch
from torch import nn

from profiler.blocks import build_module
from profiler.ops import OpSpec
from searchers.spaces.darts import Genotype


class ChainNet(nn.Module):
    """A straight sequence of blocks; `specs[i]` is the OpSpec of `blocks[i]`."""

    def __init__(self, specs: list[OpSpec]):
        super().__init__()
        self.specs = list(specs)
        self.blocks = nn.ModuleList(build_module(spec) for spec in specs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return x


class DartsCell(nn.Module):
    def __init__(self, specs: list[OpSpec], inputs: list[int]):
        super().__init__()
        self.pre0, self.pre1 = build_module(specs[0]), build_module(specs[1])
        self.ops = nn.ModuleList(build_module(spec) for spec in specs[2:])
        self.inputs = inputs

    def forward(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        states = [self.pre0(s0), self.pre1(s1)]
        for node in range(len(self.ops) // 2):
            a, b = 2 * node, 2 * node + 1
            states.append(self.ops[a](states[self.inputs[a]]) + self.ops[b](states[self.inputs[b]]))
        return torch.cat(states[2:], dim=1)  # (N, 4C, H, W): all intermediate nodes


class DartsNet(nn.Module):
    """`specs` is `Darts.arch_ops(genotype)`: stem, then per cell pre0, pre1 and 8 edge ops,
    then the head; `block_modules()` returns the modules in the same order."""

    def __init__(
        self, specs: list[OpSpec], genotype: Genotype, cells: int, reductions: tuple[int, ...]
    ):
        super().__init__()
        self.specs = list(specs)
        self.stem = build_module(specs[0])
        per_cell = 2 + len(genotype.normal)
        self.cells = nn.ModuleList()
        for i in range(cells):
            chunk = specs[1 + i * per_cell : 1 + (i + 1) * per_cell]
            pairs = genotype.reduce if i in reductions else genotype.normal
            self.cells.append(DartsCell(chunk, [src for _, src in pairs]))
        self.head = build_module(specs[-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1)
        return self.head(s1)

    def block_modules(self) -> list[nn.Module]:
        blocks: list[nn.Module] = [self.stem]
        for cell in self.cells:
            assert isinstance(cell, DartsCell)
            blocks += [cell.pre0, cell.pre1, *cell.ops]
        return [*blocks, self.head]
