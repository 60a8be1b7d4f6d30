"""`hwlat spaces ...`: look at the bundled search spaces."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from hwlat.commands.common import fail
from profiler.features import features
from searchers.spaces import SearchSpace, create_space, list_spaces, space_class

spaces_app = typer.Typer(help="List and inspect search spaces.", no_args_is_help=True)


def _space_options(options: list[str]) -> dict[str, Any]:
    """`-o C=36 -o cells=20` -> {"C": 36, "cells": 20} (space-specific parameters)."""
    out: dict[str, Any] = {}
    for item in options:
        name, sep, value = item.partition("=")
        if not sep or not name:
            fail(f"--option: expected NAME=VALUE, got {item!r}")
        try:
            out[name] = int(value)
        except ValueError:
            fail(f"--option {name}: expected an integer, got {value!r}")
    return out


def make_space(
    name: str,
    resolution: int | None,
    width: float,
    classes: int | None,
    options: list[str] | None = None,
    dtype: str = "float32",
) -> SearchSpace:
    cls = space_class(name)
    extra = _space_options(options or [])
    try:
        return cls(resolution=resolution, width=width, classes=classes, dtype=dtype, **extra)
    except TypeError:
        fail(f"--option: {name} takes no such parameter (options: {options})")


def flops_range(space: SearchSpace) -> tuple[float, float]:
    """MFLOPs of the cheapest and the dearest architecture (fixed ops + per-layer extremes).

    For DARTS, where a genotype picks 8 of 14 edges per cell, this bounds every edge."""
    fixed = sum(features(op).flops for op in space.fixed_ops())
    lo = hi = float(fixed)
    for layer in space.layers():
        flops = [features(c.op).flops for c in layer.legal if c.op is not None]
        lo, hi = lo + min(flops), hi + max(flops)
    return lo / 1e6, hi / 1e6


def print_overview(console: Console) -> None:
    table = Table(title="Search spaces (default resolution, width 1.0)")
    table.add_column("space", no_wrap=True)
    for col in ("res", "layers", "cands", "distinct ops", "MFLOPs", "size"):
        table.add_column(col, justify="right")
    for name in list_spaces():
        space = create_space(name)
        lo, hi = flops_range(space)
        table.add_row(
            name,
            str(space.resolution),
            str(len(space.layers())),
            str(len(space.candidates)),
            str(len(space.distinct_ops())),
            f"{lo:.0f}-{hi:.0f}",
            f"{space.size():.2e}",
        )
    console.print(table)


@spaces_app.command("list")
def list_cmd(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List the registered search spaces."""
    if as_json:
        typer.echo(
            json.dumps(
                [{"name": n, "description": space_class(n).description} for n in list_spaces()],
                indent=2,
            )
        )
        return
    print_overview(Console())


@spaces_app.command("show")
def show_cmd(
    name: str = typer.Argument(..., help=f"Space name: {', '.join(list_spaces())}."),
    resolution: int | None = typer.Option(
        None, "--resolution", "-r", help="Input resolution (space default if unset)."
    ),
    width: float = typer.Option(1.0, "--width", "-w", help="Width multiplier."),
    classes: int | None = typer.Option(None, "--classes", help="Number of classes."),
    option: list[str] = typer.Option(
        [], "--option", "-o", help="Space parameter NAME=VALUE (darts: C, cells)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the full summary as JSON."),
) -> None:
    """Layers, candidates, distinct-op count and size of one space."""
    space = make_space(name, resolution, width, classes, option)
    summary = space.summary()
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    _print_space(Console(), space, summary)


def _print_space(console: Console, space: SearchSpace, summary: dict[str, Any]) -> None:
    params = ", ".join(f"{k}={v}" for k, v in space.params().items() if k != "space")
    console.print(f"[bold]{space.name}[/bold] ({params}) — {space.description}")
    fixed = summary["fixed_ops"]
    console.print(f"fixed ops ({len(fixed)}):")
    for key in fixed[:3] if len(fixed) > 4 else fixed:
        console.print(f"  {key}")
    if len(fixed) > 4:
        console.print(f"  ... and {len(fixed) - 4} more, then {fixed[-1]}")
    table = Table()
    for col in ("layer", "input HxWxC", "output HxWxC", "stride", "candidates"):
        table.add_column(col)
    n_cand = len(space.candidates)
    for layer in space.layers():
        op = layer.legal[0].op
        assert op is not None  # every layer has at least one legal candidate
        masked = [c.name for c in layer.choices if c.op is None]
        note = (
            f"all {n_cand}"
            if not masked
            else f"{n_cand - len(masked)} ({', '.join(masked)} masked)"
        )
        stride = op.p.get("s", 1)
        table.add_row(layer.name, _hwc(op.shape), _hwc(op.out_shape), str(stride), note)
    console.print(table)
    console.print(f"candidates: {', '.join(space.candidates)}")
    console.print(
        f"searchable layers: {summary['searchable_layers']}   "
        f"distinct ops: {summary['distinct_ops']}   "
        f"size: {summary['size']} = {summary['size_formula']} "
        f"(~10^{summary['size_log10']})"
    )


def _hwc(shape: tuple[int, ...]) -> str:
    return f"{shape[2]}x{shape[3]}x{shape[1]}" if len(shape) == 4 else str(shape[-1])
