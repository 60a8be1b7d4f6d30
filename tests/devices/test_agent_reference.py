"""The agent measures the service's reference panel with every batch (or every Nth), in
the same interleaved rounds, and uploads it with the batch; never for an older service that asks
for none, nor when told not to."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest
from fastapi.testclient import TestClient

from devices.agent import Agent, AgentOptions
from devices.runtimes import create_runtime
from devices.spool import Spool
from latency_service.client import HwlatClient
from latency_service.config import ServiceSettings
from latency_service.main import create_app
from latency_service.migrate import upgrade
from latency_service.schemas import AgentDeviceOut
from profiler.reference import PANEL, panel_ops
from profiler.sampling import sample_ops
from profiler.timing import TimingConfig

ADMIN = {"Authorization": "Bearer admin"}
QUICK = TimingConfig.from_options(0.02, 0.02, 3, 0.3, 3)


def agent_run(
    tmp_path: Path,
    reference: bool,
    n: int = 6,
    every: int = 1,
    batch: int = 4,
    remeasure_ci: float = 0,
    requeued: list[int] | None = None,
) -> TestClient:
    url = f"sqlite:///{tmp_path / 'svc.db'}"
    upgrade(url)
    # quick timing gives wide CIs: no op is measured again unless asked (test_remeasure.py)
    settings = ServiceSettings(
        database_url=url,
        admin_token="admin",
        remeasure_drift=0,
        remeasure_ci=remeasure_ci,
        remeasure_max=1,
    )
    web = TestClient(create_app(settings))
    token = web.post("/v1/devices", json={"name": "d", "runtime": "ort-cpu"}, headers=ADMIN)
    keys = [op.key for op in sample_ops("mbconv", n, seed=3)]
    assert web.post("/v1/devices/d/jobs", json={"ops": keys}, headers=ADMIN).status_code == 200
    client = HwlatClient("http://svc", token=token.json()["token"], transport=web._transport)
    options = AgentOptions(batch=batch, once=True, reference=reference, reference_every=every)
    with create_runtime("ort-cpu", threads=1, cache_dir=tmp_path / "onnx") as rt:
        agent = Agent(client, rt, QUICK, options, Spool(tmp_path / "spool.jsonl"), "run-x")
        agent.hello()
        if requeued is not None:
            agent.requeued = requeued.append
        assert agent.run() == n + sum(requeued or [])
    return web


def test_every_batch_uploads_its_reading(tmp_path: Path) -> None:
    web = agent_run(tmp_path, reference=True)
    drift = web.get("/v1/devices/d/drift").json()
    assert drift["readings"] == 2  # batches of 4 and 2
    [run] = drift["runs"]
    assert run["run_id"] == "run-x" and run["measurements"] == 6
    assert set(drift["baseline_ms"]) == {op.key for op in panel_ops()}
    assert all(ms > 0 for ms in drift["baseline_ms"].values())
    # the panel is not a work item: it never shows up as a measurement of the device
    assert web.get("/v1/devices/d").json()["measurements"] == 6


def test_every_nth_batch_reads_the_panel_from_the_first(tmp_path: Path) -> None:
    web = agent_run(tmp_path, reference=True, n=5, every=2, batch=1)
    drift = web.get("/v1/devices/d/drift").json()
    assert drift["readings"] == 3  # batches 1, 3 and 5 of 5
    [run] = drift["runs"]
    assert run["readings"] == 3 and run["measurements"] == 5


def test_ops_the_service_queues_again_are_measured_in_the_same_run(tmp_path: Path) -> None:
    requeued: list[int] = []  # a CI rule no measurement meets: every op once more
    web = agent_run(tmp_path, reference=True, n=4, remeasure_ci=1e-9, requeued=requeued)
    assert sum(requeued) == 4  # told per batch, and the progress total grows by it
    assert web.get("/v1/devices/d").json()["measurements"] == 8
    assert web.get("/v1/devices/d").json()["work"] == {"done": 8}


def test_no_reading_when_told_not_to(tmp_path: Path) -> None:
    web = agent_run(tmp_path, reference=False, n=2)
    assert web.get("/v1/devices/d/drift").json()["readings"] == 0


class Service:
    """hello() of a service that asks for `panel` (None: one from before the panel)."""

    def __init__(self, panel: str | None):
        self.panel = panel

    def hello(self, *args: Any) -> AgentDeviceOut:
        return AgentDeviceOut(
            device="d",
            runtime="ort-cpu",
            revision=1,
            fingerprint_id="f",
            pending=0,
            leased=0,
            reference_panel=self.panel,
        )


@pytest.mark.parametrize("asked", [None, "mbconv9-v7"])
def test_no_reading_for_a_service_that_asks_for_none_or_another(asked: str | None) -> None:
    client = cast(HwlatClient, Service(asked))
    with create_runtime("ort-cpu", threads=1) as rt:
        agent = Agent(client, rt, QUICK, AgentOptions(), Spool(Path("/nonexistent")), "r")
        agent.hello()
        assert agent.panel is None and agent.reference_ops() == {}
    known = cast(HwlatClient, Service(PANEL))
    with create_runtime("ort-cpu", threads=1) as rt:
        agent = Agent(known, rt, QUICK, AgentOptions(), Spool(Path("/nonexistent")), "r")
        agent.hello()
        assert agent.panel == PANEL  # the control: the panel it knows is measured
