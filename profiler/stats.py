"""Robust statistics of latency samples, and the confidence interval of their median.

The median's 95% confidence interval is distribution-free: the order statistics at
ranks n/2 ± 1.96·√n/2 bracket the true median with 95% probability for any continuous
distribution (binomial argument), so a long right tail (a preempted sample) cannot
make the interval lie. Percentiles use linear interpolation (numpy's default).

That interval treats the samples as independent, and within one loaded session they
nearly are. Across sessions they are not: each round of the timing engine runs on a
fresh session, and where that session's buffers and weights land in memory moves the
whole round (allocation luck): two fresh processes disagree by more than the rank
half-width says (bench/measurement_retest.py; docs/BENCHMARKS.md, issue 6 third
figures). So when the round
medians of two or more rounds are known, the reported half-width is the larger of the
rank interval and the 95% Student-t interval of the mean of the round medians (the
rounds as clusters).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

Z95 = 1.959964
MIN_SAMPLES_FOR_CI = 6  # below this the rank interval is the whole sample
UNSTABLE_IQR = 0.10  # IQR/median at or above this marks a measurement unstable
# two-sided 95% Student-t quantiles by degrees of freedom (rounds - 1), 1 to 30; beyond,
# the Cornish-Fisher expansion (within 0.001 of the quantile from 30 on)
T95 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip


def t95(dof: int) -> float:
    """The two-sided 95% Student-t quantile for `dof` >= 1 degrees of freedom."""
    if dof <= len(T95):
        return T95[dof - 1]
    z = Z95
    return z + (z**3 + z) / (4 * dof) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * dof**2)


def median_ci_half_width(sorted_ms: np.ndarray) -> float:
    """Half the width of the 95% rank interval of the median (inf when n is too small)."""
    n = len(sorted_ms)
    if n < MIN_SAMPLES_FOR_CI:
        return math.inf
    spread = Z95 * math.sqrt(n) / 2
    lo = max(0, math.floor(n / 2 - spread))
    hi = min(n - 1, math.ceil(n / 2 + spread) - 1)
    return float(sorted_ms[hi] - sorted_ms[lo]) / 2


def between_rounds_half_width(round_medians: Sequence[float]) -> float:
    """Half the width of the 95% t interval over round medians (inf below two rounds)."""
    r = len(round_medians)
    if r < 2:
        return math.inf
    return t95(r - 1) * float(np.std(round_medians, ddof=1)) / math.sqrt(r)


@dataclass(frozen=True)
class Stats:
    """Per-call latency statistics in milliseconds (one sample = calls_per_sample calls)."""

    median_ms: float
    mean_ms: float
    std_ms: float
    min_ms: float
    p10_ms: float
    p90_ms: float
    iqr_ms: float
    samples: int
    calls_per_sample: int
    ci_half_width_ms: float
    rel_ci: float  # ci_half_width / median
    target_met: bool  # rel_ci <= the rel_tol asked for
    stable: bool  # target met and IQR/median < 10%

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k, v in d.items():  # JSON has no inf
            if isinstance(v, float) and not math.isfinite(v):
                d[k] = None
        return d


def summarize(
    samples_ms: list[float] | np.ndarray,
    calls_per_sample: int,
    rel_tol: float,
    round_medians: Sequence[float] = (),
) -> Stats:
    """Statistics of per-call times (each sample already divided by calls_per_sample).
    With `round_medians` (one per fresh-session round), the CI also covers the spread
    between rounds."""
    x = np.sort(np.asarray(samples_ms, dtype=np.float64))
    if len(x) == 0:
        raise ValueError("samples: no samples to summarise")
    median = float(np.median(x))
    p10, p25, p75, p90 = (float(v) for v in np.percentile(x, [10, 25, 75, 90]))
    half = median_ci_half_width(x)
    if len(round_medians) >= 2:  # one round says nothing about the spread between them
        half = max(half, between_rounds_half_width(round_medians))
    rel_ci = half / median if median > 0 else math.inf
    target_met = rel_ci <= rel_tol
    iqr = p75 - p25
    stable = target_met and (iqr / median < UNSTABLE_IQR if median > 0 else False)
    return Stats(
        median_ms=median,
        mean_ms=float(x.mean()),
        std_ms=float(x.std(ddof=1)) if len(x) > 1 else 0.0,
        min_ms=float(x[0]),
        p10_ms=p10,
        p90_ms=p90,
        iqr_ms=iqr,
        samples=len(x),
        calls_per_sample=calls_per_sample,
        ci_half_width_ms=half,
        rel_ci=rel_ci,
        target_met=target_met,
        stable=stable,
    )
