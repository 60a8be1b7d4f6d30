"""`hwlat validate` against a real service whose agent measured ops and networks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hwlat.cli import main
from hwlat.end_to_end import sample_archs
from latency_service.client import HwlatClient
from latency_service.predictors.calibration import errors_of
from searchers.spaces import create_space
from tests.devices.service_harness import ADMIN, Service, start_agent

SPACE = create_space("darts", resolution=8, C=2, cells=3)
OPTS = ["--space", "darts", "-r", "8", "-o", "C=2", "-o", "cells=3"]


def test_errors_and_rank_correlation() -> None:
    m = errors_of([1.0, 2.1, 2.9, 4.5], [1.0, 2.0, 3.0, 4.0])
    assert m["max_abs_error"] == pytest.approx(0.125)
    assert m["within_10pct"] == 0.75 and m["kendall_tau"] == 1.0


@pytest.mark.slow
def test_validate_end_to_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    svc = Service(tmp_path / "svc", f"sqlite:///{tmp_path}/svc.db").start()
    try:
        with HwlatClient(svc.url, admin_token=ADMIN) as admin:
            token = admin.create_device("cpu", "ort-cpu").token
            admin.enqueue_space("cpu", "darts", 8, options={"C": 2, "cells": 3})
            nets = [
                {"space": "darts", "resolution": 8, "options": {"C": 2, "cells": 3}, "arch": a}
                for a in sample_archs(SPACE, 6, seed=1)
            ]
            admin.enqueue_networks("cpu", nets)
        agent = start_agent(svc.url, token, tmp_path / "a", tmp_path / "cache", "--once")
        assert agent.wait(timeout=300) == 0
        monkeypatch.setenv("HWLAT_ADMIN_TOKEN", ADMIN)
        out = tmp_path / "out"
        code = main(
            [
                "validate",
                "--device",
                "cpu",
                *OPTS,
                "--networks",
                "6",
                "--seed",
                "1",
                "--out-dir",
                str(out),
                "--server",
                svc.url,
                "--json",
            ]
        )
        assert code == 0, capsys.readouterr().err
        summary = json.loads(capsys.readouterr().out)
        assert summary["raw"]["kendall_tau"] is not None and summary["calibrated"] is not None
        report = json.loads((out / "validate-cpu-darts8.json").read_text())
        assert len(report["networks"]) == 6
        assert all(r["measured_ms"] > 0 and r["table_sum_ms"] > 0 for r in report["networks"])
        assert (out / "validate-cpu-darts8.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        # the agent ran here with the default fingerprint, so --local may measure here too
        code = main(
            [
                "validate",
                "--device",
                "cpu",
                *OPTS,
                "--networks",
                "6",
                "--seed",
                "1",
                "--local",
                "--threads",
                "1",
                "--out-dir",
                str(out),
                "--server",
                svc.url,
                "--json",
            ]
        )
        assert code == 0, capsys.readouterr().err
        local = json.loads((out / "validate-cpu-darts8.json").read_text())
        assert local["local"] is True and len(local["networks"]) == 6
        code = main(
            [
                "validate",
                "--device",
                "cpu",
                *OPTS,
                "--networks",
                "6",
                "--local",
                "--threads",
                "2",
                "--out-dir",
                str(out),
                "--server",
                svc.url,
            ]
        )
        assert code == 1 and "is not device cpu" in capsys.readouterr().err  # other settings
    finally:
        svc.stop()


def test_spread_archs_go_from_cheapest_to_largest() -> None:
    from hwlat.end_to_end import sample_archs, spread_archs
    from profiler.features import features
    from searchers.spaces import create_space

    space = create_space("fbnet", resolution=32, width=0.5)

    def mflops(a: dict) -> float:  # type: ignore[type-arg]
        return sum(features(op).flops for op in space.arch_ops(a)) / 1e6

    spread = [mflops(a) for a in spread_archs(space, 8, seed=0)]
    uniform = [mflops(a) for a in sample_archs(space, 8, seed=0)]
    assert len(set(map(str, spread_archs(space, 8, seed=0)))) == 8
    assert spread_archs(space, 8, seed=0) == spread_archs(space, 8, seed=0)
    assert max(spread) - min(spread) > 2 * (max(uniform) - min(uniform))
    assert spread[0] == min(spread) and spread[-1] == max(spread)
