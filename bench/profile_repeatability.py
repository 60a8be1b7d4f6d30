"""Test-retest and efficiency of `hwlat profile` vs a naive baseline, side by side.

Profiles fbnet@32 on ort-cpu twice, each in a fresh process, at the default settings,
and runs the naive baseline (bench/naive_baseline.py) twice in fresh processes,
interleaved in one run (hwlat, naive, hwlat, naive) so both see the same machine.
Prints, for each method: the share of ops whose two medians agree within ±2/5/10%,
the median relative difference, and efficiency = Σ(median x timed calls) / wall time.

    .venv/bin/python bench/profile_repeatability.py [--runtime ort-cpu] [--space fbnet]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def agreement(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
    keys = sorted(set(a) & set(b))
    rel = [abs(a[k] - b[k]) / min(a[k], b[k]) for k in keys if min(a[k], b[k]) > 0]
    share = {
        f"within_{int(t * 100)}pct": sum(r <= t for r in rel) / len(rel) for t in (0.02, 0.05, 0.10)
    }
    return {"ops": len(rel), **share, "median_rel_diff": statistics.median(rel)}


def run_hwlat(args: argparse.Namespace, out: Path, cache: Path) -> dict[str, object]:
    cmd = [
        str(HERE.parent / ".venv/bin/hwlat"),
        "profile",
        "--runtime",
        args.runtime,
        "--space",
        args.space,
        "--resolution",
        str(args.resolution),
        "--out",
        str(out),
        "--cache-dir",
        str(cache),
        "--json",
    ]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t0
    summary = json.loads(proc.stdout)
    lut = json.loads(out.read_text())
    ms = {k: v["median_ms"] for k, v in lut["ops"].items()}
    timed = sum(v["median_ms"] * v["timed_calls"] / 1e3 for v in lut["ops"].values())
    return {
        "ms": ms,
        "wall_s": wall,
        "timed_s": timed,
        "export_s": summary["export_s"],
        "unstable": summary["unstable"],
    }


def run_naive(args: argparse.Namespace, out: Path) -> dict[str, object]:
    cmd = [
        sys.executable,
        str(HERE / "naive_baseline.py"),
        "--space",
        args.space,
        "--resolution",
        str(args.resolution),
        "--out",
        str(out),
    ]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    wall = time.perf_counter() - t0
    data = json.loads(out.read_text())
    return {"ms": data["ms"], "wall_s": wall, "timed_s": data["timed_s"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runtime", default="ort-cpu")
    ap.add_argument("--space", default="fbnet")
    ap.add_argument("--resolution", type=int, default=32)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        runs = [
            run_hwlat(args, d / "a.json", d / "cache"),
            run_naive(args, d / "na.json"),
            run_hwlat(args, d / "b.json", d / "cache"),
            run_naive(args, d / "nb.json"),
        ]
    hw, naive = (runs[0], runs[2]), (runs[1], runs[3])
    print(
        f"command: .venv/bin/python bench/profile_repeatability.py --runtime {args.runtime} "
        f"--space {args.space} --resolution {args.resolution}"
    )
    print(
        f"{'method':<34}{'ops':>5}{'±2%':>8}{'±5%':>8}{'±10%':>8}{'med|Δ|':>9}"
        f"{'eff1':>7}{'eff2':>7}{'wall1':>8}{'wall2':>8}"
    )
    for name, (r1, r2) in (
        (f"hwlat profile ({args.runtime})", hw),
        ("naive (timeit 50, no warm-up)", naive),
    ):
        agr = agreement(r1["ms"], r2["ms"])  # type: ignore[arg-type]
        eff = [r["timed_s"] / r["wall_s"] for r in (r1, r2)]  # type: ignore[operator]
        print(
            f"{name:<34}{agr['ops']:>5}{agr['within_2pct']:>8.1%}{agr['within_5pct']:>8.1%}"
            f"{agr['within_10pct']:>8.1%}{agr['median_rel_diff']:>9.2%}{eff[0]:>7.0%}"
            f"{eff[1]:>7.0%}{r1['wall_s']:>7.1f}s{r2['wall_s']:>7.1f}s"
        )
    print(
        f"hwlat: export time in run 1 {hw[0]['export_s']} s (cold cache), run 2 "
        f"{hw[1]['export_s']} s; unstable ops {hw[0]['unstable']} / {hw[1]['unstable']}"
    )


if __name__ == "__main__":
    main()
