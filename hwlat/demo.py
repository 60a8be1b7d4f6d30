"""`hwlat demo`: the main job end to end on this machine, from nothing.

1. an overview of the bundled search spaces;
2. `hwlat serve` on a fresh embedded SQLite file, in the background (`demo_service.py`);
3. this machine registered as an `ort-cpu` device, proxyless-mobile@32 and 8 random
   networks of it queued, and fbnet@32 (width 1.0, 10 classes: a complete table for the
   dashboard), and an agent run until every op and network is measured;
   how well the tables were measured (unstable cells, one measurement's interval
   against the tolerance asked, the interval a lookup reports);
4. predictors trained on those measurements;
5. a ProxylessNAS search on digits with a hard latency target, from the service's table;
6. the searched network measured end to end by the agent, and a summary: target, table
   latency, calibrated estimate, measurement, accuracy of the searched network trained
   from scratch; then the service is shut down, or with `--keep-serving` it serves its
   dashboard until Ctrl-C.
"""

from __future__ import annotations

import json
import secrets
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from hwlat.commands.search import table_target
from hwlat.commands.spaces import print_overview
from hwlat.demo_quality import print_quality
from hwlat.demo_service import (
    DEVICE,
    HWLAT,
    background_service,
    choose_port,
    keep_serving,
    remove_old_db,
)
from hwlat.end_to_end import measure_on_device, spread_archs
from hwlat.search_report import export, print_summary, run_with_progress
from latency_service.calibration_formula import estimate
from latency_service.client import HwlatClient
from profiler.timing import TimingConfig
from searchers import data as datasets
from searchers.core.losses import HardTarget
from searchers.latency import LatencyTable
from searchers.registry import create_searcher, searcher_class
from searchers.retrain import retrain
from searchers.spaces import SearchSpace, create_space

DEMO_DIR = Path("demo-output")
RUNTIME, SPACE, RESOLUTION, WIDTH = "ort-cpu", "proxyless-mobile", 32, 0.35
TABLE_SPACE = ("fbnet", 32, 1.0, 10)  # space, resolution, width, classes: 104 distinct ops
TABLE_KEYS = ("space", "resolution", "width", "classes")
REL_TOL = TimingConfig().rel_tol  # what the agent asks of each measurement (its default)
CALIBRATION = 8  # random networks measured end to end: the calibration's data
RETRAIN_EPOCHS = 5
QUICK_AGENT = ["--budget-s", "0.02", "--min-sample-ms", "0.3", "--samples-per-round", "3"]


def run_demo(
    console: Console,
    out_dir: Path = DEMO_DIR,
    quick: bool = False,
    keep: bool = False,
    port: int | None = None,
) -> None:
    port = choose_port(port, keep)  # a port in use fails here, before anything runs
    console.rule("1. search spaces")
    print_overview(console)
    out_dir.mkdir(parents=True, exist_ok=True)
    if gone := remove_old_db(out_dir):
        names = ", ".join(p.name for p in gone)
        console.print(f"removed the previous demo's database ({names}): it is scratch")
    admin = secrets.token_urlsafe(16)
    console.rule(f"2. hwlat serve on SQLite ({out_dir / 'service.db'})")
    with (
        background_service(out_dir, admin, port) as service,
        HwlatClient(service.url, admin_token=admin, timeout=600) as c,
    ):
        console.print(f"service at {service.url} (log: {service.log})")
        record = main_job(console, c, service.url, quick)
        (out_dir / "arch.json").write_text(json.dumps(record, indent=1))
        print_summary(console, record)
        console.print(f"architecture and search history in {out_dir / 'arch.json'}")
        if keep:
            keep_serving(console, service)
            return
    console.print(
        f"service at {service.url} stopped; to keep it up and open its dashboard "
        f"({service.url}/devices/{DEVICE}), run `hwlat demo --keep-serving`"
    )


def main_job(console: Console, c: HwlatClient, url: str, quick: bool) -> dict[str, Any]:
    """Steps 3 to 6: measure, train, search, measure the result; the search's record."""
    console.rule(f"3. this machine as device {DEVICE!r} ({RUNTIME}); an agent measures")
    token = c.create_device(DEVICE, RUNTIME).token
    job = c.enqueue_space(DEVICE, SPACE, RESOLUTION, WIDTH, classes=10)
    console.print(f"queued {job.new} ops of {SPACE}@{RESOLUTION} width {WIDTH}")
    space = create_space(SPACE, resolution=RESOLUTION, width=WIDTH, classes=10)
    nets = [{**_params(), "arch": a} for a in spread_archs(space, CALIBRATION, seed=1)]
    c.enqueue_networks(DEVICE, nets)
    console.print(f"and {CALIBRATION} networks end to end (cheapest to largest), to calibrate")
    job = c.enqueue_space(DEVICE, *TABLE_SPACE)
    console.print(
        f"and {job.new} ops of {TABLE_SPACE[0]}@{TABLE_SPACE[1]} width {TABLE_SPACE[2]}: "
        "its complete latency table, for the dashboard"
    )
    run_agent(url, token, quick)
    quality = print_quality(
        console, c, DEVICE, [_params(), dict(zip(TABLE_KEYS, TABLE_SPACE, strict=True))], REL_TOL
    )
    console.rule("4. predictors for unmeasured ops")
    print_trained(console, c)
    console.rule("5. ProxylessNAS on digits with a hard latency target")
    record = search(console, c, quick)
    console.rule("6. the searched network, measured end to end by the agent")
    c.enqueue_networks(DEVICE, [{**_params(), "arch": record["arch"]}])
    run_agent(url, token, quick)
    record["measured"] = measure_on_device(c, DEVICE, space, record["arch"], 60)
    record["table_quality"] = quality
    return record


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
    config = searcher_class("proxyless").Config()
    if quick:
        config = replace(config, epochs=2, warmup_epochs=1)
    console.print(
        f"{config.epochs} epochs ({config.warmup_epochs} of weights only, then an architecture "
        "step after every weight step); per epoch the search-validation accuracy of the "
        "argmax path and of paths sampled from p, with the shared weights"
    )
    s = create_searcher("proxyless", table=table, data=data, config=config, latency=latency)
    record = export(s, run_with_progress(s, console), table, latency, c, DEVICE)
    record["target"]["end_to_end"] = mapped
    epochs = 1 if quick else RETRAIN_EPOCHS
    with console.status(f"training the searched architecture from scratch ({epochs} epochs)..."):
        record["retrain"] = retrain(space, record["arch"], data, epochs).to_json()
    return record


def _calibrated(c: HwlatClient, space: SearchSpace, table_ms: float) -> float:
    """The calibrated end-to-end estimate of a network whose table latency is `table_ms`."""
    est = c.estimate(DEVICE, {**space.params(), "arch": space.arch_to_json(space.random_arch(0))})
    cal = est.calibration
    form = cal.get("form", "linear")  # a service from before the power form sends none
    return estimate(form, cal["coef"], cal["intercept"], table_ms, est.ops)


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
