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
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from hwlat.commands.common import DEFAULT_SERVER, Admin, Server, Token, parse_options
from hwlat.commands.connect import client
from hwlat.end_to_end import measure_local, measure_remote, sample_archs, spread_archs
from latency_service.predictors.calibration import assess
from searchers.spaces import SearchSpace, create_space


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
