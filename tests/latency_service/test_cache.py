"""The read cache: reads checked against the database (coalesced), reloads shared, and —
with real `hwlat serve` workers — a read sent after an upload returned sees it, on any
worker (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from latency_service.cache import ReadCache
from latency_service.client import HwlatClient
from latency_service.models import Measurement
from tests.devices.service_harness import ADMIN, Service, running_service
from tests.latency_service.support import FBNET32, Api
from tests.latency_service.support import stats as support_stats


def copy_newer(api: Api, median: float) -> None:
    """A newer measurement of the first op, written behind the service's back."""
    with api.app.state.sessions() as s:
        old = s.scalars(select(Measurement).order_by(Measurement.id)).first()
        assert old is not None
        cols = {c.key: getattr(old, c.key) for c in Measurement.__table__.columns}
        s.add(Measurement(**{**cols, "id": None, "run_id": f"r{median}", "median_ms": median}))
        s.commit()


def test_a_read_sees_a_row_written_behind_its_back(api: Api, token: str) -> None:
    api.enqueue("dev1", **FBNET32)
    [key] = api.measure(token, 1, median=1.0)
    cache: ReadCache = api.app.state.cache

    async def reads() -> list[float]:
        first = await cache.validated("dev1")
        copy_newer(api, 2.0)  # no invalidate: only the stamp can tell
        second = await cache.validated("dev1")
        assert first is not None and second is not None
        return [first.latency[key]["median_ms"], second.latency[key]["median_ms"]]

    assert asyncio.run(reads()) == [1.0, 2.0]
    assert asyncio.run(cache.validated("nope")) is None


def test_concurrent_reads_share_checks_and_one_reload(
    api: Api, token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    api.enqueue("dev1", **FBNET32)
    api.measure(token, 2)
    cache: ReadCache = api.app.state.cache
    loads = []
    real = cache.load
    monkeypatch.setattr(cache, "load", lambda name: loads.append(name) or real(name))

    async def many(n: int) -> set[int]:
        snaps = await asyncio.gather(*(cache.validated("dev1") for _ in range(n)))
        return {id(s) for s in snaps}

    assert len(asyncio.run(many(50))) == 1
    assert (cache.checks, len(loads)) == (1, 1)  # one check, one load for 50 reads
    copy_newer(api, 3.0)
    asyncio.run(many(50))
    assert (cache.checks, len(loads)) == (2, 2)
    asyncio.run(many(50))
    assert (cache.checks, len(loads)) == (3, 2)  # unchanged: checked, not reloaded


def test_a_ttl_serves_unchecked(api: Api, token: str) -> None:
    api.enqueue("dev1", **FBNET32)
    [key] = api.measure(token, 1, median=1.0)
    cache = ReadCache(api.app.state.sessions, ttl_s=60)
    first = asyncio.run(cache.validated("dev1"))
    copy_newer(api, 2.0)
    again = asyncio.run(cache.validated("dev1"))
    assert again is first and again is not None and again.latency[key]["median_ms"] == 1.0
    cache.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def two_workers(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Service]:
    with running_service(request.param, tmp_path, lease_s=60, workers=2) as svc:
        yield svc


@pytest.mark.slow
def test_a_read_after_an_upload_returned_sees_it_on_any_worker(two_workers: Service) -> None:
    """Each round measures a new op and reads it at once on new connections (spread over
    both workers by the kernel): a stale snapshot answers 404 or misses it in a batch."""
    url = two_workers.url
    with HwlatClient(url, admin_token=ADMIN) as admin:
        agent = HwlatClient(url, token=admin.create_device("dev", "ort-cpu").token)
        for i in range(30):
            key = f"conv|cin=8,cout={8 + i},g=1,k=3,s=1|1x8x8x8|float32"
            admin.enqueue_ops("dev", [key])
            lease = agent.lease(1)
            assert lease.lease_id is not None and [it.key for it in lease.items] == [key]
            item = lease.items[0].item_id
            stats = support_stats(1.0 + i)
            agent.upload(lease.lease_id, "fresh", [{"item_id": item, "key": key, "stats": stats}])
            for _ in range(4):  # new connections: a worker each, as the kernel hands them
                r = httpx.get(f"{url}/v1/devices/dev/latency", params={"op": key})
                assert r.status_code == 200, r.text
                assert r.json()["median_ms"] == 1.0 + i
            r = httpx.post(f"{url}/v1/devices/dev/latency:batch", json={"keys": [key]})
            assert r.json()["missing"] == [] and r.json()["results"][key]["median_ms"] == 1.0 + i
        agent.close()
