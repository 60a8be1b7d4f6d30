"""Searchers side by side: step time, step memory and the cost of the latency term, vs the
number of candidates per layer.

ProxylessNAS (`full_v2` and `two` architecture steps) and FBNet on proxyless-mobile at
resolution 32, width 0.35, 10 classes, digits data (batch 64) and a synthetic
roofline-like table (as tests/searchers/conftest.py). Each supernet is restricted to
the first k candidates of every layer (k = 2, 3, 5, 7; the six-candidate layers keep
all six at k = 7), with `SuperNet.keep_first`. For every
configuration it prints:

- weight-step and architecture-step time: median of `--reps` timed steps after
  `--warmup` untimed ones, configurations interleaved within each repetition;
- step memory: bytes autograd saves for the backward pass plus the gradients left
  (searchers.memory.step_memory), median over `--mem-reps` steps. PyTorch on a CPU
  keeps no allocator statistics, so this is the CPU measure; with CUDA the allocator's
  peak during the step (above what was allocated before it) is printed too;
- the latency term alone (probs -> table.expected -> x λ -> backward into α) and its
  share of an architecture step.

    .venv/bin/python bench/search_steps.py [--ks 2,3,5,7] [--reps 10] [--warmup 2]
        [--mem-reps 5] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from searchers.base import SearchConfig, Searcher
from searchers.fbnet import FBNet
from searchers.losses import SoftLatency
from searchers.memory import step_memory
from searchers.proxyless import ProxylessNAS

from profiler.features import features
from searchers import data as datasets
from searchers.latency import LatencyTable
from searchers.spaces import SearchSpace, create_space

MIB = 2**20
KINDS = ("proxyless full_v2", "proxyless two", "fbnet")
LAM = 0.1  # λ of the timed latency term; its value does not change the cost


def flops_table(space: SearchSpace) -> LatencyTable:
    """A roofline-like synthetic table: 5 µs per op + 1 ms per 50 MFLOP (as conftest)."""
    ops = space.fixed_ops() + space.distinct_ops()
    return LatencyTable.from_cells(
        space, {op.key: (0.005 + features(op).flops * 2e-8, "measured") for op in ops}
    )


@dataclass
class Config:
    kind: str
    k: int
    searcher: Searcher
    times: dict[str, list[float]] = field(
        default_factory=lambda: {"weight": [], "arch": [], "lat": []}
    )
    mem: dict[str, list[int]] = field(default_factory=lambda: {"weight": [], "arch": []})
    cuda_peak: dict[str, list[int]] = field(default_factory=lambda: {"weight": [], "arch": []})


def make(kind: str, k: int, table: LatencyTable, data: datasets.Data, device: str) -> Config:
    config = SearchConfig(epochs=1, seed=0)
    if kind == "fbnet":
        searcher: Searcher = FBNet(table, data, config, SoftLatency("fbnet"))
    else:
        lo, hi = table.bounds()
        loss = SoftLatency("mul#log", target_ms=(lo + hi) / 2)
        searcher = ProxylessNAS(table, data, config, loss, mode=kind.split()[1])  # type: ignore[arg-type]
    searcher.net.keep_first(k).to(device)  # in place: alpha stays the Adam optimizer's tensor
    searcher.w_opt = torch.optim.SGD(  # as Searcher's, over the kept candidates only
        searcher.net.weight_parameters(),
        lr=config.lr,
        momentum=0.9,
        nesterov=True,
        weight_decay=config.weight_decay,
    )
    return Config(kind, k, searcher)


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def timed(fn: Callable[[], Any], device: str, calls: int = 1) -> float:
    sync(device)
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    sync(device)
    return (time.perf_counter() - t0) / calls


def latency_term(s: Searcher) -> None:
    """The latency term alone: expected latency of the softmax, times λ, backward into α."""
    s.net.alpha.grad = None
    (LAM * s.table.expected(s.net.probs())).backward()


def cuda_peak(fn: Callable[[], Any]) -> int:
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    fn()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - before


def med(xs: list[float] | list[int]) -> float:
    return float(statistics.median(xs))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ks", default="2,3,5,7", help="candidates per layer, comma-separated")
    ap.add_argument("--reps", type=int, default=10, help="timed steps per configuration")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    ap.add_argument("--mem-reps", type=int, default=5, help="memory-measured steps")
    ap.add_argument("--lat-calls", type=int, default=20, help="latency-term calls per timing")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch threads (0: torch's default); on a shared machine with another busy "
        "process, 2 threads on 2 cores can make each step tens of times slower",
    )
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    ks = [int(k) for k in args.ks.split(",")]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    load0 = os.getloadavg()
    t_start = time.perf_counter()

    space = create_space("proxyless-mobile", resolution=32, width=0.35, classes=10)
    table = flops_table(space)
    data = datasets.load("digits", 32, batch_size=args.batch_size)
    x, y = (t.to(device) for t in next(iter(data.train)))
    xv, yv = (t.to(device) for t in next(iter(data.val)))
    configs = [make(kind, k, table, data, device) for kind in KINDS for k in ks]

    # memory: median over a few steps (the sampled paths differ from step to step)
    torch.manual_seed(1)
    for _ in range(args.mem_reps):
        for c in configs:
            s = c.searcher
            c.mem["weight"].append(step_memory(lambda s=s: s.weight_step(x, y, False), s.net))
            c.mem["arch"].append(step_memory(lambda s=s: s.arch_step(xv, yv), s.net))
            if device == "cuda":
                c.cuda_peak["weight"].append(cuda_peak(lambda s=s: s.weight_step(x, y, False)))
                c.cuda_peak["arch"].append(cuda_peak(lambda s=s: s.arch_step(xv, yv)))

    # time: configurations interleaved, the order rotated every repetition
    for rep in range(args.warmup + args.reps):
        shift = rep % len(configs)
        for c in configs[shift:] + configs[:shift]:
            s = c.searcher
            tw = timed(lambda s=s: s.weight_step(x, y, False), device)
            ta = timed(lambda s=s: s.arch_step(xv, yv), device)
            tl = timed(lambda s=s: latency_term(s), device, args.lat_calls)
            if rep >= args.warmup:
                c.times["weight"].append(tw)
                c.times["arch"].append(ta)
                c.times["lat"].append(tl)

    wall = time.perf_counter() - t_start
    load1 = os.getloadavg()
    print(
        f"command: .venv/bin/python bench/search_steps.py --ks {args.ks} --reps {args.reps} "
        f"--warmup {args.warmup} --mem-reps {args.mem_reps} --lat-calls {args.lat_calls} "
        f"--batch-size {args.batch_size} --threads {args.threads}"
    )
    print(
        f"proxyless-mobile res 32 width 0.35 classes 10, digits batch {args.batch_size}, "
        f"synthetic flops table; device {device}, torch {torch.__version__}, "
        f"threads {torch.get_num_threads()}, cpus {os.cpu_count()}; load average "
        f"{load0[0]:.2f} before, {load1[0]:.2f} after; wall {wall:.0f} s"
    )
    print(
        "memory = bytes autograd saved for backward + gradients (searchers.memory."
        "step_memory): PyTorch on a CPU keeps no allocator statistics"
    )
    cuda_cols = device == "cuda"
    head = (
        f"{'searcher':<18}{'k':>3}{'weight ms':>11}{'arch ms':>10}{'lat µs':>9}"
        f"{'lat/arch':>10}{'weight MiB':>12}{'arch MiB':>10}"
    )
    if cuda_cols:
        head += f"{'cuda w MiB':>12}{'cuda a MiB':>12}"
    print(head)
    for c in configs:
        w, a, lat = (med(c.times[n]) for n in ("weight", "arch", "lat"))
        line = (
            f"{c.kind:<18}{c.k:>3}{w * 1e3:>11.1f}{a * 1e3:>10.1f}{lat * 1e6:>9.1f}"
            f"{lat / a:>10.3%}{med(c.mem['weight']) / MIB:>12.2f}{med(c.mem['arch']) / MIB:>10.2f}"
        )
        if cuda_cols:
            line += (
                f"{med(c.cuda_peak['weight']) / MIB:>12.2f}{med(c.cuda_peak['arch']) / MIB:>12.2f}"
            )
        print(line)

    lo, hi = min(ks), max(ks)
    by = {(c.kind, c.k): c for c in configs}
    print(f"ratios {hi} vs {lo} candidates (medians):")
    for kind in KINDS:
        a, b = by[(kind, hi)], by[(kind, lo)]
        r = {f"{n} mem": med(a.mem[n]) / med(b.mem[n]) for n in ("weight", "arch")} | {
            f"{n} time": med(a.times[n]) / med(b.times[n]) for n in ("weight", "arch")
        }
        print(f"  {kind:<18}" + "  ".join(f"{n} {v:.2f}x" for n, v in r.items()))
    pw = med(by[("proxyless full_v2", hi)].mem["weight"]) / med(
        by[("proxyless full_v2", lo)].mem["weight"]
    )
    fw = med(by[("fbnet", hi)].mem["weight"]) / med(by[("fbnet", lo)].mem["weight"])
    worst = max(med(c.times["lat"]) / med(c.times["arch"]) for c in configs)
    print(
        f"acceptance: proxyless weight-step memory {hi} vs {lo}: {pw:.2f}x "
        f"({'meets' if pw <= 1.3 else 'misses'} <= 1.3x); fbnet (all paths) {fw:.2f}x "
        f"({'grows' if fw > 1.3 else 'does not grow'}); latency term at most {worst:.3%} of "
        f"an architecture step ({'meets' if worst < 0.01 else 'misses'} < 1%)"
    )


if __name__ == "__main__":
    main()
