"""`hwlat train` before and after the predictor registry, on the same measurements, in one run.

Before: every candidate cross-validated (what `hwlat train` did by default, now `--model
all`). After: the registry's default set (what `hwlat train` does now). Both call the
function `hwlat train` runs for each kind (`predictors.training.train`: seeded 5-fold
cross-validation, the device's conv ops measured alone as its kernel table), on the
same rows, one after the other in this process, and the script prints per kind the
candidate picked, its held-out RMSPE and shares within ±5% / ±10%, and the wall time.

The measurements are this machine's (ort-cpu, one thread), taken once with the real
timing engine into a hwlat-lut/1 file (resumable) and reused:

    .venv/bin/python bench/predictor_registry.py --lut /tmp/registry-lut.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from devices.profiling import profile_ops
from devices.runtimes import create_runtime
from latency_service.predictors.registry import default_candidates, list_candidates
from latency_service.predictors.training import Trained, train
from profiler.ops import OpSpec
from profiler.sampling import sample_ops
from profiler.timing import TimingConfig


def sampled(args: argparse.Namespace) -> dict[str, list[OpSpec]]:
    """The ops to measure, per training kind ("conv" = mbconv kernels measured alone)."""
    return {
        "mbconv": sample_ops("mbconv", args.mbconv, seed=31),
        "conv": sample_ops("mbconv", args.kernels, seed=32, kernels=True),
        "shuffle": sample_ops("shuffle", args.shuffle, seed=33),
        "sep_conv": sample_ops("sep_conv", args.sep_conv, seed=34),
    }


def measure(lut: Path, ops: list[OpSpec], console: Console) -> dict[str, float]:
    """Median ms per key; measures into `lut` what it does not hold yet."""
    config = TimingConfig(budget_s=0.2, rounds=3, max_rounds=4)
    with create_runtime("ort-cpu", threads=1) as rt:
        report = profile_ops(rt, ops, config, out=lut, drift=None)  # as its tables were made
    console.print(f"{lut}: {report.kept} kept, {report.measured} measured, {report.failed} failed")
    data = json.loads(lut.read_text())
    return {k: v["median_ms"] for k, v in data["ops"].items()}


def timed(kind: str, specs: list[OpSpec], ms: list[float], models: list[str] | None,
          kernels: tuple[list[OpSpec], np.ndarray]) -> tuple[Trained, float]:  # fmt: skip
    t0 = time.perf_counter()
    trained = train(kind, specs, ms, models=models, kernels=kernels)
    return trained, time.perf_counter() - t0


def row(label: str, t: Trained, seconds: float) -> list[str]:
    m = t.cv[t.model]
    shares = (f"{m['rmspe']:.1%}", f"{m['within_5pct']:.1%}", f"{m['within_10pct']:.1%}")
    return [label, t.model, str(len(t.cv)), *shares, f"{seconds:.1f}"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lut", type=Path, required=True, help="measurements (made if missing)")
    ap.add_argument("--mbconv", type=int, default=300)
    ap.add_argument("--kernels", type=int, default=200)
    ap.add_argument("--shuffle", type=int, default=120)
    ap.add_argument("--sep-conv", type=int, default=120)
    args = ap.parse_args()
    console = Console(width=150)
    console.print(f"command: {' '.join(sys.argv)}")
    ops = sampled(args)
    ms = measure(args.lut, [op for group in ops.values() for op in group], console)
    conv = [op for op in ops["conv"] if op.key in ms]
    kernels = (conv, np.array([ms[op.key] for op in conv]))
    console.print(f"default set: {', '.join(default_candidates())}")
    measured = [op for group in ops.values() for op in group if op.key in ms]
    ratios = {}
    for kind in ("mbconv", "conv", "shuffle", "xception", "sep_conv"):  # as `hwlat train`
        specs = [op for op in measured if op.kind == kind]
        y = [ms[op.key] for op in specs]
        before, t_before = timed(kind, specs, y, list(list_candidates()), kernels)
        after, t_after = timed(kind, specs, y, None, kernels)
        table = Table("kind", "rows", "set", "picked", "cands", "RMSPE", "±5%", "±10%", "wall s")
        table.add_row(kind, str(len(specs)), *row("all (before)", before, t_before))
        table.add_row("", "", *row("default (after)", after, t_after))
        console.print(table)  # per kind, as it finishes
        ratios[kind] = (t_after, t_before)
        kept = after.cv[after.model]["within_10pct"] >= before.cv[before.model]["within_10pct"]
        console.print(f"{kind}: ±10% {'same or better' if kept else 'LOWER'} with the default set")
    total_after, total_before = (sum(t[i] for t in ratios.values()) for i in (0, 1))
    console.print(
        "wall time after / before: "
        + ", ".join(f"{k} {a / b:.2f}" for k, (a, b) in ratios.items())
        + f"; all kinds {total_after:.0f} s / {total_before:.0f} s = "
        f"{total_after / total_before:.2f}"
    )


if __name__ == "__main__":
    main()
