"""The `hwlat` command as a user runs it: help, spaces, demo, and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hwlat.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_help_lists_the_subcommands(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--help")
    assert code == 0
    assert "spaces" in out and "demo" in out


def test_spaces_list_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "spaces", "list", "--json")
    assert code == 0
    assert [s["name"] for s in json.loads(out)] == [
        "darts",
        "fbnet",
        "proxyless-mobile",
        "spos-shufflenet",
    ]


def test_spaces_show_fbnet_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "spaces", "show", "fbnet", "--resolution", "224", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["searchable_layers"] == 22
    assert data["size"] == 9**16 * 8**6 == 485758124386377007104
    assert data["size_formula"] == "9^16 * 8^6"
    assert len(data["layers"]) == 22
    assert data["layers"][1]["choices"]["skip"] is None  # masked: stride 2
    assert data["distinct_ops"] == 104


def test_spaces_show_table(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "spaces", "show", "darts", "-o", "C=8", "-o", "cells=5")
    assert code == 0
    assert "cell4.edge13" in out and "distinct ops" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["spaces", "show", "nope"], "error: space: unknown search space 'nope'"),
        (["spaces", "show", "fbnet", "-r", "0"], "error: resolution: must be a positive"),
        (["spaces", "show", "darts", "-o", "cells"], "error: --option: expected NAME=VALUE"),
        (["spaces", "show", "darts", "-o", "cells=x"], "error: --option cells: expected an"),
        (["spaces", "show", "fbnet", "-o", "C=3"], "error: --option: fbnet takes no"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, _, err = run(capsys, *argv)
    assert code == 1
    assert err.startswith(message)
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_usage_error_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "spaces", "show", "fbnet", "--resolution", "abc")
    assert code == 1
    assert "Invalid value for '--resolution'" in err


def test_demo_runs_end_to_end(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """The main job, quick budgets: service, agent, predictors, search, measurement."""
    code, out, _ = run(capsys, "demo", "--quick", "--out-dir", str(tmp_path))
    assert code == 0
    for text in ("proxyless-mobile", "mbconv", "epoch 1", "measured end to end", "stopped"):
        assert text in out
    record = json.loads((tmp_path / "arch.json").read_text())
    target = record["target"]
    assert abs(record["table_ms"] / target["target_ms"] - 1) <= 0.03  # the hard target held
    assert target["end_to_end"]["target_ms"] > 0
    assert record["measured"]["median_ms"] > 0 and record["estimate"]["calibrated_ms"] > 0
    assert len(record["retrain_acc"]) == 1


def test_console_script_entry_point() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "hwlat.cli", "spaces", "show", "nope"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith("error: space: unknown search space")
