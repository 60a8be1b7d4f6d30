"""What a job on the other core does to the agent's numbers on a small machine.

The agent pins ort-mobile to the last core; on a 2-vCPU VM the other core runs whatever
else the machine does (the service, training, the test suite). This measures the
reference panel's three blocks on the probe core (ort-mobile, the agent's timing
defaults) in phases of --phase-s seconds while the load core is idle, or runs a
pure-ALU Python loop, single-threaded float32 GEMM (numpy matmul: vector units, like
torch training or tests), or a memory stream (64 MiB scaled in place). The phases go
round --cycles times in the same order, so slow drift hits every load alike. Prints,
per load, each block's median against the idle phases' and their geometric mean.

    .venv/bin/python bench/neighbour_load.py [--phase-s 30 --cycles 2]
"""

from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # one core's worth of GEMM
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from devices.runtimes import create_runtime
from profiler.errors import MeasureError
from profiler.reference import panel_ops
from profiler.timing import Engine


def alu() -> None:
    x = 0
    while True:
        x += 1


def gemm() -> None:
    a = np.random.default_rng(0).random((1024, 1024), dtype=np.float32)
    while True:
        a @ a


def stream() -> None:
    a = np.ones(8 << 20)  # 64 MiB of float64
    while True:
        a *= 1.0000001


LOADS: dict[str, Callable[[], None] | None] = {
    "idle": None,
    "alu": alu,
    "gemm": gemm,
    "stream": stream,
}


def pinned(target: Callable[[], None], core: int) -> None:
    os.sched_setaffinity(0, {core})
    target()


def phase(
    prepared: list[tuple[str, Any]], load: str, core: int, seconds: float
) -> list[dict[str, float]]:
    """Panel medians (one dict per pass) while `load` runs on `core`."""
    proc = None
    if LOADS[load] is not None:
        proc = mp.get_context("fork").Process(target=pinned, args=(LOADS[load], core))
        proc.start()
        time.sleep(1.0)  # let it reach its steady state
    out, end = [], time.monotonic() + seconds
    try:
        while time.monotonic() < end:
            got = Engine().measure(prepared)
            out.append(
                {k: m.stats.median_ms for k, m in got.items() if not isinstance(m, MeasureError)}
            )
    finally:
        if proc is not None:
            proc.terminate()
            proc.join()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--phase-s", type=float, default=30.0)
    ap.add_argument("--cycles", type=int, default=2)
    ap.add_argument("--load-core", type=int, default=0)
    args = ap.parse_args()
    print(f"command: {' '.join(sys.argv)}")
    passes: dict[str, list[dict[str, float]]] = {name: [] for name in LOADS}
    with create_runtime("ort-mobile") as rt:
        ops = panel_ops()
        prepared = [(op.key, rt.prepare(op).runnable) for op in ops]
        print(f"probe: {rt.describe().get('affinity', '?')}; load core {args.load_core}")
        for cycle in range(args.cycles):
            for name in LOADS:
                passes[name] += phase(prepared, name, args.load_core, args.phase_s)
                print(f"cycle {cycle + 1}: {name} done ({len(passes[name])} passes)", flush=True)
    idle = {op.key: statistics.median(p[op.key] for p in passes["idle"]) for op in ops}
    print(
        f"{'load':<8} {'passes':>6} "
        + " ".join(f"{'block ' + str(i + 1):>8}" for i in range(3))
        + f" {'geomean':>8}"
    )
    for name, got in passes.items():
        ratios = [statistics.median(p[op.key] for p in got) / idle[op.key] for op in ops]
        geo = math.exp(statistics.fmean(math.log(r) for r in ratios))
        print(
            f"{name:<8} {len(got):>6} " + " ".join(f"{r:>8.3f}" for r in ratios) + f" {geo:>8.3f}"
        )
    print("idle medians (ms): " + ", ".join(f"{idle[op.key]:.4f}" for op in ops))


if __name__ == "__main__":
    main()
