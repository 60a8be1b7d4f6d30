"""A read cache per process: each device's current measurements as ready-made dicts.

Reads (single lookups, batches, LUTs) are the hot path of the service. A snapshot of a
device (id, revision, key -> latency dict) is loaded with one query and kept; before a
read uses it, one cheap query (the device's revision and newest measurement and
predictor ids, `stamp`) checks that nothing changed. With `ttl_s` 0 (the default) that
check is made for every read, but coalesced (`validated`): a read waits for the next
check that *starts after it arrived*, and one check serves every read that was waiting
for it. An upload commits before it answers, so a read sent after an upload returned
(to any worker of any instance on the same database) sees it; under load the service
runs one check at a time per device instead of one per request. With `ttl_s` > 0 a
snapshot younger than that is used unchecked (reads may see another worker's upload up
to `ttl_s` late, for a little more throughput).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import OrderedDict
from typing import Any

from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session, sessionmaker

from latency_service.models import Device, Predictor
from latency_service.repository import predictors as predictors_repo
from latency_service.snapshot import Snapshot, newer, whole
from latency_service.stamp import STAMP, Stamp, StampReader, chain
from profiler.ops import OpSpec

RENDERED_BYTES = 64 << 20  # LUT responses kept rendered, per worker (each ~10-100 KB)


class ReadCache:
    def __init__(self, sessions: sessionmaker[Session], ttl_s: float = 0.0, max_devices: int = 256):
        self.sessions, self.ttl_s, self.max_devices = sessions, ttl_s, max_devices
        self._snaps: dict[str, Snapshot] = {}
        self._models: dict[tuple[int, int, str, int], Any] = {}  # rebuilt predictors
        self._lock = threading.Lock()
        self._stamps = StampReader(sessions.kw["bind"])
        self._waiting: dict[str, asyncio.Future[Snapshot | None]] = {}
        self._loading: dict[str, tuple[Stamp, asyncio.Future[Snapshot | None]]] = {}
        self.checks = 0  # coalesced stamp checks made by `validated` (<< reads under load)
        # rendered LUT responses of every device, least recently used out past a budget
        self._rendered: OrderedDict[tuple[Any, ...], tuple[bytes, str]] = OrderedDict()
        self._rendered_bytes = 0

    def rendered(self, snap: Snapshot, query: tuple[Any, ...]) -> tuple[bytes, str] | None:
        """A LUT response rendered earlier from this very snapshot (None: render it)."""
        done = self._rendered.get((snap.device, snap.stamp, query))
        if done is not None:
            self._rendered.move_to_end((snap.device, snap.stamp, query))
        return done

    def keep_rendered(
        self, snap: Snapshot, query: tuple[Any, ...], done: tuple[bytes, str]
    ) -> None:
        key = (snap.device, snap.stamp, query)
        if key not in self._rendered:
            self._rendered[key] = done
            self._rendered_bytes += len(done[0])
        while self._rendered_bytes > RENDERED_BYTES:
            _, (body, _media) = self._rendered.popitem(last=False)
            self._rendered_bytes -= len(body)

    async def validated(self, name: str) -> Snapshot | None:
        """The device's snapshot as of a check made after this call (or, with `ttl_s` >
        0, a snapshot younger than that); None when there is no such device.

        Reads arriving in the same turn of the event loop share one check, run on the
        loop itself (a one-row query: a thread would wait for the GIL behind the loop,
        milliseconds each time under load); a snapshot that must be reloaded is loaded
        in a thread, once for every read waiting on the same stamp."""
        if self.ttl_s > 0 and (snap := self.fresh(name)) is not None:
            return snap
        fut = self._waiting.get(name)
        if fut is None:
            loop = asyncio.get_running_loop()
            fut = self._waiting[name] = loop.create_future()
            loop.call_soon(self._check, name)
        return await asyncio.shield(fut)

    def _check(self, name: str) -> None:
        fut = self._waiting.pop(name)
        try:
            self._check_into(name, fut)
        except BaseException as e:  # the database is unreachable: every waiting read fails
            if not fut.done():
                fut.set_exception(e)
            if not isinstance(e, Exception):
                raise

    def _check_into(self, name: str, fut: asyncio.Future[Snapshot | None]) -> None:
        self.checks += 1
        row = self._stamps.read(name)
        old = self._snaps.get(name)
        if row is None or (old is not None and old.stamp == row):
            fut.set_result(None if row is None else old)
            return
        loading = self._loading.get(name)
        if loading is None or loading[0] != row:
            loading = (row, asyncio.ensure_future(run_in_threadpool(self.load, name)))
            self._loading[name] = loading
            loading[1].add_done_callback(lambda done: self._loaded(name, done))
        chain(loading[1], fut)

    def _loaded(self, name: str, done: asyncio.Future[Snapshot | None]) -> None:
        if self._loading.get(name, (None, None))[1] is done:
            del self._loading[name]

    def close(self) -> None:
        """Give back the stamp checks' connection (the app's shutdown)."""
        self._stamps.close()

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
        """The device's snapshot: the one held when the stamp is unchanged (one cheap
        query), else the rows newer than it merged in when only measurements were added
        at the same revision, else loaded whole; None when there is no such device."""
        with self.sessions() as s:
            mark = s.execute(STAMP, {"name": name}).first()
            if mark is None:
                return None
            old = self._snaps.get(name)
            if old is not None and old.stamp == tuple(mark):
                old.loaded_at = time.monotonic()
                return old
            device = s.get(Device, mark[0])
            if device is None:  # deleted since the stamp was read
                return None
            stamp = tuple(mark)
            snap = (old and newer(s, old, device, stamp)) or whole(s, name, device, stamp)
        with self._lock:
            self._snaps.pop(name, None)  # newest last: the least recently loaded go first
            self._snaps[name] = snap
            while len(self._snaps) > self.max_devices:
                self._snaps.pop(next(iter(self._snaps)))
        return snap


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
