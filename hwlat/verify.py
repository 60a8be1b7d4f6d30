"""Measure one searched architecture end to end: here (the table is a local LUT measured on
this machine) or on the device (a network work item its agents pick up)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hwlat.errors import fail
from hwlat.validate import measure_remote
from latency_service.client import HwlatClient
from searchers.spaces import SearchSpace


def measure_on_device(
    c: HwlatClient, device: str, space: SearchSpace, arch: dict[str, Any], timeout_s: float = 900
) -> dict[str, Any]:
    got = measure_remote(c, device, space, [arch], {}, timeout_s)
    (ms,) = got.values()
    return {"median_ms": ms, "where": f"agent of {device}"}


def measure_here(
    lut: Path, runtime: str | None, space: SearchSpace, arch: dict[str, Any]
) -> dict[str, Any]:
    """Measure with the LUT's runtime, after checking this machine is the one it was
    measured on (numbers from two machines are never compared)."""
    import torch

    from devices.fingerprint import fingerprint, fingerprint_id
    from devices.runtimes import create_runtime
    from profiler.timing import Engine, Measurement

    meta = _lut_meta(lut)
    name = runtime or meta.get("runtime", {}).get("runtime")
    if not name:
        fail(f"{lut}: does not say which runtime measured it; pass --runtime or --no-verify")
    with create_runtime(name) as rt:
        here = fingerprint_id(fingerprint(rt))
        if meta.get("fingerprint_id") not in (None, here):
            fail(
                f"{lut} was measured on another machine/runtime ({meta['fingerprint_id']}, "
                f"here {here}); measure the architecture there, or pass --no-verify"
            )
        x = torch.randn(space.fixed_ops()[0].shape, generator=torch.Generator().manual_seed(0))
        prep = rt.prepare_network(space.build_child(arch), x, "searched")
        result = Engine().measure([("searched", prep.runnable)])["searched"]
    if not isinstance(result, Measurement):
        fail(f"the searched network failed to run on {name}: {result}")
    s = result.stats
    return {
        "median_ms": s.median_ms,
        "ci_half_width_ms": s.ci_half_width_ms,
        "stable": s.stable,
        "where": f"here, {name}",
    }


def _lut_meta(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}  # a yaml table: it names no runtime
    return data if isinstance(data, dict) and data.get("format") == "hwlat-lut/1" else {}
