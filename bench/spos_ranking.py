"""Do one-shot supernets rank architectures as training them alone would?

For SPOS, FairNAS, One-Shot, SMASH and ENAS (any searcher whose `score` rates a path
with its shared or generated weights): train its supernet inside a latency window (ENAS:
its controller too), then score one fixed pool of `--archs` architectures drawn
uniformly inside that window (the same pool for every searcher), twice: with the BN
running statistics as the searcher left them ("plain": after its last per-epoch
evaluation, which re-estimated them for the last path it scored, so not this path's) and
after recalibrating them for each path (SPOS). Then the searcher's own selection
(evolution, random search, the controller's samples) picks one. Every pool architecture
and every pick is trained from scratch with identical settings (`--retrain-seeds` seeds,
test split), and the report gives, per searcher, the Kendall τ between supernet scores
and stand-alone accuracy (with and without recalibration), and the pick's stand-alone
accuracy against the random pool (search vs random at the same latency). Nothing here
reads the test split to choose.

    .venv/bin/python bench/spos_ranking.py --lut lut.json -r 32 --min-ms 0.40 \\
        --max-ms 0.46 --epochs 30 --archs 12 --retrain-epochs 10 --jobs 2
    .venv/bin/python bench/spos_ranking.py --lut lut.json ... --device cuda --jobs 8
    .venv/bin/python bench/spos_ranking.py ... --searcher '' --json pool.json  # the pool only
    .venv/bin/python bench/spos_ranking.py ... --searcher enas,oneshot --reuse pool.json \\
        --set-of spos:population=20 --epochs-of oneshot=6
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
from scipy.stats import kendalltau

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from search_vs_random import setting  # the same space, table and data from the same flags

from searchers.core.config import apply_sets
from searchers.core.evaluate import accuracy
from searchers.core.loop import Searcher
from searchers.core.losses import HardTarget
from searchers.core.window import WindowSampler
from searchers.latency import LatencyTable
from searchers.registry import create_searcher, searcher_class
from searchers.retrain import retrain


def pool(args: argparse.Namespace, table: LatencyTable) -> list[list[int]]:
    hard = HardTarget.between(args.min_ms, args.max_ms)
    sampler = WindowSampler(table, *hard.window(), hard.satisfied)
    gen = torch.Generator().manual_seed(args.random_seed)
    out: list[list[int]] = []
    for _ in range(100 * args.archs):
        cols = sampler.sample(gen)
        if cols not in out:
            out.append(cols)
        if len(out) == args.archs:
            break
    return out


def plain_score(s: Searcher, cols: list[int]) -> float:
    """Accuracy with the running statistics training left (no recalibration)."""
    batches = ((x.to(s.device), y.to(s.device)) for x, y in s.data.val.batches(256))
    s.net.eval()
    return accuracy(s.net, s.forward, s.plan_for(cols), batches)


def search_unit(args: argparse.Namespace, name: str) -> dict[str, Any]:
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    _, table, data = setting(args)
    epochs = dict(e.split("=", 1) for e in args.epochs_of).get(name, args.epochs)
    own = [kv.split(":", 1)[1] for kv in args.set_of if kv.split(":", 1)[0] == name]
    config = apply_sets(searcher_class(name).Config, [*args.set, *own, f"epochs={epochs}"])
    hard = HardTarget.between(args.min_ms, args.max_ms)
    s = create_searcher(name, table=table, data=data, config=config, latency=hard,
                        device=args.device)  # fmt: skip
    s.train_epochs(config.epochs, None, None)
    trained_s = time.perf_counter() - t0
    archs = pool(args, table)
    plain = [plain_score(s, c) for c in archs]  # first: recalibration overwrites the stats
    recal = [s.score(c) for c in archs]
    t1 = time.perf_counter()
    result = s.finish()
    gens = result.selection.get("generations", [])[1:]
    return {
        "searcher": name, "plain": plain, "recal": recal,
        "pick": list(table.names(result.columns)), "pick_ms": result.table_ms,
        "pick_val_acc": result.val_acc,
        "curve": [[r["epoch"], r["train_loss"], r.get("sampled_acc", r.get("argmax_acc"))]
                  for r in result.history],
        "train_s": trained_s, "select_s": time.perf_counter() - t1,
        "generation_s": statistics.median(g["seconds"] for g in gens) if gens else None,
        "evaluated": result.selection.get("evaluated", len(result.selection["considered"])),
    }  # fmt: skip


def retrain_unit(args: argparse.Namespace, choices: list[str]) -> list[float]:
    torch.set_num_threads(1)
    space, _, data = setting(args)
    runs = [
        retrain(space, choices, data, args.retrain_epochs, args.retrain_lr, seed, args.device)
        for seed in range(args.retrain_seeds)
    ]
    return [r.test_acc for r in runs if r.test_acc is not None]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--searcher", default="spos,fairnas")
    ap.add_argument("--space", default="spos-shufflenet")
    ap.add_argument("-r", "--resolution", type=int, default=32)
    ap.add_argument("-w", "--width", type=float, default=1.0)
    ap.add_argument("-o", "--option", action="append", default=[], help="space NAME=VALUE")
    ap.add_argument("--lut", type=Path, required=True)
    ap.add_argument("--min-ms", type=float, required=True)
    ap.add_argument("--max-ms", type=float, required=True)
    ap.add_argument("--epochs", type=int, default=30, help="supernet training epochs")
    ap.add_argument(
        "--epochs-of",
        action="append",
        default=[],
        help="NAME=E: another count for one searcher (fairnas=30: SPOS's compute)",
    )
    ap.add_argument("--set", action="append", default=[], help="searcher option KEY=VALUE")
    ap.add_argument(
        "--set-of", action="append", default=[], help="NAME:KEY=VALUE, one searcher's option"
    )
    ap.add_argument("--archs", type=int, default=12, help="random architectures (>= 10)")
    ap.add_argument("--random-seed", type=int, default=0)
    ap.add_argument("--dataset", default="digits")
    ap.add_argument("--data-seed", type=int, default=0)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--retrain-epochs", type=int, default=10)
    ap.add_argument("--retrain-lr", type=float, default=0.05)
    ap.add_argument("--retrain-seeds", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--reuse", type=Path, help="an earlier --json: its retrained accuracies")
    args = ap.parse_args()
    names = [n for n in args.searcher.split(",") if n]
    for item in args.set_of:
        if ":" not in item or item.split(":", 1)[0] not in names:
            ap.error(f"--set-of {item}: expected NAME:KEY=VALUE with NAME in --searcher")
    if args.reuse and not args.reuse.exists():
        sys.exit(f"--reuse: no {args.reuse} (an earlier run's --json)")
    t0 = time.perf_counter()
    _, table, _ = setting(args)
    archs = [list(table.names(c)) for c in pool(args, table)]
    context = multiprocessing.get_context("spawn" if args.device == "cuda" else None)
    with ProcessPoolExecutor(args.jobs, mp_context=context) as ex:
        searched = []
        for row in ex.map(search_unit, [args] * len(names), names):
            searched.append(row)  # one line per supernet: partial figures if cut short
            print(f"{row['searcher']}: curve {row['curve']}, plain {row['plain']}, recal "
                  f"{row['recal']}, pick {row['pick']}", file=sys.stderr, flush=True)  # fmt: skip
        print(f"supernets trained and searched, {time.perf_counter() - t0:.0f} s",
              file=sys.stderr, flush=True)  # fmt: skip
        todo = archs + [r["pick"] for r in searched]
        known = reused(args.reuse)
        fresh = [a for a in todo if tuple(a) not in known]
        for arch, got in zip(fresh, ex.map(retrain_unit, [args] * len(fresh), fresh), strict=True):
            known[tuple(arch)] = statistics.mean(got)
        accs = [known[tuple(a)] for a in todo]
    summary = summarise(searched, accs[: len(archs)], accs[len(archs) :])
    report(args, table, archs, searched, accs, summary, time.perf_counter() - t0)
    if args.json:
        given = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
        args.json.write_text(json.dumps({"args": given, "archs": archs, "searched": searched,
                                         "acc": accs, "summary": summary}, indent=1))  # fmt: skip


def reused(path: Path | None) -> dict[tuple[str, ...], float]:
    """Stand-alone accuracies of an earlier run (same retraining settings): not retrained."""
    if path is None:
        return {}
    old = json.loads(path.read_text())
    todo = old["archs"] + [r["pick"] for r in old["searched"]]
    return {tuple(a): acc for a, acc in zip(todo, old["acc"], strict=True)}


def summarise(
    searched: list[dict[str, Any]], pool_acc: list[float], pick_acc: list[float]
) -> dict[str, Any]:
    out: dict[str, Any] = {"random_median": statistics.median(pool_acc),
                           "random_best": max(pool_acc)}  # fmt: skip
    for row, acc in zip(searched, pick_acc, strict=True):
        tau_r, p_r = kendalltau(row["recal"], pool_acc)
        tau_p, p_p = kendalltau(row["plain"], pool_acc)
        out[row["searcher"]] = {
            "tau_recal": float(tau_r), "p_recal": float(p_r),
            "tau_plain": float(tau_p), "p_plain": float(p_p),
            "pick_acc": acc, "pick_rank": 1 + sum(a > acc for a in pool_acc),
        }  # fmt: skip
    return out


def report(
    args: argparse.Namespace,
    table: LatencyTable,
    archs: list[list[str]],
    searched: list[dict[str, Any]],
    accs: list[float],
    summary: dict[str, Any],
    wall: float,
) -> None:
    print("command: .venv/bin/python bench/spos_ranking.py " + " ".join(sys.argv[1:]))
    print(f"{args.space}@{args.resolution} w{args.width}, window {args.min_ms}..{args.max_ms} "
          f"ms, {args.dataset}; supernets {args.epochs} epochs {args.epochs_of}; retrained "
          f"{args.retrain_epochs} epochs x {args.retrain_seeds} seeds, test accuracy")  # fmt: skip
    head = "".join(
        f"{r['searcher'] + ' plain':>14}{r['searcher'] + ' recal':>14}" for r in searched
    )
    print(f"{'arch':>5}{'table ms':>10}{'alone':>8}{head}")
    for i, names in enumerate(archs):
        cells = "".join(f"{r['plain'][i]:>14.3f}{r['recal'][i]:>14.3f}" for r in searched)
        print(f"{i:>5}{table.exact(table.index(names)):>10.4f}{accs[i]:>8.3f}{cells}")
    print(f"random pool ({len(archs)}): median {summary['random_median']:.3f}, best "
          f"{summary['random_best']:.3f}")  # fmt: skip
    for r in searched:
        s = summary[r["searcher"]]
        print(f"{r['searcher']}: Kendall τ recalibrated {s['tau_recal']:+.2f} "
              f"(p {s['p_recal']:.2f}), plain {s['tau_plain']:+.2f} (p {s['p_plain']:.2f}); "
              f"pick {r['pick_ms']:.4f} ms, "
              f"alone {s['pick_acc']:.3f}, rank {s['pick_rank']} of {len(archs) + 1}; supernet "
              f"{r['train_s']:.0f} s, selection {r['select_s']:.0f} s, "
              f"{r['evaluated']} scored")  # fmt: skip
    print(f"wall {wall:.0f} s ({args.jobs} processes, {args.device})")


if __name__ == "__main__":
    main()
