"""Whole networks measured end to end: on the device (network work items its agents pick
up) or here, when this machine is the device. `hwlat validate` measures samples of a
space this way to check the table's estimates; `hwlat search` and `hwlat demo` measure
the searched architecture."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from hwlat.commands.common import fail
from latency_service.client import HwlatClient
from searchers.spaces import SearchSpace


def sample_archs(space: SearchSpace, n: int, seed: int) -> list[dict[str, Any]]:
    archs: dict[str, dict[str, Any]] = {}
    for i in range(n * 20):
        arch = space.arch_to_json(space.random_arch(seed * 100_003 + i))
        archs.setdefault(json.dumps(arch, sort_keys=True), arch)
        if len(archs) == n:
            break
    return list(archs.values())


def spread_archs(space: SearchSpace, n: int, seed: int) -> list[dict[str, Any]]:
    """`n` architectures spread from the space's cheapest to its most expensive: the k-th
    picks, per layer, a candidate near rank quantile k/(n-1) of that layer's candidates
    by FLOPs (±1 rank at random). Uniform samples bunch around the middle of the latency
    range, which leaves a calibration's slope, and a ranking test, to noise. Spaces whose
    architectures are not one name per layer (DenseNAS' routes, DARTS' genotypes) are
    sampled uniformly instead."""
    import random

    from searchers.spaces._chain import ChainSpace

    if not isinstance(space, ChainSpace):
        return sample_archs(space, n, seed)

    from profiler.features import features

    rng, archs = random.Random(seed), dict[str, dict[str, Any]]()
    ranked = [
        sorted(layer.legal, key=lambda c: features(c.op).flops if c.op else 0)
        for layer in space.layers()
    ]
    for k in range(n * 20):
        q = (k % n) / max(n - 1, 1)
        names = []
        for cands in ranked:
            i = round(q * (len(cands) - 1)) + rng.choice((-1, 0, 1))
            names.append(cands[min(max(i, 0), len(cands) - 1)].name)
        arch = space.arch_to_json(names)
        archs.setdefault(json.dumps(arch, sort_keys=True), arch)
        if len(archs) == n:
            break
    return list(archs.values())


def measure_remote(
    c: HwlatClient,
    device: str,
    space: SearchSpace,
    archs: list[dict[str, Any]],
    options: dict[str, int],
    timeout_s: float,
) -> dict[str, float]:
    """Queue the networks for the device's agents and wait for their measurements."""
    nets = [
        {
            "space": space.name,
            "resolution": space.resolution,
            "width": space.width,
            "classes": space.classes,
            "options": options,
            "arch": a,
        }
        for a in archs
    ]
    c.enqueue_networks(device, nets)
    wanted = {json.dumps(a, sort_keys=True) for a in archs}
    deadline = time.monotonic() + timeout_s
    with Console(stderr=True).status(
        f"waiting for {device}'s agents to measure {len(archs)} networks..."
    ) as status:
        while True:
            got = {}
            for m in c.networks(device, space.name, space.resolution):
                arch = {k: v for k, v in m.arch.items() if k not in ("options", "arch_hash")}
                key = json.dumps(arch, sort_keys=True)
                if key in wanted:
                    got[key] = m.median_ms
            status.update(f"{len(got)}/{len(wanted)} networks measured on {device}")
            if len(got) == len(wanted):
                return got
            if time.monotonic() > deadline:
                fail(
                    f"only {len(got)}/{len(wanted)} networks were measured within "
                    f"{timeout_s:.0f} s; is an agent running for {device}? (hwlat agent)"
                )
            time.sleep(2.0)


def measure_local(
    c: HwlatClient,
    device: str,
    space: SearchSpace,
    archs: list[dict[str, Any]],
    threads: int | None,
) -> dict[str, float]:
    """Measure here, after checking that this machine and runtime are the device."""
    import torch

    from devices.fingerprint import fingerprint, fingerprint_id
    from devices.runtimes import create_runtime
    from profiler.timing import Engine, Measurement

    info = c.get_device(device)
    with create_runtime(info.runtime, threads=threads) as rt:
        here = fingerprint_id(fingerprint(rt))
        if info.fingerprint_id != here:
            fail(
                f"--local: this machine/runtime (fingerprint {here}) is not device {device} "
                f"({info.fingerprint_id}); run without --local so its agents measure"
            )
        x = torch.randn(space.fixed_ops()[0].shape, generator=torch.Generator().manual_seed(0))
        prepared = {
            json.dumps(a, sort_keys=True): rt.prepare_network(
                space.build_child(a), x, json.dumps(a, sort_keys=True)
            )
            for a in archs
        }
        results = Engine().measure([(k, p.runnable) for k, p in prepared.items()])
    bad = [k for k, r in results.items() if not isinstance(r, Measurement)]
    if bad:
        fail(f"{len(bad)} network(s) failed to run: {results[bad[0]]}")
    return {k: r.stats.median_ms for k, r in results.items() if isinstance(r, Measurement)}


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
