"""`hwlat serve` as a real process, and the client commands against it (SQLite and PG)."""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from hwlat.cli import main
from latency_service.client import HwlatClient
from profiler.reference import PANEL, panel_ops

KEY = "conv|cin=3,cout=16,g=1,k=3,s=2|1x3x32x32|float32"
STATS = {
    "median_ms": 1.5,
    "mean_ms": 1.6,
    "std_ms": 0.1,
    "min_ms": 1.4,
    "p10_ms": 1.45,
    "p90_ms": 1.8,
    "iqr_ms": 0.2,
    "samples": 30,
    "calls_per_sample": 4,
    "ci_half_width_ms": 0.02,
    "target_met": True,
    "stable": True,
    "first_call_ms": 5.0,
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(data: Path, db: str | None = None) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "XDG_DATA_HOME": str(data)}
    env.pop("HWLAT_ADMIN_TOKEN", None)
    cmd = [sys.executable, "-m", "hwlat.cli", "serve", "--port", str(port)]
    proc = subprocess.Popen(
        [*cmd, *(["--db", db] if db else [])],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"hwlat serve exited: {proc.stderr.read().decode()}")  # type: ignore[union-attr]
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("hwlat serve did not answer /healthz within 60 s")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    data = tmp_path_factory.mktemp("xdg")
    proc, url = start_server(data)
    yield url, data
    proc.terminate()
    proc.wait(timeout=20)


