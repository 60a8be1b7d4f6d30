"""`hwlat profile`: measure ops locally (no service) and write a LUT file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from devices.profiling import Drift, ProfileReport, profile_ops
from devices.runtimes import Runtime, create_runtime, list_runtimes
from hwlat.commands.common import fail
from hwlat.commands.spaces import make_space
from profiler.errors import MeasureError
from profiler.localref import default_store_dir
from profiler.ops import OpSpec
from profiler.timing import Engine, TimingConfig


def profile(
    runtime: str = typer.Option(..., "--runtime", help=f"One of: {', '.join(list_runtimes())}."),
    space: str | None = typer.Option(None, "--space", help="Profile every op of this space."),
    resolution: int | None = typer.Option(None, "--resolution", "-r"),
    width: float = typer.Option(1.0, "--width", "-w"),
    classes: int | None = typer.Option(None, "--classes"),
    option: list[str] = typer.Option([], "--option", "-o", help="Space parameter NAME=VALUE."),
    op: str | None = typer.Option(None, "--op", help="Measure one op, given by its key."),
    out: Path | None = typer.Option(None, "--out", help="LUT file to write (resumed if present)."),
    threads: int | None = typer.Option(None, "--threads", help="Runtime threads."),
    precision: str | None = typer.Option(None, "--precision", help="float32, float16, ..."),
    rel_tol: float = typer.Option(0.02, "--rel-tol", help="Target CI half-width / median."),
    budget_s: float = typer.Option(2.0, "--budget-s", help="Sampling budget per op (s)."),
    rounds: int = typer.Option(3, "--rounds", help="Minimum interleaved rounds."),
    min_sample_ms: float = typer.Option(5.0, "--min-sample-ms", help="Shortest sample (ms)."),
    samples_per_round: int = typer.Option(10, "--samples-per-round", help="Minimum per round."),
    seed: int = typer.Option(0, "--seed", help="Seed of the round order."),
    cache_dir: Path | None = typer.Option(None, "--cache-dir", help="ONNX export cache."),
    reference: bool = typer.Option(
        True,
        "--reference/--no-reference",
        help="Measure the reference panel with every batch, divide out each batch's drift "
        "and measure doubtful ops again (--no-reference: the engine alone).",
    ),
    reference_dir: Path | None = typer.Option(
        None,
        "--reference-dir",
        help="Where the panel's readings (the baseline) are kept per device fingerprint "
        "[default: $HWLAT_CACHE_DIR/reference, else ~/.cache/hwlat/reference].",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Measure every op of a space into a LUT file, or one op (--op KEY)."""
    if (space is None) == (op is None):
        fail("give either --space NAME (with --out FILE) or --op KEY")
    if space is not None and out is None:
        fail("--out FILE is required with --space (the LUT is written there)")
    config = TimingConfig.from_options(
        rel_tol, budget_s, rounds, min_sample_ms, samples_per_round, seed
    )
    with create_runtime(runtime, threads=threads, precision=precision, cache_dir=cache_dir) as rt:
        if op is not None:
            _profile_one(rt, OpSpec.from_key(op), config, as_json)
            return
        assert space is not None and out is not None
        s = make_space(space, resolution, width, classes, option, dtype=rt.precision)
        ops = s.fixed_ops() + s.distinct_ops()
        drift = Drift(reference_dir or default_store_dir()) if reference else None
        report = run_with_progress(rt, ops, config, out, s.params(), drift)
    print_report(report, out, as_json)


def _profile_one(rt: Runtime, op: OpSpec, config: TimingConfig, as_json: bool) -> None:
    prepared = rt.prepare(op)
    result = Engine(config).measure([(op.key, prepared.runnable)])[op.key]
    if isinstance(result, MeasureError):
        fail(f"{result.kind}: {result}")
    data: dict[str, Any] = {
        "op": op.key,
        **result.to_dict(),
        "export_s": prepared.export_s,
        "info": prepared.info,
        "runtime": rt.describe(),
    }
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    table = Table(title=op.key, show_header=False)
    for k in (
        "median_ms",
        "mean_ms",
        "std_ms",
        "min_ms",
        "p10_ms",
        "p90_ms",
        "iqr_ms",
        "ci_half_width_ms",
        "samples",
        "calls_per_sample",
        "rounds",
        "stable",
        "first_call_ms",
        "export_s",
    ):
        v = data[k]
        table.add_row(k, f"{v:.5g}" if isinstance(v, float) else str(v))
    Console().print(table)


def run_with_progress(
    rt: Runtime,
    ops: list[OpSpec],
    config: TimingConfig,
    out: Path,
    space: dict[str, Any],
    drift: Drift | None,
) -> ProfileReport:
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    n = len(set(ops))
    with Progress(*columns, console=Console(stderr=True)) as bar:
        prep = bar.add_task("export + load", total=n)
        meas = bar.add_task("measure", total=Engine(config).work_units(n))
        return profile_ops(
            rt,
            ops,
            config,
            out,
            space,
            on_prepared=lambda key: bar.advance(prep),
            progress=lambda key, units: bar.advance(meas, units),
            drift=drift,
            on_more=lambda n: more(bar, (prep, n), (meas, Engine(config).work_units(n))),
        )


def more(bar: Progress, *tasks: tuple[TaskID, int]) -> None:
    """Grow the bars' totals: ops queued to be measured again."""
    for task, n in tasks:
        total = next(t.total for t in bar.tasks if t.id == task)
        bar.update(task, total=(total or 0) + n)


def print_report(report: ProfileReport, out: Path | None, as_json: bool) -> None:
    ops = report.lut["ops"]
    unstable = sorted(k for k in report.keys if k in ops and not ops[k]["stable"])
    summary = {
        "out": str(out),
        "ops": len(report.keys),
        "measured": report.measured,
        "kept": report.kept,
        "failed": report.failed,
        "unstable": len(unstable),
        "wall_s": round(report.wall_s, 2),
        "export_s": round(report.export_s, 2),
        "efficiency": round(report.efficiency, 3),
        "fingerprint_id": report.lut["fingerprint_id"],
        "remeasured": report.remeasured,
        "reference": reference_summary(report.lut),
    }
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    console = Console()
    table = Table(title=f"profile → {out}", show_header=False)
    for k, v in summary.items():
        table.add_row(k, str(v))
    console.print(table)
    for key, err in sorted(report.lut["errors"].items()):
        console.print(f"[red]failed[/red] {key}: {err['type']}: {err['message']}")
    ref = summary["reference"]
    for run, why in ref.get("errors", {}).items():
        console.print(
            f"[yellow]run {run}: {why}[/yellow]; batches after it took the run's median "
            "factor (none: as measured)"
        )
    if unstable:
        console.print(
            f"{len(unstable)} ops missed the CI target or had IQR/median >= 10% "
            "(stable=false in the file); re-run with a larger --budget-s on a "
            "quieter machine to tighten them"
        )


def reference_summary(lut: dict[str, Any]) -> dict[str, Any]:
    """What the panel saw: readings, the factors batches were divided by, the store, and
    the between-session sigma added to every interval."""
    ref = lut.get("reference") or {}
    factors = [r["factor"] for r in ref.get("readings", {}).values() if "factor" in r]
    sigma = (ref.get("sigma") or {}).get("sigma")
    return {
        "readings": len(ref.get("readings", {})),
        "factor_min": round(min(factors), 4) if factors else None,
        "factor_max": round(max(factors), 4) if factors else None,
        "sigma": None if sigma is None else round(sigma, 4),
        "store": ref.get("store"),
        **({"errors": ref["errors"]} if ref.get("errors") else {}),
    }
