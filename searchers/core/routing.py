"""DenseNAS routing: the supernet of densely connected blocks and the maths of routes.

The `densenas` space (spaces/densenas.py) is a DAG: block 0 is the stem's output, every
other block takes the outputs of a few blocks before it through one head layer per
connection (edge), and a route is a path from block 0 to the last block. Edge e is the
connection whose head is searchable layer `head_row[e]`.

Route probabilities (DenseNAS' path probabilities): β per edge, normalised over the edges
*leaving* the same block as in the reference (`beta_weights`: a softmax over a block's
outgoing connections), so the route is a Markov chain from block 0 forward:

    w_e = softmax(β over the edges out of src(e))[e]
    P(block 0) = 1,   P(e) = P(src(e))·w_e,   P(b) = Σ_{e into b} P(e)

and every route ends at the last block (P = 1 there). A layer is on the route with
P(e) for the head of e and P(b) for a layer of block b, so with q the layer-level
softmax over a position's candidates (`none` excluded) the marginal of each table cell
is P(row)·q, with 1 − P(row) on `none`, and

    E[LAT] = fixed + Σ_e P(e)·E_q[head_e] + Σ_b P(b)·Σ_layers E_q[layer]
           = table.expected(marginals)

(P(e) = P(b)·P(e | b): the brief's Σ_b P(b)·Σ_in P(in → b | b)·E[head]). For one-hot β
and q it is the exact table latency of that route and choices.

Export (`derive_chs` of the reference): Viterbi, the route of largest Π w_e, then the most
probable candidate per layer on it. `routes_by_probability` yields the routes in
decreasing probability (best-first search with the exact best completion as heuristic),
which the route-aware repair walks when a target is out of reach on the Viterbi route.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from profiler.blocks import build_module
from searchers.core.arch import Alpha
from searchers.core.losses import HardTarget
from searchers.core.mixed import MixedOp, Mode, Single, Weighted
from searchers.core.repair import solve_groups
from searchers.core.supernet import Supernet
from searchers.latency import LatencyTable
from searchers.spaces.base import Choice, Layer
from searchers.spaces.densenas import NONE, DenseNas


@dataclass(frozen=True)
class RouteGraph:
    """The blocks as a DAG. Edges are in `layers()` order of their heads, so every edge
    into block b comes after every edge into a block before b."""

    src: tuple[int, ...]
    dst: tuple[int, ...]
    head_row: tuple[int, ...]
    layer_rows: tuple[tuple[int, ...], ...]  # per block
    n_rows: int
    none: int  # the `none` column

    @classmethod
    def of(cls, space: DenseNas) -> RouteGraph:
        edges = sorted((row, src, b.index) for b in space.blocks for src, row in
                       zip(b.inputs, b.heads, strict=True))  # fmt: skip
        return cls(
            src=tuple(s for _, s, _ in edges),
            dst=tuple(d for _, _, d in edges),
            head_row=tuple(r for r, _, _ in edges),
            layer_rows=tuple(b.rows for b in space.blocks),
            n_rows=len(space.layers()),
            none=space.candidates.index(NONE),
        )

    @property
    def last(self) -> int:
        return len(self.layer_rows) - 1

    def into(self, b: int) -> list[int]:
        return [e for e, d in enumerate(self.dst) if d == b]

    def out_of(self, a: int) -> list[int]:
        return [e for e, s in enumerate(self.src) if s == a]

    def edge(self, a: int, b: int) -> int:
        return next(e for e in self.into(b) if self.src[e] == a)

    def route_rows(self, route: Sequence[int]) -> list[int]:
        """The rows a route runs, in forward order (its heads and its blocks' layers)."""
        rows: list[int] = []
        for a, b in zip([0, *route[:-1]], route, strict=True):
            rows += [self.head_row[self.edge(a, b)], *self.layer_rows[b]]
        return rows


class RouteAlpha(Alpha):
    """α per layer over its candidates (`none` excluded: the route decides it) and β per
    edge, both zero-initialised (uniform). `layer_probs` are the route-aware marginals,
    `argmax` the Viterbi route with each of its layers' most probable candidate."""

    def __init__(self, mask: torch.Tensor, graph: RouteGraph):
        super().__init__(mask)
        self.graph = graph
        self.beta = nn.Parameter(torch.zeros(len(graph.src)))

    def edge_weights(self, temperature: float = 1.0) -> torch.Tensor:
        return edge_weights(self.graph, self.beta / temperature)

    def layer_probs(self, temperature: float = 1.0) -> torch.Tensor:
        return marginals(self.graph, self.edge_weights(temperature), self.probs(temperature))

    def head_weights(self) -> torch.Tensor:
        return head_weights(self.graph, self.edge_weights())

    def log_w(self) -> list[float]:
        return torch.log(self.edge_weights().detach().double().cpu()).tolist()

    def route(self) -> list[int]:
        return viterbi(self.graph, self.log_w())

    def routes(self) -> Iterator[list[int]]:
        return routes_by_probability(self.graph, self.log_w())

    def best_candidates(self) -> list[int]:
        """The most probable candidate column of every layer, on the route or not."""
        return super().argmax()

    def argmax(self) -> list[int]:
        return columns(self.graph, self.route(), self.best_candidates())

    def sample_route(self, gen: torch.Generator | None = None) -> list[int]:
        """A route walked from block 0, each next block drawn by w."""
        w, route, at = self.edge_weights().detach().cpu(), [], 0
        while at != self.graph.last:
            out = self.graph.out_of(at)
            e = out[int(torch.multinomial(w[out], 1, generator=gen))]
            route.append(at := self.graph.dst[e])
        return route

    def sample(self, gen: torch.Generator | None = None) -> list[int]:
        """A route drawn by w, and a candidate per layer by q."""
        return columns(self.graph, self.sample_route(gen), super().sample(gen))


class RoutePlan(list[Mode | None]):
    """A mode per layer (None: not run); the weight of each edge's head in its block's
    input (None: every head that runs counts 1, as on one route); `only[row]`: the
    candidates a `Weighted` layer runs, the others weighing 0 (DenseNAS' two paths)."""

    def __init__(
        self,
        modes: Sequence[Mode | None],
        edges: torch.Tensor | None = None,
        only: dict[int, tuple[int, ...]] | None = None,
    ):
        super().__init__(modes)
        self.edges, self.only = edges, only or {}


class RoutingSupernet(Supernet):
    """Stem, every block with a mixed op per head and per layer, the tail. A block runs
    when one of its heads runs on an input that ran; its input is the weighted sum of
    those heads (`RoutePlan.edges`)."""

    def __init__(self, space: DenseNas):
        super().__init__()
        fixed = space.fixed_ops()
        self.graph, self.n_candidates = RouteGraph.of(space), len(space.candidates)
        self.space = space
        self.stem = nn.Sequential(build_module(fixed[0]), build_module(fixed[1]))
        self.layers = nn.ModuleList(
            MixedOp(_searched(la), space.candidates) for la in space.layers()
        )
        self.tail = build_module(fixed[2])
        self.train()

    def forward(self, x: torch.Tensor, plan: Sequence[Mode | None]) -> torch.Tensor:
        g, edges = self.graph, plan.edges if isinstance(plan, RoutePlan) else None
        only = plan.only if isinstance(plan, RoutePlan) else {}
        states: list[torch.Tensor | None] = [self.stem(x)] + [None] * g.last
        for b in range(1, g.last + 1):
            h: torch.Tensor | None = None
            for e in g.into(b):
                mode, inp = plan[g.head_row[e]], states[g.src[e]]
                if mode is None or inp is None:
                    continue  # an edge off the route
                y = self._run(g.head_row[e], inp, mode, only)
                y = y if edges is None else edges[e] * y
                h = y if h is None else h + y
            if h is None:
                continue  # a block off the route
            for row in g.layer_rows[b]:
                mode = plan[row]
                assert mode is not None, f"{self.layers[row].name}: on the route, so it runs"
                h = self._run(row, h, mode, only)
            states[b] = h
        out = states[-1]
        assert out is not None, "every route ends at the last block"
        return self.tail(out).flatten(1)  # (N, classes, [1, 1]) -> (N, classes)

    def _run(
        self, row: int, x: torch.Tensor, mode: Mode, only: dict[int, tuple[int, ...]]
    ) -> torch.Tensor:
        mixed = self.layers[row]
        assert isinstance(mixed, MixedOp)
        if row not in only or not isinstance(mode, Weighted):
            out: torch.Tensor = mixed(x, mode)
            return out
        paths = only[row]
        y = mode.weights[paths[0]] * mixed.candidates[paths[0]](x)
        for i in paths[1:]:
            y = y + mode.weights[i] * mixed.candidates[i](x)
        return y

    def mixed(self) -> list[MixedOp]:
        return list(self.layers)  # type: ignore[arg-type]

    def mask(self) -> torch.Tensor:
        legal = torch.zeros(self.graph.n_rows, self.n_candidates, dtype=torch.bool)
        for row, mixed in enumerate(self.mixed()):
            legal[row, mixed.columns] = True
        return legal

    def layer_of(self) -> list[int] | None:
        return None

    def single_plan(self, columns: Sequence[int]) -> RoutePlan:
        """One route: its layers run their column, the others (`none`) do not run;
        ArchError unless the columns are exactly one route."""
        self.space.columns_arch(columns)
        plan: list[Mode | None] = []
        for mixed, col in zip(self.mixed(), columns, strict=True):
            if col != self.graph.none and col not in mixed.columns:
                raise ValueError(f"{mixed.name}: column {col} is illegal here")
            plan.append(None if col == self.graph.none else Single(mixed.columns.index(col)))
        return RoutePlan(plan)


def _searched(layer: Layer) -> Layer:
    """The layer without `none`: the route decides it, no mixed op holds it."""
    return Layer(layer.name, tuple(Choice(c.name, None if c.name == NONE else c.op)
                                   for c in layer.choices))  # fmt: skip


# --- route probabilities -----------------------------------------------------------------
def edge_weights(graph: RouteGraph, beta: torch.Tensor) -> torch.Tensor:
    """w [edges]: softmax(β) over the edges that leave the same block."""
    src = torch.tensor(graph.src, device=beta.device)
    same = src[:, None] == src[None, :]  # [edges x edges]
    scores = beta[None, :].expand(len(src), -1).masked_fill(~same, -math.inf)
    return F.softmax(scores, dim=1).diagonal()


def route_probs(graph: RouteGraph, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(P(edge on route) [edges], P(block on route) [blocks]) from the edge weights."""
    p_block: list[torch.Tensor] = [torch.ones((), dtype=w.dtype, device=w.device)]
    p_edge: list[torch.Tensor] = []
    for b in range(1, graph.last + 1):
        into = [p_block[graph.src[e]] * w[e] for e in graph.into(b)]  # edges in order
        p_edge += into
        p_block.append(torch.stack(into).sum())
    return torch.stack(p_edge), torch.stack(p_block)


def row_probs(graph: RouteGraph, w: torch.Tensor) -> torch.Tensor:
    """P(layer on route) [rows]: a head's edge, a layer's block."""
    p_edge, p_block = route_probs(graph, w)
    index = torch.zeros(graph.n_rows, dtype=torch.long, device=w.device)
    for e, row in enumerate(graph.head_row):
        index[row] = e
    for b, rows in enumerate(graph.layer_rows):
        index[list(rows)] = len(graph.src) + b
    return torch.cat([p_edge, p_block])[index]


def marginals(graph: RouteGraph, w: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """[rows x candidates]: P(row on route)·q, and P(off the route) on `none`; so
    `table.expected(marginals(...))` is E[LAT] through the routes. `q` is 0 on `none`."""
    p = row_probs(graph, w).to(q)
    off = F.one_hot(torch.tensor(graph.none), q.shape[1]).to(q)
    return p[:, None] * q + (1 - p)[:, None] * off[None, :]


def head_weights(graph: RouteGraph, w: torch.Tensor) -> torch.Tensor:
    """P(e | dst(e) on the route) [edges]: how a block mixes its heads (sums to 1)."""
    p_edge, p_block = route_probs(graph, w)
    return p_edge / p_block[list(graph.dst)]


# --- routes ----------------------------------------------------------------------------------
def viterbi(graph: RouteGraph, log_w: Sequence[float]) -> list[int]:
    """The route of largest Σ log w (ties: the lower source block)."""
    best, back = [0.0] + [-math.inf] * graph.last, [0] * (graph.last + 1)
    for b in range(1, graph.last + 1):
        for e in graph.into(b):
            if best[graph.src[e]] + log_w[e] > best[b]:
                best[b], back[b] = best[graph.src[e]] + log_w[e], graph.src[e]
    route = [graph.last]
    while back[route[-1]] != 0:
        route.append(back[route[-1]])
    return route[::-1]


def routes_by_probability(graph: RouteGraph, log_w: Sequence[float]) -> Iterator[list[int]]:
    """Every route, most probable first: best-first search whose heuristic, the best
    completion from a block, is exact, so complete routes come out in order."""
    rest = [-math.inf] * graph.last + [0.0]  # best Σ log w from a block to the end
    for a in range(graph.last - 1, -1, -1):
        rest[a] = max(log_w[e] + rest[graph.dst[e]] for e in graph.out_of(a))
    heap: list[tuple[float, tuple[int, ...], float]] = [(-rest[0], (), 0.0)]
    while heap:
        _, route, logp = heapq.heappop(heap)
        at = route[-1] if route else 0
        if at == graph.last:
            yield list(route)
            continue
        for e in graph.out_of(at):
            lp = logp + log_w[e]
            heapq.heappush(heap, (-(lp + rest[graph.dst[e]]), (*route, graph.dst[e]), lp))


def columns(graph: RouteGraph, route: Sequence[int], choice: Sequence[int]) -> list[int]:
    """Table columns: `choice[row]` on the route's rows, `none` elsewhere."""
    cols = [graph.none] * graph.n_rows
    for row in graph.route_rows(route):
        cols[row] = int(choice[row])
    return cols


def _costs(table: LatencyTable, graph: RouteGraph) -> np.ndarray:
    """[rows x candidates] ms, +inf where illegal or `none` (never chosen on a route)."""
    ms = np.where(table.mask.numpy(), table.table.double().numpy(), np.inf)
    ms[:, graph.none] = np.inf
    return ms


def route_bounds(table: LatencyTable, graph: RouteGraph) -> tuple[float, float]:
    """(min, max) table latency over valid architectures (a route and its choices): the
    shortest and longest paths through the DAG, an edge costing its head's and its
    block's layers' cheapest (dearest) candidates."""
    lo_c = _costs(table, graph)
    hi_c = np.where(np.isfinite(lo_c), lo_c, -np.inf)
    out = []
    for pick, cells, start in ((min, lo_c.min(1), math.inf), (max, hi_c.max(1), -math.inf)):
        best = [0.0] + [start] * graph.last
        for b in range(1, graph.last + 1):
            block = sum(float(cells[r]) for r in graph.layer_rows[b])
            for e in graph.into(b):
                best[b] = pick(
                    best[b], best[graph.src[e]] + float(cells[graph.head_row[e]]) + block
                )
        out.append(table.fixed_ms + best[-1])
    return out[0], out[1]


def fit_route(
    table: LatencyTable,
    graph: RouteGraph,
    logp: torch.Tensor,
    route: Sequence[int],
    start: Sequence[int],
    hard: HardTarget,
) -> list[int] | None:
    """`start` (columns on `route`) repaired into the target on the same route: the
    fewest layers changed, then the most probable (core/repair.py's DP over the route's
    rows, `none` and illegal cells out); None when the route cannot reach it."""
    if hard.satisfied(table.exact(list(start))):
        return list(start)
    rows = graph.route_rows(route)
    costs = _costs(table, graph)[rows]
    lp = np.maximum(logp.detach().double().cpu().numpy()[rows], -1e100)
    changes = np.arange(costs.shape[1])[None, :] != np.asarray(start)[rows][:, None]
    lo, hi = hard.window()
    lo = -math.inf if hard.constraint == "le" else lo
    half_tol = hard.tolerance * hard.target_ms / 2
    picked = solve_groups(costs, lp, changes.astype(np.int64), table.fixed_ms, lo, hi, half_tol)
    if picked is None:
        return None
    cols = columns(graph, route, [0] * graph.n_rows)
    for row, col in zip(rows, picked, strict=True):
        cols[row] = col
    return cols if hard.satisfied(table.exact(cols)) else None
