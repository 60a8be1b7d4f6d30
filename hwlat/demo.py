"""`hwlat demo`: the main job end to end on this machine, from nothing.

1. an overview of the bundled search spaces;
2. `hwlat serve` on an embedded SQLite file, in the background;
3. this machine registered as an `ort-cpu` device, proxyless-mobile@32 and 8 random
   networks of it queued, and an agent run until every op and network is measured;
4. predictors trained on those measurements;
5. a ProxylessNAS search on digits with a hard latency target, from the service's table;
6. the searched network measured end to end by the agent, and a summary: target, table
   latency, calibrated estimate, measurement, accuracy of the searched network trained
   from scratch; then the service is shut down.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from hwlat.search_cmd import _run, export, print_summary, table_target
from hwlat.validate import spread_archs
from hwlat.verify import measure_on_device
from latency_service.client import HwlatClient
from searchers import data as datasets
from searchers._registry import create_searcher
from searchers.base import SearchConfig
from searchers.cli import print_overview
from searchers.latency import LatencyTable
from searchers.losses import HardTarget
from searchers.retrain import retrain
from searchers.spaces import SearchSpace, create_space

DEMO_DIR = Path("demo-output")
DEVICE, RUNTIME, SPACE, RESOLUTION, WIDTH = "this-machine", "ort-cpu", "proxyless-mobile", 32, 0.35
HWLAT = [sys.executable, "-m", "hwlat.cli"]
CALIBRATION = 8  # random networks measured end to end: the calibration's data
QUICK_AGENT = ["--budget-s", "0.02", "--min-sample-ms", "0.3", "--samples-per-round", "3"]


def run_demo(console: Console, out_dir: Path = DEMO_DIR, quick: bool = False) -> None:
    console.rule("1. search spaces")
    print_overview(console)
    out_dir.mkdir(parents=True, exist_ok=True)
    admin = secrets.token_urlsafe(16)
    console.rule(f"2. hwlat serve on SQLite ({out_dir / 'service.db'})")
    with (
        background_service(out_dir, admin) as url,
        HwlatClient(url, admin_token=admin, timeout=600) as c,
    ):
        console.print(f"service at {url} (log: {out_dir / 'service.log'})")
        console.rule(f"3. this machine as device {DEVICE!r} ({RUNTIME}); an agent measures")
        token = c.create_device(DEVICE, RUNTIME).token
        job = c.enqueue_space(DEVICE, SPACE, RESOLUTION, WIDTH, classes=10)
        console.print(f"queued {job.new} ops of {SPACE}@{RESOLUTION} width {WIDTH}")
        space = create_space(SPACE, resolution=RESOLUTION, width=WIDTH, classes=10)
        nets = [{**_params(), "arch": a} for a in spread_archs(space, CALIBRATION, seed=1)]
        c.enqueue_networks(DEVICE, nets)
        console.print(f"and {CALIBRATION} networks end to end (cheapest to largest), to calibrate")
        run_agent(url, token, quick)
        console.rule("4. predictors for unmeasured ops")
        print_trained(console, c)
        console.rule("5. ProxylessNAS on digits with a hard latency target")
        record = search(console, c, quick)
        console.rule("6. the searched network, measured end to end by the agent")
        c.enqueue_networks(DEVICE, [{**_params(), "arch": record["arch"]}])
        run_agent(url, token, quick)
        record["measured"] = measure_on_device(c, DEVICE, space, record["arch"], 60)
    (out_dir / "arch.json").write_text(json.dumps(record, indent=1))
    print_summary(console, record)
    console.print(f"architecture and search history in {out_dir / 'arch.json'}; service stopped")


def search(console: Console, c: HwlatClient, quick: bool) -> dict[str, Any]:
    space = create_space(SPACE, resolution=RESOLUTION, width=WIDTH, classes=10)
    table = LatencyTable.from_service(c, DEVICE, space)
    table.check()
    lo, hi = table.bounds()
    end_to_end = round(
        _calibrated(c, space, lo) + 0.4 * (_calibrated(c, space, hi) - _calibrated(c, space, lo)), 4
    )
    target, mapped = table_target(c, DEVICE, space, end_to_end)
    console.print(
        f"table: {lo:.3f}..{hi:.3f} ms over the space; target {end_to_end} ms end to end "
        f"= {target:.4f} ms of table under the device's calibration, ±3%"
    )
    data = datasets.load("digits", RESOLUTION, 64, 0, limit=400 if quick else None)
    latency = HardTarget(target, "eq", 0.03)
    s = create_searcher(
        "proxyless",
        table=table,
        data=data,
        config=SearchConfig(epochs=1 if quick else 3),
        latency=latency,
    )
    record = export(s, _run(s, console), table, latency, c, DEVICE)
    record["target"]["end_to_end"] = mapped
    with console.status("training the searched architecture from scratch (2 epochs)..."):
        record["retrain_acc"] = retrain(space, record["arch"], data, 1 if quick else 2)
    return record


def _calibrated(c: HwlatClient, space: SearchSpace, table_ms: float) -> float:
    """The calibrated end-to-end estimate of a network whose table latency is `table_ms`."""
    est = c.estimate(DEVICE, {**space.params(), "arch": space.arch_to_json(space.random_arch(0))})
    a, b = est.calibration["coef"]
    return float(a * table_ms + b * est.ops + est.calibration["intercept"])


def _params() -> dict[str, object]:
    return {"space": SPACE, "resolution": RESOLUTION, "width": WIDTH, "classes": 10}


def print_trained(console: Console, c: HwlatClient) -> None:
    out = c.train(DEVICE)
    table = Table("kind", "model", "samples", "±10% (held-out)")
    for p in out.trained:
        m = p.metrics[p.model]
        table.add_row(p.kind, p.model, str(p.samples), f"{m['within_10pct']:.0%}")
    console.print(table)
    for kind, why in out.skipped.items():
        console.print(f"[dim]no predictor for {kind}: {why.split(';')[0]}[/dim]")


def run_agent(url: str, token: str, quick: bool) -> None:
    cmd = [*HWLAT, "agent", "--server", url, "--token", token, "--once"]
    subprocess.run(cmd + (QUICK_AGENT if quick else []), check=True)


@contextmanager
def background_service(out_dir: Path, admin: str) -> Iterator[str]:
    """A fresh `hwlat serve` on `out_dir/service.db`, stopped on the way out."""
    db = out_dir / "service.db"
    db.unlink(missing_ok=True)  # a fresh device table each demo
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "HWLAT_DATABASE_URL": f"sqlite:///{db}", "HWLAT_ADMIN_TOKEN": admin}
    with (out_dir / "service.log").open("wb") as log:
        proc = subprocess.Popen(
            [*HWLAT, "serve", "--port", str(port)], env=env, stdout=log, stderr=log
        )
        try:
            yield _wait_up(f"http://127.0.0.1:{port}", proc)
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def _wait_up(url: str, proc: subprocess.Popen[bytes]) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return url
        except httpx.TransportError:
            time.sleep(0.2)
    raise RuntimeError("the service did not start; see service.log in the demo folder")
