"""Does the weight-sharing supernet learn? Uniform single-path training (ProxylessNAS's
supernet with no architecture step at all) under each initialisation, beside one fixed
path trained alone with the same steps.

Every variant trains `--epochs` epochs of uniformly sampled paths on the train split
(the searcher core's loop with no architecture step: `arch_every` past the end, so α
stays uniform) and prints,
per epoch, the search-validation accuracy of random paths and of the argmax path after
BN recalibration. The fixed path is one random architecture of the space trained from
scratch (`searchers.retrain`) for the same epochs. Variants differ only in what the
table says; the data, seeds and step counts are the same.

    .venv/bin/python bench/supernet_learns.py --lut lut.json --epochs 8
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from searchers import data as datasets
from searchers.latency import LatencyTable
from searchers.registry import create_searcher, searcher_class
from searchers.retrain import retrain
from searchers.spaces import create_space

VARIANTS = {  # name: (shared_init, zero_residual_bn, lr)
    "default init, lr 0.005": (False, False, 0.005),
    "default init, lr 0.05": (False, False, 0.05),
    "zero last BN of residuals only": (False, True, 0.005),
    "shared candidate init only": (True, False, 0.005),
    "shared init + zero BN (hwlat default)": (True, True, 0.005),
}


def supernet_curve(
    args: argparse.Namespace, table: LatencyTable, data: datasets.Data, shared: bool, zero: bool,
    lr: float,
) -> list[float]:  # fmt: skip
    config = replace(
        searcher_class("proxyless").Config(),
        epochs=args.epochs,
        warmup_epochs=args.epochs - 1,
        arch_every=10**9,
        shared_init=shared,
        zero_residual_bn=zero,
        lr=lr,
        seed=args.seed,
    )
    searcher = create_searcher("proxyless", table=table, data=data, config=config, latency=None)
    searcher.run()
    return [h["sampled_acc"] for h in searcher.history]


def fixed_curve(
    args: argparse.Namespace, table: LatencyTable, data: datasets.Data, lr: float
) -> list[float]:
    arch = table.space.random_arch(seed=args.seed)
    return retrain(table.space, arch, data, args.epochs, lr, args.seed).val_acc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lut", type=Path, required=True, help="proxyless-mobile@32 LUT file")
    ap.add_argument("-w", "--width", type=float, default=0.35)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--dataset", default="digits")
    ap.add_argument("--data-seed", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print("command: .venv/bin/python bench/supernet_learns.py " + " ".join(sys.argv[1:]))
    print(
        f"proxyless-mobile@32 w{args.width}, {args.dataset}; search-validation accuracy per epoch"
    )
    space = create_space("proxyless-mobile", resolution=32, width=args.width, classes=10)
    table = LatencyTable.from_file(args.lut, space)
    data = datasets.load(args.dataset, 32, 64, args.data_seed)
    rows: list[tuple[str, list[float], float]] = []
    for name, (shared, zero, lr) in VARIANTS.items():
        t0 = time.perf_counter()
        rows.append((f"uniform paths, {name}", supernet_curve(args, table, data, shared, zero, lr),
                     time.perf_counter() - t0))  # fmt: skip
        print(f"  done: {rows[-1][0]}", file=sys.stderr, flush=True)
    for lr in (0.005, 0.05):
        t0 = time.perf_counter()
        rows.append(
            (
                f"one fixed path alone (retrain), lr {lr}",
                fixed_curve(args, table, data, lr),
                time.perf_counter() - t0,
            )
        )
    width = max(len(r[0]) for r in rows)
    print(
        f"{'variant':<{width}}  " + " ".join(f"{e + 1:>5}" for e in range(args.epochs)) + "   wall"
    )
    for name, curve, wall in rows:
        print(
            f"{name:<{width}}  " + " ".join(f"{a * 100:5.1f}" for a in curve) + f"  {wall:5.0f} s"
        )


if __name__ == "__main__":
    main()
