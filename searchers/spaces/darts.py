"""DARTS cell space (Liu et al., ICLR 2019): 8 ops on each of 14 edges, two cell types.

A network is a 3x3 conv stem (3C channels), `cells` cells (reduction cells, with twice
the channels and half the resolution, at 1/3 and 2/3 of the depth) and a pool +
linear classifier. Each cell preprocesses its two inputs to C channels (1x1
ReLU-Conv-BN, or a factorized reduce after a reduction cell) and has 4 nodes; node i
sums two edges from {input0, input1, node0..node(i-1)}. All normal cells share one
genotype and all reduction cells another, as in DARTS.

An architecture is a DARTS genotype (the `none` op is never part of one):
`{"normal": [["sep_conv_3x3", 0], ["skip_connect", 1], ...8 pairs], "reduce": [...]}`.
`layers()` lists one layer per (cell, edge) with all 8 ops, grouped by cell type and
edge (`normal.edge5`): the latency-table view a searcher sums over.
"""

from __future__ import annotations

import math
import random
from typing import TYPE_CHECKING, Any, NamedTuple

from profiler.ops import OpSpec
from searchers.spaces._registry import register_space
from searchers.spaces.base import ArchError, Choice, Layer, SearchSpace, expect_list

if TYPE_CHECKING:
    from torch import nn


class Genotype(NamedTuple):
    normal: tuple[tuple[str, int], ...]  # (op, input) x 8: two edges per node
    reduce: tuple[tuple[str, int], ...]


OPS = (
    "none",
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
)
STEPS = 4
MAX_CELLS, MAX_C = 64, 1024  # far beyond published networks (20 cells, C=36); bounds work
EDGE_OFFSET = tuple(sum(t + 2 for t in range(i)) for i in range(STEPS))  # (0, 2, 5, 9)
EDGES = EDGE_OFFSET[-1] + STEPS + 1  # 14 edges a cell


def darts_op(name: str, shape: tuple[int, ...], stride: int, dtype: str = "float32") -> OpSpec:
    """The OpSpec of a DARTS operation name on an input of `shape` (N, C, H, W)."""
    c = shape[1]
    if name == "none":
        return OpSpec.make("zero", shape, dtype, c=c, s=stride)
    if name == "skip_connect":
        return OpSpec.make("skip", shape, dtype, cin=c, cout=c, s=stride)
    family, _, size = name.rpartition("_")
    k = int(size[0])
    if family in ("max_pool", "avg_pool"):
        return OpSpec.make("pool", shape, dtype, c=c, k=k, s=stride, mode=family[:3])
    return OpSpec.make(family, shape, dtype, c=c, k=k, s=stride)


