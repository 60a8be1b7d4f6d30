"""The `hwlat` command as a user runs it: help, spaces, demo, and one-line errors."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from rich.console import Console

from hwlat import demo_service
from hwlat.cli import main
from hwlat.demo_service import (
    DEFAULT_PORT,
    background_service,
    choose_port,
    keep_serving,
    remove_old_db,
    service_env,
)
from latency_service.config import ServiceSettings
from latency_service.main import create_app


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_help_lists_the_subcommands(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--help")
    assert code == 0
    assert "spaces" in out and "demo" in out


def test_spaces_list_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "spaces", "list", "--json")
    assert code == 0
    assert [s["name"] for s in json.loads(out)] == [
        "darts",
        "densenas",
        "fbnet",
        "hwnasbench-fbnet",
        "proxyless-mobile",
        "singlepath-mobile",
        "spos-shufflenet",
    ]


def test_spaces_show_fbnet_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "spaces", "show", "fbnet", "--resolution", "224", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["searchable_layers"] == 22
    assert data["size"] == 9**16 * 8**6 == 485758124386377007104
    assert data["size_formula"] == "9^16 * 8^6"
    assert len(data["layers"]) == 22
    assert data["layers"][1]["choices"]["skip"] is None  # masked: stride 2
    assert data["distinct_ops"] == 104


def test_spaces_show_table(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "spaces", "show", "darts", "-o", "C=8", "-o", "cells=5")
    assert code == 0
    assert "cell4.edge13" in out and "distinct ops" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["spaces", "show", "nope"], "error: space: unknown search space 'nope'"),
        (["spaces", "show", "fbnet", "-r", "0"], "error: resolution: must be a positive"),
        (["spaces", "show", "darts", "-o", "cells"], "error: --option: expected NAME=VALUE"),
        (["spaces", "show", "darts", "-o", "cells=x"], "error: --option cells: expected an"),
        (["spaces", "show", "fbnet", "-o", "C=3"], "error: --option: fbnet takes no"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, _, err = run(capsys, *argv)
    assert code == 1
    assert err.startswith(message)
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_usage_error_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "spaces", "show", "fbnet", "--resolution", "abc")
    assert code == 1
    assert "Invalid value for '--resolution'" in err


@pytest.mark.slow
def test_demo_runs_end_to_end(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """The main job, quick budgets: service, agent, predictors, search, measurement."""
    (tmp_path / "service.db").write_text("an earlier demo's database")  # a second run works
    code, out, _ = run(capsys, "demo", "--quick", "--out-dir", str(tmp_path))
    assert code == 0
    for text in ("proxyless-mobile", "mbconv", "epoch 1", "measured end to end", "stopped"):
        assert text in out
    assert "removed the previous demo's" in out and "hwlat demo --keep-serving" in out
    record = json.loads((tmp_path / "arch.json").read_text())
    target = record["target"]
    assert abs(record["table_ms"] / target["target_ms"] - 1) <= 0.03  # the hard target held
    assert target["end_to_end"]["target_ms"] > 0
    assert record["measured"]["median_ms"] > 0 and record["estimate"]["calibrated_ms"] > 0
    assert record["retrain"]["epochs"] == 1 and 0 <= record["retrain"]["test_acc"] <= 1
    assert [row["epoch"] for row in record["history"]] == [1, 2]
    coverage = _service_lut(tmp_path / "service.db", "fbnet", 32, 1.0, 10)["coverage"]
    assert coverage["measured"] == coverage["total"] == 104  # the dashboard's complete table
    quality = {row["space"]: row for row in record["table_quality"]}  # printed and kept
    assert quality["fbnet@32 w1.0"]["cells"] == 194 and "unstable" in out
    assert 0 <= quality["fbnet@32 w1.0"]["unstable"] <= 1


def _service_lut(db: Path, space: str, resolution: int, width: float, classes: int) -> Any:
    """The demo device's table, read from the demo's database by the service app itself."""
    app = create_app(ServiceSettings(database_url=f"sqlite:///{db}"))
    params = {"space": space, "resolution": resolution, "width": width, "classes": classes}
    try:
        with TestClient(app) as client:
            r = client.get("/v1/devices/this-machine/lut", params=params)
    finally:
        app.state.engine.dispose()
    assert r.status_code == 200, r.text
    return r.json()


def test_demo_keeps_serving_until_ctrl_c(tmp_path: Path) -> None:
    """--keep-serving: the dashboard's addresses, then Ctrl-C stops the service cleanly."""
    console = Console(record=True, width=200)
    sleeps: list[float] = []

    def ctrl_c(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 2:
            raise KeyboardInterrupt

    with background_service(tmp_path, "admin", choose_port(None, False)) as service:
        assert httpx.get(f"{service.url}/healthz").status_code == 200
        keep_serving(console, service, sleep=ctrl_c)
        assert service.proc.poll() is not None  # stopped by keep_serving itself
    out = console.export_text()
    assert f"{service.url}/devices/this-machine" in out and "Ctrl-C: service stopped" in out
    assert sleeps == [1.0, 1.0]


def test_demo_stops_its_service_on_sigterm_too(tmp_path: Path) -> None:
    """`kill PID` of a keep-serving demo stops the service instead of orphaning it."""
    console = Console(record=True, width=200)
    with background_service(tmp_path, "admin", choose_port(None, False)) as service:
        keep_serving(console, service, sleep=lambda _: os.kill(os.getpid(), signal.SIGTERM))
        assert service.proc.poll() is not None
    assert "service stopped" in console.export_text()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handler restored


def test_demo_refuses_a_port_in_use(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        argv = ["demo", "--keep-serving", "--port", str(port), "--out-dir", str(tmp_path / "o")]
        code, _, err = run(capsys, *argv)
    assert code == 1
    assert err.startswith(f"error: --port: 127.0.0.1:{port} is already in use")
    assert err.count("\n") == 1 and not (tmp_path / "o").exists()  # refused before anything ran


def test_demo_starts_from_a_fresh_database(tmp_path: Path) -> None:
    for name in ("service.db", "service.db-wal", "service.db-shm", "arch.json"):
        (tmp_path / name).write_text("old")
    assert [p.name for p in remove_old_db(tmp_path)] == [
        "service.db",
        "service.db-wal",
        "service.db-shm",
    ]
    assert [p.name for p in tmp_path.iterdir()] == ["arch.json"]


def test_demo_port_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(demo_service, "port_free", lambda port: True)
    assert choose_port(None, True) == DEFAULT_PORT == 8765  # the README's address
    assert choose_port(9000, False) == choose_port(9000, True) == 9000
    assert choose_port(None, False) != DEFAULT_PORT  # without --keep-serving: any free port


def test_demo_service_bounds_repeats_unless_the_user_says_otherwise(tmp_path: Path) -> None:
    db = tmp_path / "service.db"
    env = service_env({"HWLAT_DATABASE_URL": "postgresql://elsewhere"}, db, "t")
    assert env["HWLAT_REMEASURE_MAX"] == "1"
    assert env["HWLAT_DATABASE_URL"] == f"sqlite:///{db}" and env["HWLAT_ADMIN_TOKEN"] == "t"
    assert service_env({"HWLAT_REMEASURE_MAX": "0"}, db, "t")["HWLAT_REMEASURE_MAX"] == "0"


def test_console_script_entry_point() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "hwlat.cli", "spaces", "show", "nope"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith("error: space: unknown search space")
