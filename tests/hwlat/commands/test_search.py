"""`hwlat search` from a LUT file: the target is met, the exported architecture rebuilds
into a model with exactly its ops, verification measures it here, options are typed,
a search killed mid-epoch resumes to the same architecture, errors are one line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from devices.fingerprint import fingerprint, fingerprint_id
from devices.runtimes import create_runtime
from hwlat.cli import main
from hwlat.commands.common import CliError
from hwlat.commands.search import table_target
from hwlat.commands.search_target import table_window
from latency_service.calibration_formula import estimate
from profiler.features import features
from profiler.lut import new_lut, save_lut
from searchers.latency import LatencyTable
from searchers.registry import searcher_class
from searchers.spaces import SearchSpace, create_space

ARGS = ("--space", "proxyless-mobile", "-r", "16", "-w", "0.25", "--dataset", "digits")
ARGS += ("--data-limit", "400", "--batch-size", "32")  # 8 steps an epoch
QUICK = ("--epochs", "2", "--warmup-epochs", "1", "--retrain-epochs", "0")


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
    argv = ["search", "proxyless", *ARGS, *QUICK, "--lut", str(tmp_path / "lut.json")]
    argv += ["--target-ms", f"{target:.6f}", "--no-verify", "--out", str(out)]
    assert main(argv) == 0, capsys.readouterr().err
    err = capsys.readouterr().err
    assert "epoch 1/2 (warm-up)" in err and "epoch 2/2" in err and "3/2" not in err
    record = json.loads(out.read_text())
    assert record["format"] == "hwlat-arch/2"
    assert abs(record["table_ms"] / target - 1) <= 0.03
    assert record["target"]["mode"] == "hard" and len(record["history"]) == 2
    row = record["history"][-1]
    assert {"argmax_acc", "sampled_acc", "entropy", "expected_ms", "latency_weight"} <= set(row)
    assert record["data"]["test"] > 0 and 0 <= record["shared_weights"]["test_acc"] <= 1
    assert record["config"]["epochs"] == 2 and record["retrain"]["test_acc"] is None
    child = space.build_child(record["arch"])
    assert child.specs == space.arch_ops(record["arch"])  # type: ignore[attr-defined]
    per_op = sum(0.005 + features(op).flops * 2e-8 for op in child.specs)  # type: ignore[attr-defined]
    assert per_op == pytest.approx(record["table_ms"])  # the table latency is its ops' sum


@pytest.mark.slow
def test_search_verifies_on_this_machine(
    space: SearchSpace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = _lut(tmp_path / "lut.json", space, runtime="ort-cpu")
    _, hi = table.bounds()
    out = tmp_path / "arch.json"
    argv = ["search", "fbnet", *ARGS, *QUICK, "--lut", str(tmp_path / "lut.json")]
    argv += ["--target-ms", f"{hi:.6f}", "--constraint", "le", "--out", str(out)]
    argv += ["--set", "samples=1", "--retrain-epochs", "1", "--retrain-lr", "0.02"]
    assert main(argv) == 0, capsys.readouterr().err
    record = json.loads(out.read_text())
    assert record["retrain"]["epochs"] == 1 and record["retrain"]["lr"] == 0.02
    assert record["config"]["samples"] == 1 and "mixed_acc" in record["history"][-1]
    assert record["measured"]["median_ms"] > 0 and record["measured"]["where"] == "here, ort-cpu"
    assert "measured end to end" in capsys.readouterr().out


def test_help_options_lists_every_option_with_its_source(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["search", "fbnet", "--help-options"]) == 0
    out = capsys.readouterr().out
    for text in ("tau_end", "samples", "hard", "warmup_epochs", "FBNet", "Goyal"):
        assert text in out


def _killed_mid_epoch(argv: list[str], ckpt: Path) -> None:
    """Run the search in another process and SIGKILL it once a checkpoint taken inside an
    epoch after the warm-up is on disk."""
    # The same torch thread count as this process (an earlier test's torch-cpu runtime may
    # have set it): a float sum split over another number of threads rounds differently,
    # and the architecture after the resume would follow the rounding, not the resume.
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
           "OMP_NUM_THREADS": str(torch.get_num_threads())}  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-m", "hwlat.cli", *argv], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                epoch, step, _ = torch.load(ckpt / "search.pt", weights_only=True)["position"]
            except (OSError, RuntimeError, EOFError, KeyError):
                epoch = step = 0
            if epoch >= 1 and step > 0:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                return
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            proc.kill()
    pytest.fail("the search ended (or hung) before a mid-epoch checkpoint was written")


@pytest.mark.slow
def test_a_search_killed_mid_epoch_resumes_to_the_same_architecture(
    space: SearchSpace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _lut(tmp_path / "lut.json", space)
    lo, hi = LatencyTable.from_file(tmp_path / "lut.json", space).bounds()
    argv = ["search", "proxyless", *ARGS, "--lut", str(tmp_path / "lut.json"), "--no-verify"]
    argv += ["--target-ms", f"{lo + 0.3 * (hi - lo):.6f}", "--epochs", "3", "--warmup-epochs"]
    argv += ["1", "--retrain-epochs", "0", "--set", "checkpoint_every=3"]
    whole, resumed, ckpt = tmp_path / "whole.json", tmp_path / "resumed.json", tmp_path / "ckpt"
    assert main([*argv, "--out", str(whole)]) == 0, capsys.readouterr().err
    _killed_mid_epoch([*argv, "--checkpoint", str(ckpt), "--out", str(resumed)], ckpt)
    assert not resumed.exists()
    assert main([*argv, "--checkpoint", str(ckpt), "--resume", "--out", str(resumed)]) == 0
    assert "resumed from" in capsys.readouterr().err
    a, b = json.loads(whole.read_text()), json.loads(resumed.read_text())
    assert a["arch"] == b["arch"] and a["table_ms"] == b["table_ms"]
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in a["history"]]
    assert strip == [{k: v for k, v in r.items() if k != "seconds"} for r in b["history"]]
    other = [*argv, "--seed", "5", "--checkpoint", str(ckpt), "--resume", "--out", str(resumed)]
    assert main(other) == 1
    assert "is of another search (its config" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ((), "--target-ms T is required"),
        (("--target-ms", "1", "--device", "d"), "either --device NAME"),
        (("--target-ms", "1", "--constraint", "ge"), "--constraint: eq or le"),
        (("--target-ms", "1", "--dataset", "mnist"), "dataset: one of digits"),
        (("--target-ms", "1", "--loss", "fbnet"), "--loss fbnet is a soft (fixed-weight) loss"),
        (("--target-ms", "1", "--set", "epochs=x"), "--set epochs: expected an integer"),
        (("--target-ms", "1", "--set", "tau=1"), "--set tau: unknown option (options: epochs"),
        (("--target-ms", "1", "--resume"), "--resume needs --checkpoint DIR"),
        (("--target-ms", "1", "--checkpoint", "/nonexistent-hwlat", "--resume"), "no checkpoint"),
        (("--target-ms", "1", "--space", "darts", "-o", "C=8"), "space: proxyless searches"),
        (("--target-ms", "1", "-o", "C=8"), "--option: proxyless-mobile takes no"),
        (("--target-ms", "1", "--torch-device", "tpu"), "--torch-device: auto, cpu or cuda"),
        (("--min-ms", "1"), "--min-ms L needs --max-ms T"),
        (("--max-ms", "1", "--target-ms", "1"), "--max-ms is a constraint of its own"),
        (("--max-ms", "1", "--min-ms", "2"), "--min-ms 2 must be below --max-ms 1"),
        (("--max-ms", "-1"), "--max-ms: must be a positive number"),
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
    argv = ["search", "proxyless", *ARGS, *QUICK, "--lut", str(tmp_path / "lut.json"), *extra]
    code = main([*argv, "--out", str(tmp_path / "a.json")])
    err = capsys.readouterr().err
    assert code == 1 and message in err and len(err.strip().splitlines()) == 1, err


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
    argv = ["search", "proxyless", *ARGS, *QUICK, "--lut", str(tmp_path / "lut.json")]
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


def test_a_window_is_on_the_calibrated_estimate_when_the_device_has_one() -> None:
    """`--max-ms`/`--min-ms` with a calibrated device: every architecture inside the mapped
    table window has its calibrated estimate inside the asked window; without a usable
    calibration, or with --table-constraint, the window stays on the table sum."""
    space = create_space("fbnet", resolution=32)
    cal = {"available": True, "form": "power", "coef": [1.7, 0.0], "intercept": 0.89}
    (lo, hi), info = table_window(FakeEstimates(cal), "d", space, (0.2, 0.3), False)
    assert info["on"] == "calibrated estimate" and lo is not None
    for ms in (lo, (lo + hi) / 2, hi):
        assert 0.2 - 1e-9 <= estimate("power", [1.7, 0.0], 0.89, ms, 24) <= 0.3 + 1e-9
    none = {"available": False, "coef": [0.0, 0.0], "intercept": 0.0}
    for client, table_only in ((FakeEstimates(none), False), (FakeEstimates(cal), True)):
        bounds, info = table_window(client, "d", space, (0.2, 0.3), table_only)
        assert bounds == (0.2, 0.3) and info["on"] == "table sum"
    darts = create_space("darts", resolution=8, classes=10, C=8, cells=3)
    assert table_window(FakeEstimates(cal), "d", darts, (None, 0.3), False)[0] == (None, 0.3)


def test_a_calibrated_target_must_be_positive() -> None:
    cal = {"available": True, "form": "power", "coef": [1.7, 0.0], "intercept": 0.89}
    with pytest.raises(CliError, match="must be a positive number"):
        table_target(FakeEstimates(cal), "d", create_space("fbnet", resolution=32), -0.3)


def test_a_cell_search_exports_a_genotype_and_its_drawing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    space = create_space("darts", resolution=8, classes=10, C=8, cells=3)
    _lut(tmp_path / "lut.json", space)
    lo, hi = searcher_class("gdas").table_bounds(
        LatencyTable.from_file(tmp_path / "lut.json", space)
    )
    out = tmp_path / "arch.json"
    argv = ["search", "gdas", "--space", "darts", "-r", "8", "-o", "C=8", "-o", "cells=3"]
    argv += ["--dataset", "digits", "--data-limit", "300", "--batch-size", "32", *QUICK]
    argv += ["--lut", str(tmp_path / "lut.json"), "--target-ms", f"{lo + 0.5 * (hi - lo):.6f}"]
    argv += ["--no-verify", "--out", str(out)]
    assert main(argv) == 0, capsys.readouterr().err
    record = json.loads(out.read_text())
    g = space.parse_arch(record["arch"])
    assert len(g.normal) == len(g.reduce) == 8 and record["drawing"] == "arch.cells.svg"
    svg = (tmp_path / "arch.cells.svg").read_text()
    assert svg.startswith("<svg") or "<svg" in svg[:200]
    child = space.build_child(record["arch"])
    per_op = sum(0.005 + features(op).flops * 2e-8 for op in child.specs)  # type: ignore[attr-defined]
    assert per_op == pytest.approx(record["table_ms"])  # `none` edges are not in the child
    assert abs(record["table_ms"] / (lo + 0.5 * (hi - lo)) - 1) <= 0.03
    assert "genotype" in record["history"][-1] and "temperature" in record["history"][-1]
    printed = capsys.readouterr().out
    assert "normal: n0←" in printed and "reduce: n0←" in printed and "cells drawn in" in printed


def test_a_cell_searcher_refuses_a_chain_space(
    space: SearchSpace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _lut(tmp_path / "lut.json", space)
    argv = ["search", "darts", *ARGS, *QUICK, "--lut", str(tmp_path / "lut.json")]
    assert main([*argv, "--target-ms", "1", "--out", str(tmp_path / "a.json")]) == 1
    assert "space: darts searches darts; not proxyless-mobile" in capsys.readouterr().err


@pytest.mark.slow
def test_spos_searches_a_window_and_writes_the_pareto_front(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`hwlat search spos ... --max-ms T --min-ms L --out DIR`: every scored candidate is in
    the window, arch.json and the front (JSON and PNG) land in DIR, the front is printed."""
    spos = create_space("spos-shufflenet", resolution=32, width=0.25, classes=10)
    table = _lut(tmp_path / "lut.json", spos)
    lo, hi = table.bounds()
    a, b = lo + 0.3 * (hi - lo), lo + 0.5 * (hi - lo)
    out = tmp_path / "run"
    argv = ["search", "spos", "--space", "spos-shufflenet", "-r", "32", "-w", "0.25"]
    argv += ["--lut", str(tmp_path / "lut.json"), "--max-ms", f"{b:.6f}", "--min-ms", f"{a:.6f}"]
    argv += ["--dataset", "digits", "--data-limit", "300", "--epochs", "1", "--out", str(out)]
    argv += ["--retrain-epochs", "0", "--no-verify", "--set", "generations=2"]
    argv += ["--set", "bn_calib_batches=2"]
    argv += ["--set", "population=6", "--set", "mutations=3", "--set", "crossovers=3"]
    assert main(argv) == 0, capsys.readouterr().err
    shown = capsys.readouterr().out
    assert "Pareto front of" in shown and "evolution: 2 generations" in shown
    record = json.loads((out / "arch.json").read_text())
    assert record["target"]["window"]["on"] == "table sum"
    assert all(a - 1e-9 <= r["table_ms"] <= b + 1e-9 for r in record["selection"]["scored"])
    assert a - 1e-9 <= record["table_ms"] <= b + 1e-9
    front = json.loads((out / "arch.pareto.json").read_text())
    assert front["format"] == "hwlat-pareto/1" and front["front"]
    assert all(len(r["choices"]) == 20 for r in front["front"])
    assert (out / "arch.pareto.png").read_bytes()[:4] == b"\x89PNG"


def test_without_space_a_searcher_takes_the_one_space_it_searches() -> None:
    from hwlat.commands.search import default_space

    assert default_space(searcher_class("densenas")) == "densenas"
    assert default_space(searcher_class("darts")) == "darts"
    assert default_space(searcher_class("singlepath")) == "proxyless-mobile"  # many: the default
