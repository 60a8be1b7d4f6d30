"""How predictor accuracy grows with the number of measured ops, from a service database.

Reads one device's measurements of one op kind (the rows `hwlat train` would use), holds
out a fixed random test set, trains each candidate on growing random subsets of the rest
(several draws per size) and prints the test share within ±10% and ±5%. Answers "how many
measurements would this device need?" without measuring anything.

    .venv/bin/hwlat serve --db sqlite:///lc.db &   # then: devices add, jobs sample, agent
    .venv/bin/python bench/predictor_learning_curve.py --db sqlite:///lc.db --device D \\
        --kind mbconv --sizes 100,200,300,440 --test 110

The kernel-table candidates (`kernel_table_gbm`, `kernel_table_blend` in --models) are
fitted on the device's measured conv ops (all of them, or a random --kernels of them),
as `hwlat train` does.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from latency_service.db import make_engine, session_factory
from latency_service.predictors.kernel_table import KernelTable
from latency_service.predictors.registry import candidate, list_candidates, make
from latency_service.predictors.training import metrics, one_thread
from latency_service.repository.devices import get_device
from latency_service.repository.predictors import kernel_labels, labels, training_rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", required=True, help="the service's database URL")
    ap.add_argument("--device", required=True)
    ap.add_argument("--kind", default="mbconv")
    ap.add_argument("--sizes", default="100,200,300", help="training-set sizes")
    ap.add_argument("--test", type=int, default=100, help="held-out test ops")
    ap.add_argument("--draws", type=int, default=3, help="random training sets per size")
    ap.add_argument("--models", default="kernel_forest,kernel_roofline,roofline_forest")
    ap.add_argument("--kernels", type=int, default=0, help="conv ops for the kernel table (0: all)")
    ap.add_argument(
        "--raw",
        action="store_true",
        help="labels as measured, without dividing out each batch's reference-panel drift "
        "(what `hwlat train` does when the device has readings)",
    )
    args = ap.parse_args()
    with session_factory(make_engine(args.db))() as s:
        device = get_device(s, args.device)
        rows = training_rows(s, device, args.kind)
        # raw: each op's newest measurement as measured; else what `hwlat train` uses
        record = {"repeats": "newest"} if args.raw else None
        ops, y, drift = labels(s, device, device.revision, rows, record, rebuild=args.raw)
        kernels, _ = kernel_labels(s, device, args.kind, ops.specs[0].dtype)
    specs = ops.specs
    sizes = [int(n) for n in args.sizes.split(",")]
    if len(y) < args.test + max(sizes):
        sys.exit(f"error: {len(y)} {args.kind} ops measured; --test + largest size needs more")
    models = [m for m in args.models.split(",") if m in list_candidates()]
    wants = any(candidate(m).needs_kernels for m in models)
    table = kernel_table(kernels, args.kernels) if wants else None
    test = np.random.default_rng(0).choice(len(y), args.test, replace=False)
    pool = np.setdiff1d(np.arange(len(y)), test)
    print(f"command: {' '.join(sys.argv)}")
    print(f"{len(y)} measured {args.kind} ops; {args.test} held out; {args.draws} draws per size")
    if "baseline" in drift:
        print(
            f"labels divided by their batch's drift factor ({drift['normalised']} of them; "
            f"factors p5 {drift['factor_p05']:.3f}, p95 {drift['factor_p95']:.3f})"
        )
    print(f"{'model':<16} {'n':>5} {'±10% (each draw)':<24} {'±10%':>6} {'±5%':>6} {'fit s':>6}")
    for model in models:
        for n in sizes:
            within10, within5, t0 = [], [], time.perf_counter()
            for draw in range(args.draws):
                train = np.random.default_rng(draw + 1).choice(pool, n, replace=False)
                with one_thread():  # as `hwlat train` fits
                    fitted = make(model, table).fit([specs[i] for i in train], y[train])
                    pred = np.asarray(fitted.predict([specs[i] for i in test]))
                m = metrics(pred, y[test])
                within10.append(m["within_10pct"])
                within5.append(m["within_5pct"])
            each = " ".join(f"{v:.2f}" for v in within10)
            fit_s = (time.perf_counter() - t0) / args.draws
            print(
                f"{model:<16} {n:>5} {each:<24} {np.mean(within10):>6.1%} "
                f"{np.mean(within5):>6.1%} {fit_s:>6.1f}"
            )


def kernel_table(kernels: tuple[list, np.ndarray] | None, n: int) -> KernelTable:
    if kernels is None:
        sys.exit("error: kernel-table candidates need measured conv ops (--kind mbconv --kernels)")
    specs, y = kernels
    pick = np.arange(len(y))
    if 0 < n < len(y):
        pick = np.sort(np.random.default_rng(0).choice(len(y), n, replace=False))
    print(f"kernel table: {len(pick)} of {len(y)} measured conv ops")
    return KernelTable([specs[i] for i in pick], y[pick])


if __name__ == "__main__":
    main()
