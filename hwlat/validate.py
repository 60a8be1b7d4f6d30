"""`hwlat validate`: do table sums predict whole networks on this device? Measure and see.

Samples architectures of a space, measures them end to end (as network work items for
the device's agents, or here with `--local` when this machine is the device), and
compares with the service's estimates: the raw table sum, and the calibrated estimate
(leave-one-out over the validation networks, so no network is judged by a calibration
fitted on itself). Reports mean/max |error|, share within ±5/±10%, Kendall τ, and
writes a JSON report and a predicted-vs-measured scatter plot.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from hwlat.errors import fail
from latency_service.cli import DEFAULT_SERVER, Admin, Server, Token, client, parse_options
from latency_service.client import HwlatClient
from latency_service.predictors.calibration import assess
from searchers.spaces import SearchSpace, create_space


def sample_archs(space: SearchSpace, n: int, seed: int) -> list[dict[str, Any]]:
    archs: dict[str, dict[str, Any]] = {}
    for i in range(n * 20):
        arch = space.arch_to_json(space.random_arch(seed * 100_003 + i))
        archs.setdefault(json.dumps(arch, sort_keys=True), arch)
        if len(archs) == n:
            break
    return list(archs.values())


def spread_archs(space: SearchSpace, n: int, seed: int) -> list[dict[str, Any]]:
    """`n` architectures spread from the space's cheapest to its most expensive: the k-th
    picks, per layer, a candidate near rank quantile k/(n-1) of that layer's candidates
    by FLOPs (±1 rank at random). Uniform samples bunch around the middle of the latency
    range, which leaves a calibration's slope, and a ranking test, to noise."""
    import random

    from profiler.features import features

    rng, archs = random.Random(seed), dict[str, dict[str, Any]]()
    ranked = [
        sorted(layer.legal, key=lambda c: features(c.op).flops if c.op else 0)
        for layer in space.layers()
    ]
    for k in range(n * 20):
        q = (k % n) / max(n - 1, 1)
        names = []
        for cands in ranked:
            i = round(q * (len(cands) - 1)) + rng.choice((-1, 0, 1))
            names.append(cands[min(max(i, 0), len(cands) - 1)].name)
        arch = space.arch_to_json(names)
        archs.setdefault(json.dumps(arch, sort_keys=True), arch)
        if len(archs) == n:
            break
    return list(archs.values())


def measure_remote(
    c: HwlatClient,
    device: str,
    space: SearchSpace,
    archs: list[dict[str, Any]],
    options: dict[str, int],
    timeout_s: float,
) -> dict[str, float]:
    """Queue the networks for the device's agents and wait for their measurements."""
    nets = [
        {
            "space": space.name,
            "resolution": space.resolution,
            "width": space.width,
            "classes": space.classes,
            "options": options,
            "arch": a,
        }
        for a in archs
    ]
    c.enqueue_networks(device, nets)
    wanted = {json.dumps(a, sort_keys=True) for a in archs}
    deadline = time.monotonic() + timeout_s
    with Console(stderr=True).status(
        f"waiting for {device}'s agents to measure {len(archs)} networks..."
    ) as status:
        while True:
            got = {}
            for m in c.networks(device, space.name, space.resolution):
                arch = {k: v for k, v in m.arch.items() if k not in ("options", "arch_hash")}
                key = json.dumps(arch, sort_keys=True)
                if key in wanted:
                    got[key] = m.median_ms
            status.update(f"{len(got)}/{len(wanted)} networks measured on {device}")
            if len(got) == len(wanted):
                return got
            if time.monotonic() > deadline:
                fail(
                    f"only {len(got)}/{len(wanted)} networks were measured within "
                    f"{timeout_s:.0f} s; is an agent running for {device}? (hwlat agent)"
                )
            time.sleep(2.0)


def measure_local(
    c: HwlatClient,
    device: str,
    space: SearchSpace,
    archs: list[dict[str, Any]],
    threads: int | None,
) -> dict[str, float]:
    """Measure here, after checking that this machine and runtime are the device."""
    import torch

    from devices.fingerprint import fingerprint, fingerprint_id
    from devices.runtimes import create_runtime
    from profiler.timing import Engine, Measurement

    info = c.get_device(device)
    with create_runtime(info.runtime, threads=threads) as rt:
        here = fingerprint_id(fingerprint(rt))
        if info.fingerprint_id != here:
            fail(
                f"--local: this machine/runtime (fingerprint {here}) is not device {device} "
                f"({info.fingerprint_id}); run without --local so its agents measure"
            )
        x = torch.randn(space.fixed_ops()[0].shape, generator=torch.Generator().manual_seed(0))
        prepared = {
            json.dumps(a, sort_keys=True): rt.prepare_network(
                space.build_child(a), x, json.dumps(a, sort_keys=True)
            )
            for a in archs
        }
        results = Engine().measure([(k, p.runnable) for k, p in prepared.items()])
    bad = [k for k, r in results.items() if not isinstance(r, Measurement)]
    if bad:
        fail(f"{len(bad)} network(s) failed to run: {results[bad[0]]}")
    return {k: r.stats.median_ms for k, r in results.items() if isinstance(r, Measurement)}


