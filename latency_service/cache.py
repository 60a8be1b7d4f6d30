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

from latency_service.models import Device, Measurement
from latency_service.repository.latency import all_current, latency_dict


@dataclass
class Snapshot:
    device: str
    device_id: int
    revision: int
    watermark: int  # newest measurement id of the device when loaded
    loaded_at: float
    latency: dict[str, dict[str, Any]] = field(default_factory=dict)


class ReadCache:
    def __init__(self, sessions: sessionmaker[Session], ttl_s: float = 1.0):
        self.sessions, self.ttl_s = sessions, ttl_s
        self._snaps: dict[str, Snapshot] = {}
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
            if old is not None and (old.device_id, old.revision, old.watermark) == (
                device.id,
                device.revision,
                mark,
            ):
                old.loaded_at = time.monotonic()
                return old
            snap = Snapshot(name, device.id, device.revision, mark, time.monotonic())
            for key, m in all_current(s, device).items():
                snap.latency[key] = _jsonable(latency_dict(key, m))
        with self._lock:
            self._snaps[name] = snap
        return snap


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in d.items()}
