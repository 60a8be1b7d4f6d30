"""Reference readings: store the panel measured with each agent batch, report drift, and
normalise training labels by the drift of the batch and run they were measured in."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from latency_service.errors import Invalid
from latency_service.models import Device, Measurement, ReferenceReading
from profiler import reference


def store(
    s: Session, device: Device, lease_id: str, run_id: str, reading: Any | None
) -> int | None:
    """The id of this batch's reading, stored once per (device, run, lease): an upload
    replayed from an agent's spool finds the reading it stored the first time."""
    if reading is None:
        return None
    try:
        reference.check(reading.panel, reading.ops)
    except ValueError as exc:
        raise Invalid(f"reference.{exc}") from None
    found = s.scalar(
        select(ReferenceReading.id).where(
            ReferenceReading.device_id == device.id,
            ReferenceReading.run_id == run_id,
            ReferenceReading.lease_id == lease_id,
        )
    )
    if found is not None:
        return int(found)
    row = ReferenceReading(
        device_id=device.id,
        revision=device.revision,
        run_id=run_id,
        lease_id=lease_id,
        panel=reading.panel,
        ops={k: v.model_dump() for k, v in sorted(reading.ops.items())},
    )
    s.add(row)
    s.flush()
    return row.id


def medians(row: ReferenceReading) -> dict[str, float]:
    return reference.medians(row.ops)


def readings(s: Session, device: Device, revision: int | None = None) -> list[ReferenceReading]:
    """The device revision's readings of the current panel, oldest first."""
    rev = device.revision if revision is None else revision
    return list(
        s.scalars(
            select(ReferenceReading)
            .where(
                ReferenceReading.device_id == device.id,
                ReferenceReading.revision == rev,
                ReferenceReading.panel == reference.PANEL,
            )
            .order_by(ReferenceReading.id)
        )
    )


def baseline(rows: Sequence[ReferenceReading]) -> dict[str, float]:
    return reference.baseline([medians(r) for r in rows])


@dataclass(frozen=True)
class RunDrift:
    run_id: str
    readings: int
    flagged: int
    first_at: Any
    last_at: Any
    median_factor: float
    min_factor: float
    max_factor: float
    measurements: int


def drift_by_run(s: Session, rows: Sequence[ReferenceReading], tolerance: float) -> list[RunDrift]:
    """Per agent run: its readings' factors against the revision's baseline."""
    if not rows:
        return []
    base = baseline(rows)
    counts = dict(  # what each run measured, with a reading of its batch's own or not
        s.execute(
            select(Measurement.run_id, func.count(Measurement.id))
            .where(
                Measurement.device_id == rows[0].device_id,
                Measurement.revision == rows[0].revision,
                Measurement.run_id.in_({r.run_id for r in rows}),
            )
            .group_by(Measurement.run_id)
        ).all()
    )
    runs: dict[str, list[tuple[ReferenceReading, reference.Drift]]] = {}
    for r in rows:
        runs.setdefault(r.run_id, []).append((r, reference.drift(medians(r), base, tolerance)))
    out = []
    for run_id, items in runs.items():
        factors = [d.factor for _, d in items]
        out.append(
            RunDrift(
                run_id=run_id,
                readings=len(items),
                flagged=sum(d.flagged for _, d in items),
                first_at=items[0][0].created_at,
                last_at=items[-1][0].created_at,
                median_factor=statistics.median(factors),
                min_factor=min(factors),
                max_factor=max(factors),
                measurements=counts.get(run_id, 0),
            )
        )
    return out


def normalise(
    s: Session,
    device: Device,
    revision: int,
    reference_ids: Sequence[int | None],
    run_ids: Sequence[str],
    ms: Sequence[float],
    record: dict[str, Any] | None = None,
) -> tuple[list[float], dict[str, Any] | None]:
    """Each label divided by the drift factor of its batch, and the record a predictor
    keeps so that a rebuild divides by the same factors: the baseline and the newest
    reading used. `record` is that of a predictor being rebuilt; with no readings at all
    the record is None.

    A batch's factor is its reading's, pulled toward its run's median by how much of
    the run's spread the panel's own noise explains (`profiler.reference.shrink`): on a
    quiet machine a run's batches share its median, on a drifting one each keeps its own. A batch
    without a reading takes its run's median; a run without readings stays as measured.
    Older records rebuild as they were trained: `"by": "run"` (every label its run's
    median) or no `"by"` (only batches with a reading of their own, by the run median)."""
    rows = readings(s, device, revision)
    if record is not None:
        rows = [r for r in rows if r.id <= record["readings_upto"]]
        base = record["baseline"]
    elif not rows:
        return list(ms), None
    else:
        base = baseline(rows)
    runs: dict[str, list[tuple[int, float]]] = {}
    for r in rows:
        runs.setdefault(r.run_id, []).append((r.id, reference.factor(medians(r), base)))
    run_factor = {run: statistics.median(f for _, f in fs) for run, fs in runs.items()}
    by = "batch" if record is None else record.get("by")
    if by == "batch":
        batch = {rid: f for fs in runs.values() for rid, f in reference.shrink(fs).items()}
        pairs = [
            (batch[rid], True) if rid in batch else (run_factor.get(run, 1.0), run in run_factor)
            for rid, run in zip(reference_ids, run_ids, strict=True)
        ]
    elif by == "run":
        pairs = [(run_factor.get(run, 1.0), run in run_factor) for run in run_ids]
    else:  # the oldest records: only batches with a reading of their own
        own: dict[int | None, float] = {r.id: run_factor[r.run_id] for r in rows}
        pairs = [(own.get(rid, 1.0), rid in own) for rid in reference_ids]
    per_row = [f for f, _ in pairs]
    used = sorted(f for f, ok in pairs if ok)
    out = {
        "panel": reference.PANEL,
        "by": by,
        "baseline": base,
        "readings_upto": max((r.id for r in rows), default=0),
        "runs": len(run_factor),
        "normalised": len(used),
        "factor_p05": _quantile(used, 0.05),
        "factor_p50": _quantile(used, 0.5),
        "factor_p95": _quantile(used, 0.95),
    }
    if by is None:
        del out["by"]
    return [m / f for m, f in zip(ms, per_row, strict=True)], out


def _quantile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    return sorted_values[min(len(sorted_values) - 1, math.floor(q * len(sorted_values)))]
