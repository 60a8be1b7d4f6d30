"""Predictor accuracy on the search spaces' own ops, trained only on random samples.

Cross-validation on random samples asks "how well are unseen configurations of the prior
predicted?". A searcher asks something narrower: the ops of its space, at its resolution,
that the device never measured. This reads one device's measurements from a service
database, holds out every op of the named spaces (queue them with `hwlat jobs add
--space S --resolution R` and measure them first), trains each candidate on the other
ops of the kind, the random samples (`hwlat jobs sample`), and prints the held-out share
within ±10% and ±5% per space and overall.

    .venv/bin/python bench/predictor_space_holdout.py --db sqlite:///m.db --device D \\
        --spaces fbnet@32,fbnet@224,proxyless-mobile@32 \\
        --models kernel_gbm_mlas,kernel_table_blend,kernel_net,kernel_net_blend
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from latency_service.db import make_engine, session_factory
from latency_service.predictors.registry import candidate, list_candidates, make
from latency_service.predictors.training import (
    kernel_table,
    metrics,
    one_thread,
)
from latency_service.repository.devices import get_device
from latency_service.repository.predictors import kernel_labels, labels, training_rows
from searchers.spaces import create_space


def space_keys(spaces: str, kind: str) -> dict[str, set[str]]:
    """'fbnet@32,...' -> {'fbnet@32': the keys of its distinct ops of `kind`}."""
    out = {}
    for item in spaces.split(","):
        name, _, res = item.partition("@")
        space = create_space(name, resolution=int(res) if res else None)
        out[item] = {op.key for op in space.distinct_ops() if op.kind == kind}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", required=True, help="the service's database URL")
    ap.add_argument("--device", required=True)
    ap.add_argument("--kind", default="mbconv")
    ap.add_argument("--spaces", default="fbnet@32,fbnet@224,proxyless-mobile@32")
    ap.add_argument("--models", default="kernel_gbm_mlas,kernel_table_blend,kernel_net_blend")
    args = ap.parse_args()
    with session_factory(make_engine(args.db))() as s:
        device = get_device(s, args.device)
        ops, y, _ = labels(s, device, device.revision, training_rows(s, device, args.kind), None)
        kernels, _ = kernel_labels(s, device, args.kind, ops.specs[0].dtype)
    specs, held = ops.specs, space_keys(args.spaces, args.kind)
    every = set().union(*held.values())
    test = np.array([i for i, sp in enumerate(specs) if sp.key in every])
    train = np.array([i for i, sp in enumerate(specs) if sp.key not in every])
    if len(test) == 0:
        sys.exit(f"error: no {args.kind} op of {args.spaces} is measured; queue them first")
    models = [m for m in args.models.split(",") if m in list_candidates()]
    wants = any(candidate(m).needs_kernels for m in models)
    table = kernel_table(args.kind, kernels) if wants else None
    if wants and table is None:
        sys.exit("error: kernel-table candidates need measured conv ops (--kind mbconv --kernels)")
    print(f"command: {' '.join(sys.argv)}")
    print(f"trained on {len(train)} random {args.kind} ops; {len(test)} space ops held out")
    names = [*held, "all"]
    print(f"{'model':<24} " + " ".join(f"{n:>22}" for n in names) + f" {'fit s':>6}")
    for model in models:
        t0 = time.perf_counter()
        with one_thread():
            fitted = make(model, table).fit([specs[i] for i in train], y[train])
            pred = np.asarray(fitted.predict([specs[i] for i in test]))
        cells = []
        for name in names:
            pick = [j for j, i in enumerate(test) if name == "all" or specs[i].key in held[name]]
            m = metrics(pred[pick], y[test][pick])
            cells.append(f"{m['within_10pct']:.1%} / {m['within_5pct']:.1%} (n={len(pick)})")
        print(f"{model:<24} " + " ".join(f"{c:>22}" for c in cells), end="")
        print(f" {time.perf_counter() - t0:>6.1f}")
    print("cells: share within ±10% / within ±5% of the measured latency (n: space ops)")


if __name__ == "__main__":
    main()
