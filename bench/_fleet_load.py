"""bench/fleet.py's load: simulated agents and readers (real HTTP), and the report of
what they saw. Each process appends `endpoint status seconds` lines to its own log."""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import time
from pathlib import Path
from typing import Any

import httpx

from searchers.spaces import create_space

RESOLUTIONS = (224, 192, 160, 128)  # the seeded fbnet tables (see _fleet_seed.seed_specs)


def fake_stats(median: float) -> dict[str, Any]:
    return {
        "median_ms": median,
        "mean_ms": median,
        "std_ms": median * 0.01,
        "min_ms": median * 0.97,
        "p10_ms": median * 0.98,
        "p90_ms": median * 1.02,
        "iqr_ms": median * 0.02,
        "samples": 30,
        "calls_per_sample": 5,
        "ci_half_width_ms": median * 0.005,  # well inside HWLAT_REMEASURE_CI: no re-queue
        "target_met": True,
        "stable": True,
    }


def agent_main(url: str, token: str, serial: int, tmp: Path, stop: Any) -> None:
    """Lease 8, 'measure' each in 20-60 ms, upload; record accepted item ids once the
    service answered (a SIGKILL between the answer and the write loses only the record)."""
    rng = random.Random(serial)
    run_id = f"fleet-{serial}-{os.getpid()}"
    log = (tmp / f"a{serial}.log").open("a", buffering=1)
    ack = (tmp / f"a{serial}.ack").open("a", buffering=1)
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=60) as http:
        while not stop.is_set():
            r = _timed(http, log, "lease", "POST", "/v1/agent/lease", {"max_items": 8})
            items = r.json()["items"] if r is not None and r.status_code == 200 else []
            if not items:
                time.sleep(0.5)
                continue
            results = []
            for it in items:
                time.sleep(rng.uniform(0.02, 0.06))
                stats = fake_stats(round(rng.uniform(0.05, 5.0), 4))
                results.append({"item_id": it["item_id"], "key": it["key"], "stats": stats})
            lease = r.json()["lease_id"]  # type: ignore[union-attr]
            body = {"run_id": run_id, "results": results, "errors": []}
            up = _timed(http, log, "upload", "POST", f"/v1/agent/leases/{lease}/results", body)
            if up is not None and up.status_code == 200:
                out = up.json()
                log.write(f"counts {out['accepted']} {out['rejected']} {out['remeasure']}\n")
                if out["accepted"] == len(results):
                    ack.write("".join(f"{x['item_id']}\n" for x in results))


def _timed(
    http: httpx.Client, log: Any, name: str, method: str, path: str, body: Any
) -> httpx.Response | None:
    t0 = time.perf_counter()
    try:
        r = http.request(method, path, json=body)
    except httpx.HTTPError:
        log.write(f"{name} error {time.perf_counter() - t0:.6f} {time.time():.1f}\n")
        return None
    log.write(f"{name} {r.status_code} {time.perf_counter() - t0:.6f} {time.time():.1f}\n")
    return r


def readers_main(
    url: str, n: int, names: list[str], hot: list[str], logfile: Path, stop: Any
) -> None:
    keys = sorted(
        {op.key for r in RESOLUTIONS for op in create_space("fbnet", resolution=r).distinct_ops()}
    )
    asyncio.run(_readers(url, n, names, hot, keys, logfile, stop))


async def _readers(
    url: str, n: int, names: list[str], hot: list[str], keys: list[str], logfile: Path, stop: Any
) -> None:
    log = logfile.open("a", buffering=1)
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as http:

        async def reader(seed: int) -> None:
            rng = random.Random(seed)
            while not stop.is_set():
                await asyncio.sleep(rng.uniform(0.05, 0.25))
                device = rng.choice(hot) if rng.random() < 0.8 else rng.choice(names)
                if rng.random() < 0.7:
                    name, path = "lookup", f"/v1/devices/{device}/latency"
                    params: dict[str, Any] = {"op": rng.choice(keys)}
                else:
                    name, path = "lut", f"/v1/devices/{device}/lut"
                    params = {"space": "fbnet", "resolution": rng.choice(RESOLUTIONS)}
                t0 = time.perf_counter()
                try:
                    r = await http.get(path, params=params)
                    log.write(
                        f"{name} {r.status_code} {time.perf_counter() - t0:.6f} {time.time():.1f}\n"
                    )
                except httpx.HTTPError:
                    log.write(f"{name} error {time.perf_counter() - t0:.6f} {time.time():.1f}\n")

        await asyncio.gather(*(reader(hash((logfile.name, i))) for i in range(n)))


def report(tmp: Path, started: float, warmup: float) -> dict[str, int]:
    """Per endpoint, over the whole run and past the first `warmup` seconds (each worker
    loads every device's snapshot once, ~30 ms each): requests, req/s, p50/p99 ms and
    statuses; returns the count of 5xx and transport errors (must be 0)."""
    rows: dict[str, list[tuple[float, float]]] = {}
    status: dict[str, dict[str, int]] = {}
    counts = {"accepted": 0, "rejected": 0, "remeasure": 0}
    for path in sorted(tmp.glob("[ar]*.log")):
        for line in path.read_text().splitlines():
            parts = line.split()
            if parts[0] == "counts":
                for k, v in zip(counts, parts[1:], strict=True):
                    counts[k] += int(v)
                continue
            if len(parts) < 4:
                continue  # a line cut by a SIGKILL
            rows.setdefault(parts[0], []).append((float(parts[3]), float(parts[2])))
            status.setdefault(parts[0], {}).setdefault(parts[1], 0)
            status[parts[0]][parts[1]] += 1
    end = max(t for xs in rows.values() for t, _ in xs)
    print(f"{'endpoint':>8} {'part':>12} {'requests':>9} {'req/s':>7} {'p50 ms':>7} "
          f"{'p99 ms':>7}  statuses")  # fmt: skip
    for name, xs in sorted(rows.items()):
        codes = " ".join(f"{k}:{v}" for k, v in sorted(status[name].items()))
        for part, t0 in (("all", started), (f"after {warmup:.0f} s", started + warmup)):
            lat = [s for t, s in xs if t >= t0]
            if len(lat) < 2:
                continue
            q = statistics.quantiles(lat, n=100)
            print(
                f"{name:>8} {part:>12} {len(lat):>9} {len(lat) / (end - t0):>7.1f} "
                f"{q[49] * 1e3:>7.1f} {q[98] * 1e3:>7.1f}  {codes if part == 'all' else ''}"
            )
    bad = sum(v for s in status.values() for k, v in s.items() if k == "error" or k >= "500")
    print(
        f"uploads: {counts['accepted']} results accepted, {counts['rejected']} rejected "
        f"(lease ran out), {counts['remeasure']} re-queued; 5xx or transport errors: {bad}"
    )
    return {"bad": bad}
