"""DARTS genotypes seen through the latency table: their cost, their derivation from the
learnt weights, and the repair into a latency target.

A genotype keeps two incoming edges per node, each with one op that is not `none`; every
other edge of the supernet is dropped and costs nothing (the space's `none` cells are
free in the table). All normal cells share one genotype and all reduction cells another,
so choosing op o on edge e of a cell type costs the sum of that cell's (e, o) over the
cells of the type: `edge_costs` is that sum as a [decisions x candidates] grid
(decision d = type·14 + edge, the `CellSupernet.decisions` order), taken over the
*table's* space, the network that will run, whatever depth a supernet searches with
(P-DARTS). Then

    genotype latency = fixed + Σ_types Σ_nodes Σ_kept edges cost[d, op]          (exact)
    relaxed latency  = fixed + Σ_d Σ_o w[d, o]·cost[d, o]                       (E[LAT])

and the relaxed form is Σ cells Σ edges Σ ops w·T of the table with shared weights.
"""

from __future__ import annotations

import math
from itertools import combinations
from typing import Literal

import numpy as np
import torch

from searchers.core.repair import NEG, solve_groups
from searchers.latency import LatencyTable
from searchers.spaces.darts import EDGE_OFFSET, EDGES, OPS, STEPS, Darts, Genotype

KINDS = ("normal", "reduce")
NONE = OPS.index("none")
Pairs = tuple[tuple[str, int], ...]


def decision(kind: int, node: int, src: int) -> int:
    """The decision of the edge from input `src` into `node` of cell type `kind`."""
    return kind * EDGES + EDGE_OFFSET[node] + src


def group_decision(group: str) -> int:
    """The decision of a table layer's group (`normal.edge5` -> 5, `reduce.edge0` -> 14)."""
    kind, edge = group.split(".edge")
    return KINDS.index(kind) * EDGES + int(edge)


