"""How close is a device's predictor to the ceiling its labels set? From a service
database: the retests of one kind (`hwlat jobs retest`) against the labels they repeat,
and the kind's current predictor's out-of-fold estimates of the same ops against both.

Train before the retests are measured, so that the predictor's labels do not contain
them (the script refuses a predictor trained after fewer measurements than there are
retest pairs were stored):

    hwlat train --device D
    hwlat jobs retest --device D --kind mbconv --n 150; hwlat agent ... --once
    .venv/bin/python bench/label_ceiling.py --db sqlite:///d.db --device D --kind mbconv

Prints the share within ±10% and ±5% (and the RMS) of: the retest against the label (how
well labels repeat), the predictor against the label (what training reports), against
the retest (an independent label) and against the geometric mean of both (a better
label); overall and per band of the label's latency and of the op's largest kernel
footprint; and how often the raw CIs cover the retest's difference.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from latency_service.db import make_engine, session_factory
from latency_service.repository import retest
from latency_service.repository.devices import get_device
from latency_service.repository.predictors import latest, training_rows
from profiler.features import kernels
from profiler.ops import OpSpec

KIB = 1024


def shares(ratios: Sequence[float]) -> str:
    err = np.abs(np.asarray(ratios) - 1)
    if len(err) == 0:
        return f"{'-':>6} {'-':>6} {'-':>6}"
    rms = float(np.sqrt(np.mean(err**2)))
    return f"{np.mean(err <= 0.10):>6.1%} {np.mean(err <= 0.05):>6.1%} {rms:>6.1%}"


def footprint(key: str) -> float:
    """Input + output bytes of the op's largest kernel."""
    spec = OpSpec.from_key(key)
    return max(((c.inp + c.out) * spec.itemsize for c in kernels(spec)), default=0.0)


def bands(pairs: list[retest.Pair]) -> list[tuple[str, Callable[[retest.Pair], bool]]]:
    by_ms = [
        ("label < 0.1 ms", lambda p: p.label < 0.1),
        ("label 0.1-1 ms", lambda p: 0.1 <= p.label < 1),
        ("label >= 1 ms", lambda p: p.label >= 1),
    ]
    by_bytes = [
        ("kernel < 256 KiB", lambda p: footprint(p.key) < 256 * KIB),
        ("kernel 256 KiB-2 MiB", lambda p: 256 * KIB <= footprint(p.key) < 2048 * KIB),
        ("kernel >= 2 MiB", lambda p: footprint(p.key) >= 2048 * KIB),
    ]
    return [("all", lambda p: True), *by_ms, *by_bytes]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", required=True, help="the service's database URL")
    ap.add_argument("--device", required=True)
    ap.add_argument("--kind", default="mbconv")
    args = ap.parse_args()
    with session_factory(make_engine(args.db))() as s:
        device = get_device(s, args.device)
        found = retest.pairs(s, device, [args.kind]).get(args.kind, [])
        row = latest(s, device).get(args.kind)
        if row is None:
            sys.exit(f"error: no {args.kind} predictor on {args.device}; run hwlat train first")
        rows = training_rows(s, device, row.kind, row.revision, row.watermark, row.dtype)
        keys = list(dict.fromkeys(sp.key for sp in rows.specs))  # heldout: in row order
        pred = {k: float(p) for k, (_, p) in zip(keys, row.heldout, strict=True)}
        n_before = len(rows.specs)
        n_now = len(training_rows(s, device, row.kind, row.revision, None, row.dtype).specs)
    if not found:
        sys.exit(f"error: no {args.kind} retests on {args.device}: hwlat jobs retest first")
    if n_now - n_before < len(found):
        sys.exit("error: the predictor was trained on some retests; train before retesting")
    covered = [p.covered for p in found if p.covered is not None]
    print(f"command: {' '.join(sys.argv)}")
    print(
        f"{len(found)} retest pairs; predictor v{row.version} {row.model} on {row.samples} ops "
        f"({n_before} measurements; {n_now - n_before} stored since, retests included)"
    )
    print(f"raw CIs cover the retest's difference: {np.mean(covered):.0%} of {len(covered)}")
    head = f"{'±10%':>6} {'±5%':>6} {'RMS':>6}"
    names = ("retest/label", "pred/label", "pred/retest", "pred/both")
    print(f"{'':<27} | " + " | ".join(f"{n:<20}" for n in names))
    print(f"{'band':<22} {'n':>4} | " + " | ".join(head for _ in names))
    for name, keep in bands(found):
        sel = [p for p in found if keep(p) and p.key in pred]
        if not sel:
            continue
        cols = [
            [p.retest / p.label for p in sel],
            [pred[p.key] / p.label for p in sel],
            [pred[p.key] / p.retest for p in sel],
            [pred[p.key] / np.sqrt(p.label * p.retest) for p in sel],
        ]
        print(f"{name:<22} {len(sel):>4} | " + " | ".join(shares(c) for c in cols))


if __name__ == "__main__":
    main()
