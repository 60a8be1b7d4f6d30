"""Repair an architecture to a latency target with the fewest layer changes.

A searcher's argmax architecture rarely lands on the latency target exactly. Rather
than resampling, `repair` edits it: it changes as few layers as possible and, among
the edits of that size, keeps the most probable architecture under the searcher's
own log-probabilities, so the result stays as close to what was learnt as the target
allows.

It is a dynamic program over layers whose state is (layers changed, latency bucket).
Latencies are rounded to buckets of width b, so a sum of L rounded cells is off by at
most L*b/2; the accepted window is shrunk by that much on each side, which makes the
answer provably within tolerance when judged with exact float latencies (and it is
verified with `table.exact`). `solve_groups` is the same DP over groups of options, each
with its cost, its number of changes and its log-probability: the DARTS genotype repair
(core/genotype.py) runs it with a cell node as a group and its pairs of edges as options.
Shrinking may hide architectures that sit right at the window's edge; b = tol*T/(8L)
keeps that edge to about 1/16 of the tolerance.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import torch

from searchers.latency import LatencyTable

NEG = -1e100  # log-probability of an impossible cell: finite, so it still sums
BUCKETS_PER_LAYER = 8  # b = tol * T / (BUCKETS_PER_LAYER * L)


def repair(
    table: LatencyTable,
    logp: torch.Tensor | np.ndarray,
    start: list[int],
    target_ms: float,
    tolerance: float = 0.03,
    constraint: Literal["eq", "le"] = "eq",
) -> list[int]:
    """A candidate index per layer with |lat - T| <= tol*T ("eq") or lat <= T ("le"),
    changing the fewest layers of `start`, then maximising sum logp[l, chosen]. With "le"
    the tolerance only sets the bucket width (how close to T the answer may get)."""
    lp, begin = _validate(table, logp, start, target_ms, tolerance, constraint)
    lo, hi = (target_ms * (1 - tolerance), target_ms * (1 + tolerance))
    if constraint == "le":
        lo, hi = -math.inf, target_ms
    if lo <= table.exact(begin) <= hi:
        return begin
    best_lo, best_hi = table.bounds()
    if best_hi < lo or best_lo > hi:
        raise _infeasible(table, target_ms, tolerance, constraint, "no architecture")
    chosen = _solve(table, lp, begin, lo, hi, tolerance * target_ms / 2)
    if chosen is None:
        raise _infeasible(table, target_ms, tolerance, constraint, "no architecture found")
    latency = table.exact(chosen)
    assert lo <= latency <= hi, f"repair: {latency} ms outside [{lo}, {hi}]"
    return chosen


def _validate(
    table: LatencyTable,
    logp: torch.Tensor | np.ndarray,
    start: list[int],
    target_ms: float,
    tolerance: float,
    constraint: str,
) -> tuple[np.ndarray, list[int]]:
    if constraint not in ("eq", "le"):
        raise ValueError(f"constraint: expected 'eq' or 'le', got {constraint!r}")
    if not (math.isfinite(target_ms) and target_ms > 0):
        raise ValueError(f"target_ms: must be a positive number of ms, got {target_ms!r}")
    if not 0 < tolerance < 1:
        raise ValueError(f"tolerance: must be in (0, 1), e.g. 0.03 for 3%, got {tolerance!r}")
    if not bool(torch.isfinite(table.table[table.mask]).all()) or math.isnan(table.fixed_ms):
        raise ValueError("table: some cells have no latency; call table.check() first")
    raw = logp.detach().cpu() if isinstance(logp, torch.Tensor) else logp
    lp = np.asarray(raw, dtype=np.float64)
    if lp.shape != tuple(table.table.shape):
        raise ValueError(f"logp: expected shape {tuple(table.table.shape)}, got {lp.shape}")
    if np.isnan(lp).any() or (lp == math.inf).any():
        raise ValueError("logp: contains NaN or +inf")
    return np.maximum(lp, NEG), table.index(list(start))


def _solve(
    table: LatencyTable, lp: np.ndarray, start: list[int], lo: float, hi: float, half_tol: float
) -> list[int] | None:
    """The layer table as groups of options: an option is a candidate, one change when it
    is not the starting one."""
    ms = table.table.double().numpy()
    legal = table.mask.numpy()
    costs = np.where(legal, ms, np.inf)
    changes = (np.arange(ms.shape[1])[None, :] != np.asarray(start)[:, None]).astype(np.int64)
    return solve_groups(costs, lp, changes, table.fixed_ms, lo, hi, half_tol)


def solve_groups(
    costs: np.ndarray,
    lp: np.ndarray,
    changes: np.ndarray,
    fixed_ms: float,
    lo: float,
    hi: float,
    half_tol: float,
) -> list[int] | None:
    """One option per group (row) with fixed + Σ costs in [lo, hi], the fewest changes
    Σ changes[row, option], then the largest Σ lp; `costs` is +inf where illegal. The DP:
    best[k, s] = max lp of a prefix with k changes and rounded sum s buckets.

    Costs are shifted by each group's cheapest option, so they are >= 0 and a prefix
    whose sum already passes the window's top can be dropped."""
    n_rows = len(costs)
    legal = np.isfinite(costs)
    base = fixed_ms + float(costs.min(axis=1).sum())
    shifted = np.where(legal, costs - costs.min(axis=1, keepdims=True), 0.0)
    room = hi - max(lo, base)  # the part of the window an architecture can reach
    if room <= 0:
        return None
    # buckets fine enough for the window, or for the reachable part of it when that is
    # narrower (an "le" budget just above the fastest architecture)
    b = min(2 * half_tol, room) / (BUCKETS_PER_LAYER * n_rows)
    margin = (n_rows + 1) * b / 2  # worst rounding error, plus room for float sums
    s_lo = max(0, math.ceil((lo - base + margin) / b)) if lo > -math.inf else 0
    s_hi = math.floor((hi - base - margin) / b)
    if s_hi < s_lo:
        return None
    steps = np.rint(shifted / b).astype(np.int64)
    max_k = int(np.where(legal, changes, 0).max(axis=1).sum())
    best = np.full((max_k + 1, s_hi + 1), -np.inf)
    best[0, 0] = 0.0
    back = np.zeros((n_rows, max_k + 1, s_hi + 1), dtype=np.int16)
    live = 1  # rows of `best` reachable so far (no more changes than made possible)
    for row in range(n_rows):
        best = _group(best, back[row], steps[row], lp[row], legal[row], changes[row], live)
        live += int(np.where(legal[row], changes[row], 0).max())
    for k in range(max_k + 1):
        window = best[k, s_lo:]
        if np.isfinite(window).any():
            return _backtrack(back, steps, changes, k, s_lo + int(np.argmax(window)))
    return None


