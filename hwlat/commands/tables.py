"""`hwlat query` and `hwlat lut`: one op's latency, or a space's whole table, from the
service: printed, or written to a file in JSON, CSV or a foreign format (ProxylessNAS or
OFA yaml, NNI lut.txt, Single-Path NAS JSON, HW-NAS-Bench FBNet JSON). `hwlat lut import`
and `hwlat lut compare` live in hwlat/commands/lut_io.py."""

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
from hwlat.commands.lut_io import compare, import_lut
from profiler.lutformats import list_formats

FORMATS = ("json", "csv", *list_formats())
lut_app = typer.Typer(
    help="A device's latency table (export), `import` of a foreign table, `compare`.",
    invoke_without_command=True,
    no_args_is_help=False,
)
lut_app.command("import")(import_lut)
lut_app.command("compare")(compare)


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


@lut_app.callback()
def lut(
    ctx: typer.Context,
    device: Annotated[str | None, typer.Option("--device")] = None,
    space: Annotated[str | None, typer.Option("--space")] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="File to write (atomically); without it the table is printed."),
    ] = None,
    resolution: Annotated[int | None, typer.Option("--resolution", "-r")] = None,
    width: Annotated[float, typer.Option("--width", "-w")] = 1.0,
    classes: Annotated[int | None, typer.Option("--classes")] = None,
    option: Annotated[list[str] | None, typer.Option("--option", "-o")] = None,
    fmt: Annotated[str, typer.Option("--format", help=" | ".join(FORMATS))] = "json",
    server: Server = DEFAULT_SERVER,
    token: Token = None,
    as_json: Json = False,
) -> None:
    """A device's latency table for a space: printed, or written to --out (`hwlat lut
    import FILE` and `hwlat lut compare` are its subcommands)."""
    if ctx.invoked_subcommand is not None:
        return
    if device is None or space is None:
        fail("hwlat lut needs --device D --space S (or a subcommand: import, compare)")
    if fmt not in FORMATS:
        fail(f"--format: expected one of {', '.join(FORMATS)}, got {fmt!r}")
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
