"""`hwlat train`, `hwlat query`, `hwlat lut`, `hwlat jobs remeasure|retest|cancel` and `hwlat
devices repeatability`: what a device's data answers, how far it can be trusted, and what
of it to measure again, printed as tables or JSON (the service commands that register
and queue are in `cli.py`)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from hwlat.errors import fail
from latency_service.cli import (
    DEFAULT_SERVER,
    Admin,
    Json,
    Server,
    Token,
    client,
    emit,
    parse_options,
)


def jobs_remeasure(
    device: Annotated[str, typer.Option("--device")],
    kind: Annotated[str | None, typer.Option("--kind", help="Default: every kind.")] = None,
    server: Server = DEFAULT_SERVER,
    admin_token: Admin = None,
    as_json: Json = False,
) -> None:
    """Queue again the ops measured while the machine was disturbed (their batch's
    reference panel beyond HWLAT_REMEASURE_DRIFT, or a CI beyond HWLAT_REMEASURE_CI)."""
    with client(server, admin_token) as c:
        out = c.remeasure(device, kind).model_dump()
    names = ("checked", "disturbed", "unstable", "queued", "at_limit", "already_queued")
    emit(out, as_json, _counts_table(out, names))


def jobs_retest(
    device: Annotated[str, typer.Option("--device")],
    kind: Annotated[str, typer.Option("--kind", help="mbconv, shuffle, sep_conv, ...")],
    n: Annotated[int, typer.Option("--n", min=1, max=10_000)] = 100,
    seed: Annotated[int, typer.Option("--seed", min=0)] = 0,
    server: Server = DEFAULT_SERVER,
    admin_token: Admin = None,
    as_json: Json = False,
) -> None:
    """Queue N random measured ops of a kind once more, ahead of the rest of the queue:
    how well the device's labels repeat (`hwlat devices repeatability`), the ceiling on
    a predictor's accuracy."""
    with client(server, admin_token) as c:
        out = c.retest(device, kind, n, seed).model_dump()
    names = ("measured", "already_retested", "already_queued", "queued")
    emit(out, as_json, _counts_table(out, names))


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
    """Take pending work out of a device's queue: all of it, or what the filters match
    (`--newest 600` drops the last 600 queued). Items an agent holds finish."""
    with client(server, admin_token) as c:
        out = c.cancel(device, kind, reason, newest).model_dump()
    names = ("cancelled", "pending_left", "leased")
    emit(out, as_json, _counts_table(out, names))


def _counts_table(out: dict[str, Any], names: tuple[str, ...]) -> Table:
    """One row of a jobs command's counts, headed by their names."""
    table = Table(*(n.replace("_", " ") for n in names))
    table.add_row(*(str(out[n]) for n in names))
    return table


def devices_repeatability(
    name: str,
    kind: Annotated[list[str] | None, typer.Option("--kind", help="Default: all.")] = None,
    server: Server = DEFAULT_SERVER,
    token: Token = None,
    as_json: Json = False,
) -> None:
    """How well the device's measurements repeat: retests against the labels they
    measured again (queue them with `hwlat jobs retest`)."""
    with client(server, token=token) as c:
        out = c.repeatability(name, kind)
    table = _repeat_table(out.kinds, f"{out.device} rev {out.revision}: retest / label")
    emit(out.model_dump(mode="json"), as_json, table)
    if not as_json and not out.kinds:
        typer.echo(
            f"no retests for {name} yet: queue some with `hwlat jobs retest --device "
            f"{name} --kind KIND`, then run an agent"
        )


def _repeat_table(kinds: dict[str, Any], title: str) -> Table:
    names = ("kind", "pairs", "RMS", "±5%", "±10%", "median ratio", "CI coverage")
    table = Table(*names, title=title)
    for k, r in kinds.items():
        cover = "-" if r.ci_coverage is None else f"{r.ci_coverage:.0%}"
        shares = (f"{r.rmspe:.1%}", f"{r.within_5pct:.1%}", f"{r.within_10pct:.1%}")
        table.add_row(k, str(r.pairs), *shares, f"{r.median_ratio:.3f}", cover)
    return table


