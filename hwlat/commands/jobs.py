"""`hwlat jobs add|sample|remeasure|retest|cancel`: what a device's agents measure next."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from hwlat.commands.common import DEFAULT_SERVER, Admin, Json, Server, emit, fail, parse_options
from hwlat.commands.connect import client

jobs_app = typer.Typer(help="Queue profiling work for devices.", no_args_is_help=True)


@jobs_app.command("add")
def jobs_add(
    device: Annotated[str, typer.Option("--device")],
    space: Annotated[str | None, typer.Option("--space")] = None,
    resolution: Annotated[int | None, typer.Option("--resolution", "-r")] = None,
    width: Annotated[float, typer.Option("--width", "-w")] = 1.0,
    classes: Annotated[int | None, typer.Option("--classes")] = None,
    option: Annotated[list[str] | None, typer.Option("--option", "-o")] = None,
    op: Annotated[list[str] | None, typer.Option("--op", help="Op key (repeatable).")] = None,
    server: Server = DEFAULT_SERVER,
    admin_token: Admin = None,
    as_json: Json = False,
) -> None:
    """Queue a space's ops (or --op KEY ...) that are neither measured nor queued."""
    if (space is None) == (not op):
        fail("give either --space NAME --resolution R or one or more --op KEY")
    with client(server, admin_token) as c:
        if op:
            result = c.enqueue_ops(device, op)
        else:
            assert space is not None
            result = c.enqueue_space(
                device, space, resolution, width, classes, parse_options(option or [])
            )
    _job_table(result.model_dump(), as_json)


@jobs_app.command("sample")
def jobs_sample(
    device: Annotated[str, typer.Option("--device")],
    kind: Annotated[str, typer.Option("--kind", help="mbconv, shuffle, sep_conv, ...")],
    n: Annotated[int, typer.Option("--n", min=1, max=100_000)] = 2000,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    dtype: Annotated[
        str | None, typer.Option("--dtype", help="Default float32 (--refine: the predictor's).")
    ] = None,
    kernels: Annotated[
        bool,
        typer.Option(
            "--kernels", help="The convolutions of random blocks of the kind, measured alone."
        ),
    ] = False,
    refine: Annotated[
        bool,
        typer.Option(
            "--refine",
            help="sample near the ops the current predictor gets most wrong (train first)",
        ),
    ] = False,
    worst_fraction: Annotated[
        float,
        typer.Option(
            "--worst-fraction", min=0.0, max=1.0, help="With --refine: share of training ops."
        ),
    ] = 0.1,
    server: Server = DEFAULT_SERVER,
    admin_token: Admin = None,
    as_json: Json = False,
) -> None:
    """Queue N random configurations of a kind: training data for its predictor.

    With --kernels: the convolutions of N random blocks (kernel-level training data).
    With --refine: near the ops its current predictor gets most wrong."""
    if refine:
        if dtype is not None:
            fail("--dtype: --refine samples in the dtype of the kind's predictor")
        if kernels:
            fail("--kernels: --refine samples blocks near its predictor's worst, not kernels")
        with client(server, admin_token) as c:
            refined = c.refine(device, kind, n, seed, worst_fraction)
        _job_table(refined.model_dump(), as_json)
        return
    from profiler.sampling import sample_ops

    keys = [op.key for op in sample_ops(kind, n, seed, dtype or "float32", kernels=kernels)]
    with client(server, admin_token) as c:
        result = c.enqueue_ops(device, keys)
    _job_table(result.model_dump(), as_json)


def _job_table(counts: dict[str, Any], as_json: bool) -> None:
    """What `jobs add` and `jobs sample` print; with the refine figures when present."""
    table = Table("total", "new", "already measured", "already queued")
    row = [str(counts[k]) for k in ("total", "new", "already_measured", "already_queued")]
    if "worst" in counts:
        table.add_column("worst ops")
        table.add_column("their mean |error|")
        row += [str(counts["worst"]), f"{counts['worst_mean_abs_error']:.1%}"]
    table.add_row(*row)
    emit(counts, as_json, table)


@jobs_app.command("remeasure")
def jobs_remeasure(
    device: Annotated[str, typer.Option("--device")],
    kind: Annotated[str | None, typer.Option("--kind", help="Default: every kind.")] = None,
    server: Server = DEFAULT_SERVER,
    admin_token: Admin = None,
    as_json: Json = False,
) -> None:
    """Queue again the ops measured while the machine was disturbed.

    Disturbed: their batch's reference panel beyond HWLAT_REMEASURE_DRIFT, or a CI
    beyond HWLAT_REMEASURE_CI."""
    with client(server, admin_token) as c:
        out = c.remeasure(device, kind).model_dump()
    names = ("checked", "disturbed", "unstable", "queued", "at_limit", "already_queued")
    emit(out, as_json, _counts_table(out, names))


@jobs_app.command("retest")
def jobs_retest(
    device: Annotated[str, typer.Option("--device")],
    kind: Annotated[str, typer.Option("--kind", help="mbconv, shuffle, sep_conv, ...")],
    n: Annotated[int, typer.Option("--n", min=1, max=10_000)] = 100,
    seed: Annotated[int, typer.Option("--seed", min=0)] = 0,
    server: Server = DEFAULT_SERVER,
    admin_token: Admin = None,
    as_json: Json = False,
) -> None:
    """Queue N random measured ops of a kind once more, ahead of the rest of the queue.

    How well the device's labels repeat (`hwlat devices repeatability`) is the ceiling on
    a predictor's accuracy."""
    with client(server, admin_token) as c:
        out = c.retest(device, kind, n, seed).model_dump()
    names = ("measured", "already_retested", "already_queued", "queued")
    emit(out, as_json, _counts_table(out, names))


@jobs_app.command("cancel")
def jobs_cancel(
    device: Annotated[str, typer.Option("--device")],
    kind: Annotated[
        str | None, typer.Option("--kind", help="Only this op kind, or 'network'.")
    ] = None,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Only items queued as queue|remeasure|retest.")
    ] = None,
    newest: Annotated[
        int | None, typer.Option("--newest", min=1, help="At most N, the last queued first.")
    ] = None,
    server: Server = DEFAULT_SERVER,
    admin_token: Admin = None,
    as_json: Json = False,
) -> None:
    """Take pending work out of a device's queue: all of it, or what the filters match.

    `--newest 600` drops the last 600 queued. Items an agent holds finish."""
    with client(server, admin_token) as c:
        out = c.cancel(device, kind, reason, newest).model_dump()
    names = ("cancelled", "pending_left", "leased")
    emit(out, as_json, _counts_table(out, names))


def _counts_table(out: dict[str, Any], names: tuple[str, ...]) -> Table:
    """One row of a jobs command's counts, headed by their names."""
    table = Table(*(n.replace("_", " ") for n in names))
    table.add_row(*(str(out[n]) for n in names))
    return table
