"""Searchers side by side: step time, step memory and the cost of the latency term, vs the
number of candidates per layer; with `--baseline DIR`, this tree against another one
(e.g. the commit before the searcher core), measured in one run.

ProxylessNAS (`full_v2` and `two` architecture steps) and FBNet on proxyless-mobile at
resolution 32, width 0.35, 10 classes, digits batches of 64 and a synthetic roofline-like
table; each supernet cut to the first k candidates of every layer (k = 2, 3, 5, 7).
Each tree is measured by `bench/_search_steps_worker.py` in a fresh process; the trees
alternate for `--rounds` rounds (order swapped every round) and each figure is the
median over rounds of the worker's medians, so both see the same machine.

    git worktree add /tmp/hwlat-before d672c9a
    .venv/bin/python bench/search_steps.py --baseline /tmp/hwlat-before --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).with_name("_search_steps_worker.py")
MIB = 2**20


def measure(tree: Path, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, str(WORKER), "--tree", str(tree), "--ks", args.ks]
    cmd += ["--reps", str(args.reps), "--threads", str(args.threads)]
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run(cmd, env=env, cwd=tree, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def merge(runs: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    out: dict[str, dict[str, dict[str, float]]] = {}
    for key in runs[0]["configs"]:
        out[key] = {
            part: {
                n: statistics.median(r["configs"][key][part][n] for r in runs)
                for n in runs[0]["configs"][key][part]
            }
            for part in ("time", "mem")
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--baseline", type=Path, help="another checkout to compare against")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--ks", default="2,3,5,7")
    ap.add_argument("--reps", type=int, default=5, help="timed steps per config per round")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    trees = {"now": HERE} | ({"before": args.baseline.resolve()} if args.baseline else {})
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in trees}
    t0, load0 = time.perf_counter(), os.getloadavg()[0]
    for r in range(args.rounds):
        order = list(trees) if r % 2 == 0 else list(reversed(trees))
        for name in order:
            runs[name].append(measure(trees[name], args))
            print(f"round {r + 1}/{args.rounds}: {name} done", file=sys.stderr)
    figures = {name: merge(rs) for name, rs in runs.items()}
    print(
        "command: .venv/bin/python bench/search_steps.py"
        + (f" --baseline {args.baseline}" if args.baseline else "")
        + f" --rounds {args.rounds} --ks {args.ks} --reps {args.reps} --threads {args.threads}"
    )
    print(
        f"proxyless-mobile@32 w0.35, digits batch 64, synthetic table; torch threads "
        f"{args.threads}; load {load0:.2f} -> {os.getloadavg()[0]:.2f}; "
        f"wall {time.perf_counter() - t0:.0f} s; trees: "
        + ", ".join(f"{n} = {trees[n]} ({runs[n][0]['api']} API)" for n in trees)
    )
    cols = ["weight ms", "arch ms", "lat µs", "lat/arch", "weight MiB", "arch MiB"]
    print(f"{'searcher':<18}{'k':>3}{'tree':>8}" + "".join(f"{c:>12}" for c in cols))
    for key in figures["now"]:
        kind, k = key.split("|")
        for name in trees:
            f = figures[name][key]
            t, m = f["time"], f["mem"]
            vals = [t["weight"] * 1e3, t["arch"] * 1e3, t["lat"] * 1e6]
            row = "".join(f"{v:>12.1f}" for v in vals) + f"{t['lat'] / t['arch']:>12.3%}"
            row += f"{m['weight'] / MIB:>12.2f}{m['arch'] / MIB:>12.2f}"
            print(f"{kind:<18}{k:>3}{name:>8}" + row)
    if "before" in figures:
        print("now / before (medians; < 1 is better):")
        for key in figures["now"]:
            a, b = figures["now"][key], figures["before"][key]
            ratios = [
                f"{n} time {a['time'][n] / b['time'][n]:.2f}x" for n in ("weight", "arch")
            ] + [f"{n} mem {a['mem'][n] / b['mem'][n]:.2f}x" for n in ("weight", "arch")]
            print(f"  {key:<22}" + "  ".join(ratios))
    ks = [int(k) for k in args.ks.split(",")]
    now = figures["now"]
    grow = {
        kind: now[f"{kind}|{max(ks)}"]["mem"]["weight"] / now[f"{kind}|{min(ks)}"]["mem"]["weight"]
        for kind in ("proxyless full_v2", "fbnet")
    }
    worst = max(f["time"]["lat"] / f["time"]["arch"] for f in now.values())
    print(
        f"memory {max(ks)} vs {min(ks)} candidates (weight step): proxyless "
        f"{grow['proxyless full_v2']:.2f}x (target <= 1.3x), fbnet {grow['fbnet']:.2f}x; "
        f"latency term at most {worst:.3%} of an architecture step (target < 1%)"
    )


if __name__ == "__main__":
    main()