@register_space
class Darts(SearchSpace):
    name = "darts"
    candidates = OPS
    default_resolution = 32
    default_classes = 10
    description = "DARTS cell space: 14 edges x 8 ops, normal and reduction cells"
    free_candidates = ("none",)  # an edge whose op is `none` is not in the child at all

    def __init__(
        self,
        resolution: int | None = None,
        width: float = 1.0,
        classes: int | None = None,
        batch: int = 1,
        dtype: str = "float32",
        C: int = 16,
        cells: int = 8,
    ):
        for field, value in (("C", C), ("cells", cells)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{field}: must be a positive integer, got {value!r}")
        if not 3 <= cells <= MAX_CELLS:
            raise ValueError(
                f"cells: DARTS needs 3 to {MAX_CELLS} cells (two of them reductions), got {cells}"
            )
        if C > MAX_C:
            raise ValueError(f"C: at most {MAX_C} channels, got {C}")
        self.C, self.cells = C, cells
        super().__init__(resolution, width, classes, batch, dtype)

    @property
    def c_eff(self) -> int:
        """C after the width multiplier, kept even (factorized reduce halves it)."""
        return max(2, 2 * round(self.C * self.width / 2))

    def reductions(self) -> tuple[int, ...]:
        return (self.cells // 3, 2 * self.cells // 3)

    def _plan(self) -> tuple[list[OpSpec], list[Layer]]:
        n, r, dt, c = self.batch, self.resolution, self.dtype, self.c_eff
        stem = OpSpec.make("conv", (n, 3, r, r), dt, cin=3, cout=3 * c, k=3, s=1, act="none")
        fixed, layers = [stem], list[Layer]()
        for i, cell in enumerate(self._cell_shapes()):
            fixed += [cell["pre0"], cell["pre1"]]
            kind = "reduce" if cell["reduction"] else "normal"
            for node in range(STEPS):
                for j in range(node + 2):
                    stride, shape = self._edge_io(cell, j)
                    edge = EDGE_OFFSET[node] + j
                    choices = tuple(Choice(op, darts_op(op, shape, stride, dt)) for op in OPS)
                    layers.append(Layer(f"cell{i}.edge{edge}", choices, f"{kind}.edge{edge}"))
        last = self._cell_shapes()[-1]
        h, c_out = last["h_out"], 4 * last["c"]
        fixed.append(OpSpec.make("head", (n, c_out, h, h), dt, cin=c_out, cout=self.classes))
        return fixed, layers

    def _edge_io(self, cell: dict[str, Any], j: int) -> tuple[int, tuple[int, int, int, int]]:
        """Stride and input shape of an edge from input j of a cell."""
        stride = 2 if cell["reduction"] and j < 2 else 1
        h = cell["h"] if j < 2 else cell["h_out"]
        return stride, (self.batch, cell["c"], h, h)

    def _cell_shapes(self) -> list[dict[str, Any]]:
        """Per cell: its width, input/output resolution and its two preprocessing ops."""
        n, dt = self.batch, self.dtype
        c_pp = c_p = 3 * self.c_eff
        h_pp = h_p = self.resolution
        c, reduction_prev, cells = self.c_eff, False, []
        for i in range(self.cells):
            reduction = i in self.reductions()
            c = c * 2 if reduction else c
            if reduction_prev:
                pre0 = OpSpec.make("skip", (n, c_pp, h_pp, h_pp), dt, cin=c_pp, cout=c, s=2)
            else:
                pre0 = OpSpec.make(
                    "conv", (n, c_pp, h_pp, h_pp), dt, cin=c_pp, cout=c, k=1, s=1, preact=1
                )
            pre1 = OpSpec.make("conv", (n, c_p, h_p, h_p), dt, cin=c_p, cout=c, k=1, s=1, preact=1)
            h_out = (h_p - 1) // 2 + 1 if reduction else h_p
            cells.append(
                {
                    "c": c,
                    "h": h_p,
                    "h_out": h_out,
                    "reduction": reduction,
                    "pre0": pre0,
                    "pre1": pre1,
                }
            )
            c_pp, c_p, h_pp, h_p = c_p, 4 * c, h_p, h_out
            reduction_prev = reduction
        return cells

    # --- architectures -------------------------------------------------------------------
    def params(self) -> dict[str, Any]:
        return {**super().params(), "C": self.C, "cells": self.cells}

    def size(self) -> int:
        per_cell = math.prod(math.comb(i + 2, 2) * (len(OPS) - 1) ** 2 for i in range(STEPS))
        return per_cell**2

    def size_formula(self) -> str:
        # per cell type: node i keeps 2 of its i + 2 inputs, each with one of 7 ops
        return "(C(2,2)*C(3,2)*C(4,2)*C(5,2) * 7^8)^2"

    def parse_arch(self, data: Any) -> Genotype:
        if isinstance(data, Genotype):
            data = {"normal": data.normal, "reduce": data.reduce}
        if not isinstance(data, dict):
            raise ArchError(f"arch: expected a JSON object, got {type(data).__name__}")
        self.check_params(data)
        known = {*self.params(), "normal", "reduce", "normal_concat", "reduce_concat"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ArchError(f"{unknown[0]}: unknown field in a darts architecture")
        for concat in ("normal_concat", "reduce_concat"):
            if concat in data and list(data[concat]) != list(range(2, 2 + STEPS)):
                raise ArchError(f"{concat}: only the full concatenation [2, 3, 4, 5] exists")
        return Genotype(self._parse_cell(data, "normal"), self._parse_cell(data, "reduce"))

    def _parse_cell(self, data: dict[str, Any], kind: str) -> tuple[tuple[str, int], ...]:
        if kind not in data:
            raise ArchError(f"{kind}: missing (8 [op, input] pairs, two per node)")
        pairs = expect_list(data[kind], kind, 2 * STEPS)
        out: list[tuple[str, int]] = []
        for idx, pair in enumerate(pairs):
            where = f"{kind}[{idx}]"
            if not isinstance(pair, list | tuple) or len(pair) != 2:
                raise ArchError(f"{where}: expected [op, input], got {pair!r}")
            op, src = pair
            node = idx // 2
            if op not in OPS[1:]:
                raise ArchError(f"{where}: unknown op {op!r} (ops: {', '.join(OPS[1:])})")
            if isinstance(src, bool) or not isinstance(src, int) or not 0 <= src < node + 2:
                raise ArchError(f"{where}: node {node} takes inputs 0..{node + 1}, got {src!r}")
            if idx % 2 and src == out[-1][1]:
                raise ArchError(f"{where}: node {node} uses input {src} twice")
            out.append((op, src))
        return tuple(out)

    def arch_to_json(self, arch: Any) -> dict[str, Any]:
        g = self.parse_arch(arch)
        return {
            **self.params(),
            "normal": [list(p) for p in g.normal],
            "reduce": [list(p) for p in g.reduce],
        }

    def arch_ops(self, arch: Any) -> list[OpSpec]:
        g = self.parse_arch(arch)
        ops = [self._fixed[0]]
        for cell in self._cell_shapes():
            ops += [cell["pre0"], cell["pre1"]]
            for op, src in g.reduce if cell["reduction"] else g.normal:
                stride, shape = self._edge_io(cell, src)
                ops.append(darts_op(op, shape, stride, self.dtype))
        return [*ops, self._fixed[-1]]

    def build_child(self, arch: Any) -> nn.Module:
        g = self.parse_arch(arch)
        from searchers.spaces._nets import DartsNet  # torch only here: the service lists ops

        return DartsNet(self.arch_ops(g), g, self.cells, self.reductions()).eval()

    def random_arch(self, seed: int) -> Genotype:
        rng = random.Random(seed)

        def cell() -> tuple[tuple[str, int], ...]:
            pairs = []
            for node in range(STEPS):
                for src in sorted(rng.sample(range(node + 2), 2)):
                    pairs.append((rng.choice(OPS[1:]), src))
            return tuple(pairs)

        return Genotype(cell(), cell())
