"""Two `hwlat serve` instances on one PostgreSQL database, as docs/DEPLOY.md deploys
them behind a proxy: started together (their migrations take turns), agents spread over
both, leases raced from both. Nothing may be lost, measured twice or leased twice, no
answer may be a 5xx, and a read from either instance sees every upload that returned."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from latency_service.client import HwlatClient
from latency_service.migrate import current, head
from tests.devices.service_harness import (
    ADMIN,
    FaultProxy,
    Service,
    drop_pg,
    pg_database,
    start_agent,
)
from tests.devices.test_agent_reliability import finish

# test_agent_reliability's tiny space (47 ops), typed for the client's signatures
SPACE, RESOLUTION, OPTIONS = "darts", 8, {"C": 2, "cells": 3}
QUEUE = 200  # items of the lease race
BATCH = 4
CLIENTS_PER_INSTANCE = 2


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Service, Service, str]]:
    """Two instances (one worker each) on one fresh PostgreSQL database, started at the
    same moment: both run `alembic upgrade head` on the empty database at once."""
    made = pg_database()
    if made is None:
        pytest.skip("no PostgreSQL server on 127.0.0.1:5432")
    url, handle = made
    home = tmp_path_factory.mktemp("two-instances")
    services = [Service(home / name, url, lease_s=60) for name in ("a", "b")]
    failures: list[BaseException] = []

    def start(svc: Service) -> None:
        try:
            svc.start()
        except BaseException as exc:  # reported below, in the test's thread
            failures.append(exc)

    threads = [threading.Thread(target=start, args=(s,)) for s in services]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert not failures, f"an instance did not start (a migration race?): {failures}"
        yield services[0], services[1], url
    finally:
        for svc in services:
            svc.stop()
        drop_pg(handle)


def test_both_instances_migrated_one_database_to_head(pair: tuple[Service, Service, str]) -> None:
    a, b, url = pair
    assert current(url) == head()
    for svc in (a, b):
        with HwlatClient(svc.url) as c:
            assert c.health()["database"] == "postgresql"


def _device(svc: Service, name: str) -> str:
    with HwlatClient(svc.url, admin_token=ADMIN) as admin:
        return admin.create_device(name, "ort-cpu").token


@pytest.mark.slow
def test_agents_spread_over_both_instances_measure_every_op_once(
    pair: tuple[Service, Service, str], tmp_path: Path
) -> None:
    a, b, _ = pair
    token = _device(a, "cpu2")
    with HwlatClient(b.url, admin_token=ADMIN) as admin:  # queued through the other one
        total = admin.enqueue_space("cpu2", SPACE, RESOLUTION, options=OPTIONS).total
    # fault-free proxies, one per instance: they only count the answers' status codes
    proxies = [FaultProxy(s.port, drop=0, delay=0, cut=0).start_and_wait() for s in (a, b)]
    try:
        agents = [
            start_agent(
                f"http://127.0.0.1:{proxies[i % 2].port}",
                token,
                tmp_path / f"agent{i}",
                tmp_path / "cache",
                "--once",
            )
            for i in range(4)
        ]
        finish(agents)
    finally:
        for p in proxies:
            p.stop()
    for p in proxies:  # both instances served agents, and never with a 5xx
        assert p.statuses[200] > 0, p.statuses
        assert not [s for s in p.statuses if s >= 500], p.statuses
    luts = []
    for svc in (a, b):  # read right after the agents returned, from either instance
        with HwlatClient(svc.url) as c:
            device = c.get_device("cpu2")
            lut = c.lut("cpu2", SPACE, RESOLUTION, options=OPTIONS)
        assert device.work == {"done": total}  # nothing pending, leased or failed
        assert device.measurements == total  # exactly one measurement per op
        assert lut.coverage.measured == lut.coverage.total == total
        luts.append(lut.model_dump())
    assert luts[0] == luts[1]


def _keys(n: int) -> list[str]:
    return [f"conv|cin=3,cout={8 + i},g=1,k=3,s=2|1x3x32x32|float32" for i in range(n)]


def _lease_all(url: str, token: str, go: threading.Barrier, got: list[int]) -> None:
    """Lease batches until the queue is empty. No retries: a 5xx (a deadlock, a
    serialisation failure) must fail the test, not be papered over."""
    with HwlatClient(url, token=token, retries=0) as agent:
        go.wait()
        while items := agent.lease(BATCH).items:
            got.extend(i.item_id for i in items)


def test_leases_raced_from_both_instances_never_overlap(
    pair: tuple[Service, Service, str],
) -> None:
    a, b, url = pair
    token = _device(a, "race")
    with HwlatClient(b.url, admin_token=ADMIN) as admin:
        assert admin.enqueue_ops("race", _keys(QUEUE)).new == QUEUE
    services = [a, b] * CLIENTS_PER_INSTANCE
    got: list[list[int]] = [[] for _ in services]
    go = threading.Barrier(len(services))
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            _lease_all(services[i].url, token, go, got[i])
        except BaseException as exc:
            errors.append(exc)
            go.abort()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(services))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    union = [i for ids in got for i in ids]
    assert len(union) == len(set(union)) == QUEUE  # none leased twice, none left out
    assert sum(map(len, got[0::2])) > 0 and sum(map(len, got[1::2])) > 0  # both leased
    with psycopg.connect(url) as conn:  # and the database agrees: one lease per item
        rows = conn.execute(
            "SELECT w.state, w.attempts, count(*) FROM work_items w "
            "JOIN devices d ON d.id = w.device_id WHERE d.name = 'race' "
            "GROUP BY w.state, w.attempts"
        ).fetchall()
    assert rows == [("leased", 1, QUEUE)]
