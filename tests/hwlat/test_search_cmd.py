"""`hwlat search` from a LUT file: the target is met, the exported architecture rebuilds
into a model with exactly its ops, verification measures it here, errors are one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devices.fingerprint import fingerprint, fingerprint_id
from devices.runtimes import create_runtime
from hwlat.cli import main
from hwlat.errors import CliError
from hwlat.search_cmd import table_target
from latency_service.predictors.calibration import estimate
from profiler.features import features
from profiler.lut import new_lut, save_lut
from searchers.latency import LatencyTable
from searchers.spaces import SearchSpace, create_space

ARGS = (
    "--space",
    "proxyless-mobile",
    "-r",
    "16",
    "-w",
    "0.25",
    "--dataset",
    "digits",
    "--retrain-epochs",
    "0",
)


def _lut(path: Path, space: SearchSpace, runtime: str | None = None) -> LatencyTable:
    fp, fp_id, desc = {"host": "elsewhere"}, "0000", {"runtime": "ort-cpu"}
    if runtime:
        with create_runtime(runtime) as rt:
            fp = fingerprint(rt)
            fp_id, desc = fingerprint_id(fp), rt.describe()
    lut = new_lut(fp, fp_id, desc, {}, space.params())
    for op in space.fixed_ops() + space.distinct_ops():
        lut["ops"][op.key] = {"median_ms": 0.005 + features(op).flops * 2e-8}
    save_lut(path, lut)
    return LatencyTable.from_file(path, space)


@pytest.fixture(scope="module")
def space() -> SearchSpace:
    return create_space("proxyless-mobile", resolution=16, width=0.25, classes=10)


def test_search_meets_the_target_and_exports_a_rebuildable_arch(
    space: SearchSpace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = _lut(tmp_path / "lut.json", space)
    lo, hi = table.bounds()
    target = lo + 0.4 * (hi - lo)
    out = tmp_path / "arch.json"
    argv = ["search", "proxyless", *ARGS, "--lut", str(tmp_path / "lut.json")]
    argv += ["--target-ms", f"{target:.6f}", "--epochs", "1", "--no-verify", "--out", str(out)]
    assert main(argv) == 0, capsys.readouterr().err
    record = json.loads(out.read_text())
    assert abs(record["table_ms"] / target - 1) <= 0.03
    assert record["target"]["mode"] == "hard" and len(record["history"]) == 1
    row = record["history"][0]
    assert {"val_acc", "expected_ms", "latency_weight", "alpha"} <= set(row)
    child = space.build_child(record["arch"])
    assert child.specs == space.arch_ops(record["arch"])  # type: ignore[attr-defined]
    assert len(child.blocks) == len(child.specs)  # type: ignore[attr-defined, arg-type]
    per_op = sum(0.005 + features(op).flops * 2e-8 for op in child.specs)  # type: ignore[attr-defined]
    assert per_op == pytest.approx(record["table_ms"])  # the table latency is its ops' sum


def test_search_verifies_on_this_machine(
    space: SearchSpace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = _lut(tmp_path / "lut.json", space, runtime="ort-cpu")
    _, hi = table.bounds()
    out = tmp_path / "arch.json"
    argv = ["search", "proxyless", *ARGS, "--lut", str(tmp_path / "lut.json"), "--epochs", "1"]
    argv += ["--target-ms", f"{hi:.6f}", "--constraint", "le", "--out", str(out)]
    argv += ["--retrain-epochs", "1"]  # the last one given wins
    assert main(argv) == 0, capsys.readouterr().err
    record = json.loads(out.read_text())
    measured = record["measured"]
    assert len(record["retrain_acc"]) == 1
    assert measured["median_ms"] > 0 and measured["where"] == "here, ort-cpu"
    assert "measured end to end" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ((), "--target-ms T is required"),
        (("--target-ms", "1", "--device", "d"), "either --device NAME"),
        (("--target-ms", "1", "--constraint", "ge"), "--constraint: eq or le"),
        (("--target-ms", "1", "--dataset", "mnist"), "dataset: 'digits'"),
    ],
)
def test_bad_input_is_one_line(
    space: SearchSpace,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extra: tuple[str, ...],
    message: str,
) -> None:
    _lut(tmp_path / "lut.json", space)
    code = main(["search", "proxyless", *ARGS, "--lut", str(tmp_path / "lut.json"), *extra])
    err = capsys.readouterr().err
    assert code == 1 and message in err and len(err.strip().splitlines()) == 1


def test_a_table_with_holes_is_refused(
    space: SearchSpace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "lut.json"
    _lut(path, space)
    lut = json.loads(path.read_text())
    lut["ops"].pop(space.layers()[3].choices[0].op.key)  # type: ignore[union-attr]
    path.write_text(json.dumps(lut))
    code = main(["search", "proxyless", *ARGS, "--lut", str(path), "--target-ms", "1"])
    assert code == 1 and "3 cells have no latency" in capsys.readouterr().err


def test_a_far_target_says_what_is_achievable(
    space: SearchSpace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _lut(tmp_path / "lut.json", space)
    argv = ["search", "proxyless", *ARGS, "--lut", str(tmp_path / "lut.json"), "--epochs", "1"]
    code = main([*argv, "--target-ms", "0.001", "--no-verify", "--out", str(tmp_path / "a")])
    assert code == 1 and "achievable range" in capsys.readouterr().err


class FakeEstimates:
    """The one call table_target makes: an estimate with the device's calibration."""

    def __init__(self, calibration: dict[str, object]):
        self.calibration = calibration

    def estimate(self, device: str, body: dict[str, object]) -> object:
        class Est:
            ops = 24
            calibration = self.calibration

        return Est()


@pytest.mark.parametrize(
    "cal",
    [
        {"available": True, "form": "linear", "coef": [1.2, 0.002], "intercept": 0.01},
        {"available": True, "form": "power", "coef": [1.7, 0.0], "intercept": 0.89},
        {"available": True, "coef": [1.2, 0.002], "intercept": 0.01},  # an older service
    ],
)
def test_a_calibrated_target_maps_back_through_either_form(cal: dict[str, object]) -> None:
    space = create_space("fbnet", resolution=32)
    table_ms, info = table_target(FakeEstimates(cal), "d", space, 0.3)
    form = str(cal.get("form", "linear"))
    assert estimate(form, cal["coef"], cal["intercept"], table_ms, 24) == pytest.approx(0.3)
    assert info["target_ms"] == 0.3 and info["table_target_ms"] == table_ms


def test_a_calibrated_target_must_be_positive() -> None:
    cal = {"available": True, "form": "power", "coef": [1.7, 0.0], "intercept": 0.89}
    with pytest.raises(CliError, match="must be a positive number"):
        table_target(FakeEstimates(cal), "d", create_space("fbnet", resolution=32), -0.3)
