"""SPOS and FairNAS side by side: a weight step's time and memory against the number of
candidates per layer, and the time of one generation of the evolutionary search.

A single-path supernet runs one candidate per layer per step, so SPOS's step should be
flat in the number of candidates k (only the weights grow): the `spos k=K` rows run the
same path (shuffle3 in every layer) in supernets holding the first k candidates, and
`spos k=4 sampled` paths drawn as in training (their mean cost is the mix's). FairNAS
runs m = k paths per step, so its step grows linearly in k (activations stay those of
one path: each path's graph is freed by its backward; its gradients cover every
candidate). With `--channels N1,N2,...` the SPOS channel search (spos-shufflenet
`channels=N`: every block's mid width chosen from N scales by slicing one max-width
weight) is measured too: shuffle3 at the widest width in supernets of N widths (flat
in N), and sampled paths at the largest N.

Every variant runs in the same process, alternating within each round (the order
rotates), and figures are medians over rounds. Memory: on a CPU what autograd saves
for the backward plus the gradients (core/memory.py); on CUDA the peak allocated during
the step above what was allocated before it. A generation: the default evolution
(population 50, 25 + 25 offspring) scoring with BN recalibration on an untrained
supernet (scoring time does not depend on training), `--generations` of them.

    .venv/bin/python bench/spos_steps.py -r 32 --batch 64 --rounds 5 --channels 1,2,5,10
    .venv/bin/python bench/spos_steps.py --device cuda -r 32 --batch 64 --channels 1,2,5,10
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

from _search_steps_worker import flops_table  # the steps bench's roofline-like table

from searchers import data as datasets
from searchers.algorithms.spos import SPOS
from searchers.core.arch import Fair
from searchers.core.losses import HardTarget
from searchers.core.memory import step_memory
from searchers.core.selectors import uniform_arch
from searchers.registry import create_searcher, searcher_class
from searchers.spaces import create_space

MIB = 2**20


def make(args: argparse.Namespace, name: str, k: int, channels: int, fixed: bool = True) -> SPOS:
    extra = {"channels": channels} if channels else {}
    space = create_space(args.space, resolution=args.resolution, width=args.width,
                         classes=10, **extra)  # fmt: skip
    table = flops_table(space)
    data = datasets.load("digits", space.resolution, args.batch, 0)
    config = replace(searcher_class(name).Config(), epochs=1, generations=args.generations)
    lo, hi = table.bounds()
    hard = HardTarget(lo + 0.5 * (hi - lo), "le")
    s = create_searcher(name, table=table, data=data, config=config, latency=hard,
                        device=args.device)  # fmt: skip
    assert isinstance(s, SPOS)
    if k < len(space.candidates):
        s.net.keep_first(k)
        mask = s.net.mask()
        s.arch = Fair(mask).to(s.device)  # FairNAS draws from it; SPOS from `draw`
        s._draw = lambda gen: uniform_arch(mask, gen)
    if fixed:  # one path whatever the supernet holds: shuffle3 (at the widest width)
        col = max(i for i, c in enumerate(space.candidates) if c.startswith("shuffle3"))
        s._draw = lambda gen: [col] * len(space.layers())
    return s


def variants(args: argparse.Namespace) -> dict[str, SPOS]:
    out = {}
    for k in range(1, 5):
        out[f"spos k={k}"] = make(args, "spos", k, 0)
        out[f"fairnas k={k}"] = make(args, "fairnas", k, 0)
    out["spos k=4 sampled"] = make(args, "spos", 99, 0, fixed=False)
    for n in args.channels:
        out[f"spos channels={n}"] = make(args, "spos", 99, n)
    if args.channels:
        n = max(args.channels)
        out[f"spos channels={n} sampled"] = make(args, "spos", 99, n, fixed=False)
    return out


def measure(s: SPOS, x: torch.Tensor, y: torch.Tensor, steps: int, cuda: bool) -> float:
    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    s.weight_step(x, y, False)  # warm-up
    sync()
    t0 = time.perf_counter()
    for _ in range(steps):
        s.weight_step(x, y, False)
    sync()
    return (time.perf_counter() - t0) / steps * 1000


def memory(s: SPOS, x: torch.Tensor, y: torch.Tensor, cuda: bool) -> float:
    if cuda:
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        s.weight_step(x, y, False)
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - base) / MIB
    step: Callable[[], Any] = lambda: s.weight_step(x, y, False)  # noqa: E731
    return step_memory(step, s.net) / MIB


def generation_seconds(s: SPOS) -> dict[str, float]:
    result = s.finish()
    gens = result.selection["generations"][1:]
    per = statistics.median(g["seconds"] for g in gens)
    scored = statistics.median(g["scored"] for g in gens)
    return {"generation_s": per, "per_score_s": per / max(scored, 1), "scored": scored}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--space", default="spos-shufflenet")
    ap.add_argument("-r", "--resolution", type=int, default=32)
    ap.add_argument("-w", "--width", type=float, default=1.0)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=3, help="timed steps per round")
    ap.add_argument("--channels", default="", help="comma-separated channel-choice counts")
    ap.add_argument("--generations", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    args.channels = [int(n) for n in args.channels.split(",") if n]
    cuda = args.device == "cuda"
    if not cuda:
        torch.set_num_threads(1)
    torch.manual_seed(0)
    runs = variants(args)
    x, y = next(iter(next(iter(runs.values())).data.train_batches(0, 0)))
    x, y = x.to(args.device), y.to(args.device)
    times: dict[str, list[float]] = {k: [] for k in runs}
    names = list(runs)
    for r in range(args.rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            times[name].append(measure(runs[name], x, y, args.steps, cuda))
        print(f"round {r + 1}/{args.rounds}", file=sys.stderr, flush=True)
    rows = []
    for name, s in runs.items():
        params = sum(p.numel() for p in s.net.parameters())
        rows.append({"variant": name, "step_ms": statistics.median(times[name]),
                     "memory_mib": memory(s, x, y, cuda), "params_m": params / 1e6})  # fmt: skip
    gen = generation_seconds(runs["spos k=4"])
    report(args, rows, gen)
    if args.json:
        given = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
        args.json.write_text(json.dumps({"args": given, "rows": rows, "generation": gen}))


def report(args: argparse.Namespace, rows: list[dict[str, Any]], gen: dict[str, float]) -> None:
    print("command: .venv/bin/python bench/spos_steps.py " + " ".join(sys.argv[1:]))
    print(f"{args.space}@{args.resolution} w{args.width}, batch {args.batch}, {args.device}; "
          f"median of {args.rounds} rounds x {args.steps} steps")  # fmt: skip
    print(f"{'variant':<20}{'step ms':>10}{'memory MiB':>12}{'params M':>10}")
    for r in rows:
        print(f"{r['variant']:<20}{r['step_ms']:>10.1f}{r['memory_mib']:>12.1f}"
              f"{r['params_m']:>10.2f}")  # fmt: skip
    print(f"evolution: {gen['generation_s']:.2f} s per generation ({gen['scored']:.0f} scored, "
          f"{gen['per_score_s'] * 1000:.0f} ms per score with BN recalibration)")  # fmt: skip


if __name__ == "__main__":
    main()
