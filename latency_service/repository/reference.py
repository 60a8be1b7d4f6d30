"""Reference readings: store the panel measured with each agent batch, report drift, and
normalise training labels by the drift of the agent run they were measured in."""

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


def _medians(row: ReferenceReading) -> dict[str, float]:
    return {k: float(v["median_ms"]) for k, v in row.ops.items()}


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
    return reference.baseline([_medians(r) for r in rows])


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
        runs.setdefault(r.run_id, []).append((r, reference.drift(_medians(r), base, tolerance)))
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
    """Each label divided by its agent run's drift factor (the median over the run's
    readings: one batch's factor carries about ±1% of panel noise, while what drifts is
    mostly a whole run), and the record a predictor keeps so that a rebuild divides by
    the same factors: the baseline and the newest reading used. `record` is that of a
    predictor being rebuilt. A label measured in a run without readings stays as
    measured (so does any without a reading under a record from before agents could
    read the panel every Nth batch); with no readings at all the record is None."""
    rows = readings(s, device, revision)
    if record is not None:
        rows = [r for r in rows if r.id <= record["readings_upto"]]
        base = record["baseline"]
    elif not rows:
        return list(ms), None
    else:
        base = baseline(rows)
    runs: dict[str, list[float]] = {}
    for r in rows:
        runs.setdefault(r.run_id, []).append(reference.factor(_medians(r), base))
    run_factor = {run: statistics.median(fs) for run, fs in runs.items()}
    if record is None or record.get("by") == "run":
        keys: Sequence[int | str | None] = run_ids
        factors: dict[Any, float] = run_factor
    else:  # the older record: only batches with a reading of their own
        keys, factors = reference_ids, {r.id: run_factor[r.run_id] for r in rows}
    per_row = [factors.get(k, 1.0) for k in keys]
    used = sorted(f for f, k in zip(per_row, keys, strict=True) if k in factors)
    out = {
        "panel": reference.PANEL,
        "by": "run",
        "baseline": base,
        "readings_upto": max((r.id for r in rows), default=0),
        "runs": len(run_factor),
        "normalised": len(used),
        "factor_p05": _quantile(used, 0.05),
        "factor_p50": _quantile(used, 0.5),
        "factor_p95": _quantile(used, 0.95),
    }
    if record is not None and "by" not in record:
        del out["by"]
    return [m / f for m, f in zip(ms, per_row, strict=True)], out


def _quantile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    return sorted_values[min(len(sorted_values) - 1, math.floor(q * len(sorted_values)))]
