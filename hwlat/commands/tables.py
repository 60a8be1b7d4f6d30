"""`hwlat query` and `hwlat lut`: one op's latency, or a space's whole table, from the
service: printed, or written to a file in JSON, CSV or the ProxylessNAS yaml."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from hwlat.commands.common import (
    DEFAULT_SERVER,
    Json,
    Server,
    Token,
    emit,
    fail,
    parse_options,
    write_atomic,
)
from hwlat.commands.connect import client


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
    write_atomic(out, text)
    emit({"out": str(out), "format": fmt, "measured": cov.measured, "total": cov.total}, as_json)
    if not as_json:
        typer.echo(f"wrote {out}: {cov.measured}/{cov.total} ops measured ({fmt})")


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
