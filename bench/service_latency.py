"""Latency-service read performance on loopback, 1, 2 and 4 uvicorn workers side by side:
`/healthz` with one client (the multi-worker Nagle stall showed there: ~44 ms a request),
single-op lookups at 1 and 32 concurrent clients, a full fbnet@224 LUT at 1 and 8, and a
1 000-key batch.

Starts `hwlat serve` on SQLite in a temporary folder, fills fbnet@224 with synthetic
measurements through the agent API, then loads it with `wrk` (Debian package `wrk`;
one thread, random op keys) when installed, else with an asyncio httpx generator (much
slower: it saturates before the server does). Either runs on the same machine and
competes with the server for its 2 cores.

    .venv/bin/python bench/service_latency.py [--seconds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from latency_service.client import HwlatClient
from searchers.spaces import create_space
from tests.devices.service_harness import ADMIN, Service

STATS = {
    "median_ms": 1.0,
    "mean_ms": 1.0,
    "std_ms": 0.01,
    "min_ms": 0.9,
    "p10_ms": 0.95,
    "p90_ms": 1.05,
    "iqr_ms": 0.02,
    "samples": 30,
    "calls_per_sample": 5,
    "ci_half_width_ms": 0.01,
    "target_met": True,
    "stable": True,
}


def seed(url: str) -> list[str]:
    admin = HwlatClient(url, admin_token=ADMIN)
    token = admin.create_device("bench", "ort-cpu").token
    admin.enqueue_space("bench", "fbnet", 224)
    agent = HwlatClient(url, token=token)
    while (lease := agent.lease(256)).items:
        assert lease.lease_id is not None
        agent.upload(
            lease.lease_id,
            "seed",
            [{"item_id": i.item_id, "key": i.key, "stats": STATS} for i in lease.items],
        )
    space = create_space("fbnet", resolution=224)
    return [op.key for op in space.fixed_ops() + space.distinct_ops()]


async def load(url: str, paths: list[str], clients: int, seconds: float) -> list[float]:
    lat: list[float] = []
    stop = time.perf_counter() + seconds

    async def one(http: httpx.AsyncClient) -> None:
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            r = await http.get(random.choice(paths))
            r.raise_for_status()
            lat.append(time.perf_counter() - t0)

    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as http:
        await asyncio.gather(*(one(http) for _ in range(clients)))
    return lat


WRK_LUA = """
paths = {PATHS}
request = function() return wrk.format("GET", paths[math.random(#paths)]) end
"""


def wrk_load(
    url: str, paths: list[str], clients: int, seconds: float, tmp: Path
) -> tuple[int, float, float, float]:
    """(requests, req/s, p50 ms, p99 ms) measured by wrk over random `paths`."""
    script = tmp / "paths.lua"
    script.write_text(WRK_LUA.replace("PATHS", ", ".join(f'"{p}"' for p in paths)))
    out = subprocess.run(
        ["wrk", "-t1", f"-c{clients}", f"-d{seconds:.0f}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    def ms(label: str) -> float:
        m = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        assert m, out
        return float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]

    reqs = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    assert non2xx is None, f"{non2xx.group(1)} requests failed:\n{out}"
    return reqs, rps, ms("50%"), ms("99%")


def pct(xs: list[float], q: float) -> float:
    return statistics.quantiles(xs, n=100)[q - 1] * 1e3 if len(xs) > 1 else xs[0] * 1e3


def timed(fn, n: int) -> list[float]:  # type: ignore[no-untyped-def]
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    args = ap.parse_args()
    print("command: .venv/bin/python bench/service_latency.py " + " ".join(sys.argv[1:]))
    print(f"{'workers':>7} {'request':>16} {'clients':>7} {'requests':>9} {'req/s':>8} "
          f"{'p50 ms':>8} {'p99 ms':>8}")  # fmt: skip
    extra = []
    for workers in args.workers:
        with tempfile.TemporaryDirectory() as tmp:
            svc = Service(Path(tmp), f"sqlite:///{tmp}/bench.db", lease_s=120, workers=workers)
            url = svc.start().url
            try:
                keys = seed(url)
                lookups = [f"/v1/devices/bench/latency?op={quote(k, safe='')}" for k in keys]
                lut = ["/v1/devices/bench/lut?space=fbnet&resolution=224"]
                runs = [("GET /healthz", ["/healthz"], 1), ("single lookup", lookups, 1),
                        ("single lookup", lookups, 32), ("fbnet@224 LUT", lut, 1),
                        ("fbnet@224 LUT", lut, 8)]  # fmt: skip
                for name, paths, clients in runs:
                    if shutil.which("wrk"):
                        n, rps, p50, p99 = wrk_load(url, paths, clients, args.seconds, Path(tmp))
                    else:
                        lat = asyncio.run(load(url, paths, clients, args.seconds))
                        n, rps = len(lat), len(lat) / args.seconds
                        p50, p99 = pct(lat, 50), pct(lat, 99)
                    print(f"{workers:>7} {name:>16} {clients:>7} {n:>9} {rps:>8.0f} "
                          f"{p50:>8.2f} {p99:>8.2f}", flush=True)  # fmt: skip
                if workers == args.workers[0]:
                    extra = bulk(url)
            finally:
                svc.stop()
    for line in extra:
        print(line)


def bulk(url: str) -> list[str]:
    c = HwlatClient(url)
    lut = timed(lambda: c.lut("bench", "fbnet", 224), 20)
    keys = list(
        dict.fromkeys(
            op.key
            for r in (224, 192, 160, 128, 112, 96, 64, 48, 32, 16)
            for op in create_space("fbnet", resolution=r).distinct_ops()
        )
    )
    keys = (keys * 2)[:1000]
    batch = timed(lambda: c.latency_batch("bench", keys), 20)
    return [
        f"full fbnet@224 LUT (JSON, 22 layers x 9): p50 {pct(lut, 50):.1f} ms, "
        f"p99 {pct(lut, 99):.1f} ms over 20 fetches",
        f"1 000-key batch ({len(set(keys))} distinct, {104} measured): p50 "
        f"{pct(batch, 50):.1f} ms, p99 {pct(batch, 99):.1f} ms over 20 calls",
    ]


if __name__ == "__main__":
    main()
