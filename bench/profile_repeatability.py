"""Test-retest of `hwlat profile` against a naive baseline, side by side, with a chosen
load on the other core.

Runs two profiles of fbnet@32 (ort-cpu, one thread, pinned to core 0) and the naive
baseline (bench/naive_baseline.py: timeit of 50 eager calls) twice, interleaved (hwlat,
naive, hwlat, naive) while a neighbour runs on core 1:

- loop: a Python busy loop (a core's issue slots, little memory);
- gemm: single-threaded float32 matrix products (FP units, caches);
- stream: copies of a 256 MB array (memory bandwidth);
- none: nothing.

For three methods it prints the share of ops whose two values agree within ±2/5/10%,
the median difference, the coverage of the 95% intervals (|log(b/a)| within the two
relative half-widths in quadrature; nominal 95%) and the wall times:

- hwlat: the value `hwlat profile` reports (drift-corrected, measured again where
  doubtful, combined) and its reported interval (with the between-session term);
- engine alone: the first measurement of each op in the same two profiles, raw, with
  the engine's own interval: what the engine gives without the panel (no extra run);
- naive: no interval.

Both profiles share one fresh reference store: the first sets the baseline.

    .venv/bin/python bench/profile_repeatability.py --neighbour loop [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
NEIGHBOURS = {
    "loop": "while True: pass",
    "gemm": "import numpy as np\na = np.ones((512, 512), np.float32)\nwhile True: a @ a",
    "stream": "import numpy as np\na = np.ones(2**26, np.float32); b = np.empty_like(a)\n"
    "while True: np.copyto(b, a)",
}
Values = dict[str, tuple[float, float | None]]  # key -> (ms, 95% half-width ms or None)


def agreement(a: Values, b: Values) -> dict[str, Any]:
    keys = sorted(set(a) & set(b))
    rel = [abs(a[k][0] - b[k][0]) / min(a[k][0], b[k][0]) for k in keys]
    judged = [
        abs(math.log(b[k][0] / a[k][0])) <= math.hypot(a[k][1] / a[k][0], b[k][1] / b[k][0])  # type: ignore[operator]
        for k in keys
        if a[k][1] is not None and b[k][1] is not None
    ]
    share = {
        f"within_{round(t * 100)}pct": sum(r <= t for r in rel) / len(rel)
        for t in (0.02, 0.05, 0.10)
    }
    return {
        "ops": len(rel),
        **share,
        "median_rel_diff": statistics.median(rel),
        "ci_coverage": sum(judged) / len(judged) if judged else None,
    }


def run_hwlat(args: argparse.Namespace, out: Path, tmp: Path) -> dict[str, Any]:
    cmd = ["taskset", "-c", "0", str(HERE.parent / ".venv/bin/hwlat"), "profile"]
    cmd += ["--runtime", "ort-cpu", "--threads", "1", "--space", args.space]
    cmd += ["--resolution", str(args.resolution), "--out", str(out), "--json"]
    cmd += ["--cache-dir", str(tmp / "cache"), "--reference-dir", str(tmp / "reference")]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t0
    summary = json.loads(proc.stdout)
    ops = json.loads(out.read_text())["ops"]
    hwlat = {k: (v["corrected_ms"], v["reported_ci_half_width_ms"]) for k, v in ops.items()}
    first = {k: v["measurements"][0] for k, v in ops.items()}
    engine = {k: (m["median_ms"], m["ci_half_width_ms"]) for k, m in first.items()}
    return {"hwlat": hwlat, "engine": engine, "wall_s": wall, "summary": summary}


def run_naive(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    cmd = ["taskset", "-c", "0", sys.executable, str(HERE / "naive_baseline.py")]
    cmd += ["--space", args.space, "--resolution", str(args.resolution), "--out", str(out)]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    wall = time.perf_counter() - t0
    data = json.loads(out.read_text())
    return {"naive": {k: (ms, None) for k, ms in data["ms"].items()}, "wall_s": wall}


def start_neighbour(name: str) -> subprocess.Popen[bytes] | None:
    if name == "none":
        return None
    if len(os.sched_getaffinity(0)) < 2:
        raise SystemExit("a neighbour needs a second core; this machine has one")
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
    cmd = ["taskset", "-c", "1", sys.executable, "-c", NEIGHBOURS[name]]
    return subprocess.Popen(cmd, env=env)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--neighbour", choices=[*NEIGHBOURS, "none"], default="none")
    ap.add_argument("--space", default="fbnet")
    ap.add_argument("--resolution", type=int, default=32)
    ap.add_argument("--json", type=Path, help="also write the figures here")
    ap.add_argument("--keep", type=Path, help="keep the two LUT files and the store here")
    args = ap.parse_args()
    neighbour = start_neighbour(args.neighbour)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    try:
        with tempfile.TemporaryDirectory() as tmp:
            d = args.keep or Path(tmp)
            d.mkdir(parents=True, exist_ok=True)
            h1, n1 = run_hwlat(args, d / "a.json", d), run_naive(args, d / "na.json")
            h2, n2 = run_hwlat(args, d / "b.json", d), run_naive(args, d / "nb.json")
    finally:
        if neighbour is not None:
            neighbour.kill()
    rows = {
        "hwlat profile (corrected, reported CI)": (h1["hwlat"], h2["hwlat"], h1, h2),
        "engine alone (raw, first measurement)": (h1["engine"], h2["engine"], h1, h2),
        "naive (timeit 50, no warm-up)": (n1["naive"], n2["naive"], n1, n2),
    }
    report = report_rows(args, started, rows, (h1, h2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


def report_rows(
    args: argparse.Namespace, started: str, rows: dict[str, Any], profiles: tuple[Any, Any]
) -> dict[str, Any]:
    print(
        f"command: .venv/bin/python bench/profile_repeatability.py --neighbour {args.neighbour}"
        f" (started {started}, load before: {os.getloadavg()[0]:.2f})"
    )
    print(
        f"{'method':<40}{'ops':>5}{'±2%':>8}{'±5%':>8}{'±10%':>8}{'med|Δ|':>9}"
        f"{'CI cov':>8}{'wall1':>8}{'wall2':>8}"
    )
    out: dict[str, Any] = {"neighbour": args.neighbour, "started": started, "methods": {}}
    for name, (a, b, r1, r2) in rows.items():
        agr = agreement(a, b)
        cov = "-" if agr["ci_coverage"] is None else f"{agr['ci_coverage']:.1%}"
        print(
            f"{name:<40}{agr['ops']:>5}{agr['within_2pct']:>8.1%}{agr['within_5pct']:>8.1%}"
            f"{agr['within_10pct']:>8.1%}{agr['median_rel_diff']:>9.2%}{cov:>8}"
            f"{r1['wall_s']:>7.1f}s{r2['wall_s']:>7.1f}s"
        )
        out["methods"][name] = {**agr, "wall_s": [r1["wall_s"], r2["wall_s"]]}
    for i, p in enumerate(profiles, 1):
        s = p["summary"]
        print(
            f"hwlat profile {i}: efficiency {s['efficiency']:.0%}, remeasured {s['remeasured']}, "
            f"unstable {s['unstable']}, "
            f"reference {s['reference']}"
        )
        out[f"profile{i}"] = s
    return out


if __name__ == "__main__":
    main()
