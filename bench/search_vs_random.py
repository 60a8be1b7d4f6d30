"""Search vs random at the same latency: the standard sanity check of a NAS method.

For each searcher and each of `--seeds` search seeds, run the search against the table
with a hard target; draw `--random` architectures uniformly among those whose table
latency is inside the same window (rejection sampling from the uniform distribution
over the space); train every architecture from scratch with identical settings (same
data, epochs, learning rate and `--retrain-seeds`); and report test-split accuracy per
group (mean ± std), each searched architecture's rank among the random ones, the random
median, the random spread, and wall time. Nothing in the search reads the test split.

    .venv/bin/python bench/search_vs_random.py --searcher proxyless,fbnet \\
        --space proxyless-mobile -r 32 -w 0.35 --lut lut.json --target-ms 0.151 \\
        --seeds 3 --random 8 --dataset digits-hard --retrain-epochs 10 --jobs 2
    .venv/bin/python bench/search_vs_random.py --searcher darts,gdas --space darts \\
        -r 32 -o C=8 -o cells=5 --lut darts.json --target-ms 1.0 --device cuda --jobs 8

On the darts space an architecture is a genotype: the random ones are drawn uniformly
(two distinct inputs per node, a random op that is not `none` each) and kept when their
table latency is inside the window.

Searches and retrainings run in `--jobs` processes (one torch thread each); every unit is
deterministic under its seed, so the figures do not depend on `--jobs`. `--reuse
FILE.json` takes the searched and random architectures of an earlier run and only
retrains them (other retraining settings, the same architectures).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import torch

from searchers import data as datasets
from searchers.core.cell_search import CellSearcher
from searchers.core.config import apply_sets
from searchers.core.genotype import edge_costs, genotype_ms, random_genotype
from searchers.core.losses import HardTarget
from searchers.latency import LatencyTable
from searchers.registry import create_searcher, searcher_class
from searchers.retrain import retrain
from searchers.spaces import SearchSpace, create_space


def setting(args: argparse.Namespace) -> tuple[SearchSpace, LatencyTable, datasets.Data]:
    options = {k: int(v) for k, v in (o.split("=", 1) for o in args.option)}
    space = create_space(
        args.space, resolution=args.resolution, width=args.width, classes=10, **options
    )
    table = LatencyTable.from_file(args.lut, space)
    table.check()
    data = datasets.load(args.dataset, space.resolution, args.batch_size, args.data_seed)
    return space, table, data


def search_unit(args: argparse.Namespace, name: str, seed: int) -> dict[str, Any]:
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    _, table, data = setting(args)
    config = apply_sets(searcher_class(name).Config, [*args.set, f"seed={seed}"])
    hard = HardTarget(args.target_ms, "eq", args.tolerance)
    s = create_searcher(name, table=table, data=data, config=config, latency=hard,
                        device=args.device)  # fmt: skip
    result = s.run()
    return {
        "group": name,
        "seed": seed,
        "choices": table.space.arch_to_json(result.arch),
        "table_ms": result.table_ms,
        "proposed_ms": result.proposed_ms,
        "repaired": len(result.repair["changed"]) if result.repair else 0,
        "supernet_test_acc": result.test_acc,
        "last_epoch": {k: v for k, v in result.history[-1].items() if k != "probs"},
        "search_s": time.perf_counter() - t0,
    }


def retrain_unit(args: argparse.Namespace, choices: list[str]) -> dict[str, Any]:
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    space, _, data = setting(args)
    accs = [
        retrain(
            space, choices, data, args.retrain_epochs, args.retrain_lr, seed, args.device
        ).test_acc
        for seed in range(args.retrain_seeds)
    ]
    return {"test_acc": accs, "retrain_s": time.perf_counter() - t0}


def random_pool(args: argparse.Namespace) -> list[dict[str, Any]]:
    """`--random` distinct architectures drawn uniformly from the space, kept when their
    table latency is inside the window (rejection sampling, 10 000 draws at a time)."""
    _, table, _ = setting(args)
    hard = HardTarget(args.target_ms, "eq", args.tolerance)
    gen = torch.Generator().manual_seed(args.random_seed)
    if any(issubclass(searcher_class(n), CellSearcher) for n in args.searcher.split(",")):
        return random_genotypes(args, table, hard, gen)
    legal = table.mask.double()
    probs = legal / legal.sum(1, keepdim=True)  # uniform over each layer's legal candidates
    rows = torch.arange(len(probs))
    pool: list[list[int]] = []
    for _ in range(100):
        draws = torch.multinomial(probs, 10_000, replacement=True, generator=gen).T  # (10000, L)
        lat = table.fixed_ms + table.table[rows, draws].sum(1)
        for i in torch.nonzero((lat - hard.target_ms).abs() <= hard.target_ms * hard.tolerance):
            cols = draws[int(i)].tolist()
            if hard.satisfied(table.exact(cols)) and cols not in pool:
                pool.append(cols)
        if len(pool) >= args.random:
            break
    return [
        {"group": "random", "seed": i, "choices": list(table.names(c)), "table_ms": table.exact(c)}
        for i, c in enumerate(pool[: args.random])
    ]


def random_genotypes(
    args: argparse.Namespace, table: LatencyTable, hard: HardTarget, gen: torch.Generator
) -> list[dict[str, Any]]:
    """Uniform genotypes kept when inside the window (rejection sampling)."""
    costs, pool = edge_costs(table), []
    for _ in range(200_000):
        g = random_genotype(gen)
        if hard.satisfied(genotype_ms(table, costs, g)) and g not in pool:
            pool.append(g)
            if len(pool) == args.random:
                break
    return [
        {
            "group": "random",
            "seed": i,
            "table_ms": genotype_ms(table, costs, g),
            "choices": table.space.arch_to_json(g),
        }
        for i, g in enumerate(pool)
    ]


def summarise(rows: list[dict[str, Any]], searchers: list[str]) -> dict[str, Any]:
    rand = sorted((r["acc"] for r in rows if r["group"] == "random"), reverse=True)
    out: dict[str, Any] = {
        "random": {
            "n": len(rand),
            "mean": statistics.mean(rand),
            "std": statistics.stdev(rand) if len(rand) > 1 else 0.0,
            "median": statistics.median(rand),
            "spread": rand[0] - rand[-1],
        }
    }
    for name in searchers:
        accs = [r["acc"] for r in rows if r["group"] == name]
        ranks = [1 + sum(a > acc for a in rand) for acc in accs]
        out[name] = {
            "n": len(accs),
            "mean": statistics.mean(accs),
            "std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
            "ranks": ranks,
            "above_random_median": sum(acc > out["random"]["median"] for acc in accs),
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--searcher", default="proxyless", help="comma-separated")
    ap.add_argument("--space", default="proxyless-mobile")
    ap.add_argument("-r", "--resolution", type=int, default=32)
    ap.add_argument("-w", "--width", type=float, default=0.35)
    ap.add_argument("-o", "--option", action="append", default=[], help="space NAME=VALUE")
    ap.add_argument("--device", default="cpu", help="where searches and retraining run")
    ap.add_argument("--lut", type=Path, required=True)
    ap.add_argument("--target-ms", type=float, required=True)
    ap.add_argument("--tolerance", type=float, default=0.03)
    ap.add_argument("--seeds", type=int, default=3, help="search seeds per searcher")
    ap.add_argument("--random", type=int, default=8, help="random architectures")
    ap.add_argument("--random-seed", type=int, default=0)
    ap.add_argument("--dataset", default="digits-hard")
    ap.add_argument("--data-seed", type=int, default=0)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--set", action="append", default=[], help="searcher option KEY=VALUE")
    ap.add_argument("--retrain-epochs", type=int, default=10)
    ap.add_argument("--retrain-lr", type=float, default=0.05)
    ap.add_argument("--retrain-seeds", type=int, default=2)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--json", type=Path, help="write every figure here")
    ap.add_argument("--reuse", type=Path, help="retrain the architectures of an earlier --json")
    args = ap.parse_args()
    names = args.searcher.split(",")
    t0 = time.perf_counter()
    # CUDA cannot be forked into workers: spawn them when they use it
    context = multiprocessing.get_context("spawn" if args.device == "cuda" else None)
    with ProcessPoolExecutor(args.jobs, mp_context=context) as ex:
        if args.reuse:  # the architectures of an earlier run, retrained with these settings
            rows = [
                {k: v for k, v in r.items() if k in KEPT}
                for r in json.loads(args.reuse.read_text())["rows"]
            ]
            names = list(dict.fromkeys(r["group"] for r in rows if r["group"] != "random"))
            args.searcher = ",".join(names)
        else:
            rows = search_all(args, ex, names)  # the searched, then the random pool
        t_search = time.perf_counter() - t0
        trained = retrain_all(args, ex, rows)
    for row, t in zip(rows, trained, strict=True):
        row.update(t, acc=statistics.mean(t["test_acc"]))
    summary = summarise(rows, names)
    wall = time.perf_counter() - t0
    report(args, rows, summary, t_search, wall)
    if args.json:
        given = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
        record = {"args": given, "rows": rows, "summary": summary, "wall_s": wall}
        args.json.write_text(json.dumps(record, indent=1))


# what --reuse keeps of an earlier run's rows: the architectures and how they were found
KEPT = ("group", "seed", "choices", "table_ms", "proposed_ms", "repaired", "supernet_test_acc",
        "last_epoch", "search_s")  # fmt: skip


def search_all(
    args: argparse.Namespace, ex: ProcessPoolExecutor, names: list[str]
) -> list[dict[str, Any]]:
    pool = random_pool(args)  # first: a window too narrow fails before hours of search
    if len(pool) < args.random:
        sys.exit(f"only {len(pool)} random architectures inside the window; widen --tolerance")
    units = [(args, n, s) for n in names for s in range(args.seeds)]
    searched = []
    for row in ex.map(search_unit, *zip(*units, strict=True)):
        searched.append(row)  # one line per finished unit: long runs show progress
        print(f"searched {row['group']} seed {row['seed']}: {row['table_ms']:.4f} ms, "
              f"{row['search_s']:.0f} s", file=sys.stderr, flush=True)  # fmt: skip
    return searched + pool


def retrain_all(
    args: argparse.Namespace, ex: ProcessPoolExecutor, rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    trained = []
    jobs = ex.map(retrain_unit, [args] * len(rows), [r["choices"] for r in rows])
    for row, t in zip(rows, jobs, strict=True):
        trained.append(t)
        print(f"retrained {row['group']} {row['seed']}: {t['test_acc']}, {t['retrain_s']:.0f} s",
              file=sys.stderr, flush=True)  # fmt: skip
    return trained


def report(
    args: argparse.Namespace,
    rows: list[dict[str, Any]],
    summary: dict[str, Any],
    t_search: float,
    wall: float,
) -> None:
    print("command: .venv/bin/python bench/search_vs_random.py " + " ".join(sys.argv[1:]))
    print(
        f"{args.space}@{args.resolution} w{args.width}, target {args.target_ms} ms ±"
        f"{args.tolerance:.0%}, {args.dataset} (data seed {args.data_seed}); every architecture "
        f"retrained {args.retrain_epochs} epochs, lr {args.retrain_lr}, {args.retrain_seeds} "
        f"seeds; test-split accuracy"
    )
    print(f"{'group':<10}{'seed':>5}{'table ms':>10}{'repaired':>9}{'test acc':>10}  per seed")
    for r in rows:
        per = " ".join(f"{a:.3f}" for a in r["test_acc"])
        print(
            f"{r['group']:<10}{r['seed']:>5}{r['table_ms']:>10.4f}{r.get('repaired', ''):>9}"
            f"{r['acc']:>10.3f}  {per}"
        )
    rnd = summary["random"]
    print(
        f"random ({rnd['n']}): {rnd['mean']:.3f} ± {rnd['std']:.3f}, median {rnd['median']:.3f}, "
        f"spread {rnd['spread'] * 100:.1f} points"
    )
    for name in args.searcher.split(","):
        s = summary[name]
        print(
            f"{name} ({s['n']} seeds): {s['mean']:.3f} ± {s['std']:.3f}; rank among "
            f"{rnd['n']} random: {s['ranks']} (1 = best); above the random median: "
            f"{s['above_random_median']} of {s['n']}"
        )
    print(f"wall: searches {t_search:.0f} s, all {wall:.0f} s ({args.jobs} processes)")


if __name__ == "__main__":
    main()
