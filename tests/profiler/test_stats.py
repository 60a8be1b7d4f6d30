"""Statistics of samples: percentiles, the median's rank CI and the stability flags."""

from __future__ import annotations

import math

import numpy as np
import pytest

from profiler.stats import MIN_SAMPLES_FOR_CI, median_ci_half_width, summarize


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
