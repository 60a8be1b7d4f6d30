"""Service + agent vs local profiling: the wall time of profiling fbnet@32 on ort-cpu
through `hwlat serve` + `hwlat agent --once` against `hwlat profile` on the same
machine, same ops and timing settings, measured side by side in one run (the ONNX export
cache is warmed first so neither side pays for exports).

    .venv/bin/python bench/agent_overhead.py [--runtime ort-cpu] [--space fbnet] [-r 32]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from latency_service.client import HwlatClient
from tests.devices.service_harness import ADMIN, Service

HWLAT = [sys.executable, "-m", "hwlat.cli"]


def run(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runtime", default="ort-cpu")
    ap.add_argument("--space", default="fbnet")
    ap.add_argument("-r", "--resolution", type=int, default=32)
    args = ap.parse_args()
    space = ["--space", args.space, "--resolution", str(args.resolution)]
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        env = {**os.environ, "HWLAT_CACHE_DIR": str(d / "cache"), "XDG_DATA_HOME": str(d)}
        warm = [
            *HWLAT,
            "profile",
            "--runtime",
            args.runtime,
            *space,
            "--out",
            str(d / "warm.json"),
            "--budget-s",
            "0.001",
            "--samples-per-round",
            "3",
            "--min-sample-ms",
            "0.1",
            "--rounds",
            "1",
        ]
        run(warm, env)
        local = run(
            [
                *HWLAT,
                "profile",
                "--runtime",
                args.runtime,
                *space,
                "--out",
                str(d / "local.json"),
                "--json",
            ],
            env,
        )
        svc = Service(d / "svc", f"sqlite:///{d}/svc.db", lease_s=120).start()
        try:
            with HwlatClient(svc.url, admin_token=ADMIN) as admin:
                token = admin.create_device("bench", args.runtime).token
                t0 = time.perf_counter()  # from queueing the work to the agent's exit
                admin.enqueue_space("bench", args.space, args.resolution)
                run(
                    [*HWLAT, "agent", "--server", svc.url, "--token", token, "--once", "--quiet"],
                    env,
                )
                agent = time.perf_counter() - t0
                measured = admin.get_device("bench").measurements
        finally:
            svc.stop()
        ops = len(json.loads((d / "local.json").read_text())["ops"])
    print(
        f"command: .venv/bin/python bench/agent_overhead.py --runtime {args.runtime} "
        f"--space {args.space} -r {args.resolution}"
    )
    print(f"ops: local {ops}, through the service {measured}")
    print(f"hwlat profile (local):        {local:7.1f} s")
    print(f"hwlat serve + agent --once:   {agent:7.1f} s")
    print(f"ratio service+agent / local:  {agent / local:7.3f}  (target <= 1.15)")


if __name__ == "__main__":
    main()
