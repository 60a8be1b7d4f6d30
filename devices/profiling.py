"""Profile a list of ops on one runtime into a LUT: prepare, measure in interleaved
batches with the reference panel, divide out each batch's drift, measure again what a
disturbed batch or a wide interval left doubtful, record errors, and save after every
batch so an interrupted run resumes.

The measuring discipline is the agent's (profiler.reference: the panel, its factors,
the re-measuring rules; the service combines an op's measurements the same way), done
on this machine against a store of readings per fingerprint (profiler.localref). Each
op keeps its raw statistics (the newest measurement's, as before), every measurement
with its batch's factor, and the combined raw and corrected values.
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devices.fingerprint import fingerprint, fingerprint_id
from devices.runtimes.base import Prepared, Runtime
from profiler import reference
from profiler.errors import MeasureError, classify
from profiler.features import features
from profiler.hoststate import host_state
from profiler.localref import Store, combine
from profiler.lut import load_lut, new_lut, now, save_lut
from profiler.ops import OpSpec
from profiler.timing import Engine, Measurement, Progress, TimingConfig

BATCH = 16  # ops interleaved together (the agent's batch); the LUT is saved after each


@dataclass(frozen=True)
class Drift:
    """The reference panel with every batch, against the readings kept in `store_dir` (a
    file per fingerprint, profiler.localref; None: this run's readings only), and the
    re-measuring `rules`."""

    store_dir: Path | None = None
    rules: reference.Rules = reference.DEFAULT_RULES


@dataclass
class ProfileReport:
    lut: dict[str, Any]
    measured: int = 0  # ops measured now
    kept: int = 0  # ops kept from an earlier run with the same fingerprint
    failed: int = 0
    remeasured: int = 0  # measurements taken again (disturbed batch or wide interval)
    wall_s: float = 0.0
    export_s: float = 0.0
    timed_s: float = 0.0  # sum over ops measured now of median x timed calls
    keys: list[str] = field(default_factory=list)

    @property
    def efficiency(self) -> float:
        return self.timed_s / self.wall_s if self.wall_s > 0 else 0.0


def open_lut(
    out: Path | None, runtime: Runtime, config: TimingConfig, space: dict[str, Any] | None
) -> dict[str, Any]:
    """A fresh LUT, or the one at `out` when it was measured with the same fingerprint."""
    fp = fingerprint(runtime)
    fp_id = fingerprint_id(fp)
    if out is not None and out.exists():
        lut = load_lut(out)
        if lut.get("fingerprint_id") != fp_id:
            raise ValueError(
                f"{out}: measured with another device/runtime fingerprint "
                f"({lut.get('fingerprint_id')} here {fp_id}); numbers are never mixed, so "
                "pass another --out or remove the file"
            )
        lut["errors"] = {}  # failed ops are retried
        return lut
    return new_lut(fp, fp_id, runtime.describe(), config.to_dict(), space)


def _prepare_all(
    runtime: Runtime, ops: Sequence[OpSpec], on_done: Callable[[str], None]
) -> tuple[dict[str, Prepared], dict[str, MeasureError]]:
    prepared: dict[str, Prepared] = {}
    errors: dict[str, MeasureError] = {}
    for op in ops:
        try:
            prepared[op.key] = runtime.prepare(op)
        except Exception as exc:  # a failure of one op must not end the run
            errors[op.key] = classify(exc, op.key)
        on_done(op.key)
    return prepared, errors


def profile_ops(
    runtime: Runtime,
    ops: Sequence[OpSpec],
    config: TimingConfig,
    out: Path | None = None,
    space: dict[str, Any] | None = None,
    on_prepared: Callable[[str], None] | None = None,
    progress: Progress | None = None,
    drift: Drift | None = Drift(),
    on_more: Callable[[int], None] | None = None,
) -> ProfileReport:
    """Measure `ops` into a LUT (saved to `out` after each batch). With `drift` (the
    default) the panel is measured with every batch and doubtful ops again; `on_more(n)`
    says that n more ops are queued for measuring again (for a progress bar)."""
    t0 = time.perf_counter()
    lut = open_lut(out, runtime, config, space)
    unique = list(dict.fromkeys(ops))
    todo = [op for op in unique if op.key not in lut["ops"]]
    report = ProfileReport(lut, kept=len(unique) - len(todo), keys=[op.key for op in unique])
    run = _Run(runtime, config, lut, report, drift, out, on_prepared, progress)
    run.measure(todo)
    again = run.doubtful([op.key for op in todo])
    for _ in range(drift.rules.extra if drift else 0):
        if not again:
            break
        if on_more:
            on_more(len(again))
        report.remeasured += len(again)
        run.measure(again)
        again = run.doubtful([op.key for op in again])
    report.wall_s = time.perf_counter() - t0
    return report


class _Run:
    """One invocation of profile_ops: its batches, readings and factors."""

    def __init__(
        self,
        runtime: Runtime,
        config: TimingConfig,
        lut: dict[str, Any],
        report: ProfileReport,
        drift: Drift | None,
        out: Path | None,
        on_prepared: Callable[[str], None] | None,
        progress: Progress | None,
    ):
        self.runtime, self.lut, self.report, self.drift, self.out = runtime, lut, report, drift, out
        self.on_prepared = on_prepared or (lambda key: None)
        self.user_progress = progress
        self.engine = Engine(config, self._progress)
        self.id = uuid.uuid4().hex[:12]
        self.store: Store | None = None
        self.ref: dict[str, Any] = lut.setdefault(
            "reference", {"panel": reference.PANEL, "readings": {}}
        )
        if drift is not None:
            fp_id = lut["fingerprint_id"]
            path = drift.store_dir / f"{fp_id}.json" if drift.store_dir else None
            self.store = Store(path, fp_id)  # a foreign or broken store: ValueError here
            self.ref["store"] = str(path) if path else None
        self.panel_keys: set[str] = set()
        self.error: str | None = None  # why the panel is off for this run

    def _progress(self, key: str, units: int) -> None:
        if self.user_progress and key not in self.panel_keys:  # the panel is overhead
            self.user_progress(key, units)

    def measure(self, ops: Sequence[OpSpec]) -> None:
        for start in range(0, len(ops), BATCH):
            self._batch(list(ops[start : start + BATCH]))

    def _batch(self, batch: list[OpSpec]) -> None:
        prepared, errors = _prepare_all(self.runtime, batch, self.on_prepared)
        self.report.export_s += sum(p.export_s for p in prepared.values())
        panel = self._panel({op.key for op in batch})
        before = host_state()
        items = [(key, p.runnable) for key, p in {**prepared, **panel}.items()]
        results = self.engine.measure(items)
        self.lut["host_state"].append({"before": before, "after": host_state(), "ops": len(batch)})
        reading = self._reading(results, {op.key for op in batch})
        for op in batch:
            if op.key in errors:  # never reached the engine: its progress units
                self._progress(op.key, self.engine.work_units(1))
            self._store_result(op, errors.get(op.key) or results.get(op.key), prepared, reading)
        self.refresh()
        del prepared, panel  # free the sessions of this batch before the next
        if self.out is not None:
            save_lut(self.out, self.lut)

    def _panel(self, batch_keys: set[str]) -> dict[str, Prepared]:
        """The panel's blocks not already in the batch, prepared (none without drift)."""
        if self.store is None or self.error:
            return {}
        ops = reference.panel_ops(self.runtime.precision)
        self.panel_keys = {op.key for op in ops} - batch_keys
        try:
            return {op.key: self.runtime.prepare(op) for op in ops if op.key in self.panel_keys}
        except Exception as exc:  # e.g. a precision the panel's blocks cannot take
            self._off(f"cannot prepare it ({exc})")
            return {}

    def _off(self, why: str) -> None:
        """The panel off for the rest of this run (a later run tries again)."""
        self.error = f"reference panel off: {why}"
        self.ref.setdefault("errors", {})[self.id] = self.error
        self.panel_keys = set()

    def _reading(self, results: dict[str, Any], batch_keys: set[str]) -> str | None:
        """Store the panel's medians (a block also in the batch counts once) as a reading;
        its key in the LUT is "run:id" (store ids restart with a new store)."""
        if self.store is None or self.error:
            return None
        keys = {op.key for op in reference.panel_ops(self.runtime.precision)}
        got = {k: results.get(k) for k in keys}
        if not all(isinstance(m, Measurement) for m in got.values()):
            return None  # a panel block failed or was cut short: no factor for this batch
        ops = {k: m.stats.to_dict() for k, m in got.items() if isinstance(m, Measurement)}
        try:
            row = self.store.add(self.id, ops)
        except (OSError, ValueError) as exc:  # the batch is measured: keep it, uncorrected
            self._off(f"cannot store its reading ({exc})")
            return None
        key = f"{self.id}:{row['id']}"
        self.ref["readings"][key] = dict(row)
        return key

    def _store_result(
        self,
        op: OpSpec,
        res: Measurement | MeasureError | None,
        prepared: dict[str, Prepared],
        reading: str | None,
    ) -> None:
        if isinstance(res, Measurement):
            self.report.measured += op.key not in self.lut["ops"]  # a repeat: `remeasured`
            _record(self.lut, op, res, prepared[op.key], reading, self.id)
            self.report.timed_s += res.stats.median_ms * res.timed_calls / 1e3
        elif res is not None and op.key not in self.lut["ops"]:  # a repeat's failure keeps
            self.lut["errors"][op.key] = {**res.to_dict(), "spec": op.to_dict()}  # the old
            self.report.failed += 1

    def refresh(self) -> None:
        """This run's factors (they move as its readings come in), and every op's
        combined values under them."""
        if self.store is None:
            factors: dict[int, tuple[float, float]] = {}
            sigma = None
        else:
            factors = self.store.factors(self.id)
            cal = self.store.sigma()
            sigma = cal.sigma
            self.ref.update(baseline=self.store.baseline(self.id), sigma=cal.to_dict())
        for rid, (raw, used) in factors.items():
            self.ref["readings"][f"{self.id}:{rid}"].update(factor_raw=raw, factor=used)
        # a batch without a reading of its own (its panel failed) takes its run's median
        run_factor = statistics.median(f for _, f in factors.values()) if factors else 1.0
        for row in self.lut["ops"].values():
            for m in row.setdefault("measurements", [_legacy(row)]):
                r = self.ref["readings"].get(m.get("reading") or "")
                mine = m.get("run") == self.id
                m["factor"] = r.get("factor", 1.0) if r else (run_factor if mine else 1.0)
            row.update(combine(row["measurements"], sigma))

    def doubtful(self, keys: Sequence[str]) -> list[OpSpec]:
        """Of `keys`, the ops the rules measure again: the newest measurement's batch was
        disturbed (once the baseline can tell) or its interval wide; at most `extra` more."""
        if self.drift is None or self.store is None:
            return []
        rules, judged = self.drift.rules, self.store.judged(self.id)
        out = []
        for key in keys:
            row = self.lut["ops"].get(key)
            if row is None or len(row["measurements"]) > rules.extra:
                continue
            last = row["measurements"][-1]
            r = self.ref["readings"].get(last.get("reading") or "")
            disturbed = judged and r is not None and rules.disturbed(r.get("factor_raw", 1.0))
            if disturbed or rules.unstable(last["median_ms"], last.get("ci_half_width_ms")):
                out.append(OpSpec.from_dict(row["spec"]))
        return out


def _legacy(row: dict[str, Any]) -> dict[str, Any]:
    """The one measurement of an op recorded before measurements were kept."""
    return {k: row.get(k) for k in ("median_ms", "ci_half_width_ms", "stable", "measured_at")}


def _record(
    lut: dict[str, Any],
    op: OpSpec,
    result: Measurement,
    prep: Prepared,
    reading: str | None,
    run: str,
) -> None:
    old = lut["ops"].get(op.key)
    stats = result.to_dict()
    this = {k: stats[k] for k in ("median_ms", "ci_half_width_ms", "stable")}
    this.update(reading=reading, run=run, measured_at=now())
    lut["ops"][op.key] = {
        "spec": op.to_dict(),
        **stats,
        "export_s": prep.export_s,
        "info": prep.info,
        "features": features(op).to_dict(),
        "measured_at": now(),
        "measurements": [*(old.get("measurements", [_legacy(old)]) if old else []), this],
    }
