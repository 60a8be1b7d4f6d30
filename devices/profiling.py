"""Profile a list of ops on one runtime into a LUT: prepare, measure in interleaved
batches, record errors, save after every batch so an interrupted run resumes."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devices.fingerprint import fingerprint, fingerprint_id
from devices.runtimes.base import Prepared, Runtime
from profiler.errors import MeasureError, classify
from profiler.features import features
from profiler.hoststate import host_state
from profiler.lut import load_lut, new_lut, now, save_lut
from profiler.ops import OpSpec
from profiler.timing import Engine, Measurement, Progress, TimingConfig

BATCH = 32  # ops interleaved together; the LUT is saved after each batch


@dataclass
class ProfileReport:
    lut: dict[str, Any]
    measured: int = 0  # ops measured now
    kept: int = 0  # ops kept from an earlier run with the same fingerprint
    failed: int = 0
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
        except (MeasureError, ValueError) as exc:
            errors[op.key] = classify(exc, op.key)
        except Exception as exc:  # an unexpected failure of one op must not end the run
            errors[op.key] = classify(exc, op.key)
        on_done(op.key)
    return prepared, errors


def _record(lut: dict[str, Any], op: OpSpec, result: Measurement, prep: Prepared) -> None:
    lut["ops"][op.key] = {
        "spec": op.to_dict(),
        **result.to_dict(),
        "export_s": prep.export_s,
        "info": prep.info,
        "features": features(op).to_dict(),
        "measured_at": now(),
    }


def profile_ops(
    runtime: Runtime,
    ops: Sequence[OpSpec],
    config: TimingConfig,
    out: Path | None = None,
    space: dict[str, Any] | None = None,
    on_prepared: Callable[[str], None] | None = None,
    progress: Progress | None = None,
) -> ProfileReport:
    t0 = time.perf_counter()
    lut = open_lut(out, runtime, config, space)
    unique = list(dict.fromkeys(ops))
    todo = [op for op in unique if op.key not in lut["ops"]]
    report = ProfileReport(lut, kept=len(unique) - len(todo), keys=[op.key for op in unique])
    engine = Engine(config, progress)
    for start in range(0, len(todo), BATCH):
        batch = todo[start : start + BATCH]
        prepared, errors = _prepare_all(runtime, batch, on_prepared or (lambda key: None))
        report.export_s += sum(p.export_s for p in prepared.values())
        before = host_state()
        results = engine.measure([(key, p.runnable) for key, p in prepared.items()])
        lut["host_state"].append({"before": before, "after": host_state(), "ops": len(batch)})
        for op in batch:
            res = errors.get(op.key) or results.get(op.key)
            if isinstance(res, Measurement):
                _record(lut, op, res, prepared[op.key])
                report.measured += 1
                report.timed_s += res.stats.median_ms * res.timed_calls / 1e3
            elif res is not None:
                lut["errors"][op.key] = {**res.to_dict(), "spec": op.to_dict()}
                report.failed += 1
                if progress and op.key in errors:  # never reached the engine: its units
                    progress(op.key, engine.work_units(1))
        del prepared  # free the sessions of this batch before the next
        if out is not None:
            save_lut(out, lut)
    report.wall_s = time.perf_counter() - t0
    return report
