"""`hwlat lut import` and `hwlat lut compare`: foreign tables into the service, and two
devices' tables side by side.

An import is checked here first (the file parses; its space is known), so a bad file
fails in one line before anything is sent; the service parses it again, maps it onto the
space and stores it as an imported device in one transaction.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from hwlat.commands.common import DEFAULT_SERVER, Admin, Json, Server, Token, emit, fail
from hwlat.commands.connect import client
from hwlat.commands.spaces import make_space
from hwlat.lut_compare import compare_tables, plot_comparison
from profiler.lutformats import list_formats, read_table
from searchers.latency import space_options

_SHOWN = 10  # unfilled ops and unmapped entries listed before "and N more"


def import_lut(
    file: Annotated[Path, typer.Argument(help="The table file (yaml, lut.txt, JSON).")],
    device: Annotated[str, typer.Option("--device", help="The imported device's name.")],
    fmt: Annotated[
        str | None,
        typer.Option("--format", help=" | ".join(list_formats()) + " (default: told by content)"),
    ] = None,
    space: Annotated[str | None, typer.Option("--space", help="Default: the format's own.")] = None,
    resolution: Annotated[
        int | None, typer.Option("--resolution", "-r", help="Default: read from the file.")
    ] = None,
    width: Annotated[float, typer.Option("--width", "-w")] = 1.0,
    classes: Annotated[
        int | None, typer.Option("--classes", help="Default: read from the file.")
    ] = None,
    option: Annotated[list[str] | None, typer.Option("--option", "-o")] = None,
    server: Server = DEFAULT_SERVER,
    admin_token: Admin = None,
    as_json: Json = False,
) -> None:
    """Import a latency table measured elsewhere as a device of its own (not leasable)."""
    foreign = read_table(file, fmt)
    hints = foreign.fmt.infer(foreign.entries)
    name = space or foreign.fmt.space
    if name is None:
        fail(f"--space: a {foreign.fmt.name} table does not name its space; pass --space S -r R")
    target = make_space(name, resolution or hints.get("resolution"), width,
                        classes or hints.get("classes"), option)  # fmt: skip
    with client(server, admin_token) as c:
        out = c.import_lut(
            device, file.read_bytes(), file.name, foreign.fmt.name, target.name,
            target.resolution, target.width, target.classes, space_options(target),
        )  # fmt: skip
    data = out.model_dump(mode="json")
    emit(data, as_json)
    if not as_json:
        print_import(data, file, target.params())


def print_import(data: dict[str, Any], file: Path, params: dict[str, Any]) -> None:
    console = Console()
    at = (f"{params['space']}@{params['resolution']} width {params['width']}, "
          f"{params['classes']} classes")  # fmt: skip
    if data["noop"]:
        console.print(f"{file.name} ({data['sha256'][:12]}) is already device {data['device']}'s "
                      f"table for {at}: nothing changed")  # fmt: skip
        return
    made = "created" if data["created_device"] else f"revision {data['revision']} of"
    console.print(f"{made} device {data['device']} from {file.name} ({data['format']}, sha256 "
                  f"{data['sha256'][:12]}): {data['mapped']} ops of {at} filled")  # fmt: skip
    for title, rows in (("ops the file has no number for", data["unfilled"]),
                        ("entries that map to no op", data["unmapped"])):  # fmt: skip
        if rows:
            console.print(f"{len(rows)} {title}:")
            for where, why in rows[:_SHOWN]:
                console.print(f"  {where}: {why}", highlight=False)
            if len(rows) > _SHOWN:
                console.print(f"  and {len(rows) - _SHOWN} more (--json lists all)")


def compare(
    devices: Annotated[list[str], typer.Option("--device", help="Twice: --device A --device B.")],
    space: Annotated[str, typer.Option("--space")],
    resolution: Annotated[int | None, typer.Option("--resolution", "-r")] = None,
    width: Annotated[float, typer.Option("--width", "-w")] = 1.0,
    classes: Annotated[int | None, typer.Option("--classes")] = None,
    option: Annotated[list[str] | None, typer.Option("--option", "-o")] = None,
    png: Annotated[Path | None, typer.Option("--png", help="Plot the cells here.")] = None,
    archs: Annotated[
        int, typer.Option("--archs", min=0, help="Random architectures ranked.")
    ] = 1000,
    server: Server = DEFAULT_SERVER,
    token: Token = None,
    as_json: Json = False,
) -> None:
    """How two devices' tables differ cell by cell: ratio B/A and rank correlation."""
    if len(devices) != 2:
        fail(f"--device: give exactly two (--device A --device B), got {len(devices)}")
    target = make_space(space, resolution, width, classes, option)
    opts = space_options(target) or None
    with client(server, token=token) as c:
        tables = [
            c.lut(d, space, target.resolution, target.width, target.classes, opts).model_dump(
                mode="json"
            )
            for d in devices
        ]
    result = compare_tables(target, tables[0], tables[1], archs)
    if png is not None:
        plot_comparison(result, png)
        result["png"] = str(png)
    emit(result, as_json)
    if not as_json:
        print_comparison(result)


def print_comparison(r: dict[str, Any]) -> None:
    a, b = r["devices"]
    t = Table(title=f"{b} vs {a}: {r['space']}@{r['resolution']} ({r['cells']} cells in both)")
    t.add_column("what")
    t.add_column("value", justify="right")
    q = r["ratio"]
    t.add_row(f"ratio {b}/{a}, median", f"{q['median']:.3f}")
    t.add_row("  10% .. 90%", f"{q['p10']:.3f} .. {q['p90']:.3f}")
    t.add_row("  min .. max", f"{q['min']:.3f} .. {q['max']:.3f}")
    t.add_row("rank correlation of cells (Spearman ρ)", f"{r['spearman']:.3f}")
    t.add_row("rank correlation of cells (Kendall τ)", f"{r['kendall']:.3f}")
    arch = r.get("archs")
    if arch:
        t.add_row(f"{arch['n']} random architectures: Spearman ρ", f"{arch['spearman']:.3f}")
        t.add_row("  same fastest of any two (pairs)", f"{arch['pair_agreement']:.1%}")
    for name, n in r["left_out"].items():
        if n:
            t.add_row(f"cells left out: {name}", str(n))
    console = Console()
    console.print(t)
    if r["outliers"]:
        o = Table(title="cells furthest from the median ratio")
        for col in ("cell", f"{a} ms", f"{b} ms", "ratio / median"):
            o.add_column(col)
        for row in r["outliers"]:
            o.add_row(
                row["where"], f"{row['a_ms']:.4g}", f"{row['b_ms']:.4g}", f"{row['vs_median']:.2f}"
            )
        console.print(o)
    if r.get("png"):
        console.print(f"plot written to {r['png']}")
