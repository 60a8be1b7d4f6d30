"""Single-Path NAS against ProxylessNAS and FBNet on the same space: the time and memory
of one search step, side by side in one process.

A search step is what each searcher does per training batch once past its warm-up:

- singlepath: one forward and backward of the super-kernel network (the weights and the
  thresholds descend the same loss; `arch_step` is empty);
- proxyless: a weight step on one sampled path, then an architecture step on a
  search-validation batch with binary gates (the backward recomputes every other
  candidate of each layer under no_grad);
- fbnet: a weight step through the Gumbel-softmax mixture of every candidate, then an
  architecture step through it again.

The variants alternate within each round (the order rotates) and the figures are
medians over rounds, so the VM's drifting speed hits them alike. Memory: on a CPU what
autograd saves for the backward plus the gradients (searchers/core/memory.py), the
larger of the step's weight and architecture parts; on CUDA the peak allocated above
what was allocated before the step. The table is the roofline-like synthetic one of
the steps bench: latency values do not change a step's cost.

    .venv/bin/python bench/singlepath_steps.py -r 32 -w 0.35 --batch 64 --rounds 5
    .venv/bin/python bench/singlepath_steps.py -r 64 -w 1.0 --batch 32 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _search_steps_worker import flops_table  # the steps bench's roofline-like table

from searchers import data as datasets
from searchers.core.loop import Searcher
from searchers.core.losses import HardTarget
from searchers.core.memory import step_memory
from searchers.registry import create_searcher, searcher_class
from searchers.spaces import create_space

MIB = 2**20
NAMES = ("singlepath", "proxyless", "fbnet")


def make(args: argparse.Namespace, name: str) -> Searcher:
    space = create_space(args.space, resolution=args.resolution, width=args.width, classes=10)
    table = flops_table(space)
    data = datasets.load("digits", space.resolution, args.batch, 0)
    config = replace(searcher_class(name).Config(), epochs=1, warmup_epochs=0)
    lo, hi = searcher_class(name).table_bounds(table)
    hard = HardTarget(lo + 0.4 * (hi - lo), "eq", 0.03)
    s = create_searcher(name, table=table, data=data, config=config, latency=hard,
                        device=args.device)  # fmt: skip
    s.epoch = 1  # past the warm-up: every step is a search step
    return s


def search_step(s: Searcher, train: tuple[torch.Tensor, torch.Tensor],
                val: tuple[torch.Tensor, torch.Tensor]) -> None:  # fmt: skip
    s.weight_step(*train, False)
    s.arch_step(train, val)
    s.after_arch_step()


def seconds(s: Searcher, batches: Any, steps: int, cuda: bool) -> float:
    train, val = batches
    if cuda:
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        search_step(s, train, val)
    if cuda:
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / steps * 1000


def memory(s: Searcher, batches: Any, cuda: bool) -> float:
    train, val = batches
    if cuda:
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        search_step(s, train, val)
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - base) / MIB
    weights = step_memory(lambda: s.weight_step(*train, False), s.net)
    arch = step_memory(lambda: s.arch_step(train, val), s.net)
    return max(weights, arch) / MIB


def batches(s: Searcher) -> tuple[tuple[torch.Tensor, torch.Tensor], ...]:
    d = s.data
    x, y = next(iter(d.train.batches(d.batch_size, 0, drop_last=True)))
    vx, vy = next(iter(d.val.batches(d.batch_size, 1, drop_last=True)))
    dev = s.device
    return (x.to(dev), y.to(dev)), (vx.to(dev), vy.to(dev))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--space", default="proxyless-mobile")
    ap.add_argument("-r", "--resolution", type=int, default=32)
    ap.add_argument("-w", "--width", type=float, default=0.35)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=5, help="search steps per round and variant")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", type=Path, help="also write the rows here")
    args = ap.parse_args()
    cuda = args.device == "cuda"
    searchers = {name: make(args, name) for name in NAMES}
    data = {name: batches(s) for name, s in searchers.items()}
    for name, s in searchers.items():
        search_step(s, *data[name])  # warm-up (and Single-Path's thresholds armed)
    times: dict[str, list[float]] = {name: [] for name in NAMES}
    for r in range(args.rounds):
        order = NAMES[r % len(NAMES) :] + NAMES[: r % len(NAMES)]
        for name in order:
            times[name].append(seconds(searchers[name], data[name], args.steps, cuda))
    rows = []
    for name, s in searchers.items():
        params = sum(p.numel() for p in s.net.parameters())
        row = {"searcher": name, "step_ms": statistics.median(times[name])}
        row |= {"memory_mib": memory(s, data[name], cuda), "params_m": params / 1e6}
        rows.append(row)
    report(args, rows)
    if args.json:
        args.json.write_text(json.dumps({"args": vars(args) | {"json": None}, "rows": rows}))


def report(args: argparse.Namespace, rows: list[dict[str, Any]]) -> None:
    print(f"{args.space}@{args.resolution} width {args.width}, batch {args.batch}, "
          f"{args.device}, medians of {args.rounds} rounds x {args.steps} steps")  # fmt: skip
    base = next(r for r in rows if r["searcher"] == "singlepath")
    print(f"{'searcher':<12}{'step ms':>10}{'x singlepath':>14}{'memory MiB':>12}"
          f"{'x singlepath':>14}{'params M':>10}")  # fmt: skip
    for r in rows:
        print(f"{r['searcher']:<12}{r['step_ms']:>10.1f}{r['step_ms'] / base['step_ms']:>14.2f}"
              f"{r['memory_mib']:>12.1f}{r['memory_mib'] / base['memory_mib']:>14.2f}"
              f"{r['params_m']:>10.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
