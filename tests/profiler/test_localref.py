"""The local reference store: which readings make the baseline, what it refuses, and
how an op's measurements combine."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from profiler import localref, reference
from profiler.localref import Store, combine, corrected_pairs

KEYS = [op.key for op in reference.panel_ops()]
BASE = (0.1, 0.5, 1.0)  # ms of the three panel blocks on the quiet machine


def ops(speed: float, ci: float = 0.01) -> dict[str, dict[str, float]]:
    return {
        k: {"median_ms": b * speed, "ci_half_width_ms": b * speed * ci}
        for k, b in zip(KEYS, BASE, strict=True)
    }


def test_a_run_is_judged_against_earlier_runs_once_they_have_enough(tmp_path: Path) -> None:
    store = Store(tmp_path / "fp.json", "fp")
    for _ in range(reference.MIN_READINGS):
        store.add("quiet", ops(1.0))
    for _ in range(3):
        store.add("slow", ops(1.3))
    factors = store.factors("slow")
    assert all(raw == pytest.approx(1.3) for raw, _ in factors.values())
    assert store.judged("slow")


def test_a_first_run_is_its_own_baseline(tmp_path: Path) -> None:
    store = Store(None, "fp")
    for speed in (1.0, 1.1, 1.2):
        store.add("only", ops(speed))
    raw = sorted(f for f, _ in store.factors("only").values())
    assert raw == pytest.approx([1 / 1.1, 1.0, 1.2 / 1.1])
    assert not store.judged("only")  # 3 readings: too young to call a batch disturbed


def test_readings_persist_and_a_foreign_store_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "fp.json"
    Store(path, "fp").add("r1", ops(1.0))
    again = Store(path, "fp")
    assert len(again.readings) == 1 and again.readings[0]["panel"] == reference.PANEL
    with pytest.raises(ValueError, match="not the reference store of fingerprint other"):
        Store(path, "other")
    path.write_text("{")
    with pytest.raises(ValueError, match="remove it to start a new baseline"):
        Store(path, "fp")


def test_the_store_keeps_the_baseline_readings_when_capped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(localref, "STORE_CAP", 12)
    store = Store(tmp_path / "fp.json", "fp")
    for i in range(30):
        store.add("r", ops(1.0 + i / 100))
    ids = [r["id"] for r in json.loads((tmp_path / "fp.json").read_text())["readings"]]
    assert len(ids) == 12 and ids[: localref.BASELINE_READINGS] == list(range(1, 9))


def test_corrected_pairs_cancel_a_common_slowdown() -> None:
    readings = [{"ops": ops(s)} for s in (1.0, 1.3, 0.9)]
    pairs = corrected_pairs(readings)  # type: ignore[arg-type]
    assert len(pairs) == 3 * 3  # 3 blocks, 3 pairs of readings each
    assert all(p.b_ms == pytest.approx(p.a_ms) for p in pairs)


def test_combine_takes_the_median_of_drift_divided_values() -> None:
    ms = [
        {"median_ms": 1.0, "ci_half_width_ms": 0.02, "factor": 1.0},
        {"median_ms": 1.5, "ci_half_width_ms": 0.03, "factor": 1.5},
    ]
    out = combine(ms, sigma=0.02)
    assert out["corrected_ms"] == pytest.approx(1.0)
    assert out["raw_ms"] == pytest.approx(math.sqrt(1.5))  # median of two, in log space
    assert out["ci_basis"] == "panel" and out["measured_times"] == 2
    one = combine(ms[:1], sigma=0.02)["reported_ci_half_width_ms"]
    assert one == pytest.approx(math.hypot(0.02, 1.959964 * 0.02), rel=1e-6)
    assert out["reported_ci_half_width_ms"] < one  # two measurements: var / 2
    assert combine(ms[:1], None)["reported_ci_half_width_ms"] == pytest.approx(0.02)
    no_ci = [{"median_ms": 1.0, "ci_half_width_ms": None, "factor": 1.0}]
    assert combine(no_ci, 0.02)["reported_ci_half_width_ms"] is None
