"""`hwlat estimate`: the latency of one architecture on a table, a file's or a device's.

The architecture is an `arch.json` of `hwlat search` (its `deployment` configuration when
it was searched with `--table-resolution`) or a bare architecture JSON
(`{"space": ..., "resolution": ..., "choices": [...]}`). The table latency is the plain
sum of the architecture's cells, fixed ops included, by the table's own convention (a
ProxylessNAS `zero` costs 0); with `--device` the service adds its calibrated estimate
of the network end to end, where the device has one.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from hwlat.commands.common import DEFAULT_SERVER, Json, Server, Token, emit, fail
from hwlat.commands.connect import client
from searchers.latency import LatencyTable
from searchers.spaces import SearchSpace, create_space, space_class

_BASE = ("resolution", "width", "classes")


def estimate(
    arch_file: Annotated[
        Path, typer.Option("--arch", help="arch.json (hwlat search) or an architecture JSON.")
    ],
    lut: Annotated[Path | None, typer.Option("--lut", help="A table file (any format).")] = None,
    lut_format: Annotated[str | None, typer.Option("--lut-format")] = None,
    device: Annotated[str | None, typer.Option("--device", help="A device's table.")] = None,
    server: Server = DEFAULT_SERVER,
    token: Token = None,
    as_json: Json = False,
) -> None:
    """Estimate an architecture's latency on a table (a file's or a device's)."""
    if (lut is None) == (device is None):
        fail("give the table with either --lut FILE or --device NAME")
    arch, where = read_arch(arch_file)
    space = arch_space(arch)
    out: dict[str, Any] = {"arch": arch, "arch_from": where, **space.params()}
    if lut is not None:
        table = LatencyTable.from_file(lut, space, lut_format)
        table.check(allow_predicted=True)
        out.update(breakdown(table, arch))
    else:
        assert device is not None
        with client(server, token=token) as c:
            table = LatencyTable.from_service(c, device, space)
            table.check(allow_predicted=True)
            out.update(breakdown(table, arch))
            out["estimate"] = c.estimate(device, {**space.params(), "arch": arch}).model_dump()
    emit(out, as_json, None if as_json else summary(out))


def read_arch(path: Path) -> tuple[dict[str, Any], str]:
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        fail(f"--arch {path}: cannot read ({exc.strerror})")
    except json.JSONDecodeError as exc:
        fail(f"--arch {path}: not JSON ({exc.msg})")
    if not isinstance(data, dict):
        fail(f"--arch {path}: expected a JSON object (an arch.json of `hwlat search`)")
    if "deployment" in data:  # searched at the data's size, timed at the table's
        return data["deployment"]["arch"], "the search record's deployment configuration"
    if "arch" in data:
        return data["arch"], "the search record"
    return data, "the file"


def arch_space(arch: dict[str, Any]) -> SearchSpace:
    """The space an architecture JSON names, with its resolution, width, classes and the
    space's own parameters (DARTS' C and cells)."""
    if not isinstance(arch.get("space"), str):
        fail("--arch: the architecture does not name its space ('space' field)")
    takes = inspect.signature(space_class(arch["space"]).__init__).parameters
    kwargs = {k: v for k, v in arch.items() if k in takes and k != "self"}
    try:
        return create_space(arch["space"], **kwargs)
    except (TypeError, ValueError) as exc:
        fail(f"--arch: {exc}")


def breakdown(table: LatencyTable, arch: dict[str, Any]) -> dict[str, Any]:
    idx = table.index(arch)
    layers = [
        {
            "layer": layer.name,
            "choice": table.space.candidates[i],
            "ms": float(table.table[row, i]),
            "source": table.source[row][i],
        }
        for row, (layer, i) in enumerate(zip(table.space.layers(), idx, strict=True))
    ]
    return {
        "table": {k: v for k, v in table.meta.items() if k not in ("unmapped", "unfilled")},
        "table_ms": table.exact(idx),
        "fixed_ms": table.fixed_ms,
        "predicted_cells": sum(1 for row in layers if row["source"] == "predicted"),
        "layers": layers,
    }


def summary(out: dict[str, Any]) -> Table:
    t = Table(title=f"{out['space']}@{out['resolution']} (width {out['width']}, "
              f"{out['classes']} classes), from {out['arch_from']}")  # fmt: skip
    t.add_column("what")
    t.add_column("value", justify="right")
    origin = out["table"].get("from", "")
    fmt = out["table"].get("format")
    t.add_row(
        "table", f"{origin}" + (f" ({fmt}, its {out['table'].get('statistic')})" if fmt else "")
    )
    predicted = out["predicted_cells"]
    note = f" ({predicted} cells predicted)" if predicted else ""
    t.add_row("table latency", f"{out['table_ms']:.4f} ms{note}")
    t.add_row("  of which fixed ops", f"{out['fixed_ms']:.4f} ms")
    est = out.get("estimate")
    if est is not None:
        t.add_row(
            "service table sum", f"{est['table_sum_ms']:.4f} ± {est['table_error_ms']:.4f} ms"
        )
        if est["calibrated_ms"] is not None:
            err = est["calibrated_error_ms"]
            t.add_row(
                "calibrated estimate",
                f"{est['calibrated_ms']:.4f}" + (f" ± {err:.4f}" if err else "") + " ms",
            )
        else:
            why = est["calibration"].get("reason") or "the device has no usable calibration"
            t.add_row("calibrated estimate", f"none: {why}")
    return t
