"""The agent with real processes: several agents, a SIGKILL, a service restart and a
network that drops and delays connections — on SQLite and PostgreSQL. Every op must end
with exactly one measurement, nothing stuck or failed, no 5xx, every agent exiting 0."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from latency_service.client import HwlatClient
from tests.devices.service_harness import (
    ADMIN,
    FaultProxy,
    Service,
    running_service,
    start_agent,
)

SPACE = {"space": "darts", "resolution": 8, "options": {"C": 2, "cells": 3}}


@pytest.fixture(params=["sqlite", "postgresql"])
def service(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Service]:
    with running_service(request.param, tmp_path) as svc:
        yield svc


def setup_device(svc: Service) -> tuple[str, int]:
    with HwlatClient(svc.url, admin_token=ADMIN) as admin:
        token = admin.create_device("cpu", "ort-cpu").token
        jobs = admin.enqueue_space(
            "cpu", SPACE["space"], SPACE["resolution"], options=SPACE["options"]
        )
    return token, jobs.total


def measured(svc: Service) -> int:
    with HwlatClient(svc.url, retries=8) as c:
        return c.get_device("cpu").measurements


def wait_for(pred: object, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError("condition not reached in time")


def finish(agents: list[subprocess.Popen[bytes]], timeout: float = 240) -> None:
    for a in agents:
        try:
            a.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            a.kill()
            raise
        assert a.returncode == 0, a.stderr.read().decode()[-2000:]  # type: ignore[union-attr]


def assert_complete(svc: Service, total: int) -> None:
    with HwlatClient(svc.url) as c:
        device = c.get_device("cpu")
        lut = c.lut("cpu", SPACE["space"], SPACE["resolution"], options=SPACE["options"])
    assert device.work == {"done": total}  # nothing pending, leased or failed
    assert device.measurements == total  # exactly one measurement per op: no duplicates
    assert lut.coverage.measured == lut.coverage.total == total


@pytest.mark.slow
def test_three_agents_through_a_faulty_network(service: Service, tmp_path: Path) -> None:
    token, total = setup_device(service)
    proxy = FaultProxy(service.port, drop=0.05, delay=0.1).start_and_wait()
    try:
        url = f"http://127.0.0.1:{proxy.port}"
        agents = [
            start_agent(url, token, tmp_path / f"a{i}", tmp_path / "cache", "--once")
            for i in range(3)
        ]
        finish(agents)
    finally:
        proxy.stop()
    assert_complete(service, total)
    assert proxy.statuses[200] > 0 and proxy.dropped > 0  # the faults really happened
    assert not [s for s in proxy.statuses if s >= 500], proxy.statuses


@pytest.mark.slow
def test_agent_killed_mid_batch_then_restarted(service: Service, tmp_path: Path) -> None:
    token, total = setup_device(service)
    home, cache = tmp_path / "agent", tmp_path / "cache"
    first = start_agent(service.url, token, home, cache)
    wait_for(lambda: measured(service) >= 4)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    assert measured(service) < total  # it really died mid-run
    second = start_agent(service.url, token, home, cache, "--once")
    finish([second])
    assert_complete(service, total)


@pytest.mark.slow
def test_service_restarted_mid_run(service: Service, tmp_path: Path) -> None:
    token, total = setup_device(service)
    cache = tmp_path / "cache"
    agents = [
        start_agent(service.url, token, tmp_path / f"a{i}", cache, "--once") for i in range(2)
    ]
    wait_for(lambda: measured(service) >= 4)
    service.stop()
    time.sleep(1.0)
    service.start()
    finish(agents)
    assert_complete(service, total)


def test_sigterm_uploads_what_is_done_and_releases_the_rest(
    service: Service, tmp_path: Path
) -> None:
    token, total = setup_device(service)
    agent = start_agent(service.url, token, tmp_path / "agent", tmp_path / "cache")
    wait_for(lambda: measured(service) >= 4)
    agent.send_signal(signal.SIGTERM)
    assert agent.wait(timeout=60) == 0
    with HwlatClient(service.url) as c:
        device = c.get_device("cpu")
    assert device.work.get("leased", 0) == 0  # released, not left to expire
    assert device.work.get("done", 0) == device.measurements < total


def test_agent_measures_whole_networks(tmp_path: Path) -> None:
    svc = Service(tmp_path / "svc", f"sqlite:///{tmp_path}/svc.db").start()
    try:
        with HwlatClient(svc.url, admin_token=ADMIN) as admin:
            token = admin.create_device("cpu", "ort-cpu").token
            nets = [
                {"space": "fbnet", "resolution": 32, "arch": {"choices": [c] * 22}}
                for c in ("ir_k3_e1", "ir_k5_e6")
            ]
            assert admin.enqueue_networks("cpu", nets).new == 2
        finish([start_agent(svc.url, token, tmp_path / "a", tmp_path / "cache", "--once")])
        with HwlatClient(svc.url) as c:
            assert c.get_device("cpu").work == {"done": 2}
    finally:
        svc.stop()
    import sqlite3

    rows = (
        sqlite3.connect(tmp_path / "svc.db")
        .execute("SELECT arch, median_ms, stable FROM network_measurements ORDER BY median_ms")
        .fetchall()
    )
    assert len(rows) == 2
    assert rows[0][1] < rows[1][1]  # e1/k3 everywhere runs faster than e6/k5 everywhere


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_torch_cuda_agent_measures_a_space_and_networks(tmp_path: Path) -> None:
    """The whole path on a GPU: CUDA-event timing, the panel, networks, the fingerprint."""
    svc = Service(tmp_path / "svc", f"sqlite:///{tmp_path}/svc.db").start()
    try:
        with HwlatClient(svc.url, admin_token=ADMIN) as admin:
            token = admin.create_device("gpu", "torch-cuda").token
            total = admin.enqueue_space(
                "gpu", SPACE["space"], SPACE["resolution"], options=SPACE["options"]
            ).total
            nets = [{"space": "fbnet", "resolution": 32, "arch": {"choices": ["ir_k3_e1"] * 22}}]
            admin.enqueue_networks("gpu", nets)
        agent = start_agent(
            svc.url, token, tmp_path / "a", tmp_path / "cache", "--once", runtime="torch-cuda"
        )
        finish([agent])
        with HwlatClient(svc.url) as c:
            device = c.get_device("gpu")
            lut = c.lut("gpu", SPACE["space"], SPACE["resolution"], options=SPACE["options"])
        assert device.work == {"done": total + 1} and device.measurements == total
        assert lut.coverage.measured == total
    finally:
        svc.stop()
    import sqlite3

    db = sqlite3.connect(tmp_path / "svc.db")
    timers = {
        row[0] for row in db.execute("SELECT json_extract(extra, '$.timer') FROM measurements")
    }
    assert timers == {"cuda_events"}
    (fingerprint,) = db.execute("SELECT fingerprint FROM devices").fetchone()
    assert torch.cuda.get_device_name(0) in fingerprint