def edge_ops(g: Genotype) -> dict[int, int]:
    """The genotype's kept edges: decision -> op column (every other edge is dropped)."""
    return {
        decision(kind, idx // 2, src): OPS.index(op)
        for kind, pairs in enumerate(cells(g))
        for idx, (op, src) in enumerate(pairs)
    }


def edge_costs(table: LatencyTable) -> torch.Tensor:
    """[2·14 x candidates] ms: each (type, edge, op) summed over the cells of the type."""
    if not isinstance(table.space, Darts):
        raise ValueError(f"space: {table.space.name} is not the darts cell space")
    costs = torch.zeros(2 * EDGES, table.table.shape[1], dtype=torch.float64)
    for row, layer in enumerate(table.space.layers()):
        costs[group_decision(layer.group)] += table.table[row]  # `none` is free: 0
    return costs


def cells(g: Genotype) -> tuple[Pairs, Pairs]:
    return g.normal, g.reduce


def genotype_ms(table: LatencyTable, costs: torch.Tensor, g: Genotype) -> float:
    """The exact table latency of a genotype's network (fixed ops included)."""
    kept = [float(costs[d, col]) for d, col in edge_ops(g).items()]
    return math.fsum([table.fixed_ms, *kept])


def layer_columns(space: Darts, g: Genotype) -> list[int]:
    """The genotype as one table column per layer of `space`: `none` where dropped."""
    kept = edge_ops(g)
    return [kept.get(group_decision(layer.group), NONE) for layer in space.layers()]


def derive(weights: torch.Tensor) -> Genotype:
    """DARTS' parse: per node, the two incoming edges whose strongest non-`none` op
    weighs most, each with that op. `weights` is [2·14 x candidates], 0 where an op is
    not offered (ties: the earlier input, the earlier op)."""
    w = weights.detach().double().cpu().clone()
    w[:, NONE] = -math.inf
    w[w <= 0] = -math.inf  # ops a stage dropped (P-DARTS) or illegal
    pairs: list[list[tuple[str, int]]] = [[], []]
    for kind in range(2):
        for node in range(STEPS):
            rows = [decision(kind, node, src) for src in range(node + 2)]
            best = [float(w[d].max()) for d in rows]
            top = sorted(range(node + 2), key=lambda j: (-best[j], j))[:2]
            for src in sorted(top):
                d = rows[src]
                if not math.isfinite(best[src]):
                    raise ValueError(f"{KINDS[kind]} node {node}: no op but none is offered")
                pairs[kind].append((OPS[int(w[d].argmax())], src))
    return Genotype(tuple(pairs[0]), tuple(pairs[1]))


def bounds(
    costs: torch.Tensor, fixed_ms: float, legal: torch.Tensor | None = None
) -> tuple[float, float]:
    """(min, max) genotype latency: per node the two cheapest (dearest) edges."""
    c = costs.clone()
    ok = torch.ones_like(c, dtype=torch.bool) if legal is None else legal.clone()
    ok[:, NONE] = False
    lo, hi = [fixed_ms], [fixed_ms]
    for kind in range(2):
        for node in range(STEPS):
            rows = [decision(kind, node, src) for src in range(node + 2)]
            cheap = sorted(float(torch.where(ok[d], c[d], math.inf).min()) for d in rows)
            dear = sorted(float(torch.where(ok[d], c[d], -math.inf).max()) for d in rows)
            lo += cheap[:2]
            hi += dear[-2:]
    return math.fsum(lo), math.fsum(hi)


def repair_genotype(
    table: LatencyTable,
    costs: torch.Tensor,
    logp: torch.Tensor,
    start: Genotype,
    target_ms: float,
    tolerance: float,
    constraint: Literal["eq", "le"],
    legal: torch.Tensor | None = None,
) -> Genotype:
    """A genotype inside the target changing the fewest edges of `start` (an edge changes
    when its input or its op does), then the most probable under `logp` [2·14 x cands];
    ops limited to `legal` (what the supernet offered) when given."""
    lo, hi = target_ms * (1 - tolerance), target_ms * (1 + tolerance)
    if constraint == "le":
        lo, hi = -math.inf, target_ms
    if lo <= genotype_ms(table, costs, start) <= hi:
        return start
    options, cost, lp, changes = _node_options(costs, logp, start, legal)
    chosen = solve_groups(cost, lp, changes, table.fixed_ms, lo, hi, tolerance * target_ms / 2)
    if chosen is None:
        lo_ms, hi_ms = bounds(costs, table.fixed_ms, legal)
        want = (
            f"<= {target_ms:g} ms" if constraint == "le" else f"{target_ms:g} ms ± {tolerance:.1%}"
        )
        raise ValueError(
            f"repair: no genotype has a table latency {want} (achievable "
            f"{lo_ms:.4g}..{hi_ms:.4g} ms): change --target-ms or the tolerance"
        )
    picked = [options[row][i] for row, i in enumerate(chosen)]
    g = Genotype(
        tuple(p for pair in picked[:STEPS] for p in pair),
        tuple(p for pair in picked[STEPS:] for p in pair),
    )
    assert lo <= genotype_ms(table, costs, g) <= hi, "repair: genotype outside the window"
    return g


def _node_options(
    costs: torch.Tensor, logp: torch.Tensor, start: Genotype, legal: torch.Tensor | None
) -> tuple[list[list[Pairs]], np.ndarray, np.ndarray, np.ndarray]:
    """Per node (normal 0..3, reduce 0..3) every (two edges, an op each) option, with its
    cost, log-probability and how many of the node's two edges differ from `start`."""
    c, lp = costs.double().numpy(), np.maximum(logp.detach().double().cpu().numpy(), NEG)
    ok = np.ones(c.shape, dtype=bool) if legal is None else legal.cpu().numpy().copy()
    ok[:, NONE] = False
    options: list[list[Pairs]] = []
    rows: list[tuple[list[float], list[float], list[int]]] = []
    for kind, pairs in enumerate(cells(start)):
        for node in range(STEPS):
            was = set(pairs[2 * node : 2 * node + 2])
            opts: list[Pairs] = []
            cs, lps, ch = [], [], []
            for a, b in combinations(range(node + 2), 2):
                da, db = decision(kind, node, a), decision(kind, node, b)
                for oa in np.flatnonzero(ok[da]):
                    for ob in np.flatnonzero(ok[db]):
                        pair = ((OPS[oa], a), (OPS[ob], b))
                        opts.append(pair)
                        cs.append(c[da, oa] + c[db, ob])
                        lps.append(lp[da, oa] + lp[db, ob])
                        ch.append(2 - len(was & set(pair)))
            options.append(opts)
            rows.append((cs, lps, ch))
    width = max(len(o) for o in options)

    def grid(i: int, fill: float) -> np.ndarray:
        return np.array([r[i] + [fill] * (width - len(r[i])) for r in rows], dtype=np.float64)

    return options, grid(0, np.inf), grid(1, NEG), grid(2, 0).astype(np.int64)


def edges_changed(before: Genotype, after: Genotype) -> list[dict[str, object]]:
    """The edges (type, node, [op, input]) that differ between two genotypes."""
    out: list[dict[str, object]] = []
    for kind, (was, now) in enumerate(zip(cells(before), cells(after), strict=True)):
        for node in range(STEPS):
            old, new = set(was[2 * node : 2 * node + 2]), set(now[2 * node : 2 * node + 2])
            gone, came = sorted(old - new, key=str), sorted(new - old, key=str)
            for f, t in zip(gone, came, strict=True):
                out.append({"cell": KINDS[kind], "node": node, "from": list(f), "to": list(t)})
    return out


def random_genotype(gen: torch.Generator, legal: torch.Tensor | None = None) -> Genotype:
    """A uniformly random genotype: two distinct inputs per node, a random allowed op each."""
    ok = torch.ones(2 * EDGES, len(OPS), dtype=torch.bool) if legal is None else legal.clone()
    ok[:, NONE] = False
    pairs: list[list[tuple[str, int]]] = [[], []]
    for kind in range(2):
        for node in range(STEPS):
            srcs = sorted(torch.randperm(node + 2, generator=gen)[:2].tolist())
            for src in srcs:
                cols = torch.nonzero(ok[decision(kind, node, src)]).flatten()
                op = int(cols[int(torch.randint(len(cols), (1,), generator=gen))])
                pairs[kind].append((OPS[op], src))
    return Genotype(tuple(pairs[0]), tuple(pairs[1]))
