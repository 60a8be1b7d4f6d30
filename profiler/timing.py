"""The timing engine: every latency hwlat reports is measured here, for every runtime.

For a batch of ops it (1) times the first call on its own, (2) warms up for >= 10 calls
and >= 25 ms, (3) sizes a sample to last >= 1 ms so timer overhead vanishes, then (4)
samples in >= 3 rounds, each round on a fresh session and visiting the ops in a fresh
shuffled order so a slow drift of the machine (heat, a neighbour's job) hits all ops
alike, and (5) stops an op once the 95% CI half-width of its median is <= rel_tol x
median, or its sampling budget is spent. A round ends early once its pooled samples meet
the target; the CI that decides whether another round is needed also covers the spread
between round medians (profiler.stats), so an op whose sessions disagree gets more
sessions, not more samples of the same one. Failures become typed errors (profiler.errors), never
latencies. See shared/MEASUREMENT.md for where each rule comes from.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np

from profiler.errors import MeasureError, MeasureTimeout, classify
from profiler.stats import MIN_SAMPLES_FOR_CI, Stats, summarize


class Runnable(Protocol):
    """What a runtime hands the engine for one op."""

    timer: str  # "host" (synchronous calls) or "cuda_events" (asynchronous launches)

    def run(self, calls: int) -> None:
        """Make `calls` back-to-back calls of the block."""

    def sync(self) -> None:
        """Wait until the device has finished all work launched so far."""

    def flush_cache(self) -> None:
        """Evict the device's last-level cache (GPU L2); a no-op where unsupported."""

    def reload(self) -> None:
        """Load the block afresh (new session / buffers); called before every round."""


@dataclass(frozen=True)
class TimingConfig:
    rel_tol: float = 0.02  # target: 95% CI half-width of the median <= 2% of it
    budget_s: float = 2.0  # sampling time per op; warm-up and export are not counted
    rounds: int = 3  # minimum interleaved rounds; more only while the target is missed
    # rounds stop at the target: 30 let fbnet@32's ops meet ±2% where 12 left 18-22 of
    # 104 short, in the same wall time (docs/BENCHMARKS.md, issue 31)
    max_rounds: int = 30
    min_samples_per_round: int = 10  # never fewer, whatever the budget (>= 3 for a CI)
    warmup_calls: int = 10
    warmup_s: float = 0.025
    min_sample_s: float = 0.005  # >= 1 ms (timer overhead); 5 ms averages out VM ticks
    call_timeout_s: float = 30.0  # a single call slower than this is a timeout error
    l2_flush: bool = False  # GPU only: flush L2 before every sample
    seed: int = 0  # shuffling of the round order

    def __post_init__(self) -> None:
        checks = {
            "rel_tol": 0 < self.rel_tol < 1,
            "budget_s": self.budget_s > 0,
            "rounds": 1 <= self.rounds <= self.max_rounds,
            "min_samples_per_round": self.min_samples_per_round >= 3,
            "warmup_calls": self.warmup_calls >= 1,
            "min_sample_s": self.min_sample_s > 0,
            "call_timeout_s": self.call_timeout_s > 0,
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"{name}: out of range ({getattr(self, name)!r})")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_options(
        cls,
        rel_tol: float,
        budget_s: float,
        rounds: int,
        min_sample_ms: float,
        samples_per_round: int,
        seed: int = 0,
    ) -> TimingConfig:
        """From the command-line knobs shared by `hwlat profile` and `hwlat agent`."""
        return cls(
            rel_tol=rel_tol,
            budget_s=budget_s,
            rounds=rounds,
            max_rounds=max(30, rounds),
            min_sample_s=min_sample_ms / 1e3,
            min_samples_per_round=samples_per_round,
            seed=seed,
        )


@dataclass
class Measurement:
    stats: Stats
    first_call_ms: float
    warmup_calls: int
    warmup_ms: float
    rounds: int
    timed_calls: int
    sampling_s: float
    timer: str
    budget_exhausted: bool

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if k != "stats"}
        return {**self.stats.to_dict(), **d}


@dataclass
class _Op:
    key: str
    runnable: Runnable
    calls: int = 1
    samples: list[float] = field(default_factory=list)  # ms per call
    round_medians: list[float] = field(default_factory=list)  # one per fresh-session round
    spent_s: float = 0.0
    rounds: int = 0
    first_call_ms: float = 0.0
    warmup_calls: int = 0
    warmup_ms: float = 0.0
    error: MeasureError | None = None


def time_block(r: Runnable, calls: int, flush: bool = False) -> float:
    """Seconds for `calls` calls, timed the way the runnable's device needs."""
    if flush:
        r.flush_cache()
    if r.timer == "cuda_events":
        import torch

        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        r.sync()
        start.record()
        r.run(calls)
        end.record()
        end.synchronize()
        return float(start.elapsed_time(end)) / 1e3
    r.sync()
    t0 = time.perf_counter_ns()
    r.run(calls)
    r.sync()
    return (time.perf_counter_ns() - t0) / 1e9


Progress = Callable[[str, int], None]  # (op key, work units done since the last call)


