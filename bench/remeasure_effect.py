"""What measuring again the ops of disturbed batches does to a predictor, side by side.

Reads one device's ops of one kind from a service database where the re-measuring rules
were on (`repository/remeasure.py`): each op has its first measurement and, if its batch
was disturbed or its CI too wide, newer ones. Every measurement is divided by its own
batch's drift factor, as `hwlat train` does. The same candidate is cross-validated on
the same folds with labels from

- the first measurement of every op (what a service without the rules would have),
- the newest measurement, and
- the median of all of an op's measurements (what `hwlat train` uses),

scored against their own labels and against the others', and broken down by whether the
op was measured again. Prints the share within ±10% / ±5% and RMSPE for each pair.

With `--retest-device D2` (a second device on the same machine and runtime that measured
some of the same ops later, through its own agent run with the same rules) it also
prints how far the labels themselves repeat, the ceiling of any predictor scored against
one label, and the newest-label predictions scored against D2's labels and against the
geometric mean of the two.

    .venv/bin/python bench/remeasure_effect.py --db sqlite:///p10.db --device p10m \\
        --kind mbconv --models kernel_gbm_nchwc
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from sklearn.model_selection import KFold
from sqlalchemy import func, select
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from latency_service.db import make_engine, session_factory
from latency_service.models import Device, Measurement, Op
from latency_service.predictors.models import SEED
from latency_service.predictors.registry import make
from latency_service.predictors.training import metrics, one_thread
from latency_service.repository.devices import get_device
from latency_service.repository.predictors import Rows, labels, training_rows
from profiler.ops import OpSpec


def rows(s: Session, device: Device, kind: str, newest: bool) -> Rows:
    """The first (or newest) measurement of every op of `kind`, ordered by key."""
    pick = func.max(Measurement.id) if newest else func.min(Measurement.id)
    ids = (
        select(pick)
        .join(Op, Op.id == Measurement.op_id)
        .where(
            Measurement.device_id == device.id,
            Measurement.revision == device.revision,
            Op.kind == kind,
        )
        .group_by(Measurement.op_id)
        .scalar_subquery()
    )
    got = s.execute(
        select(Op.key, Measurement.median_ms, Measurement.reference_id, Measurement.run_id)
        .join(Measurement, Measurement.op_id == Op.id)
        .where(Measurement.id.in_(ids))
        .order_by(Op.key)
    ).all()
    return Rows(
        [OpSpec.from_key(k) for k, *_ in got],
        [float(ms) for _, ms, _, _ in got],
        [ref for _, _, ref, _ in got],
        [run for *_, run in got],
        0,
    )


def cross_validate(model: str, specs: list[OpSpec], y: np.ndarray) -> np.ndarray:
    pred = np.empty_like(y)
    with one_thread():
        for tr, te in KFold(5, shuffle=True, random_state=SEED).split(specs):
            fitted = make(model).fit([specs[i] for i in tr], y[tr])
            pred[te] = fitted.predict([specs[i] for i in te])
    return pred


def line(label: str, pred: np.ndarray, true: np.ndarray) -> str:
    m = metrics(pred, true)
    return f"  {label:<44} {m['within_10pct']:>6.1%} {m['within_5pct']:>6.1%} {m['rmspe']:>7.1%}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", required=True, help="the service's database URL")
    ap.add_argument("--device", required=True)
    ap.add_argument("--kind", default="mbconv")
    ap.add_argument("--models", default="kernel_gbm_nchwc")
    ap.add_argument("--retest-device", help="a device that measured some of the ops again")
    args = ap.parse_args()
    retest: dict[str, float] = {}
    with session_factory(make_engine(args.db))() as s:
        device = get_device(s, args.device)
        first, newest = rows(s, device, args.kind, False), rows(s, device, args.kind, True)
        y_first = labels(s, device, device.revision, first, None)[1]
        y_new = labels(s, device, device.revision, newest, None)[1]
        every = training_rows(s, device, args.kind)
        _, y_all, record = labels(s, device, device.revision, every, None)
        if args.retest_device:
            other = get_device(s, args.retest_device)
            # its readings against the first device's baseline: same machine, same panel
            same_base = {**record, "readings_upto": 2**62}
            again_rows = training_rows(s, other, args.kind)
            ops2, y2, _ = labels(s, other, other.revision, again_rows, same_base, True)
            retest = {sp.key: float(y) for sp, y in zip(ops2.specs, y2, strict=True)}
    again = np.asarray([a != b for a, b in zip(first.ms, newest.ms, strict=True)])
    print(f"command: {' '.join(sys.argv)}")
    print(
        f"{len(y_new)} {args.kind} ops; {again.sum()} measured again "
        f"({again.mean():.1%}); labels divided by their batch's drift factor"
    )
    print(f"  {'trained on -> scored against':<44} {'±10%':>6} {'±5%':>6} {'RMSPE':>7}")
    for model in args.models.split(","):
        print(model)
        p_first = cross_validate(model, first.specs, y_first)
        p_new = cross_validate(model, newest.specs, y_new)
        p_all = cross_validate(model, newest.specs, y_all)
        print(line("first -> first (no re-measuring)", p_first, y_first))
        print(line("newest -> newest", p_new, y_new))
        print(line("median -> median (hwlat train now)", p_all, y_all))
        print(line("first -> median", p_first, y_all))
        print(line("median -> first", p_all, y_first))
        for name, mask in (("measured again", again), ("measured once", ~again)):
            if not mask.any():
                continue
            print(f"  {name} ({mask.sum()} ops):")
            print(line("  first -> first", p_first[mask], y_first[mask]))
            print(line("  newest -> newest", p_new[mask], y_new[mask]))
            print(line("  median -> median", p_all[mask], y_all[mask]))
        if retest:
            report_retest(newest.specs, y_all, p_all, retest)


def report_retest(
    specs: list[OpSpec], y: np.ndarray, pred: np.ndarray, retest: dict[str, float]
) -> None:
    """The labels against a second measurement of the same ops, and the predictions
    against both."""
    idx = np.asarray([i for i, sp in enumerate(specs) if sp.key in retest])
    y2 = np.asarray([retest[specs[i].key] for i in idx])
    signed = np.log(y2 / y[idx])
    for name, log in (
        ("", np.abs(signed)),
        (" (shift removed)", np.abs(signed - np.median(signed))),
    ):
        ceiling = np.mean(log / np.sqrt(2) <= np.log(1.1))  # each label's error ≈ |log|/√2
        print(
            f"  retest{name}: {len(idx)} ops on the second device, median shift "
            f"{np.expm1(np.median(signed)):+.1%}; labels within ±5% "
            f"{np.mean(log <= np.log(1.05)):.1%}, ±10% {np.mean(log <= np.log(1.1)):.1%}; "
            f"ceiling of a predictor scored against one label: {ceiling:.1%}"
        )
    print(line("  median -> first device's label", pred[idx], y[idx]))
    print(line("  median -> second device's label", pred[idx], y2))
    print(line("  median -> geometric mean of both", pred[idx], np.sqrt(y[idx] * y2)))


if __name__ == "__main__":
    main()
