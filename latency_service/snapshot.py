"""A device's read snapshot, and how it is built: whole (one query over its current
measurements) or from an older snapshot plus the rows added since (`newer`).

Uploads to a device being read are the common case in a fleet: py-spy under bench/fleet.py
put 60% of a worker's CPU in reloading whole snapshots (2 000 ORM rows with JSON columns)
after every upload. `newer` reads only the rows with an id above the snapshot's newest.
That is exact because every writer of a device's measurements first locks the device's
row (`repository.devices.lock`), so a device's measurement ids are handed out in commit
order: no row with a lower id can become visible later.

A measured value's interval includes its kind's between-session term
(repository.uncertainty). A new upload usually brings a new panel reading, and new
retests change a kind's term and repeatability too; those change only per-kind numbers,
so `newer` rewrites the affected values in memory instead of loading whole.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from latency_service.models import Device, Measurement, Op
from latency_service.repository import imports as imports_repo
from latency_service.repository import predictors as predictors_repo
from latency_service.repository import retest
from latency_service.repository.latency import IMPORT_REF
from latency_service.repository.uncertainty import Between, assess, interval
from latency_service.stamp import Stamp
from profiler._kinds import KINDS


@dataclass
class Snapshot:
    device: str
    device_id: int
    revision: int
    # the stamp past id and revision when loaded: newest measurement id, newest predictor
    # id, predictors, newest network measurement id
    watermark: tuple[int, ...]
    loaded_at: float
    latency: dict[str, dict[str, Any]] = field(default_factory=dict)
    predictors: dict[str, dict[str, Any]] = field(default_factory=dict)  # kind -> recipe
    repeat: dict[str, float] = field(default_factory=dict)  # kind -> retests' RMS difference
    between: Between = field(default_factory=Between)  # the between-session terms
    # imported op key -> {format, count, parts}: how its file had it, for exports
    imports: dict[str, dict[str, Any]] = field(default_factory=dict)
    # per imported file of the revision: its format, space configuration and the entries
    # no op used, so an export in its format gives back the whole file
    files: list[dict[str, Any]] = field(default_factory=list)
    # network calibrations by scope (None: op lists), each fitted on first use
    calibration: dict[str | None, Any] = field(default_factory=dict)

    _encoded: dict[str, bytes] = field(default_factory=dict)

    def encoded(self, key: str) -> bytes | None:
        """The op's measured latency as the JSON a lookup answers, encoded once."""
        body = self._encoded.get(key)
        if body is None and (hit := self.latency.get(key)) is not None:
            body = self._encoded[key] = json.dumps(hit, separators=(",", ":")).encode()
        return body

    @property
    def stamp(self) -> Stamp:
        return (self.device_id, self.revision, *self.watermark)


def whole(s: Session, name: str, device: Device, stamp: Stamp) -> Snapshot:
    snap = Snapshot(name, device.id, device.revision, stamp[2:], time.monotonic())
    snap.repeat, snap.between = _terms(s, device)
    newest = (
        select(func.max(Measurement.id).label("mid"))
        .where(Measurement.device_id == device.id, Measurement.revision == device.revision)
        .group_by(Measurement.op_id)
        .subquery()
    )
    for current in s.execute(_columns().join(newest, Measurement.id == newest.c.mid)):
        _put(snap, current)
    snap.files = [
        {
            "format": r.format,
            "file": r.file_name,
            "config": [r.space, r.resolution, r.width, r.classes, r.options],
            "unused": {k: r.entries[k] for k, _ in r.unmapped if k in r.entries},
        }
        for r in imports_repo.current(s, device)
    ]
    for kind, row in predictors_repo.latest(s, device).items():
        snap.predictors[kind] = {
            "id": row.id,
            "kind": kind,
            "version": row.version,
            "model": row.model,
            "dtype": row.dtype,
            "samples": row.samples,
            "rmspe": row.metrics[row.model]["rmspe"],
            "trained_at": row.trained_at.isoformat(),
        }
    return snap


