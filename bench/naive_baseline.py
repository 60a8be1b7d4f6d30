"""The naive way many lookup tables are built: per op, `timeit` of the torch eager
forward, 50 calls, no warm-up, autograd on, whatever threads are free.

    python bench/naive_baseline.py --space fbnet --resolution 32 --out naive.json
"""

from __future__ import annotations

import argparse
import json
import time
import timeit

from profiler.blocks import build
from searchers.spaces import create_space


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--space", default="fbnet")
    ap.add_argument("--resolution", type=int, default=32)
    ap.add_argument("--calls", type=int, default=50)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    t0 = time.perf_counter()
    space = create_space(args.space, resolution=args.resolution)
    ops = list(dict.fromkeys(space.fixed_ops() + space.distinct_ops()))
    medians = {}
    for op in ops:
        module, x = build(op)
        seconds = timeit.timeit(lambda m=module, x=x: m(x), number=args.calls)
        medians[op.key] = seconds / args.calls * 1e3
    wall = time.perf_counter() - t0
    timed = sum(ms * args.calls / 1e3 for ms in medians.values())
    with open(args.out, "w") as f:
        json.dump({"ms": medians, "wall_s": wall, "timed_s": timed}, f)


if __name__ == "__main__":
    main()
