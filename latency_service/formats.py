"""LUT renderings other than JSON: CSV, and every foreign format of profiler.lutformats
(ProxylessNAS / OFA yaml, NNI lut.txt, ...), measured cells only."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from typing import Any

from profiler.lutformats import Cell, Entry, LutFormat, Slot, entries_for

CSV_FIELDS = ("layer", "group", "candidate", "key", "ms", "source", "ci_half_width_ms", "stable")


def lut_csv(table: dict[str, Any]) -> str:
    """One row per cell (fixed ops first, with layer 'fixed'); illegal cells are left out."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for i, cell in enumerate(table["fixed"]):
        w.writerow({**cell, "layer": "fixed", "group": "", "candidate": f"fixed{i}"})
    for layer in table["layers"]:
        for cand, cell in layer["cells"].items():
            if cell is not None:
                w.writerow(
                    {**cell, "layer": layer["name"], "group": layer["group"], "candidate": cand}
                )
    return buf.getvalue()


def measured_cells(
    fmt: LutFormat,
    found: Mapping[str, dict[str, Any]],
    imports: Mapping[str, dict[str, Any]] | None = None,
) -> dict[str, Cell]:
    """Measured latencies (`repository.latency` dicts) as cells: the median with its std
    and sample count; an imported op with its file's count and, when the file was in
    `fmt`, the very entries it was made of (so an import exports back unchanged).
    Predicted values are left out: a foreign format cannot mark them."""
    cells: dict[str, Cell] = {}
    for key, m in found.items():
        if m.get("source", "measured") != "measured":
            continue
        info = (imports or {}).get(key)
        if info is None:
            cells[key] = Cell(m["median_ms"], m.get("std_ms"), m.get("samples"))
            continue
        parts = (info.get("parts") or {}) if info.get("format") == fmt.name else {}
        cells[key] = Cell(
            m["median_ms"],
            m.get("std_ms"),
            info.get("count"),
            {k: Entry.from_dict(v) for k, v in parts.items()},
        )
    return cells


def lut_foreign(
    fmt: LutFormat,
    table: dict[str, Any],
    slots: Sequence[Slot],
    found: Mapping[str, dict[str, Any]],
    imports: Mapping[str, dict[str, Any]] | None = None,
    files: Sequence[dict[str, Any]] = (),
) -> str:
    """The measured cells of a LUT (`repository.latency.lut`) in a foreign format; for a
    device imported from a file in this format for this configuration, the file's
    entries that map to no op too (written back as they were: the whole file returns)."""
    entries, notes = entries_for(fmt, slots, measured_cells(fmt, found, imports))
    cov = table["coverage"]
    config = [table["space"], table["resolution"], table["width"], table["classes"],
              ",".join(f"{k}={v}" for k, v in sorted(cov["options"].items()))]  # fmt: skip
    for f in files:
        if f["format"] == fmt.name and f["config"] == config and f["unused"]:
            entries.update({k: Entry.from_dict(v) for k, v in f["unused"].items()})
            notes.append(
                f"{len(f['unused'])} entries of {f['file']} map to no op: as the file had them"
            )
    options = "".join(f" {k}={v}" for k, v in table["coverage"]["options"].items())
    comment = [
        f"hwlat LUT: device {table['device']} rev {table['revision']}, "
        f"{table['space']} @{table['resolution']} width {table['width']} "
        f"classes {table['classes']}{options}",
        f"ms per call: hwlat's median (an imported file's own value) as {fmt.name}'s "
        f"{fmt.statistic}; measured ops only, predicted ones are never exported",
        *notes,
    ]
    return fmt.render(entries, "\n".join(comment))
