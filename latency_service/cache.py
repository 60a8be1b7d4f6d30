"""A read cache per process: each device's current measurements as ready-made dicts.

Reads (single lookups, batches, LUTs) are the hot path of the service. A snapshot of a
device (id, revision, key -> latency dict) is loaded with one query and reused until it
is `ttl_s` old (then one cheap query checks whether anything changed) or this process
writes to the device, so a reader sees another worker's upload at most `ttl_s` late and
its own at once.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from latency_service.models import Device, Measurement, Predictor
from latency_service.repository import imports as imports_repo
from latency_service.repository import predictors as predictors_repo
from latency_service.repository import retest
from latency_service.repository.latency import all_current, latency_dict
from profiler.ops import OpSpec


@dataclass
class Snapshot:
    device: str
    device_id: int
    revision: int
    watermark: tuple[int, int]  # newest measurement id and predictor id when loaded
    loaded_at: float
    latency: dict[str, dict[str, Any]] = field(default_factory=dict)
    predictors: dict[str, dict[str, Any]] = field(default_factory=dict)  # kind -> recipe
    repeat: dict[str, float] = field(default_factory=dict)  # kind -> retests' RMS difference
    # imported op key -> {format, count, parts}: how its file had it, for exports
    imports: dict[str, dict[str, Any]] = field(default_factory=dict)
    # per imported file of the revision: its format, space configuration and the entries
    # no op used, so an export in its format gives back the whole file
    files: list[dict[str, Any]] = field(default_factory=list)
    # network calibrations by scope (None: op lists), each fitted on first use
    calibration: dict[str | None, Any] = field(default_factory=dict)


class ReadCache:
    def __init__(self, sessions: sessionmaker[Session], ttl_s: float = 1.0):
        self.sessions, self.ttl_s = sessions, ttl_s
        self._snaps: dict[str, Snapshot] = {}
        self._models: dict[tuple[int, int, str, int], Any] = {}  # rebuilt predictors
        self._lock = threading.Lock()

    def invalidate(self, device: str | None = None) -> None:
        with self._lock:
            if device is None:
                self._snaps.clear()
            else:
                self._snaps.pop(device, None)

    def fresh(self, name: str) -> Snapshot | None:
        snap = self._snaps.get(name)
        if snap is not None and time.monotonic() - snap.loaded_at < self.ttl_s:
            return snap
        return None

    def load(self, name: str) -> Snapshot | None:
        """The device's snapshot, reloaded only if a measurement or revision is new since
        the last load (one cheap query otherwise); None when there is no such device."""
        with self.sessions() as s:
            device = s.scalar(select(Device).where(Device.name == name))
            if device is None:
                return None
            mark = (
                s.scalar(select(func.max(Measurement.id)).where(Measurement.device_id == device.id))
                or 0
            )
            old = self._snaps.get(name)
            newest = s.scalar(
                select(func.max(Predictor.id)).where(Predictor.device_id == device.id)
            )
            stamp = (mark, newest or 0)  # a new predictor also means a reload
            if old is not None and (old.device_id, old.revision, old.watermark) == (
                device.id,
                device.revision,
                stamp,
            ):
                old.loaded_at = time.monotonic()
                return old
            snap = Snapshot(name, device.id, device.revision, stamp, time.monotonic())
            snap.repeat = {
                kind: r["rmspe"]
                for kind, r in retest.repeatability(s, device).items()
                if r["pairs"] >= retest.MIN_PAIRS
            }
            for key, m in all_current(s, device).items():
                d = latency_dict(key, m)
                d["repeat_rel_error"] = snap.repeat.get(key.split("|", 1)[0])
                snap.latency[key] = _jsonable(d)
                if "import" in m.extra:
                    info = m.extra["import"]
                    snap.imports[key] = {k: info.get(k) for k in ("format", "count", "parts")}
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
        with self._lock:
            self._snaps[name] = snap
        return snap


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in d.items()}


def predict(cache: ReadCache, snap: Snapshot, keys: list[str]) -> dict[str, dict[str, Any]]:
    """Predicted latency of unmeasured keys whose kind (and dtype) has a predictor, marked
    `source: predicted` with the predictor's version and its held-out relative error."""
    by_kind: dict[str, list[OpSpec]] = {}
    for key in keys:
        spec = OpSpec.from_key(key)
        meta = snap.predictors.get(spec.kind)
        if meta is not None and meta["dtype"] == spec.dtype:
            by_kind.setdefault(spec.kind, []).append(spec)
    out: dict[str, dict[str, Any]] = {}
    for kind, specs in by_kind.items():
        meta = snap.predictors[kind]
        model = _model(cache, snap, meta)
        for spec, ms in zip(specs, model.predict(specs), strict=True):
            out[spec.key] = {
                "key": spec.key,
                "source": "predicted",
                "median_ms": float(ms),
                "error_ms": float(ms) * meta["rmspe"],
                "rel_error": meta["rmspe"],
                "predictor": {
                    k: meta[k] for k in ("kind", "version", "model", "samples", "trained_at")
                },
            }
    return out


def with_predicted(cache: ReadCache, snap: Snapshot, keys: list[str]) -> dict[str, dict[str, Any]]:
    """The snapshot's measured latencies, plus predicted values for those of `keys` that
    are not measured (a measurement always wins): what a LUT is built from."""
    missing = [k for k in keys if k not in snap.latency]
    if not missing or not snap.predictors:
        return snap.latency
    return {**predict(cache, snap, missing), **snap.latency}


def _model(cache: ReadCache, snap: Snapshot, meta: dict[str, Any]) -> Any:
    ident = (snap.device_id, snap.revision, meta["kind"], meta["version"])
    model = cache._models.get(ident)
    if model is None:  # rebuilt once per process and version (seeded retraining)
        with cache.sessions() as s:
            device = s.get(Device, snap.device_id)
            row = s.get(Predictor, meta["id"])
            assert device is not None and row is not None  # both are in the snapshot
            model = predictors_repo.rebuild(s, device, row)
        with cache._lock:
            cache._models[ident] = model
    return model
