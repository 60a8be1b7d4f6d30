"""The DARTS family side by side: time and memory of a weight step and of an architecture
step, at the same cell configuration and batch, in one run.

DARTS (first and second order), GDAS, PC-DARTS (K = 4) and P-DARTS at each of its stages'
op counts (8, 5, 3 ops per edge, the same cells) on the darts space with a roofline-like
synthetic table and digits batches (the latency term is a hard target in the middle of
the table's range; it costs the same for every method). Methods alternate within each
round (the order rotates) and every figure is the median over rounds, so all see the
same machine. Memory: on a CPU what autograd saves for the backward plus the gradients
(core/memory.py; PyTorch keeps no allocator statistics there); on CUDA also the peak
allocated during the step, above what was allocated before it.

    .venv/bin/python bench/darts_family.py --C 8 --cells 5 -r 32 --batch 64 --rounds 5
    .venv/bin/python bench/darts_family.py --device cuda --C 16 --cells 8 --batch 64
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from profiler.features import features
from searchers import data as datasets
from searchers.core.loop import Searcher
from searchers.core.losses import HardTarget
from searchers.core.memory import step_memory
from searchers.latency import LatencyTable
from searchers.registry import create_searcher, searcher_class
from searchers.spaces import create_space

MIB = 2**20
METHODS = {  # label: (searcher, options)
    "darts-1st": ("darts", {"order": "first"}),
    "darts-2nd": ("darts", {"order": "second"}),
    "gdas": ("gdas", {}),
    "pcdarts-k4": ("pcdarts", {"k": 4}),
    "pdarts-8ops": ("pdarts", {"ops": "8"}),
    "pdarts-5ops": ("pdarts", {"ops": "8,5"}),
    "pdarts-3ops": ("pdarts", {"ops": "8,5,3"}),
}


def build(label: str, args: argparse.Namespace) -> Searcher:
    name, opts = METHODS[label]
    space = create_space(
        "darts", resolution=args.resolution, classes=10, C=args.C, cells=args.cells
    )
    ops = space.fixed_ops() + space.distinct_ops()
    table = LatencyTable.from_cells(
        space, {op.key: (0.005 + features(op).flops * 2e-8, "measured") for op in ops}
    )
    data = datasets.load("digits", args.resolution, args.batch, 0)
    cls = searcher_class(name)
    lo, hi = cls.table_bounds(table)
    if name == "pdarts":  # every stage as deep as the others' supernet
        n = len(opts["ops"].split(","))
        opts = {**opts, "stages": ",".join([str(args.cells)] * n),
                "skip_dropout": ",".join(["0.1"] * n)}  # fmt: skip
    config = replace(cls.Config(), warmup_epochs=0, **opts)
    s = create_searcher(name, table=table, data=data, config=config,
                        latency=HardTarget((lo + hi) / 2), device=args.device)  # fmt: skip
    if name == "pdarts":  # jump to the last stage: its op sets, its supernet
        for stage in range(1, n):
            s.enter_stage(stage, s.cut())  # type: ignore[attr-defined]
    return s


def one(s: Searcher, part: str, batches: list[Any]) -> Callable[[], None]:
    train, val = batches
    if part == "weight":
        return lambda: s.weight_step(*train, warmup=False) and None
    return lambda: s.arch_step(train, val)


def measure(s: Searcher, part: str, batches: list[Any], device: str) -> dict[str, float]:
    step = one(s, part, batches)
    step()  # warm-up: lazy allocations, cuDNN choices
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    sync()
    out: dict[str, float] = {}
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        t0 = time.perf_counter()
        step()
        sync()
        out["seconds"] = time.perf_counter() - t0
        out["peak_mib"] = (torch.cuda.max_memory_allocated() - before) / MIB
    else:
        t0 = time.perf_counter()
        step()
        out["seconds"] = time.perf_counter() - t0
    out["saved_mib"] = step_memory(step, s.net) / MIB
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--C", type=int, default=8)
    ap.add_argument("--cells", type=int, default=5)
    ap.add_argument("-r", "--resolution", type=int, default=32)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    labels = args.methods.split(",")
    searchers = {label: build(label, args) for label in labels}
    any_s = next(iter(searchers.values()))
    batches = [
        next(iter(any_s.data.train_batches(0, 0))),
        next(iter(any_s.data.val.batches(args.batch))),
    ]
    batches = [(x.to(args.device), y.to(args.device)) for x, y in batches]
    runs: dict[str, dict[str, list[dict[str, float]]]] = {
        k: {"weight": [], "arch": []} for k in labels
    }
    for r in range(args.rounds):
        for label in labels[r % len(labels) :] + labels[: r % len(labels)]:
            for part in ("weight", "arch"):
                runs[label][part].append(measure(searchers[label], part, batches, args.device))
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    report(args, runs)


def report(args: argparse.Namespace, runs: dict[str, dict[str, list[dict[str, float]]]]) -> None:
    med = {
        label: {
            part: {k: statistics.median(m[k] for m in ms) for k in ms[0]}
            for part, ms in parts.items()
        }
        for label, parts in runs.items()
    }
    base = med.get("darts-1st")
    print("command: .venv/bin/python bench/darts_family.py " + " ".join(sys.argv[1:]))
    print(f"darts space C={args.C}, {args.cells} cells, {args.resolution}x{args.resolution}, "
          f"batch {args.batch}, {args.device}, median of {args.rounds} rounds")  # fmt: skip
    cols = ["seconds", "saved_mib"] + (["peak_mib"] if args.device == "cuda" else [])
    head = "".join(f"{p[:1]}-{c:>12}" for p in ("weight", "arch") for c in cols)
    print(f"{'method':<13}{head}   weight-step memory vs darts-1st")
    for label, parts in med.items():
        cells = "".join(f"{parts[p][c]:>14.3f}" for p in ("weight", "arch") for c in cols)
        ratio = parts["weight"]["saved_mib"] / base["weight"]["saved_mib"] if base else float("nan")
        print(f"{label:<13}{cells}   {ratio:.2f}x")
    if args.json:
        args.json.write_text(
            json.dumps({"args": vars(args) | {"json": str(args.json)}, "median": med}, indent=1)
        )


if __name__ == "__main__":
    main()