def train(
    device: Annotated[str, typer.Option("--device")],
    kind: Annotated[list[str] | None, typer.Option("--kind", help="Default: every kind.")] = None,
    model: Annotated[
        list[str] | None,
        typer.Option("--model", help="Candidate to cross-validate (repeatable; default: all)."),
    ] = None,
    server: Server = DEFAULT_SERVER,
    admin_token: Admin = None,
    as_json: Json = False,
) -> None:
    """Train latency predictors for a device's unmeasured ops; print their accuracy."""
    with (
        client(server, admin_token) as c,
        Console(stderr=True).status(
            f"training predictors for {device} (k-fold cross-validation)..."
        ),
    ):
        out = c.train(device, kind, models=model)
    if as_json:
        emit(out.model_dump(mode="json"), True)
        return
    table = Table(
        "kind",
        "version",
        "model",
        "samples",
        "RMSPE",
        "±5%",
        "±10%",
        title=f"predictors of {device} (held-out folds)",
    )
    for p in out.trained:
        m = p.metrics[p.model]
        table.add_row(
            p.kind,
            str(p.version),
            p.model,
            str(p.samples),
            f"{m['rmspe']:.1%}",
            f"{m['within_5pct']:.1%}",
            f"{m['within_10pct']:.1%}",
        )
    Console().print(table)
    for k, q in out.quiet_labels.items():
        typer.echo(
            f"{k} on its quiet labels ({q.labels} of {q.of}, every CI within "
            f"±{q.ci_limit:.0%}): {q.within_10pct:.1%} within ±10%, {q.within_5pct:.1%} "
            f"within ±5%, RMSPE {q.rmspe:.1%}"
        )
    if out.repeatability:
        title = "how well the labels repeat (retests): the ceiling on the shares above"
        Console().print(_repeat_table(out.repeatability, title))
    for k, why in out.skipped.items():
        typer.echo(f"skipped {k}: {why}")


def query(
    device: Annotated[str, typer.Option("--device")],
    op: Annotated[str, typer.Option("--op", help="Canonical op key.")],
    server: Server = DEFAULT_SERVER,
    token: Token = None,
    as_json: Json = False,
) -> None:
    """The latency of one op on a device."""
    with client(server, token=token) as c:
        out = c.latency(device, op)
    table = Table(title=op, show_header=False)
    for k, v in out.model_dump(mode="json").items():
        table.add_row(k, str(v))
    emit(out.model_dump(mode="json"), as_json, table)


def lut(
    device: Annotated[str, typer.Option("--device")],
    space: Annotated[str, typer.Option("--space")],
    out: Annotated[
        Path | None,
        typer.Option("--out", help="File to write (atomically); without it the table is printed."),
    ] = None,
    resolution: Annotated[int | None, typer.Option("--resolution", "-r")] = None,
    width: Annotated[float, typer.Option("--width", "-w")] = 1.0,
    classes: Annotated[int | None, typer.Option("--classes")] = None,
    option: Annotated[list[str] | None, typer.Option("--option", "-o")] = None,
    fmt: Annotated[str, typer.Option("--format", help="json, csv or proxyless-yaml")] = "json",
    server: Server = DEFAULT_SERVER,
    token: Token = None,
    as_json: Json = False,
) -> None:
    """A device's latency table for a space: printed, or written to --out."""
    if fmt not in ("json", "csv", "proxyless-yaml"):
        fail(f"--format: expected json, csv or proxyless-yaml, got {fmt!r}")
    opts = parse_options(option or [])
    with client(server, token=token) as c:
        table = c.lut(device, space, resolution, width, classes, opts)
        text = (
            json.dumps(table.model_dump(mode="json"), indent=1)
            if fmt == "json"
            else c.lut_text(device, space, fmt, resolution, width, classes, opts)
        )
    cov = table.coverage
    if out is None:
        if as_json or fmt != "json":
            typer.echo(text)
        else:
            print_lut(table)
        return
    _write_atomic(out, text)
    emit({"out": str(out), "format": fmt, "measured": cov.measured, "total": cov.total}, as_json)
    if not as_json:
        typer.echo(f"wrote {out}: {cov.measured}/{cov.total} ops measured ({fmt})")


def _write_atomic(out: Path, text: str) -> None:
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


def print_lut(table: Any) -> None:
    """Layers x candidates in µs (median); '—' illegal here, '?' not measured yet."""
    grid = Table(
        title=f"{table.device} rev {table.revision}: {table.space}@{table.resolution} (µs per call)"
    )
    grid.add_column("layer")
    for cand in table.candidates:
        grid.add_column(cand, justify="right")
    for layer in table.layers:
        cells = [
            ("—" if c is None else "?" if c.ms is None else f"{c.ms * 1e3:.1f}")
            for c in (layer.cells.get(cand) for cand in table.candidates)
        ]
        grid.add_row(layer.name, *cells)
    console = Console()
    console.print(grid)
    fixed = [c.ms for c in table.fixed]
    fixed_txt = f"{sum(fixed) * 1e3:.1f} µs" if None not in fixed else "not all measured"
    cov = table.coverage
    console.print(f"fixed ops: {fixed_txt}; coverage {cov.measured}/{cov.total}")
