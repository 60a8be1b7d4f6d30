"""The local measuring discipline: the reference panel with every batch, drift factors
against a per-fingerprint store, doubtful ops measured again, raw and corrected values
in the LUT. On a virtual clock, so the machine's speed is the test's to set."""

from __future__ import annotations

import json
import math
import random
import statistics
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from devices.profiling import Drift, profile_ops
from profiler import reference
from profiler.ops import OpSpec
from profiler.timing import TimingConfig
from tests.devices.virtual_machine import Clock, Machine, VirtualRuntime

CONFIG = TimingConfig(budget_s=0.05, min_sample_s=0.002, min_samples_per_round=5, warmup_s=0.005)
OPS = [OpSpec.make("conv", (1, 8, 8, 8), cin=8, cout=c, k=3, s=1) for c in range(8, 8 + 8 * 80, 8)]


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clock]:
    c = Clock()
    fake = SimpleNamespace(perf_counter=c.perf_counter, perf_counter_ns=c.perf_counter_ns)
    monkeypatch.setattr("profiler.timing.time", fake)
    yield c


def profile(
    clock: Clock, out: Path, store: Path | None, speeds: list[float], seed: int = 0
) -> dict[str, Any]:
    machine = Machine(clock, speeds, rng=random.Random(seed))
    drift = Drift(store) if store is not None else None
    with VirtualRuntime(machine) as rt:
        report = profile_ops(rt, OPS, CONFIG, out, drift=drift)
    lut = json.loads(out.read_text())
    lut["report"] = report
    return lut


def shift(a: dict[str, Any], b: dict[str, Any], field: str) -> float:
    """Median |log| ratio of one field between two LUTs."""
    return statistics.median(
        abs(math.log(b["ops"][k][field] / a["ops"][k][field])) for k in a["ops"]
    )


def test_lut_records_raw_corrected_and_every_measurement(clock: Clock, tmp_path: Path) -> None:
    lut = profile(clock, tmp_path / "a.json", tmp_path / "ref", [1.0])
    ref = lut["reference"]
    assert ref["panel"] == reference.PANEL and len(ref["readings"]) == 5  # 80 ops, 16 a batch
    assert Path(ref["store"]).exists() and set(lut["ops"]) == {op.key for op in OPS}
    for row in lut["ops"].values():
        m = row["measurements"][-1]
        assert m["reading"] is not None and m["factor"] > 0
        assert row["raw_ms"] > 0 and row["corrected_ms"] > 0
        assert row["reported_ci_half_width_ms"] >= row["ci_half_width_ms"] * 0.99
        assert row["ci_basis"] == "panel"
    assert {k for k in lut["ops"]}.isdisjoint({op.key for op in reference.panel_ops()})


def test_a_slowdown_between_profiles_changes_corrected_less_than_raw(
    clock: Clock, tmp_path: Path
) -> None:
    store = tmp_path / "ref"
    a = profile(clock, tmp_path / "a.json", store, [1.0], seed=1)
    b = profile(clock, tmp_path / "b.json", store, [1.3], seed=2)
    raw, corrected = shift(a, b, "raw_ms"), shift(a, b, "corrected_ms")
    assert raw == pytest.approx(math.log(1.3), abs=0.03)
    assert corrected < 0.03 < raw
    factors = [r["factor"] for r in b["reference"]["readings"].values()]  # b's own
    assert statistics.median(factors) == pytest.approx(1.3, rel=0.03)


def test_drift_within_a_profile_is_divided_per_batch(clock: Clock, tmp_path: Path) -> None:
    store = tmp_path / "ref"
    a = profile(clock, tmp_path / "a.json", store, [1.0], seed=1)
    b = profile(clock, tmp_path / "b.json", store, [1.0, 1.08, 0.95, 1.06, 1.0], seed=2)
    assert shift(a, b, "corrected_ms") < shift(a, b, "raw_ms") / 2


def test_a_disturbed_batch_is_measured_again(clock: Clock, tmp_path: Path) -> None:
    store = tmp_path / "ref"
    a = profile(clock, tmp_path / "a.json", store, [1.0], seed=1)
    # the third of its five batches runs 40% slow; the re-measuring batch after them not
    b = profile(clock, tmp_path / "b.json", store, [1.0, 1.0, 1.4, 1.0, 1.0, 1.0], seed=2)
    again = [k for k, row in b["ops"].items() if len(row["measurements"]) > 1]
    assert len(again) == 16 and b["report"].remeasured == 16
    assert shift(a, b, "corrected_ms") < 0.03


def test_without_reference_values_are_as_measured(clock: Clock, tmp_path: Path) -> None:
    lut = profile(clock, tmp_path / "a.json", None, [1.0])
    assert lut["reference"]["readings"] == {}
    for row in lut["ops"].values():
        assert row["corrected_ms"] == pytest.approx(row["median_ms"], rel=1e-12)
        assert row["raw_ms"] == pytest.approx(row["median_ms"], rel=1e-12)
        assert row["ci_basis"] == "within"
        assert row["reported_ci_half_width_ms"] == pytest.approx(row["ci_half_width_ms"])


def test_a_resumed_file_keeps_each_runs_readings_apart(clock: Clock, tmp_path: Path) -> None:
    """Store ids restart with a new store (here: in memory each run); the file's readings
    are keyed by run, so the first run's ops keep their own factors."""
    out, machine = tmp_path / "a.json", Machine(clock, [1.0], rng=random.Random(1))
    with VirtualRuntime(machine) as rt:
        profile_ops(rt, OPS[:32], CONFIG, out, drift=Drift(None))
        first = json.loads(out.read_text())
        machine.speeds = [1.3]
        profile_ops(rt, OPS[:64], CONFIG, out, drift=Drift(None))
    lut = json.loads(out.read_text())
    assert (
        len(lut["reference"]["readings"]) == 4
        and len({k.split(":")[0] for k in lut["reference"]["readings"]}) == 2
    )
    for key in first["ops"]:
        assert lut["ops"][key]["measurements"] == first["ops"][key]["measurements"]


def test_a_store_that_fails_leaves_the_batch_measured_as_is(
    clock: Clock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("profiler.localref.Store.add", broken)
    lut = profile(clock, tmp_path / "a.json", tmp_path / "ref", [1.0])
    assert len(lut["ops"]) == len(OPS) and lut["reference"]["readings"] == {}
    (why,) = lut["reference"]["errors"].values()
    assert "cannot store its reading" in why and "No space left" in why
    assert all(row["corrected_ms"] == pytest.approx(row["raw_ms"]) for row in lut["ops"].values())