def cli(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, data: Path, *argv: str
) -> tuple[int, str, str]:
    monkeypatch.setenv("XDG_DATA_HOME", str(data))
    monkeypatch.delenv("HWLAT_ADMIN_TOKEN", raising=False)
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_newcomer_walkthrough(
    server: tuple[str, Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    url, data = server
    run = lambda *a: cli(capsys, monkeypatch, data, *a, "--server", url)  # noqa: E731
    code, out, _ = run("devices", "add", "my-cpu", "--runtime", "ort-cpu", "--json")
    assert code == 0
    token = json.loads(out)["token"]
    code, out, _ = run(
        "jobs", "add", "--device", "my-cpu", "--space", "fbnet", "--resolution", "32", "--json"
    )
    assert code == 0 and json.loads(out) == {
        "total": 104,
        "new": 104,
        "already_measured": 0,
        "already_queued": 0,
    }
    code, _, err = run("query", "--device", "my-cpu", "--op", KEY)
    assert code == 1 and err.startswith("error: HTTP 404: op ") and "hwlat jobs add" in err

    with HwlatClient(url, token=token) as agent:  # what an agent does, in three calls
        lease = agent.lease(200)
        item = next(i for i in lease.items if i.key == KEY)
        assert lease.lease_id is not None
        panel = {
            op.key: {"median_ms": 0.1, "ci_half_width_ms": 0.001, "stable": True}
            for op in panel_ops()
        }
        agent.upload(
            lease.lease_id,
            "run-1",
            [{"item_id": item.item_id, "key": KEY, "stats": STATS}],
            reference={"panel": PANEL, "ops": panel},
        )
    code, out, _ = run("query", "--device", "my-cpu", "--op", KEY, "--json")
    assert code == 0 and json.loads(out)["median_ms"] == 1.5

    for fmt, marker in (
        ("json", '"coverage"'),
        ("csv", "layer,group,candidate"),
        ("proxyless-yaml", '"Conv-input:32x32x3-output:16x16x16'),
    ):
        out_file = tmp_path / f"lut.{fmt}"
        code, out, _ = run(
            "lut",
            "--device",
            "my-cpu",
            "--space",
            "fbnet",
            "-r",
            "32",
            "--format",
            fmt,
            "--out",
            str(out_file),
            "--json",
        )
        assert code == 0 and json.loads(out)["measured"] == 1
        assert marker in out_file.read_text()
    code, out, _ = run("devices", "list", "--json")
    assert code == 0 and json.loads(out)[0]["coverage"][0]["measured"] == 1
    code, out, _ = run("devices", "show", "my-cpu")
    assert code == 0 and "my-cpu" in out
    code, out, _ = run("devices", "drift", "my-cpu")
    assert code == 0 and "run-1" in out and "1.000" in out
    # one reading is no baseline, and the op's CI is narrow: nothing to measure again
    code, out, _ = run("jobs", "remeasure", "--device", "my-cpu", "--json")
    assert code == 0 and json.loads(out)["checked"] == 1 and json.loads(out)["queued"] == 0
    code, out, _ = run("jobs", "remeasure", "--device", "my-cpu", "--kind", "conv")
    assert code == 0 and "checked" in out
    code, out, _ = run("devices", "repeatability", "my-cpu")
    assert code == 0 and "no retests for my-cpu yet" in out
    code, out, _ = run("jobs", "retest", "--device", "my-cpu", "--kind", "conv", "--json")
    assert code == 0 and json.loads(out) == {
        "measured": 1,
        "already_retested": 0,
        "already_queued": 0,
        "queued": 1,
    }
    # the retest is pending; the agent still holds the other 103 items of its lease
    code, out, _ = run("jobs", "cancel", "--device", "my-cpu", "--reason", "retest", "--json")
    assert code == 0 and json.loads(out) == {"cancelled": 1, "pending_left": 0, "leased": 0}
    code, out, _ = run("jobs", "cancel", "--device", "my-cpu", "--newest", "3")
    assert code == 0 and "cancelled" in out and "103" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["devices", "add", "my-cpu", "--runtime", "ort-cpu"], "error: HTTP 409: device"),
        (["devices", "add", "BAD NAME", "--runtime", "ort-cpu"], "error: HTTP 422: body.name"),
        (["devices", "show", "nobody"], "error: HTTP 404: no device 'nobody'"),
        (["devices", "drift", "nobody"], "error: HTTP 404: no device 'nobody'"),
        (
            ["jobs", "remeasure", "--device", "my-cpu", "--kind", "nope"],
            "error: HTTP 422: kind: unknown op kind 'nope'",
        ),
        (
            ["jobs", "retest", "--device", "my-cpu", "--kind", "nope"],
            "error: HTTP 422: kind: unknown op kind 'nope'",
        ),
        (
            ["jobs", "retest", "--device", "my-cpu", "--kind", "shuffle"],
            "error: HTTP 422: kind shuffle: device my-cpu has no measured shuffle ops",
        ),
        (
            ["jobs", "cancel", "--device", "my-cpu", "--kind", "nope"],
            "error: HTTP 422: kind: unknown op kind 'nope'",
        ),
        (["jobs", "cancel", "--device", "my-cpu", "--reason", "x"], "error: HTTP 422: body.reason"),
        (["jobs", "cancel", "--device", "nobody"], "error: HTTP 404: no device 'nobody'"),
        (["devices", "repeatability", "nobody"], "error: HTTP 404: no device 'nobody'"),
        (["jobs", "add", "--device", "my-cpu"], "error: give either --space"),
        (
            ["train", "--device", "my-cpu", "--model", "nope"],
            "error: HTTP 422: models: unknown candidate 'nope'",
        ),
        (["jobs", "add", "--device", "my-cpu", "--op", "conv|x"], "error: HTTP 422: ops[0]"),
        (
            ["lut", "--device", "my-cpu", "--space", "fbnet", "--out", "x", "--format", "xml"],
            "error: --format: expected one of json, csv, hwnasbench-fbnet, nni-lut",
        ),
        (
            ["devices", "add", "x", "--runtime", "ort-cpu", "--admin-token", "wrong"],
            "error: HTTP 403: this needs the admin token",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_1(
    server: tuple[str, Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    message: str,
) -> None:
    url, data = server
    cli(
        capsys,
        monkeypatch,
        data,
        "devices",
        "add",
        "my-cpu",
        "--runtime",
        "ort-cpu",
        "--server",
        url,
    )  # may already exist
    code, _, err = cli(capsys, monkeypatch, data, *argv, "--server", url)
    assert code == 1
    assert err.startswith(message), err
    assert len(err.strip().splitlines()) == 1


def test_serve_with_a_postgresql_url(tmp_path: Path) -> None:
    psycopg = pytest.importorskip("psycopg")
    name = f"hwlat_serve_{secrets.token_hex(4)}"
    try:
        admin = psycopg.connect(
            "postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True, connect_timeout=2
        )
    except psycopg.OperationalError as exc:
        pytest.skip(f"no PostgreSQL server on 127.0.0.1:5432: {exc}")
    admin.execute(f"CREATE DATABASE {name}")
    proc = None
    try:
        proc, url = start_server(tmp_path, f"postgresql://postgres@127.0.0.1:5432/{name}")
        assert httpx.get(f"{url}/healthz").json()["database"] == "postgresql"
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=20)
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()
