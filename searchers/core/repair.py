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
verified with `table.exact`). Shrinking may hide architectures that sit right at the
window's edge; b = tol*T/(8L) keeps that edge to about 1/16 of the tolerance.
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
    """The DP: best[k, s] = max logp of a prefix with k changes and rounded sum s buckets.

    Costs are shifted by each layer's cheapest legal cell, so they are >= 0 and a
    prefix whose sum already passes the window's top can be dropped."""
    n_layers = len(start)
    ms = table.table.double().numpy()
    legal = table.mask.numpy()
    base = table.fixed_ms + float(np.where(legal, ms, np.inf).min(axis=1).sum())
    shifted = ms - np.where(legal, ms, np.inf).min(axis=1, keepdims=True)
    room = hi - max(lo, base)  # the part of the window an architecture can reach
    if room <= 0:
        return None
    # buckets fine enough for the window, or for the reachable part of it when that is
    # narrower (an "le" budget just above the fastest architecture)
    b = min(2 * half_tol, room) / (BUCKETS_PER_LAYER * n_layers)
    margin = (n_layers + 1) * b / 2  # worst rounding error, plus room for float sums
    s_lo = max(0, math.ceil((lo - base + margin) / b)) if lo > -math.inf else 0
    s_hi = math.floor((hi - base - margin) / b)
    if s_hi < s_lo:
        return None
    steps = np.rint(np.where(legal, shifted, 0.0) / b).astype(np.int64)
    best = np.full((n_layers + 1, s_hi + 1), -np.inf)
    best[0, 0] = 0.0
    back = np.zeros((n_layers, n_layers + 1, s_hi + 1), dtype=np.int16)
    for row in range(n_layers):
        best = _layer(best, back[row], steps[row], lp[row], legal[row], start[row], row + 1)
    for k in range(n_layers + 1):
        window = best[k, s_lo:]
        if np.isfinite(window).any():
            return _backtrack(back, steps, start, k, s_lo + int(np.argmax(window)))
    return None


def _layer(
    best: np.ndarray,
    back: np.ndarray,
    steps: np.ndarray,
    lp: np.ndarray,
    legal: np.ndarray,
    was: int,
    live: int,
) -> np.ndarray:
    """One layer of the DP over every (changes, bucket) state at once; fills `back`.
    Only the first `live` rows of `best` can be reached (no more changes than layers)."""
    out = np.full_like(best, -np.inf)
    n_s = best.shape[1]
    for i in np.flatnonzero(legal):
        step, dk = int(steps[i]), int(i != was)
        if step >= n_s:
            continue
        value = best[:live, : n_s - step] + lp[i]
        slot = out[dk : live + dk, step:]  # views: writing them writes `out` and `back`
        better = value > slot
        slot[better] = value[better]
        back[dk : live + dk, step:][better] = i
    return out


def _backtrack(back: np.ndarray, steps: np.ndarray, start: list[int], k: int, s: int) -> list[int]:
    chosen = [0] * len(start)
    for row in range(len(start) - 1, -1, -1):
        i = int(back[row, k, s])
        chosen[row] = i
        s -= int(steps[row, i])
        k -= int(i != start[row])
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
