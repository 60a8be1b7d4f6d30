"""Statistics of samples: percentiles, the median's rank CI and the stability flags."""

from __future__ import annotations

import math

import numpy as np
import pytest

from profiler.stats import (
    MIN_SAMPLES_FOR_CI,
    between_rounds_half_width,
    median_ci_half_width,
    summarize,
)


def test_summary_of_known_samples() -> None:
    s = summarize(list(range(1, 102)), calls_per_sample=7, rel_tol=0.5)
    assert s.median_ms == 51
    assert s.min_ms == 1
    assert s.p10_ms == pytest.approx(11)
    assert s.p90_ms == pytest.approx(91)
    assert s.iqr_ms == pytest.approx(50)
    assert s.samples == 101 and s.calls_per_sample == 7
    assert s.mean_ms == pytest.approx(51)


def test_ci_is_infinite_below_the_minimum_and_serialises_as_null() -> None:
    s = summarize([1.0] * (MIN_SAMPLES_FOR_CI - 1), 1, 0.02)
    assert math.isinf(s.ci_half_width_ms)
    assert not s.target_met and not s.stable
    assert s.to_dict()["ci_half_width_ms"] is None


def test_ci_shrinks_with_more_samples() -> None:
    rng = np.random.default_rng(0)
    widths = [median_ci_half_width(np.sort(rng.lognormal(0, 0.2, n))) for n in (20, 200, 2000)]
    assert widths[0] > widths[1] > widths[2]
    assert widths[2] < widths[0] / 5  # ~1/sqrt(n)


def test_ci_covers_the_true_median_about_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(1)
    true_median, hits, trials = 1.0, 0, 600
    for _ in range(trials):  # a skewed, heavy-tailed latency-like distribution
        x = np.sort(rng.lognormal(0.0, 0.5, 60))
        m, h = float(np.median(x)), median_ci_half_width(x)
        hits += m - h <= true_median <= m + h
    assert 0.90 <= hits / trials <= 0.995


def test_flags_follow_the_tolerance_and_the_spread() -> None:
    rng = np.random.default_rng(2)
    tight = rng.normal(1.0, 0.01, 200)
    wide = rng.uniform(0.8, 1.2, 2000)  # IQR/median = 20%
    assert summarize(tight, 1, 0.02).stable
    assert not summarize(tight, 1, 0.0001).target_met
    w = summarize(wide, 1, 0.05)
    assert w.target_met and not w.stable


def test_no_samples_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"^samples:"):
        summarize([], 1, 0.02)


def test_between_rounds_interval_is_the_t_interval_of_round_medians() -> None:
    assert between_rounds_half_width([1.0, 2.0, 3.0]) == pytest.approx(4.303 / math.sqrt(3))
    assert between_rounds_half_width([5.0, 5.0, 5.0, 5.0]) == 0.0
    assert math.isinf(between_rounds_half_width([1.0]))


def _clustered(rng: np.random.Generator, rounds: int) -> tuple[np.ndarray, list[float]]:
    """Rounds whose level moves by ~5% (session luck), samples 0.5% around the level."""
    levels = rng.lognormal(0.0, 0.05, rounds)
    per_round = [level * rng.lognormal(0.0, 0.005, 40) for level in levels]
    return np.concatenate(per_round), [float(np.median(r)) for r in per_round]


def test_round_spread_widens_the_ci_the_rank_interval_cannot_see() -> None:
    x, medians = _clustered(np.random.default_rng(3), 3)
    pooled = summarize(x, 1, 0.02)
    clustered = summarize(x, 1, 0.02, medians)
    assert clustered.ci_half_width_ms > 3 * pooled.ci_half_width_ms
    assert pooled.target_met and not clustered.target_met and not clustered.stable
    assert clustered.median_ms == pooled.median_ms  # only the interval changes
    assert summarize(x, 1, 0.02, medians[:1]) == pooled  # one round: no spread to see


def test_clustered_ci_covers_the_true_level_about_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(4)
    pooled_hits = clustered_hits = 0
    trials = 400
    for _ in range(trials):  # the true level is 1.0; each trial is a new set of sessions
        x, medians = _clustered(rng, 6)
        m = float(np.median(x))
        pooled_hits += abs(m - 1.0) <= median_ci_half_width(np.sort(x))
        clustered_hits += abs(m - 1.0) <= summarize(x, 1, 0.02, medians).ci_half_width_ms
    assert pooled_hits / trials < 0.5  # the rank interval alone is far too narrow
    assert clustered_hits / trials >= 0.88


def test_t95_follows_the_student_t_quantile_beyond_its_table() -> None:
    from profiler.stats import t95

    # scipy.stats.t.ppf(0.975, dof) for these dof
    for dof, q in ((1, 12.706), (2, 4.303), (29, 2.045), (31, 2.0395), (40, 2.0211), (120, 1.9799)):
        assert t95(dof) == pytest.approx(q, abs=6e-4)