def newer(s: Session, old: Snapshot, device: Device, stamp: Stamp) -> Snapshot | None:
    """`old` with the measurements added since merged in (newest wins), as a new object:
    reads holding `old` keep it whole (its network calibrations are fitted again: a new
    network measurement changes them); the values of kinds whose between-session term or
    repeatability changed are rewritten (`_reterm`). None when more than measurements
    changed (a new revision or predictor): load whole."""
    same_predictors = old.watermark[1:3] == stamp[3:5]
    if (old.device_id, old.revision) != (device.id, device.revision) or not same_predictors:
        return None
    repeat, between = _terms(s, device)
    rows = s.execute(
        _columns()
        .where(
            Measurement.device_id == device.id,
            Measurement.revision == device.revision,
            Measurement.id > old.watermark[0],
        )
        .order_by(Measurement.id)
    )
    snap = Snapshot(
        old.device, device.id, device.revision, stamp[2:], time.monotonic(),
        latency=dict(old.latency), predictors=old.predictors, repeat=repeat, between=between,
        imports=dict(old.imports), files=old.files, _encoded=dict(old._encoded),
    )  # fmt: skip
    _reterm(snap, old)
    for row in rows:
        _put(snap, row)
        snap._encoded.pop(row.key, None)
    return snap


def _terms(s: Session, device: Device) -> tuple[dict[str, float], Between]:
    """Per kind with enough retest pairs their RMS difference (`repeat_rel_error`), and
    the between-session calibrations: one read of the retests and readings for both."""
    found, between = assess(s, device)
    repeat = {}
    for kind, pairs in found.items():
        if len(pairs) >= retest.MIN_PAIRS:
            ratios = [p.retest / p.label for p in pairs]
            repeat[kind] = retest.summary(ratios, [p.covered for p in pairs])["rmspe"]
    return repeat, between


def _reterm(snap: Snapshot, old: Snapshot) -> None:
    """The values of each kind whose term (sigma, basis, repeatability) differs from
    `old`'s, rebuilt from their own half-width: new dicts, so `old` stays whole. In memory
    (~1 µs a value): the panel's term moves with most uploads, and a whole load after each
    was most of a worker's CPU (module docstring)."""
    changed = {k for k in KINDS if _kind_terms(snap, k) != _kind_terms(old, k)}
    if not changed:
        return
    for key, hit in list(snap.latency.items()):
        kind = key.split("|", 1)[0]
        if kind in changed:
            imported = hit["imported"] is not None
            total, basis = interval(
                snap.between, key, hit["median_ms"], hit["within_ci_half_width_ms"], imported
            )
            snap.latency[key] = {
                **hit,
                "ci_half_width_ms": total,
                "ci_basis": basis,
                "repeat_rel_error": snap.repeat.get(kind),
            }
            snap._encoded.pop(key, None)


def _kind_terms(snap: Snapshot, kind: str) -> tuple[Any, ...]:
    return (*snap.between.for_kind(kind), snap.repeat.get(kind))


def _columns() -> Select[*tuple[Any, ...]]:
    """What a read answers of a measurement, and no more: plain columns, not ORM objects,
    and of `extra` (warm-up, rounds, runtime facts) only its `import` entry (a whole load
    of 10^4-row devices took 120-230 ms with whole rows)."""
    m = Measurement
    return select(
        Op.key, m.median_ms, m.ci_half_width_ms, m.p10_ms, m.p90_ms, m.std_ms, m.samples,
        m.stable, m.run_id, m.created_at, m.extra["import"].label("import_"),
    ).join(Op, Op.id == m.op_id)  # fmt: skip


def _put(snap: Snapshot, row: Any) -> None:
    """One op's lookup answer (schemas.LatencyOut's fields for a measured value)."""
    info = row.import_
    total, basis = interval(
        snap.between, row.key, row.median_ms, row.ci_half_width_ms, info is not None
    )
    snap.latency[row.key] = {
        "key": row.key,
        "source": "measured",
        "median_ms": row.median_ms,
        "ci_half_width_ms": total,
        "within_ci_half_width_ms": row.ci_half_width_ms,
        "ci_basis": basis,
        "p10_ms": row.p10_ms,
        "p90_ms": row.p90_ms,
        "std_ms": row.std_ms,
        "samples": row.samples,
        "stable": row.stable,
        "run_id": row.run_id,
        "measured_at": row.created_at.isoformat(),
        "imported": None if info is None else {k: info[k] for k in IMPORT_REF},
        "repeat_rel_error": snap.repeat.get(row.key.split("|", 1)[0]),
    }
    if info is not None:
        snap.imports[row.key] = {k: info.get(k) for k in ("format", "count", "parts")}
