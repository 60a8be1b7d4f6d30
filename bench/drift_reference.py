"""Does the reference panel catch a run measured on a busier machine, and does dividing
by its drift factor bring that run's numbers back to the quiet machine's?

Three agent runs through `hwlat serve` + `hwlat agent --once` (ort-cpu, agent defaults,
panel on), one after the other on this machine:

1. device `truth`: ops B measured on the quiet machine (what B should read);
2. device `mixed`: ops A on the quiet machine (its readings set the baseline), then
   device `plain`: ops A again with `--no-reference`, and device `sparse`: ops A with
   `--reference-every 4` (the panel's cost in agent time, with every batch and with
   every 4th);
3. device `mixed`: ops B while a memory-streaming process runs beside the agent.

It prints each run's drift factors as the service reports them, then run 3's numbers
against run 1's, as measured and divided by their batch's drift factor (`hwlat train` does
that): the median shift and the shares within ±5% / ±10%.

    .venv/bin/python bench/drift_reference.py [--n 100] [--seed 41]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from latency_service.client import HwlatClient
from latency_service.db import make_engine, session_factory
from latency_service.repository import predictors as repo
from latency_service.repository.devices import get_device
from profiler.sampling import sample_ops
from tests.devices.service_harness import ADMIN, Service

HWLAT = [sys.executable, "-m", "hwlat.cli"]


def hog() -> None:
    """Streams 64 MiB through memory forever: a neighbour's job on the other vCPU."""
    a = np.ones(8 << 20)
    while True:
        a *= 1.0000001


def agent(
    svc: Service, admin: HwlatClient, device: str, keys: list[str], env: dict, *extra: str
) -> float:
    admin.enqueue_ops(device, keys)
    token = admin.add_token(device).token
    t0 = time.perf_counter()
    cmd = [*HWLAT, "agent", "--server", svc.url, "--token", token, "--once", "--quiet", *extra]
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def medians(url: str, device: str, keys: list[str], normalise: bool) -> np.ndarray:
    with session_factory(make_engine(url))() as s:
        dev = get_device(s, device)
        rows = repo.training_rows(s, dev, "mbconv")
        raw = None if normalise else {"repeats": "newest"}  # newest, as measured
        ops, y, _ = repo.labels(s, dev, dev.revision, rows, raw, rebuild=not normalise)
    by_key = dict(zip([spec.key for spec in ops.specs], y, strict=True))
    return np.array([by_key[k] for k in keys])


def compare(name: str, got: np.ndarray, truth: np.ndarray) -> None:
    rel = got / truth - 1
    print(
        f"{name:<34} shift {np.median(rel):+7.2%}  ±5% {np.mean(abs(rel) <= 0.05):6.1%}  "
        f"±10% {np.mean(abs(rel) <= 0.10):6.1%}"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100, help="ops in each of A and B")
    ap.add_argument("--seed", type=int, default=41)
    args = ap.parse_args()
    ops = [op.key for op in sample_ops("mbconv", 2 * args.n, seed=args.seed)]
    a_keys, b_keys = ops[: args.n], ops[args.n :]
    print(f"command: {' '.join(sys.argv)}")
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        env = {**os.environ, "HWLAT_CACHE_DIR": str(d / "cache"), "XDG_DATA_HOME": str(d)}
        url = f"sqlite:///{d}/svc.db"
        svc = Service(d / "svc", url, lease_s=120).start()
        try:
            with HwlatClient(svc.url, admin_token=ADMIN) as admin:
                for device in ("truth", "mixed", "plain", "sparse"):
                    admin.create_device(device, "ort-cpu")
                walls = [agent(svc, admin, "truth", b_keys, env)]
                walls.append(agent(svc, admin, "mixed", a_keys, env))
                # the panel's cost: the same ops A without it, right after
                cold = {**env, "HWLAT_CACHE_DIR": str(d / "cache-plain")}  # exports as cold
                walls.append(agent(svc, admin, "plain", a_keys, cold, "--no-reference"))
                cold = {**env, "HWLAT_CACHE_DIR": str(d / "cache-sparse")}
                walls.append(agent(svc, admin, "sparse", a_keys, cold, "--reference-every", "4"))
                neighbour = mp.Process(target=hog, daemon=True)
                neighbour.start()
                try:
                    walls.append(agent(svc, admin, "mixed", b_keys, env))
                finally:
                    neighbour.terminate()
                for device in ("truth", "mixed"):
                    for run in admin.drift(device).runs:
                        print(
                            f"{device:<6} run {run.run_id[-8:]}: {run.readings} batches, "
                            f"factor {run.median_factor:.3f} ({run.min_factor:.3f}–"
                            f"{run.max_factor:.3f}), flagged {run.flagged}"
                        )
        finally:
            svc.stop()
        print(
            "agent wall (s): truth B, mixed A, plain A (no panel), sparse A (every 4th), "
            "mixed B (busy): " + ", ".join(f"{w:.0f}" for w in walls)
        )
        print(f"panel overhead on A (quiet), every batch: {walls[1] / walls[2] - 1:+.1%}")
        print(f"panel overhead on A (quiet), every 4th batch: {walls[3] / walls[2] - 1:+.1%}")
        truth = medians(url, "truth", b_keys, normalise=False)
        compare("B busy vs quiet, as measured", medians(url, "mixed", b_keys, False), truth)
        compare("B busy vs quiet, drift divided out", medians(url, "mixed", b_keys, True), truth)


if __name__ == "__main__":
    main()
