"""The measured-latency oracle of `hwlat search NAME --set latency=measured`: sampled
architectures (table columns per layer) measured end to end, a batch at a time.

With `--device`, the batch is queued as network work items for the device's agents and
the search waits for their answers (`end_to_end.measure_remote`: progress on stderr,
and after `timeout_s` one line asking for `hwlat agent`). With `--lut`, the networks
are measured here with the LUT's runtime, after the same fingerprint check as the
final verification (`end_to_end.measure_here`). The searcher caches the answers per
architecture; this side keeps nothing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console

from hwlat.commands.common import fail
from hwlat.commands.search_target import imported
from hwlat.end_to_end import _lut_meta, measure_here, measure_remote
from searchers.algorithms.proxyless_rl import Measure
from searchers.core.config import SearchConfig
from searchers.latency import LatencyTable, space_options
from searchers.spaces import SearchSpace


def measured_latency(
    client: Any,
    device: str | None,
    space: SearchSpace,
    table: LatencyTable,
    lut: Path | None = None,
    runtime: str | None = None,
    timeout_s: float = 900.0,
) -> Measure:
    """`measure(batch)`: end-to-end ms of each architecture of the batch (table columns
    per layer) on `space`, the configuration the table's latencies are for."""

    def to_arch(columns: list[int]) -> dict[str, Any]:
        return space.arch_to_json(table.names(columns))

    if device is not None:
        options = space_options(space)

        def remote(batch: list[list[int]]) -> list[float]:
            archs = [to_arch(c) for c in batch]
            got = measure_remote(client, device, space, archs, options, timeout_s)
            return [got[json.dumps(a, sort_keys=True)] for a in archs]

        return remote
    if lut is None:
        fail("latency=measured: give the device (--device NAME) or a LUT measured here (--lut)")
    if not (runtime or _lut_meta(lut).get("runtime", {}).get("runtime")):
        fail(f"latency=measured: {lut} does not say which runtime measured it; pass --runtime")
    console = Console(stderr=True)

    def here(batch: list[list[int]]) -> list[float]:
        out = []
        with console.status(f"measuring {len(batch)} networks here...") as status:
            for i, columns in enumerate(batch):
                status.update(f"measuring network {i + 1}/{len(batch)} here")
                out.append(float(measure_here(lut, runtime, space, to_arch(columns))["median_ms"]))
        return out

    return here


def measure_option(
    searcher: type,
    config: SearchConfig,
    client: Any,
    device: str | None,
    space: SearchSpace,
    table: LatencyTable,
    lut: Path | None,
    runtime: str | None,
) -> dict[str, Measure]:
    """`{"measure": oracle}` for `create_searcher` when the searcher takes one and its
    config asks for measured latency; `{}` otherwise."""
    if getattr(config, "latency", None) != "measured":
        return {}
    if not getattr(searcher, "takes_measure", False):
        fail(f"latency=measured: {getattr(searcher, 'name', searcher)} cannot use measurements")
    elsewhere = imported(table)
    if elsewhere is not None:
        fail(
            f"latency=measured: the table came from {elsewhere} measured elsewhere, so "
            "nothing here can measure its device; search against --device, or drop "
            "--set latency=measured"
        )
    return {"measure": measured_latency(client, device, space, table, lut, runtime)}
