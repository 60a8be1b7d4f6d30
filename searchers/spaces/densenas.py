"""DenseNAS space (Fang et al., CVPR 2020): widths and depths searched as routes through
densely connected routing blocks, after the MobileNetV2-based space of its reference
(`configs/imagenet_search_cfg_mbv2.yaml`), scaled down for CPUs.

A fixed stem (3x3 conv 32 at stride 2, MBConv1 k3 to 16: block 0), then routing blocks
grouped in stages of increasing width: 24 | 32, 40, 48 | 56, 64, 72 | 96, 112, 128 |
160, 176, 192 | 320 (strides 2, 2, 2, 1, 2, 1), `-o blocks=B` widths of each middle
stage (1-3, spread over its list; default 2), then a fixed head (1x1 conv to 1280, pool,
classifier) after the last block. Each block takes the output of each of the previous
`connections` blocks (default 4, the paper's) that sit in its stage or the stage before.

Per block: a head layer per incoming connection (MBConv k{3,5,7} x e{3,6} from the
input's width to the block's, at stride 2 where the stage halves the resolution) and
`-o layers=L` searchable layers (default 2; DenseNAS: 3), MBConv or `skip`: that is the
depth search. A route is a path through the blocks from the stem to the last block; the
width of a network is which blocks it keeps. Every position also holds `none`, a free
candidate: the position is not on the route (0 ms in the latency table). Its op is a
placeholder of the position's shape that is measured anyway (a layer's `skip`, a head's
k3 e3 MBConv): a zero op could not change the width, and no extra op is profiled.

An architecture is the route and one candidate per searchable layer of its blocks, the
head first: `{"route": [1, 3, 4, ...], "choices": [head of 1, layers of 1, head of 3,
...]}`; `arch_columns`/`columns_arch` map it to the table's columns (`none` off the
route) and back, so `table.exact(space.arch_columns(arch))` is its latency.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from profiler.ops import OpSpec
from searchers.spaces._registry import register_space
from searchers.spaces.base import ArchError, Choice, Layer, SearchSpace, expect_list
from searchers.spaces.proxyless import mbv2_mid, mbv2_stem

if TYPE_CHECKING:
    from torch import nn

# (widths, stride) per stage: DenseNAS' MobileNetV2 channel lists
STAGES = (
    ((24,), 2),
    ((32, 40, 48), 2),
    ((56, 64, 72), 2),
    ((96, 112, 128), 1),
    ((160, 176, 192), 2),
    ((320,), 1),
)
BLOCKS = tuple((k, e) for k in (3, 5, 7) for e in (3, 6))
MBCONVS = tuple(f"{k}x{k}_MBConv{e}" for k, e in BLOCKS)
NONE = "none"
OPTIONS = {"blocks": (1, 3), "layers": (0, 6), "connections": (1, 8)}  # inclusive ranges


@dataclass(frozen=True)
class Block:
    """A routing block (index 0 is the stem's output). `heads[i]` is the row in
    `layers()` of the head from block `inputs[i]`; `rows` its searchable layers."""

    index: int
    width: int
    stage: int
    size: int  # feature map side
    inputs: tuple[int, ...] = ()
    heads: tuple[int, ...] = ()
    rows: tuple[int, ...] = ()

    def head_from(self, src: int) -> int:
        if src not in self.inputs:
            raise ArchError(
                f"route: block {self.index} does not take block {src}'s output "
                f"(it takes {', '.join(map(str, self.inputs))})"
            )
        return self.heads[self.inputs.index(src)]


@dataclass(frozen=True)
class Route:
    """A DenseNAS architecture: the blocks kept (ending at the last) and, per kept block,
    its head's candidate then its layers'."""

    blocks: tuple[int, ...]
    choices: tuple[str, ...]


@register_space
class DenseNas(SearchSpace):
    name = "densenas"
    candidates = (*MBCONVS, "skip", NONE)
    description = "DenseNAS routing blocks: widths and depths searched as routes"
    free_candidates = (NONE,)

    def __init__(
        self,
        resolution: int | None = None,
        width: float = 1.0,
        classes: int | None = None,
        batch: int = 1,
        dtype: str = "float32",
        blocks: int = 2,
        layers: int = 2,
        connections: int = 4,
    ):
        for field, value in (("blocks", blocks), ("layers", layers), ("connections", connections)):
            lo, hi = OPTIONS[field]
            if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
                raise ValueError(f"{field}: an integer in [{lo}, {hi}], got {value!r}")
        self.n_blocks, self.n_layers, self.connections = blocks, layers, connections
        self.blocks: list[Block] = []
        super().__init__(resolution, width, classes, batch, dtype)

    def params(self) -> dict[str, Any]:
        return {**super().params(), "blocks": self.n_blocks, "layers": self.n_layers,
                "connections": self.connections}  # fmt: skip

    # --- structure -------------------------------------------------------------------------
    def _plan(self) -> tuple[list[OpSpec], list[Layer]]:
        stem, first = mbv2_stem(self)
        self.blocks = self._graph(first.out_shape[1], first.out_shape[2])
        layers: list[Layer] = []
        for b in self.blocks[1:]:
            heads = []
            for src in b.inputs:
                heads.append(len(layers))
                layers.append(self._head(self.blocks[src], b))
            rows = []
            for i in range(self.n_layers):
                rows.append(len(layers))
                layers.append(self._layer(b, i))
            self.blocks[b.index] = Block(b.index, b.width, b.stage, b.size, b.inputs,
                                         tuple(heads), tuple(rows))  # fmt: skip
        last = self.blocks[-1]
        shape = (self.batch, last.width, last.size, last.size)
        head = OpSpec.make("head", shape, self.dtype, cin=last.width, cmid=mbv2_mid(self),
                           cout=self.classes, act="relu6")  # fmt: skip
        return [stem, first, head], layers

    def _graph(self, c0: int, h0: int) -> list[Block]:
        """Block 0 (the stem) and the routing blocks, each with the blocks it takes."""
        blocks, size = [Block(0, c0, 0, h0)], h0
        for stage, (widths, stride) in enumerate(STAGES, start=1):
            size = (size - 1) // stride + 1
            for c in self._stage_widths(widths):
                blocks.append(Block(len(blocks), self.width_of(c), stage, size))
        for b in blocks[1:]:
            # the previous `connections` blocks, nearest first, while in this stage or the
            # one before (DenseNAS stops at the first block that is not)
            srcs = []
            for src in range(b.index - 1, max(b.index - self.connections, 0) - 1, -1):
                if b.stage - blocks[src].stage > 1:
                    break
                srcs.append(src)
            blocks[b.index] = Block(b.index, b.width, b.stage, b.size, tuple(sorted(srcs)))
        return blocks

    def _stage_widths(self, widths: tuple[int, ...]) -> list[int]:
        """`blocks` widths spread over a stage's list (a single-width stage keeps it)."""
        k = min(self.n_blocks, len(widths))
        if k == 1:
            return [widths[0]]
        return [widths[round(i * (len(widths) - 1) / (k - 1))] for i in range(k)]

    def stride(self, src: int, dst: int) -> int:
        """2 into a stage that halves the resolution, else 1."""
        a, b = self.blocks[src], self.blocks[dst]
        return STAGES[b.stage - 1][1] if a.stage != b.stage else 1

    def _head(self, src: Block, b: Block) -> Layer:
        s = self.stride(src.index, b.index)
        shape = (self.batch, src.width, src.size, src.size)
        mb = [
            Choice(
                name,
                OpSpec.make(
                    "mbconv", shape, self.dtype, cin=src.width, cout=b.width, e=e, k=k, s=s
                ),
            )
            for name, (k, e) in zip(MBCONVS, BLOCKS, strict=True)
        ]
        none = mb[0].op  # a placeholder of the head's shape: `none` is free in every table
        return Layer(
            f"block{b.index}.in{src.index}", (*mb, Choice("skip", None), Choice(NONE, none))
        )

    def _layer(self, b: Block, i: int) -> Layer:
        shape, c = (self.batch, b.width, b.size, b.size), b.width
        mb = [
            Choice(
                name, OpSpec.make("mbconv", shape, self.dtype, cin=c, cout=c, e=e, k=k, s=1, res=1)
            )
            for name, (k, e) in zip(MBCONVS, BLOCKS, strict=True)
        ]
        skip = OpSpec.make("skip", shape, self.dtype, cin=c, cout=c, s=1)
        return Layer(
            f"block{b.index}.layer{i + 1}", (*mb, Choice("skip", skip), Choice(NONE, skip))
        )

    def outputs(self, src: int) -> list[int]:
        """The blocks that take block `src`'s output."""
        return [b.index for b in self.blocks if src in b.inputs]

    def block_choices(self, b: Block) -> int:
        """Architectures of one kept block once its input is known: head x layers."""
        return len(MBCONVS) * (len(MBCONVS) + 1) ** len(b.rows)

    def _suffix_counts(self, weighted: bool = True) -> list[int]:
        """Per block, the architectures (or routes) from it to the last block."""
        count = [0] * len(self.blocks)
        count[-1] = 1
        for a in range(len(self.blocks) - 2, -1, -1):
            for t in self.outputs(a):
                count[a] += count[t] * (self.block_choices(self.blocks[t]) if weighted else 1)
        return count

    def n_routes(self) -> int:
        return self._suffix_counts(weighted=False)[0]

    def size(self) -> int:
        return self._suffix_counts()[0]

    def size_formula(self) -> str:
        """Σ over routes of (head x layers)^kept blocks, grouped by route length."""
        paths: list[dict[int, int]] = [{} for _ in self.blocks]
        paths[0] = {0: 1}
        for b in self.blocks[1:]:
            for src in b.inputs:
                for n, c in paths[src].items():
                    paths[b.index][n + 1] = paths[b.index].get(n + 1, 0) + c
        per = f"({len(MBCONVS)}*{len(MBCONVS) + 1}^{self.n_layers})"
        return " + ".join(f"{c}*{per}^{n}" for n, c in sorted(paths[-1].items()))

    def summary(self) -> dict[str, Any]:
        blocks = [{"block": b.index, "width": b.width, "size": b.size, "stage": b.stage,
                   "inputs": list(b.inputs)} for b in self.blocks]  # fmt: skip
        return {**super().summary(), "blocks": blocks, "routes": self.n_routes()}

    # --- architectures ---------------------------------------------------------------------
    def parse_arch(self, data: Any) -> Route:
        if isinstance(data, Route):
            data = {"route": list(data.blocks), "choices": list(data.choices)}
        if isinstance(data, list | tuple) and len(data) == len(self._layers):
            return self.columns_arch([self._column(i, n) for i, n in enumerate(data)])
        if not isinstance(data, dict):
            raise ArchError(f"arch: expected a JSON object with route and choices, got {data!r}")
        self.check_params(data)
        unknown = sorted(set(data) - {*self.params(), "route", "choices"})
        if unknown:
            raise ArchError(f"{unknown[0]}: unknown field in a densenas architecture")
        for field in ("route", "choices"):
            if field not in data:
                raise ArchError(f"{field}: missing (the blocks kept, and their layers' candidates)")
        route = self._parse_route(data["route"])
        per = 1 + self.n_layers
        names = expect_list(data["choices"], "choices", per * len(route))
        for i, name in enumerate(names):
            b = self.blocks[route[i // per]]
            prev = route[i // per - 1] if i >= per else 0
            row = b.head_from(prev) if i % per == 0 else b.rows[i % per - 1]
            if not isinstance(name, str) or name == NONE:
                raise ArchError(f"choices[{i}]: expected a candidate of {self._layers[row].name}, "
                                f"got {name!r}")  # fmt: skip
            self._layers[row].op(name)  # raises ArchError naming the layer
        return Route(tuple(route), tuple(names))

    def _parse_route(self, data: Any) -> list[int]:
        if not isinstance(data, list | tuple) or not data:
            raise ArchError(f"route: expected a list of block indices, got {data!r}")
        last = len(self.blocks) - 1
        for b in data:
            if isinstance(b, bool) or not isinstance(b, int) or not 1 <= b <= last:
                raise ArchError(f"route: blocks are 1..{last}, got {b!r}")
        if data[-1] != last:
            raise ArchError(f"route: must end at the last block, {last}; got {data[-1]}")
        for prev, b in zip([0, *data[:-1]], data, strict=True):
            self.blocks[b].head_from(prev)  # raises ArchError naming the connection
        return list(data)

    def _column(self, row: int, name: Any) -> int:
        if not isinstance(name, str) or name not in self.candidates:
            raise ArchError(f"choices[{row}]: unknown candidate {name!r}")
        self._layers[row].op(name)
        return self.candidates.index(name)

    def arch_to_json(self, arch: Any) -> dict[str, Any]:
        r = self.parse_arch(arch)
        return {**self.params(), "route": list(r.blocks), "choices": list(r.choices)}

    def kept_rows(self, route: Sequence[int]) -> list[int]:
        """The rows of the layers a route runs, in forward order: per block its head from
        the block before, then its layers."""
        rows: list[int] = []
        for prev, b in zip([0, *route[:-1]], route, strict=True):
            rows += [self.blocks[b].head_from(prev), *self.blocks[b].rows]
        return rows

    def arch_columns(self, arch: Any) -> list[int]:
        """A table column per layer: the chosen candidate on the route, `none` elsewhere."""
        r = self.parse_arch(arch)
        cols = [self.candidates.index(NONE)] * len(self._layers)
        for row, name in zip(self.kept_rows(r.blocks), r.choices, strict=True):
            cols[row] = self.candidates.index(name)
        return cols

    def columns_arch(self, columns: Sequence[int]) -> Route:
        """The architecture of table columns (`arch_columns`' inverse); ArchError unless
        they are exactly one route."""
        none = self.candidates.index(NONE)
        on = [c != none for c in columns]
        route, at = [], 0
        while at != len(self.blocks) - 1:
            nxt = [t for t in self.outputs(at) if on[self.blocks[t].head_from(at)]]
            if len(nxt) != 1:
                raise ArchError(f"columns: block {at}'s output goes to {len(nxt)} heads, not one")
            route.append(at := nxt[0])
        if sum(on) != len(self.kept_rows(route)):
            raise ArchError("columns: layers off the route are not `none`")
        names = [self.candidates[columns[row]] for row in self.kept_rows(route)]
        return self.parse_arch({"route": route, "choices": names})

    def arch_ops(self, arch: Any) -> list[OpSpec]:
        r = self.parse_arch(arch)
        rows = self.kept_rows(r.blocks)
        chosen = [self._layers[row].op(n) for row, n in zip(rows, r.choices, strict=True)]
        return [*self._fixed[:2], *chosen, self._fixed[2]]

    def build_child(self, arch: Any) -> nn.Module:
        from searchers.spaces._nets import ChainNet  # torch only here: the service lists ops

        return ChainNet(self.arch_ops(arch)).eval()

    def random_arch(self, seed: int) -> Route:
        """Uniform over architectures: each next block drawn in proportion to the
        architectures that go through it."""
        rng, count = random.Random(seed), self._suffix_counts()
        route, at = [], 0
        while at != len(self.blocks) - 1:
            nxt = self.outputs(at)
            weights = [count[t] * self.block_choices(self.blocks[t]) for t in nxt]
            route.append(at := rng.choices(nxt, weights)[0])
        names = [rng.choice([c.name for c in self._layers[row].legal if c.name != NONE])
                 for row in self.kept_rows(route)]  # fmt: skip
        return Route(tuple(route), tuple(names))
