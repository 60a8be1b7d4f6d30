"""Test-retest of random sampled ops: how reproducible are a predictor's labels?

A predictor is judged against measurements of ops it has not seen, so it can never look
better than those measurements repeat. This measures the same random configurations of a
kind several times, each time in a fresh process (as separate agent runs would), with
the agent's timing defaults, and prints:

- the share of ops whose two medians agree within ±5% / ±10%, and the median difference;
- a ceiling for any predictor judged against one measurement: the share within ±10%
  that the truth itself would reach if each measurement's error is |log(a/b)|/√2;
- how honest the reported 95% CIs are: the share of pairs whose difference fits in
  the two half-widths combined (should be about 95% or more if the CI covers the
  spread between processes), and the median difference in units of that allowance;
- all of it per size band (median latency), where small ops behave differently.

    .venv/bin/python bench/measurement_retest.py --runtime ort-cpu --kind mbconv \\
        --n 150 --seed 12 [--rounds 3 --budget-s 2]
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def child(args: argparse.Namespace) -> None:
    """One fresh-process measurement of the sampled ops, written as JSON to --out."""
    from devices.profiling import profile_ops
    from devices.runtimes import create_runtime
    from profiler.sampling import sample_ops
    from profiler.timing import TimingConfig

    config = TimingConfig.from_options(
        args.rel_tol, args.budget_s, args.rounds, args.min_sample_ms, args.samples_per_round
    )
    with create_runtime(args.runtime, cache_dir=Path(args.cache)) as rt:
        ops = sample_ops(args.kind, args.n, args.seed)
        report = profile_ops(rt, ops, config, drift=None)  # the engine alone, one measurement
    keep = ("median_ms", "rel_ci", "ci_half_width_ms", "rounds", "stable", "sampling_s")
    ops = {k: {f: v[f] for f in keep} for k, v in report.lut["ops"].items()}
    Path(args.out).write_text(json.dumps({"wall_s": report.wall_s, "ops": ops}))


def pairs(a: dict, b: dict) -> dict[str, np.ndarray]:
    keys = sorted(set(a) & set(b))
    ma = np.array([a[k]["median_ms"] for k in keys])
    mb = np.array([b[k]["median_ms"] for k in keys])
    width = [(a[k]["ci_half_width_ms"], b[k]["ci_half_width_ms"]) for k in keys]
    half = np.array([(x or math.inf) + (y or math.inf) for x, y in width])
    return _paired(ma, mb, half)


def _paired(ma: np.ndarray, mb: np.ndarray, half: np.ndarray) -> dict[str, np.ndarray]:
    return {
        "a": ma,
        "b": mb,
        "ms": np.sqrt(ma * mb),
        "log": np.log(mb / ma),
        "diff": np.abs(mb - ma),
        "half": half,
    }


def shifted(p: dict[str, np.ndarray], shift: float) -> dict[str, np.ndarray]:
    """The pairs with the second run scaled by exp(-shift): a whole-run drift removed."""
    return _paired(p["a"], p["b"] * math.exp(-shift), p["half"])


def summary(p: dict[str, np.ndarray]) -> str:
    rel = np.expm1(np.abs(p["log"]))
    ceiling = np.mean(np.abs(p["log"]) / math.sqrt(2) <= math.log(1.1))
    fits = np.mean(p["diff"] <= p["half"])
    units = np.median(p["diff"] / p["half"])
    return (
        f"{len(rel):>4} {np.mean(rel <= 0.05):>6.1%} {np.mean(rel <= 0.10):>6.1%} "
        f"{np.median(rel):>7.2%} {ceiling:>8.1%} {fits:>7.1%} {units:>6.2f}"
    )


def report(runs: list[dict]) -> None:
    cols = ("ops", 4), ("±5%", 6), ("±10%", 6), ("med|d|", 7), ("ceiling", 8), ("in CI", 7)
    head = " ".join(f"{name:>{w}}" for name, w in (*cols, ("d/CI", 6)))
    print(f"{'':<24}{head}")
    for i in range(len(runs) - 1):
        p = pairs(runs[i]["ops"], runs[i + 1]["ops"])
        print(f"{f'run {i + 1} vs {i + 2}':<24}{summary(p)}")
        shift = float(np.median(p["log"]))
        print(f"{f'  shift {np.expm1(shift):+.2%} removed':<24}{summary(shifted(p, shift))}")
        order = np.argsort(p["ms"])
        for band in np.array_split(order, 4):
            sub = {k: v[band] for k, v in p.items()}
            lo, hi = sub["ms"].min(), sub["ms"].max()
            print(f"{f'  {lo:.3g}–{hi:.3g} ms':<24}{summary(sub)}")
    for i, run in enumerate(runs):
        rounds = [v["rounds"] for v in run["ops"].values()]
        ci = [v["rel_ci"] for v in run["ops"].values() if v["rel_ci"] is not None]
        unstable = sum(not v["stable"] for v in run["ops"].values())
        print(
            f"run {i + 1}: {run['wall_s']:.0f} s, median rounds {np.median(rounds):.0f} "
            f"(max {max(rounds)}), median reported CI ±{np.median(ci):.2%}, unstable {unstable}"
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runtime", default="ort-cpu")
    ap.add_argument("--kind", default="mbconv")
    ap.add_argument("--n", type=int, default=150)
    ap.add_argument("--seed", type=int, default=12)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--rel-tol", type=float, default=0.02)
    ap.add_argument("--budget-s", type=float, default=2.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--min-sample-ms", type=float, default=5.0)
    ap.add_argument("--samples-per-round", type=int, default=10)
    ap.add_argument("--save", help="also write every run's medians and CIs to this JSON file")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--cache", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args)
    print(f"command: {' '.join(sys.argv)}")
    with tempfile.TemporaryDirectory() as tmp:
        base = [*sys.argv[1:], "--child", "--cache", str(Path(tmp) / "onnx")]
        runs = []
        for i in range(args.repeats):
            out = Path(tmp) / f"run{i}.json"
            t0 = time.perf_counter()
            subprocess.run([sys.executable, __file__, *base, "--out", str(out)], check=True)
            print(f"run {i + 1} done in {time.perf_counter() - t0:.0f} s", flush=True)
            runs.append(json.loads(out.read_text()))
    if args.save:
        Path(args.save).write_text(json.dumps(runs))
    report(runs)


if __name__ == "__main__":
    main()
