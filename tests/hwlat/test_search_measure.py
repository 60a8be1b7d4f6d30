"""The measured-latency oracle of `hwlat search --set latency=measured`: a batch goes to
the device's agents as one job and comes back in order, agents that never answer end in
one line naming `hwlat agent`, `--lut` measures here, and the search command hands the
oracle to the searcher."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from hwlat.cli import main
from hwlat.commands.common import CliError
from hwlat.search_measure import measure_option, measured_latency
from latency_service.client import HwlatClient
from searchers.algorithms.proxyless_rl import ProxylessRL, ProxylessRLConfig
from searchers.latency import LatencyTable
from searchers.spaces import SearchSpace, create_space
from tests.devices.service_harness import ADMIN, Service, start_agent
from tests.hwlat.commands.test_search import ARGS, QUICK, _lut
from tests.searchers.conftest import flops_table


class FakeService:
    """Networks queued for a device, measured by the next poll at `ms(arch)` (or never),
    and listed as the service lists them (the arch with its options and hash)."""

    def __init__(self, answer: bool = True):
        self.answer, self.jobs = answer, list[tuple[str, list[dict[str, Any]]]]()

    def enqueue_networks(self, device: str, networks: list[dict[str, Any]]) -> None:
        self.jobs.append((device, networks))

    def networks(self, device: str, space: str, resolution: int) -> list[Any]:
        if not self.answer:
            return []
        return [
            SimpleNamespace(
                arch={**n["arch"], "options": n["options"], "arch_hash": "h"},
                median_ms=0.001 * len(json.dumps(n["arch"])),
            )
            for d, nets in self.jobs
            for n in nets
            if d == device and (n["space"], n["resolution"]) == (space, resolution)
        ]


@pytest.fixture(scope="module")
def space() -> SearchSpace:
    return create_space("proxyless-mobile", resolution=16, width=0.25, classes=10)


@pytest.fixture(scope="module")
def table(space: SearchSpace) -> LatencyTable:
    return flops_table(space)


def _two(table: LatencyTable) -> list[list[int]]:
    lo = [int(c) for c in table.mask.int().argmax(dim=1)]  # the first legal column per layer
    hi = [int(row.nonzero()[-1]) for row in table.mask]  # the last
    return [lo, hi]


def test_a_batch_is_one_job_and_comes_back_in_order(
    space: SearchSpace, table: LatencyTable
) -> None:
    svc = FakeService()
    measure = measured_latency(svc, "phone", space, table, timeout_s=5)
    batch = _two(table)
    got = measure(batch)
    assert len(svc.jobs) == 1
    device, nets = svc.jobs[0]
    archs = [space.arch_to_json(table.names(c)) for c in batch]
    assert device == "phone" and [n["arch"] for n in nets] == archs
    assert all(n["space"] == "proxyless-mobile" and n["width"] == 0.25 for n in nets)
    assert got == [0.001 * len(json.dumps(a)) for a in archs]


def test_agents_that_never_answer_end_in_one_line(space: SearchSpace, table: LatencyTable) -> None:
    measure = measured_latency(FakeService(answer=False), "phone", space, table, timeout_s=0)
    with pytest.raises(CliError, match=r"only 0/2 networks .* is an agent running .*hwlat agent"):
        measure(_two(table))


def test_measure_option_only_when_asked(
    space: SearchSpace, table: LatencyTable, tmp_path: Path
) -> None:
    svc = FakeService()
    args = (svc, "phone", space, table, None, None)
    assert measure_option(ProxylessRL, ProxylessRLConfig(), *args) == {}
    measured = ProxylessRLConfig(latency="measured")
    assert set(measure_option(ProxylessRL, measured, *args)) == {"measure"}
    foreign = LatencyTable(
        space, table.fixed_ms, table.table, table.mask, table.source, {"imported": ["a.csv"]}
    )
    with pytest.raises(CliError, match="measured elsewhere"):
        measure_option(ProxylessRL, measured, svc, "phone", space, foreign, None, None)
    (tmp_path / "bare.json").write_text("{}")  # not a `hwlat profile` LUT: no runtime named
    with pytest.raises(CliError, match=r"does not say which runtime .* pass --runtime"):
        measured_latency(None, None, space, table, tmp_path / "bare.json")


def test_lut_measures_here(space: SearchSpace, tmp_path: Path) -> None:
    table = _lut(tmp_path / "lut.json", space, runtime="ort-cpu")
    measure = measured_latency(None, None, space, table, tmp_path / "lut.json")
    got = measure(_two(table))
    assert len(got) == 2 and all(ms > 0 for ms in got)


def test_search_hands_the_oracle_to_the_searcher(
    space: SearchSpace,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    table = _lut(tmp_path / "lut.json", space)
    calls: list[list[list[int]]] = []

    def fake(*args: Any, **kw: Any) -> Any:
        def measure(batch: list[list[int]]) -> list[float]:
            calls.append(batch)
            return [table.exact(c) for c in batch]

        return measure

    monkeypatch.setattr("hwlat.search_measure.measured_latency", fake)
    lo, hi = table.bounds()
    out = tmp_path / "arch.json"
    argv = ["search", "proxyless-rl", *ARGS, *QUICK, "--lut", str(tmp_path / "lut.json")]
    argv += ["--target-ms", f"{lo + 0.4 * (hi - lo):.6f}", "--no-verify", "--out", str(out)]
    assert main([*argv, "--set", "latency=measured"]) == 0, capsys.readouterr().err
    record = json.loads(out.read_text())
    assert record["config"]["latency"] == "measured" and calls
    assert "reward" in record["history"][-1] and "argmax_acc" in record["history"][-1]


@pytest.mark.slow
def test_an_agent_measures_a_batch(space: SearchSpace, table: LatencyTable, tmp_path: Path) -> None:
    """The real service and agent: the batch's networks come back by their arch."""
    svc = Service(tmp_path / "svc", f"sqlite:///{tmp_path}/svc.db").start()
    agent = None
    try:
        with HwlatClient(svc.url, admin_token=ADMIN) as admin:
            token = admin.create_device("cpu", "ort-cpu").token
            agent = start_agent(svc.url, token, tmp_path / "a", tmp_path / "cache")
            measure = measured_latency(admin, "cpu", space, table, timeout_s=240)
            got = measure(_two(table))
            assert len(got) == 2 and all(ms > 0 for ms in got)
            again = measure(_two(table)[:1])  # measured before: answered without waiting
            assert len(again) == 1 and again[0] > 0
    finally:
        if agent is not None:
            agent.terminate()
            agent.wait(timeout=30)
        svc.stop()