def plot(
    path: Path, measured: list[float], raw: list[float], cal: list[float] | None, title: str
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 5))
    lo, hi = min(measured + raw) * 0.9, max(measured + raw) * 1.1
    ax.fill_between([lo, hi], [lo * 0.9, hi * 0.9], [lo * 1.1, hi * 1.1], alpha=0.15, label="±10%")
    ax.plot([lo, hi], [lo, hi], "k--", lw=1)
    ax.scatter(measured, raw, s=18, label="table sum (raw)")
    if cal is not None:
        ax.scatter(measured, cal, s=18, marker="x", label="calibrated (leave-one-out)")
    ax.set(xlabel="measured end to end (ms)", ylabel="estimate (ms)", title=title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def validate(
    device: Annotated[str, typer.Option("--device")],
    space_name: Annotated[str, typer.Option("--space")] = "fbnet",
    resolution: Annotated[int | None, typer.Option("--resolution", "-r")] = None,
    width: Annotated[float, typer.Option("--width", "-w")] = 1.0,
    classes: Annotated[int | None, typer.Option("--classes")] = None,
    option: Annotated[list[str] | None, typer.Option("--option", "-o")] = None,
    networks: Annotated[int, typer.Option("--networks", min=2, max=1000)] = 30,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    local: Annotated[bool, typer.Option("--local", help="Measure on this machine.")] = False,
    spread: Annotated[
        bool, typer.Option("--spread", help="Cheapest to largest, not uniform samples.")
    ] = False,
    threads: Annotated[int | None, typer.Option("--threads", help="With --local.")] = None,
    out_dir: Annotated[Path, typer.Option("--out-dir")] = Path("validate-output"),
    timeout_s: Annotated[float, typer.Option("--timeout-s")] = 3600.0,
    server: Server = DEFAULT_SERVER,
    admin_token: Admin = None,
    token: Token = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Check table-sum and calibrated estimates against end-to-end measurements."""
    options = parse_options(option or [])
    space = create_space(space_name, resolution=resolution, width=width, classes=classes, **options)
    archs = (spread_archs if spread else sample_archs)(space, networks, seed)
    with client(server, admin_token, token) as c:
        measured = (
            measure_local(c, device, space, archs, threads)
            if local
            else measure_remote(c, device, space, archs, options, timeout_s)
        )
        body = {
            "space": space.name,
            "resolution": space.resolution,
            "width": space.width,
            "classes": space.classes,
            "options": options,
        }
        est = [c.estimate(device, {**body, "arch": a}) for a in archs]
    report = build_report(space, archs, measured, est, device, local)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"validate-{device}-{space.name}{space.resolution}"
    (out_dir / f"{stem}.json").write_text(json.dumps(report, indent=1))
    rows = report["networks"]
    plot(
        out_dir / f"{stem}.png",
        [r["measured_ms"] for r in rows],
        [r["table_sum_ms"] for r in rows],
        [r["calibrated_ms"] for r in rows] if report["calibrated"] else None,
        f"{device}: {space.name}@{space.resolution}, {len(rows)} networks",
    )
    print_report(report, out_dir / stem, as_json)


def build_report(
    space: SearchSpace,
    archs: list[dict[str, Any]],
    measured: dict[str, float],
    est: list[Any],
    device: str,
    local: bool,
) -> dict[str, Any]:
    true = [measured[json.dumps(a, sort_keys=True)] for a in archs]
    raw = [e.table_sum_ms for e in est]
    rows = [
        {
            "arch": a,
            "measured_ms": t,
            "table_sum_ms": r,
            "ops": e.ops,
            "predicted_ops": e.predicted_ops,
        }
        for a, t, r, e in zip(archs, true, raw, est, strict=True)
    ]
    checked = assess(rows)
    report: dict[str, Any] = {
        "device": device,
        "space": space.params(),
        "local": local,
        "raw": checked["raw"],
        "calibrated": checked["calibrated"],
        "networks": rows,
    }
    if checked["note"] is not None:
        report["calibration_note"] = checked["note"]
    return report


def print_report(report: dict[str, Any], stem: Path, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps({k: v for k, v in report.items() if k != "networks"}, indent=2))
        return
    table = Table(
        "estimate",
        "mean |err|",
        "max |err|",
        "±5%",
        "±10%",
        "Kendall τ",
        title=f"{report['device']}: {len(report['networks'])} networks",
    )
    for name in ("raw", "calibrated"):
        m = report[name]
        if m is not None:
            table.add_row(
                name,
                f"{m['mean_abs_error']:.1%}",
                f"{m['max_abs_error']:.1%}",
                f"{m['within_5pct']:.0%}",
                f"{m['within_10pct']:.0%}",
                f"{m['kendall_tau']:.3f}",
            )
    Console().print(table)
    typer.echo(f"report: {stem}.json, plot: {stem}.png")