def _group(
    best: np.ndarray,
    back: np.ndarray,
    steps: np.ndarray,
    lp: np.ndarray,
    legal: np.ndarray,
    changes: np.ndarray,
    live: int,
) -> np.ndarray:
    """One group of the DP over every (changes, bucket) state at once; fills `back`."""
    out = np.full_like(best, -np.inf)
    n_s = best.shape[1]
    for i in np.flatnonzero(legal):
        step, dk = int(steps[i]), int(changes[i])
        if step >= n_s:
            continue
        value = best[:live, : n_s - step] + lp[i]
        slot = out[dk : live + dk, step:]  # views: writing them writes `out` and `back`
        better = value > slot
        slot[better] = value[better]
        back[dk : live + dk, step:][better] = i
    return out


def _backtrack(
    back: np.ndarray, steps: np.ndarray, changes: np.ndarray, k: int, s: int
) -> list[int]:
    chosen = [0] * len(back)
    for row in range(len(back) - 1, -1, -1):
        i = int(back[row, k, s])
        chosen[row] = i
        s -= int(steps[row, i])
        k -= int(changes[row, i])
    return chosen


def _infeasible(
    table: LatencyTable, target_ms: float, tolerance: float, constraint: str, what: str
) -> ValueError:
    lo, hi = table.bounds()
    want = f"<= {target_ms:g} ms" if constraint == "le" else f"{target_ms:g} ms ± {tolerance:.1%}"
    return ValueError(
        f"repair: {what} in {table.space.name} has a table latency {want}; "
        f"the achievable range is {lo:.4g}..{hi:.4g} ms: change --target-ms or the tolerance"
    )
