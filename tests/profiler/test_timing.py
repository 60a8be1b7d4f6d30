"""The timing engine on synthetic workloads of known duration."""

from __future__ import annotations

import random
import time

import pytest

from profiler.errors import MeasureTimeout, OutOfMemory, RuntimeFailure
from profiler.timing import Engine, Measurement, TimingConfig, time_block

FAST = TimingConfig(budget_s=0.3, min_sample_s=0.002)


class Busy:
    """Busy-waits a known time per call; can be slow on the first call, jittery, or fail."""

    timer = "host"

    def __init__(
        self,
        per_call_s: float,
        first_call_s: float = 0.0,
        jitter: float = 0.0,
        fail_after: int | None = None,
        exc: type[BaseException] = RuntimeError,
        log: list[str] | None = None,
        name: str = "",
    ) -> None:
        self.per_call_s, self.first_call_s, self.jitter = per_call_s, first_call_s, jitter
        self.fail_after, self.exc = fail_after, exc
        self.calls = self.reloads = 0
        self.rng = random.Random(0)

    def run(self, calls: int) -> None:
        for _ in range(calls):
            self.calls += 1
            if self.fail_after is not None and self.calls > self.fail_after:
                raise self.exc("synthetic failure")
            d = self.per_call_s * (1 + self.jitter * self.rng.random())
            if self.calls == 1:
                d += self.first_call_s
            end = time.perf_counter() + d
            while time.perf_counter() < end:
                pass

    def sync(self) -> None:
        pass

    def flush_cache(self) -> None:
        pass

    def reload(self) -> None:
        self.reloads += 1


def measure_one(r: Busy, cfg: TimingConfig = FAST) -> Measurement:
    result = Engine(cfg).measure([("op", r)])["op"]
    assert isinstance(result, Measurement), result
    return result


def test_median_of_a_known_duration() -> None:
    busy = Busy(200e-6)
    m = measure_one(busy)
    assert m.stats.median_ms == pytest.approx(0.2, rel=0.05)
    assert m.stats.samples >= 3 * FAST.min_samples_per_round
    assert m.rounds >= 3
    assert busy.reloads == m.rounds - 1  # every round after the first on a fresh load


def test_samples_last_at_least_the_minimum() -> None:
    m = measure_one(Busy(50e-6))
    assert m.stats.calls_per_sample * m.stats.median_ms / 1e3 >= FAST.min_sample_s * 0.9
    assert m.timed_calls == m.stats.samples * m.stats.calls_per_sample


def test_first_call_is_recorded_apart_and_warm_up_is_long_enough() -> None:
    m = measure_one(Busy(100e-6, first_call_s=0.02))
    assert m.first_call_ms >= 20
    assert m.stats.median_ms == pytest.approx(0.1, rel=0.1)
    assert m.warmup_calls >= 10 and m.warmup_ms >= 25


@pytest.mark.parametrize(
    ("exc", "typed"), [(RuntimeError, RuntimeFailure), (MemoryError, OutOfMemory)]
)
def test_failures_are_typed_errors_not_latencies(exc: type[BaseException], typed: type) -> None:
    ops = [("bad", Busy(50e-6, fail_after=200, exc=exc)), ("good", Busy(50e-6))]
    results = Engine(FAST).measure(ops)
    assert isinstance(results["bad"], typed)
    assert results["bad"].to_dict()["type"] == typed.kind
    assert isinstance(results["good"], Measurement)  # one failure does not sink the batch


def test_a_call_slower_than_the_timeout_is_a_timeout() -> None:
    cfg = TimingConfig(call_timeout_s=0.005, min_sample_s=0.001)
    result = Engine(cfg).measure([("slow", Busy(0.01))])["slow"]
    assert isinstance(result, MeasureTimeout)


