"""The between-session term: a pair's score is exactly the sigma that covers it, sigma is
the conformal rank of the scores (none from too few pairs), and on synthetic pairs with
a known spread between sessions the intervals with sigma added cover about 95% of new
pairs, heavy tails included, where the measurements' own intervals cover far fewer."""

from __future__ import annotations

import math

import numpy as np
import pytest

from profiler.stats import Z95
from profiler.uncertainty import (
    NOMINAL,
    Pair,
    calibrate,
    conformal_sigma,
    covered,
    score,
    total_half_width,
)


def synthetic(n: int, between: float, seed: int, dof: float | None = None) -> list[Pair]:
    """`n` ops measured in two sessions: a session moves an op by exp(between · e), e
    standard normal (or student-t with `dof`), and one measurement's own noise (1%) is
    what its own 95% half-width says."""
    rng = np.random.default_rng(seed)
    within = 0.01
    true = np.exp(rng.uniform(math.log(0.05), math.log(20.0), n))
    pairs = []
    for ms in true:
        shifts = rng.standard_normal(2) if dof is None else rng.standard_t(dof, 2)
        a, b = ms * np.exp(between * shifts + within * rng.standard_normal(2))
        pairs.append(Pair(float(a), float(b), Z95 * within * a, Z95 * within * b))
    return pairs


def test_a_pair_is_covered_at_its_score_and_not_below_it() -> None:
    rng = np.random.default_rng(0)
    for _ in range(2000):
        a = float(np.exp(rng.uniform(-4, 3)))
        b = a * float(np.exp(rng.choice([-1, 1]) * rng.uniform(0.05, 0.5)))
        p = Pair(a, b, a * rng.uniform(0, 0.02), b * rng.uniform(0, 0.02))
        s = score(p)
        assert s > 0
        assert covered(p, s), p  # the boundary belongs to the interval
        assert not covered(p, s * 0.999), p


def test_a_pair_its_own_intervals_cover_scores_zero() -> None:
    p = Pair(1.0, 1.01, 0.02, 0.02)
    assert covered(p, None) and score(p) == 0.0
    assert total_half_width(1.0, 0.02, None) == 0.02
    assert total_half_width(2.0, 0.03, 0.05) == pytest.approx(math.hypot(0.03, Z95 * 0.1))


@pytest.mark.parametrize(("n", "rank"), [(19, 19), (20, 20), (39, 38), (100, 96), (1000, 951)])
def test_sigma_is_the_conformal_rank_of_the_scores(n: int, rank: int) -> None:
    """The ⌈(n+1)·0.95⌉-th smallest, whatever the order the scores come in."""
    scores = list(np.random.default_rng(n).permutation(np.arange(1.0, n + 1)))
    assert conformal_sigma(scores) == rank


def test_too_few_pairs_give_no_sigma() -> None:
    assert conformal_sigma([]) is None
    assert conformal_sigma([0.1] * 18) is None
    pairs = synthetic(20, 0.05, seed=1)
    short = calibrate(pairs[:18], "retests")
    assert (short.pairs, short.sigma, short.coverage) == (18, None, None)
    assert short.within_coverage is not None
    nineteen = calibrate(pairs[:19], "retests")  # a sigma, but none of 18 others for LOO
    assert nineteen.sigma is not None and nineteen.coverage is None
    assert calibrate(pairs, "retests").coverage is not None


def test_pairs_without_a_finite_ci_are_left_out() -> None:
    pairs = synthetic(25, 0.05, seed=2)
    bad = [Pair(1.0, 1.1, math.nan, 0.01), Pair(1.0, 1.1, 0.01, math.inf), Pair(0.0, 1.0, 0, 0)]
    assert calibrate(pairs + bad, "retests") == calibrate(pairs, "retests")
    assert calibrate(bad, "panel").pairs == 0


@pytest.mark.parametrize("seed", [3, 4])
def test_leave_one_out_coverage_is_each_pair_judged_by_the_others_sigma(seed: int) -> None:
    pairs = synthetic(60, 0.04, seed=seed)
    pairs += pairs[:5]  # tied scores: a pair's twin stays among the others
    scores = [score(p) for p in pairs]
    hits = [covered(p, conformal_sigma(scores[:i] + scores[i + 1 :])) for i, p in enumerate(pairs)]
    assert calibrate(pairs, "retests").coverage == pytest.approx(sum(hits) / len(hits))


@pytest.mark.parametrize("seed", [5, 6, 7])
def test_sigma_added_covers_new_pairs_at_the_nominal_level(seed: int) -> None:
    """Between-session sd 5%, within 1%: the own intervals cover about 30% of pairs."""
    cal = calibrate(synthetic(400, 0.05, seed=seed), "retests")
    assert cal.within_coverage is not None and cal.within_coverage < 0.45
    assert cal.coverage is not None and abs(cal.coverage - NOMINAL) < 0.03
    assert cal.sigma is not None and 0.04 < cal.sigma < 0.06
    fresh = synthetic(2000, 0.05, seed=seed + 100)  # pairs it was never calibrated on
    assert abs(np.mean([covered(p, cal.sigma) for p in fresh]) - NOMINAL) < 0.03


@pytest.mark.parametrize("seed", [8, 9])
def test_heavy_tails_are_still_covered(seed: int) -> None:
    """Student-t with 3 degrees of freedom: a normal fit of the spread would under-cover
    the tails, a conformal rank does not."""
    cal = calibrate(synthetic(400, 0.03, seed=seed, dof=3), "retests")
    assert cal.coverage is not None and cal.coverage >= 0.9
    assert cal.within_coverage is not None and cal.within_coverage < 0.7
    fresh = synthetic(2000, 0.03, seed=seed + 100, dof=3)
    assert cal.sigma is not None and np.mean([covered(p, cal.sigma) for p in fresh]) >= 0.9
