"""One tree's searcher step figures, as JSON on stdout (bench/search_steps.py runs it).

`--tree DIR` is a checkout of hwlat: this one, or the commit before the searcher core
(whose API differs: `searchers.base`, `searchers.proxyless`, ...); the script detects
which it has. For each searcher (ProxylessNAS `full_v2` and `two`, FBNet) and each k, the
supernet is cut to the first k candidates of every layer and timed: a weight step, an
architecture step, and the latency term alone; memory is what autograd saves for the
backward pass plus the gradients left (`searchers/core/memory.py` of this checkout,
loaded by path, for both trees).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

KINDS = ("proxyless full_v2", "proxyless two", "fbnet")


def load_step_memory() -> Callable[[Callable[[], Any], Any], int]:
    """`searchers/core/memory.py`'s `step_memory` of the tree this script lives in, loaded by
    path (it imports only torch), so both trees are measured by the same function."""
    path = Path(__file__).resolve().parents[1] / "searchers" / "core" / "memory.py"
    spec = importlib.util.spec_from_file_location("_bench_step_memory", path)
    assert spec is not None and spec.loader is not None  # a file that exists in this checkout
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.step_memory  # type: ignore[no-any-return]


def flops_table(space: Any) -> Any:
    from profiler.features import features
    from searchers.latency import LatencyTable

    ops = space.fixed_ops() + space.distinct_ops()
    return LatencyTable.from_cells(
        space, {op.key: (0.005 + features(op).flops * 2e-8, "measured") for op in ops}
    )


def new_api(kind: str, k: int, table: Any, bs: int) -> dict[str, Callable[[], Any]]:
    import torch

    from searchers import data as datasets
    from searchers.core.losses import SoftLatency
    from searchers.registry import create_searcher, searcher_class

    data = datasets.load("digits", 32, bs)
    name, _, mode = kind.partition(" ")
    # the arch lr of the tree before, so both move α alike between the timed steps
    extra = {"mode": mode} if mode else {}
    cfg = searcher_class(name).Config(epochs=1, warmup_epochs=0, arch_lr=0.05, **extra)
    lo, hi = table.bounds()
    loss = SoftLatency("fbnet") if name == "fbnet" else SoftLatency("mul#log", (lo + hi) / 2)
    s = create_searcher(name, table=table, data=data, config=cfg, latency=loss)
    s.net.keep_first(k)
    s.arch = s.build_arch()  # over the kept candidates
    s.a_opt = s.arch_optimizer()
    c = s.config
    s.w_opt = torch.optim.SGD(s.net.parameters(), lr=c.lr, momentum=0.9, nesterov=True)
    x, y = next(data.train.batches(bs))
    xv, yv = next(data.val.batches(bs))

    def lat() -> None:
        s.arch.zero_grad()
        (0.1 * s.table.expected(s.arch.layer_probs())).backward()

    return {
        "weight": lambda: s.weight_step(x, y, True),  # uniform paths: independent of α
        "arch": lambda: s.arch_step((x, y), (xv, yv)),
        "lat": lat,
        "model": lambda: s.net,
    }


def old_api(kind: str, k: int, table: Any, bs: int) -> dict[str, Callable[[], Any]]:
    import torch
    from searchers.base import SearchConfig  # type: ignore[import-not-found]
    from searchers.fbnet import FBNet  # type: ignore[import-not-found]
    from searchers.losses import SoftLatency  # type: ignore[import-not-found]
    from searchers.proxyless import ProxylessNAS  # type: ignore[import-not-found]

    from searchers import data as datasets

    data = datasets.load("digits", 32, batch_size=bs)
    cfg = SearchConfig(epochs=1, seed=0)
    lo, hi = table.bounds()
    if kind == "fbnet":
        s = FBNet(table, data, cfg, SoftLatency("fbnet"))
    else:
        s = ProxylessNAS(table, data, cfg, SoftLatency("mul#log", (lo + hi) / 2), mode=kind[10:])
    s.net.keep_first(k)
    s.w_opt = torch.optim.SGD(s.net.weight_parameters(), lr=cfg.lr, momentum=0.9, nesterov=True)
    x, y = next(iter(data.train))
    xv, yv = next(iter(data.val))

    def lat() -> None:
        s.net.alpha.grad = None
        (0.1 * s.table.expected(s.net.probs())).backward()

    return {
        "weight": lambda: s.weight_step(x, y, True),  # uniform paths: independent of α
        "arch": lambda: s.arch_step(xv, yv),
        "lat": lat,
        "model": lambda: s.net,
    }


def timed(fn: Callable[[], Any], calls: int = 1) -> float:
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - t0) / calls


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tree", required=True)
    ap.add_argument("--ks", default="2,3,5,7")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--mem-reps", type=int, default=3)
    ap.add_argument("--lat-calls", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    sys.path.insert(0, args.tree)
    import torch

    torch.set_num_threads(args.threads)
    step_memory = load_step_memory()
    from searchers.spaces import create_space

    # told by the files: hwlat's editable install would resolve `searchers.core` to this
    # checkout even when `searchers` itself came from the other tree
    make, api = (
        (new_api, "core") if (Path(args.tree) / "searchers/core").is_dir() else (old_api, "before")
    )
    space = create_space("proxyless-mobile", resolution=32, width=0.35, classes=10)
    table = flops_table(space)
    out: dict[str, Any] = {"api": api, "tree": args.tree, "configs": {}}
    for kind in KINDS:
        for k in (int(v) for v in args.ks.split(",")):
            torch.manual_seed(0)
            fns = make(kind, k, table, args.batch_size)
            mem = {
                n: statistics.median(
                    step_memory(fns[n], fns["model"]()) for _ in range(args.mem_reps)
                )
                for n in ("weight", "arch")
            }
            times: dict[str, list[float]] = {"weight": [], "arch": [], "lat": []}
            for rep in range(args.warmup + args.reps):
                tw, ta = timed(fns["weight"]), timed(fns["arch"])
                tl = timed(fns["lat"], args.lat_calls)
                if rep >= args.warmup:
                    times["weight"].append(tw)
                    times["arch"].append(ta)
                    times["lat"].append(tl)
            out["configs"][f"{kind}|{k}"] = {
                "mem": mem,
                "time": {n: statistics.median(v) for n, v in times.items()},
            }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
