"""What one measurement's confidence interval leaves out, and how much to add back.

The timing engine's interval (profiler.stats) describes one measurement: its samples
and its rounds, minutes at most. Measure the same op again an hour later, on a fresh
process, and the new median lands outside that interval far more often than 5% of the
time: on a shared VM the spread between batches and between sessions (the host's
speed, a neighbour, where buffers land) is larger than the spread within one
(retests covered 62% and 48% of pairs: docs/BENCHMARKS.md, issue 31).

So a reported interval adds a between-session term: a relative standard deviation
`sigma` for the device (and, where known, the kind), added in quadrature to the
measurement's own:

    half_total = sqrt(half_within² + (Z95 · sigma · median)²)

`sigma` is estimated from pairs of measurements of one op taken at different times
(retests of random measured ops; consecutive readings of the reference panel) by
split-conformal calibration rather than a variance formula: each pair gets the
smallest sigma that would have made its two intervals cover its difference (its
score), and sigma is the ⌈(n+1)·0.95⌉-th smallest score. For pairs exchangeable with
the future ones, that covers at least 95% of them whatever the distribution (long
tails included), where a fitted variance under-covers heavy tails. Coverage is
reported leave-one-out: each pair judged with the sigma of the others, so the figure
is not the calibration's own fit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from profiler.stats import Z95

NOMINAL = 0.95  # the level every hwlat interval claims
# An interval includes its boundary, and a pair judged with its own score sits on it; log,
# hypot and sqrt round differently, so without this slack about a fifth of such pairs
# came out uncovered (and a conformal sigma fell short on the pair that set it).
_SLACK = 1e-9


@dataclass(frozen=True)
class Pair:
    """One op measured twice: medians and their own (within) 95% half-widths, in ms."""

    a_ms: float
    b_ms: float
    a_half_ms: float
    b_half_ms: float

    def usable(self) -> bool:
        values = (self.a_ms, self.b_ms, self.a_half_ms, self.b_half_ms)
        return all(math.isfinite(v) for v in values) and self.a_ms > 0 and self.b_ms > 0


def half(ci_ms: float | None) -> float:
    """A stored half-width for a Pair: NaN where there is none (`usable` leaves it out)."""
    return math.nan if ci_ms is None else float(ci_ms)


def _rel_sd(half_ms: float, median_ms: float) -> float:
    """A 95% half-width as a relative standard deviation."""
    return half_ms / (Z95 * median_ms)


def score(p: Pair) -> float:
    """The smallest between-session sigma under which the two measurements' intervals
    cover their difference: |log(b/a)| <= Z95 · sqrt(w_a² + w_b² + 2·sigma²)."""
    d = abs(math.log(p.b_ms / p.a_ms)) / Z95
    within = _rel_sd(p.a_half_ms, p.a_ms) ** 2 + _rel_sd(p.b_half_ms, p.b_ms) ** 2
    return math.sqrt(max(0.0, d * d - within) / 2)


def conformal_sigma(scores: Sequence[float], level: float = NOMINAL) -> float | None:
    """The ⌈(n+1)·level⌉-th smallest score; None when there are too few pairs for it
    (fewer than 19 at 95%)."""
    n = len(scores)
    k = math.ceil((n + 1) * level)
    if n == 0 or k > n:
        return None
    return sorted(scores)[k - 1]


def total_half_width(median_ms: float, within_half_ms: float, sigma: float | None) -> float:
    """The measurement's own 95% half-width with the between-session term added."""
    if sigma is None or not math.isfinite(within_half_ms):
        return within_half_ms
    return math.hypot(within_half_ms, Z95 * sigma * median_ms)


def covered(p: Pair, sigma: float | None) -> bool:
    """Whether the two reported intervals (with `sigma` added) cover the pair's
    difference: |log(b/a)| within the quadrature sum of their relative half-widths."""
    ha = total_half_width(p.a_ms, p.a_half_ms, sigma) / p.a_ms
    hb = total_half_width(p.b_ms, p.b_half_ms, sigma) / p.b_ms
    return abs(math.log(p.b_ms / p.a_ms)) <= math.hypot(ha, hb) * (1 + _SLACK)


@dataclass(frozen=True)
class Calibration:
    """Sigma from a set of pairs, and how the intervals covered them."""

    basis: str  # where the pairs came from ("retests", "panel", ...)
    pairs: int
    sigma: float | None  # None: too few pairs to calibrate
    within_coverage: float | None  # the measurements' own intervals
    coverage: float | None  # with sigma added, leave-one-out

    def to_dict(self) -> dict[str, object]:
        return {
            "basis": self.basis,
            "pairs": self.pairs,
            "sigma": self.sigma,
            "nominal": NOMINAL,
            "within_coverage": self.within_coverage,
            "coverage": self.coverage,
        }


def calibrate(pairs: Sequence[Pair], basis: str) -> Calibration:
    """Sigma from `pairs` (unusable ones: an infinite or missing CI, are left out) and the
    coverage of the intervals before and after (leave-one-out)."""
    good = [p for p in pairs if p.usable()]
    if not good:
        return Calibration(basis, 0, None, None, None)
    scores = [score(p) for p in good]
    within = sum(covered(p, None) for p in good) / len(good)
    return Calibration(basis, len(good), conformal_sigma(scores), within, _loo(good, scores))


def _loo(pairs: Sequence[Pair], scores: Sequence[float]) -> float | None:
    """Coverage with each pair judged by the sigma of the other pairs."""
    n = len(scores)
    k = math.ceil(n * NOMINAL)  # the rank among n - 1 others: ⌈((n - 1) + 1)·level⌉
    if k > n - 1:
        return None
    order = sorted(range(n), key=lambda i: scores[i])
    rank = {i: r for r, i in enumerate(order)}
    hits = 0
    for i, p in enumerate(pairs):
        # the k-th smallest of the others: skip over i when it sits at or below rank k-1
        j = order[k] if rank[i] <= k - 1 else order[k - 1]
        hits += covered(p, scores[j])
    return hits / n
