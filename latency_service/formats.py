"""LUT renderings other than JSON: CSV, and the ProxylessNAS / OFA latency YAML."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from typing import Any

from profiler.ops import OpSpec

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


def lut_proxyless_yaml(table: dict[str, Any], found: Mapping[str, dict[str, Any]]) -> str:
    """`<ProxylessNAS key>: {mean: ms, std: ms, count: samples}` per measured op, the
    format ProxylessNAS / once-for-all latency estimators read. Only measured ops."""
    keys = [c["key"] for c in table["fixed"]] + [
        cell["key"]
        for layer in table["layers"]
        for cell in layer["cells"].values()
        if cell is not None
    ]
    lines = [
        f"# hwlat LUT: device {table['device']} rev {table['revision']}, "
        f"{table['space']} @{table['resolution']} width {table['width']}; "
        "ms per call (median as mean)"
    ]
    seen: set[str] = set()
    for key in dict.fromkeys(keys):
        m = found.get(key)
        pkey = OpSpec.from_key(key).to_proxyless_key()
        if m is None or pkey in seen:  # two hwlat keys can share a ProxylessNAS key
            continue
        seen.add(pkey)
        lines += [
            f"{json.dumps(pkey)}:",
            f"  mean: {_yaml_float(m['median_ms'])}",
            f"  std: {_yaml_float(m['std_ms'])}",
            f"  count: {m['samples']}",
        ]
    return "\n".join(lines) + "\n"


def _yaml_float(x: float) -> str:
    """repr, with the mantissa dot YAML 1.1 needs to read 1e-05 as a number, not a string."""
    r = repr(float(x))
    mantissa, e, exp = r.partition("e")
    return f"{mantissa}.0e{exp}" if e and "." not in mantissa else r