class Engine:
    """Measures a batch of prepared ops; `measure()` returns a result or error per key."""

    def __init__(self, config: TimingConfig | None = None, progress: Progress | None = None):
        self.config = config or TimingConfig()
        self.progress = progress or (lambda key, n: None)

    def work_units(self, n_ops: int) -> int:
        """Progress units for n ops: a setup and one unit per minimum round each."""
        return n_ops * (1 + self.config.rounds)

    def measure(
        self, ops: Sequence[tuple[str, Runnable]], stop: Callable[[], bool] | None = None
    ) -> dict[str, Measurement | MeasureError]:
        """A result or a typed error per key. When `stop()` turns true, the visit in hand
        is finished and ops short of the minimum rounds are left out of the answer."""
        cfg, stop = self.config, stop or (lambda: False)
        states = [_Op(key, r) for key, r in ops]
        for op in states:
            if stop():
                break
            self._guard(op, self._setup)
            self.progress(op.key, 1)
        rng = random.Random(cfg.seed)
        for round_no in range(cfg.max_rounds):
            active = [op for op in states if op.error is None and self._wants_more(op, round_no)]
            if not active or stop():
                break
            rng.shuffle(active)
            for op in active:
                if stop():
                    break
                self._guard(op, self._sample_round)
                self.progress(op.key, 1 if round_no < cfg.rounds else 0)
        for op in states:  # ops that errored early still owe their round units
            if op.error is not None:
                self.progress(op.key, max(0, cfg.rounds - op.rounds))
        return {
            op.key: (op.error if op.error is not None else self._result(op))
            for op in states
            if op.error is not None or op.rounds >= cfg.rounds
        }

    def _guard(self, op: _Op, step: Callable[[_Op], None]) -> None:
        try:
            step(op)
        except Exception as exc:  # any runtime failure becomes a typed error for this op
            op.error = classify(exc, op.key)

    def _timed(self, op: _Op, calls: int, flush: bool = False) -> float:
        seconds = time_block(op.runnable, calls, flush)
        if seconds > self.config.call_timeout_s * calls:
            raise MeasureTimeout(
                f"{seconds / calls:.1f} s per call exceeds the "
                f"{self.config.call_timeout_s} s timeout",
                op.key,
            )
        return seconds

    def _setup(self, op: _Op) -> None:
        cfg = self.config
        op.first_call_ms = self._timed(op, 1) * 1e3
        t0, calls = time.perf_counter(), 0
        while calls < cfg.warmup_calls or time.perf_counter() - t0 < cfg.warmup_s:
            self._timed(op, 1)
            calls += 1
        op.warmup_calls, op.warmup_ms = calls, (time.perf_counter() - t0) * 1e3
        op.calls = self._calibrate(op)

    def _calibrate(self, op: _Op) -> int:
        """Smallest call count whose block lasts >= min_sample_s (grow x1.25 past the goal)."""
        target, calls = self.config.min_sample_s, 1
        while True:
            seconds = self._timed(op, calls)
            if seconds >= target:
                return calls
            grow = math.ceil(calls * target * 1.25 / max(seconds, 1e-9))
            calls = min(max(grow, calls + 1), calls * 10)

    def _wants_more(self, op: _Op, round_no: int) -> bool:
        """Another round (a fresh session) while the CI over rounds misses the target."""
        if round_no < self.config.rounds:
            return True
        return not self._target_met(op, op.round_medians) and op.spent_s < self.config.budget_s

    def _target_met(self, op: _Op, round_medians: Sequence[float] = ()) -> bool:
        if len(op.samples) < MIN_SAMPLES_FOR_CI:
            return False
        return summarize(op.samples, op.calls, self.config.rel_tol, round_medians).target_met

    def _sample_round(self, op: _Op) -> None:
        """One visit: a discarded re-warm sample, then samples until the round's share of
        the budget is spent or (with the round minimum met) the pooled samples' target is
        met. More samples cannot narrow the spread between sessions; more rounds can."""
        cfg = self.config
        share = cfg.budget_s / cfg.rounds
        if op.rounds > 0:
            op.runnable.reload()  # each round on a fresh load: allocation luck averages out
        self._timed(op, op.calls)  # re-warm after the other ops ran: not kept
        t0, taken = time.perf_counter(), 0
        while True:
            seconds = self._timed(op, op.calls, cfg.l2_flush)
            op.samples.append(seconds * 1e3 / op.calls)
            taken += 1
            elapsed = time.perf_counter() - t0
            if taken >= cfg.min_samples_per_round and (
                elapsed >= share
                or op.spent_s + elapsed >= cfg.budget_s
                or (taken % 5 == 0 and self._target_met(op))
            ):
                break
        op.spent_s += time.perf_counter() - t0
        op.rounds += 1
        op.round_medians.append(float(np.median(op.samples[-taken:])))

    def _result(self, op: _Op) -> Measurement:
        stats = summarize(op.samples, op.calls, self.config.rel_tol, op.round_medians)
        return Measurement(
            stats=stats,
            first_call_ms=op.first_call_ms,
            warmup_calls=op.warmup_calls,
            warmup_ms=op.warmup_ms,
            rounds=op.rounds,
            timed_calls=len(op.samples) * op.calls,
            sampling_s=op.spent_s,
            timer=op.runnable.timer,
            budget_exhausted=op.spent_s >= self.config.budget_s,
        )
