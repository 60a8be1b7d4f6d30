"""`hwlat profile` as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from hwlat.cli import main

KEY = "conv|cin=3,cout=8,g=1,k=3,s=2|1x3x16x16|float32"
QUICK = ["--budget-s", "0.03", "--min-sample-ms", "0.5", "--samples-per-round", "3"]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_one_op_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "profile", "--runtime", "ort-cpu", "--threads", "1", "--op", KEY, "--json", *QUICK
    )
    assert code == 0
    data = json.loads(out)
    assert data["op"] == KEY and data["median_ms"] > 0
    assert data["runtime"]["providers_in_use"] == ["CPUExecutionProvider"]
    for key in ("ci_half_width_ms", "samples", "calls_per_sample", "stable", "first_call_ms"):
        assert key in data


def test_one_op_as_a_table(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "profile", "--runtime", "torch-cpu", "--op", KEY, *QUICK)
    assert code == 0 and "median_ms" in out


def test_a_space_into_a_lut_file_then_resumed(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "lut.json"
    argv = [
        "profile",
        "--runtime",
        "ort-mobile",
        "--space",
        "darts",
        "-r",
        "8",
        "-o",
        "C=2",
        "-o",
        "cells=3",
        "--out",
        str(out),
        "--json",
        *QUICK,
    ]
    code, stdout, _ = run(capsys, *argv)
    assert code == 0
    first = json.loads(stdout)
    lut = json.loads(out.read_text())
    assert first["measured"] == first["ops"] == len(lut["ops"]) > 20
    assert lut["space"]["space"] == "darts" and lut["runtime"]["spinning"] is False
    code, stdout, _ = run(capsys, *argv)
    assert code == 0 and json.loads(stdout)["kept"] == first["ops"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--runtime", "tvm", "--op", KEY], "error: runtime: unknown runtime 'tvm'"),
        (["--runtime", "ort-cpu", "--op", "conv|cin=3"], "error: key: expected"),
        (
            ["--runtime", "ort-cpu", "--space", "nope", "--out", "x.json"],
            "error: space: unknown search space",
        ),
        (["--runtime", "ort-cpu"], "error: give either --space NAME"),
        (["--runtime", "ort-cpu", "--op", KEY, "--space", "fbnet"], "error: give either"),
        (["--runtime", "ort-cpu", "--space", "fbnet"], "error: --out FILE is required"),
        (
            ["--runtime", "ort-cpu", "--op", KEY.replace("float32", "int8")],
            "error: dtype: conv|cin=3,cout=8,g=1,k=3,s=2|1x3x16x16|int8 is int8",
        ),
        pytest.param(
            ["--runtime", "torch-cuda", "--op", KEY],
            "error: torch-cuda: no CUDA device",
            marks=pytest.mark.skipif(
                torch.cuda.is_available(), reason="a GPU is present: torch-cuda can run"
            ),
        ),
        (["--runtime", "ort-cpu", "--op", KEY, "--rel-tol", "0"], "error: rel_tol: out of"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, _, err = run(capsys, "profile", *argv)
    assert code == 1
    assert err.startswith(message), err
    assert len(err.strip().splitlines()) == 1


def test_an_existing_file_that_is_not_a_lut_is_left_untouched(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "notes.json"
    out.write_text("my notes")
    code, _, err = run(
        capsys,
        "profile",
        "--runtime",
        "ort-cpu",
        "--space",
        "fbnet",
        "-r",
        "32",
        "--out",
        str(out),
        *QUICK,
    )
    assert code == 1 and "not a LUT file" in err
    assert out.read_text() == "my notes"