def test_budget_is_respected_and_noise_is_flagged() -> None:
    cfg = TimingConfig(budget_s=0.2, rel_tol=0.001, min_sample_s=0.001)
    m = measure_one(Busy(100e-6, jitter=1.0), cfg)  # uniform noise: IQR/median ~ 30%
    assert m.budget_exhausted
    assert m.sampling_s <= cfg.budget_s + cfg.budget_s / cfg.rounds
    assert not m.stats.target_met and not m.stats.stable


def test_more_budget_gives_a_tighter_interval() -> None:
    noisy = dict(per_call_s=100e-6, jitter=1.0)
    small = measure_one(
        Busy(**noisy), TimingConfig(budget_s=0.05, rel_tol=1e-4, min_sample_s=0.0005)
    )
    large = measure_one(
        Busy(**noisy), TimingConfig(budget_s=0.6, rel_tol=1e-4, min_sample_s=0.0005)
    )
    assert large.stats.samples > 2 * small.stats.samples
    assert large.stats.rel_ci < small.stats.rel_ci


def test_rounds_interleave_in_shuffled_orders() -> None:
    visits: list[str] = []  # the engine reports each setup and each round visit, in order
    ops = [(n, Busy(50e-6)) for n in "abcd"]
    cfg = TimingConfig(budget_s=0.1, min_sample_s=0.001, seed=3)
    Engine(cfg, progress=lambda key, n: visits.append(key)).measure(ops)
    setup, rounds = visits[:4], visits[4:]
    assert setup == list("abcd")
    orders = [tuple(rounds[i : i + 4]) for i in range(0, 4 * cfg.rounds, 4)]
    assert all(sorted(o) == list("abcd") for o in orders)  # every op in every round
    assert len(set(orders)) > 1  # and not the same order each time


def test_progress_reports_every_unit() -> None:
    seen: list[int] = []
    engine = Engine(FAST, progress=lambda key, n: seen.append(n))
    engine.measure([("a", Busy(50e-6)), ("b", Busy(50e-6, fail_after=0))])
    assert sum(seen) == engine.work_units(2)


def test_host_timer_measures_the_block() -> None:
    assert time_block(Busy(0.002), 3) == pytest.approx(0.006, rel=0.2)


@pytest.mark.parametrize(
    "bad",
    [
        {"rel_tol": 0},
        {"budget_s": -1},
        {"rounds": 0},
        {"rounds": 20, "max_rounds": 12},
        {"min_samples_per_round": 2},
        {"min_sample_s": 0},
        {"call_timeout_s": 0},
    ],
)
def test_config_is_validated(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=rf"^{next(iter(bad))}: out of range"):
        TimingConfig(**bad)  # type: ignore[arg-type]


class SessionLuck(Busy):
    """Each fresh load runs at its own speed (allocation luck): steady within a round."""

    def __init__(self, per_call_s: float, levels: list[float]) -> None:
        super().__init__(per_call_s)
        self.levels, self.base = levels, per_call_s

    def reload(self) -> None:
        super().reload()
        self.per_call_s = self.base * self.levels[self.reloads % len(self.levels)]


def test_sessions_that_disagree_get_more_rounds_and_an_honest_ci() -> None:
    cfg = TimingConfig(budget_s=1.0, min_sample_s=0.002, rel_tol=0.02)
    steady = measure_one(SessionLuck(100e-6, [1.0]), cfg)
    lucky = measure_one(SessionLuck(100e-6, [1.0, 1.15, 0.9, 1.1, 0.95]), cfg)
    # a steady op takes the minimum rounds on a quiet machine; on a VM whose neighbour
    # bursts in the middle of one (seen in CI: 4 rounds) it may take one more, never as
    # many as sessions that really disagree
    assert steady.stats.target_met and steady.rounds <= cfg.rounds + 1
    assert lucky.rounds > steady.rounds  # more sessions, not only more samples of one
    assert lucky.rounds > cfg.rounds
    assert lucky.stats.rel_ci > 0.02 and not lucky.stats.stable
