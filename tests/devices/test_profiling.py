"""profile_ops: LUT contents, resume with the same fingerprint, refusal of another."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from devices.profiling import profile_ops
from devices.runtimes import create_runtime
from devices.runtimes.base import Prepared
from devices.runtimes.ort_rt import OrtCpu
from profiler.errors import ExportError
from profiler.ops import OpSpec
from profiler.timing import TimingConfig

QUICK = TimingConfig(budget_s=0.03, min_sample_s=0.0005, min_samples_per_round=3, warmup_s=0.005)
OPS = [
    OpSpec.make("conv", (1, 3, 16, 16), cin=3, cout=8, k=3, s=2),
    OpSpec.make("mbconv", (1, 8, 8, 8), cin=8, cout=8, e=3, k=5, s=1, res=1),
    OpSpec.make("pool", (1, 8, 8, 8), c=8, k=3, s=1, mode="avg"),
]


class FailingOrt(OrtCpu):
    """ort-cpu whose export of pooling ops fails, as a broken exporter would."""

    def prepare(self, op: OpSpec) -> Prepared:
        if op.kind == "pool":
            raise ExportError("synthetic export failure", op.key)
        return super().prepare(op)


def test_lut_holds_statistics_provenance_and_features(tmp_path: Path) -> None:
    out = tmp_path / "lut.json"
    with create_runtime("ort-cpu", threads=1) as rt:
        report = profile_ops(rt, OPS + OPS[:1], QUICK, out, space={"space": "custom"})
    lut = json.loads(out.read_text())
    assert report.measured == 3 and report.failed == 0 and len(report.keys) == 3
    assert set(lut["ops"]) == {op.key for op in OPS}
    row = lut["ops"][OPS[0].key]
    for key in (
        "median_ms",
        "ci_half_width_ms",
        "p10_ms",
        "p90_ms",
        "samples",
        "stable",
        "calls_per_sample",
        "first_call_ms",
        "export_s",
        "features",
        "spec",
    ):
        assert key in row
    assert lut["runtime"]["intra_op_threads"] == 1
    assert lut["fingerprint_id"] and lut["host_state"][0]["before"]["affinity"]
    assert 0 < report.efficiency <= 1


def test_resume_keeps_ops_measured_with_the_same_fingerprint(tmp_path: Path) -> None:
    out = tmp_path / "lut.json"
    with create_runtime("ort-cpu", threads=1) as rt:
        profile_ops(rt, OPS[:2], QUICK, out)
        first = json.loads(out.read_text())["ops"][OPS[0].key]["median_ms"]
        report = profile_ops(rt, OPS, QUICK, out)
    assert report.kept == 2 and report.measured == 1
    assert json.loads(out.read_text())["ops"][OPS[0].key]["median_ms"] == first


def test_another_fingerprint_is_refused_and_the_file_left_alone(tmp_path: Path) -> None:
    out = tmp_path / "lut.json"
    with create_runtime("ort-cpu", threads=1) as rt:
        profile_ops(rt, OPS[:1], QUICK, out)
    before = out.read_text()
    with (
        create_runtime("ort-cpu", threads=2) as rt,
        pytest.raises(ValueError, match="another device/runtime fingerprint"),
    ):
        profile_ops(rt, OPS, QUICK, out)
    assert out.read_text() == before


def test_errors_are_recorded_not_measured_and_retried_on_resume(tmp_path: Path) -> None:
    out = tmp_path / "lut.json"
    units: list[int] = []
    with FailingOrt(threads=1) as rt:
        report = profile_ops(rt, OPS, QUICK, out, progress=lambda k, n: units.append(n))
    lut: dict[str, Any] = json.loads(out.read_text())
    assert report.failed == 1 and OPS[2].key not in lut["ops"]
    assert lut["errors"][OPS[2].key]["type"] == "export_error"
    assert sum(units) == 3 * (1 + QUICK.rounds)  # the bar still reaches its end
    with create_runtime("ort-cpu", threads=1) as rt:
        report = profile_ops(rt, OPS, QUICK, out)
    assert report.measured == 1 and json.loads(out.read_text())["errors"] == {}


def test_no_temporary_files_are_left(tmp_path: Path) -> None:
    out = tmp_path / "sub" / "lut.json"
    with create_runtime("ort-cpu", threads=1) as rt:
        profile_ops(rt, OPS[:1], QUICK, out)
    assert [p.name for p in out.parent.iterdir()] == ["lut.json"]
