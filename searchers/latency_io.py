"""Reading latency-table files for `LatencyTable.from_file`: hwlat's own (the JSON of
`hwlat lut --out`, a `hwlat profile` file) and every foreign format of
`profiler.lutformats`, mapped onto a space's ops with what could not be mapped kept.

A foreign file never says everything: most do not name their space, none carries
hwlat's op keys. Its entries are mapped onto the space's slots by the format's recipes;
ops the file has no number for stay missing (and `LatencyTable.check` says why), and
what the file holds that no op uses is listed in `meta["unmapped"]`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from profiler.lut import FORMAT as LUT_FORMAT
from profiler.lutformats import ForeignTable, map_entries, parse_bytes, read_bytes
from searchers.spaces import SearchSpace, create_space

Cells = dict[str, tuple[float, str]]
_SHOWN = 10  # unmapped entries kept in meta (the count is always there)


def read_cells(
    path: Path, space: SearchSpace | None, fmt: str | None
) -> tuple[SearchSpace, Cells, dict[str, Any]]:
    raw = read_bytes(path)
    if fmt in (None, "json"):
        try:
            data = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            data = None
        if isinstance(data, dict) and ("format" in data or "layers" in data):
            return _hwlat_cells(data, space)
    foreign = parse_bytes(raw, path.name, None if fmt == "json" else fmt)
    return foreign_cells(foreign, space)


def _hwlat_cells(
    data: dict[str, Any], space: SearchSpace | None
) -> tuple[SearchSpace, Cells, dict[str, Any]]:
    from searchers.latency import _service_cells

    if "format" in data:
        if data["format"] != LUT_FORMAT:
            raise ValueError(
                f"format {data['format']!r} is not supported (this hwlat reads {LUT_FORMAT}); "
                "profile again with this version's `hwlat profile`"
            )
        return _lut_file_cells(data, space)
    space, cells = _service_cells(data, space)
    return space, cells, {"device": data.get("device"), "revision": data.get("revision")}


def table_space(foreign: ForeignTable, space: SearchSpace | None) -> SearchSpace:
    """The space a foreign file is read for: the one given (checked against what the file
    gives away: its input resolution and class count), else the format's own space."""
    fmt, hints = foreign.fmt, foreign.fmt.infer(foreign.entries)
    if space is None:
        if fmt.space is None:
            said = ", ".join(f"{k} {v}" for k, v in hints.items())
            raise ValueError(
                f"a {fmt.name} table does not name its space; pass the space (--space, "
                "--resolution, --width)" + (f" (the file says {said})" if said else "")
            )
        return create_space(fmt.space, **hints)
    for name, flag in (("resolution", "-r"), ("classes", "--classes")):
        got = space.params()[name]
        if name in hints and hints[name] != got:
            raise ValueError(
                f"the file is a table for {name} {hints[name]}, the space has {got}: in "
                f"`hwlat search`, pass --table-{name} {hints[name]} (the supernet still "
                f"trains at the data's size); elsewhere {flag} {hints[name]}"
            )
    return space


def foreign_cells(
    foreign: ForeignTable, space: SearchSpace | None
) -> tuple[SearchSpace, Cells, dict[str, Any]]:
    space = table_space(foreign, space)
    mapped = map_entries(foreign.fmt, foreign.entries, space.slots())
    cells = {key: (cell.ms, "measured") for key, cell in mapped.cells.items()}
    meta = {
        "format": foreign.fmt.name,
        "file": foreign.file_name,
        "sha256": foreign.sha256,
        "statistic": foreign.fmt.statistic,
        "entries": len(foreign.entries),
        "unfilled": [f"{where}: {why}" for where, why in mapped.unfilled],
        "unmapped_count": len(mapped.unmapped),
        "unmapped": [f"{key}: {why}" for key, why in mapped.unmapped[:_SHOWN]],
    }
    return space, cells, meta


def _lut_file_cells(
    data: dict[str, Any], space: SearchSpace | None
) -> tuple[SearchSpace, Cells, dict[str, Any]]:
    """Every op of a `hwlat profile` file is measured; failed ops stay missing. An op's
    value is its drift-corrected one where the file has it (raw in files from before the
    reference panel, or profiled with --no-reference, where the two are the same)."""
    ops = data["ops"]
    if space is None:
        params = data.get("space")
        if not isinstance(params, dict):
            raise ValueError(
                f"this {LUT_FORMAT} file does not say which space it was profiled for; "
                "pass the space (--space, --resolution, --width)"
            )
        dtypes = {key.rsplit("|", 1)[-1] for key in ops}  # the profiled precision
        extra = {"dtype": dtypes.pop()} if len(dtypes) == 1 else {}
        kwargs = {k: v for k, v in params.items() if k != "space"}
        space = create_space(params["space"], **kwargs, **extra)
    cells = {key: (op.get("corrected_ms", op["median_ms"]), "measured") for key, op in ops.items()}
    runtime = data.get("runtime") or {}
    meta = {
        "format": LUT_FORMAT,
        "device": data.get("fingerprint_id"),
        "runtime": runtime.get("runtime"),
        "errors": len(data.get("errors") or {}),
    }
    return space, cells, meta
