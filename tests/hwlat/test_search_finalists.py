"""`--retrain-top K`: the K best distinct scored candidates are trained alone and the one
with the best validation accuracy after training is exported (never by test accuracy)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hwlat.cli import main
from hwlat.search_finalists import finalists
from searchers.core.loop import SearchResult
from searchers.spaces import create_space
from tests.hwlat.commands.test_search import ARGS, _lut


def _result(rows: list[dict[str, Any]]) -> SearchResult:
    return SearchResult([0], ("a",), 1.0, 1.0, [], {"how": "x", "considered": rows}, None,
                        0.5, 0.5)  # fmt: skip


def test_finalists_are_the_best_distinct_rows_faster_first_on_ties() -> None:
    rows = [
        {"columns": [1, 2], "val_acc": 0.8, "table_ms": 2.0},
        {"columns": [1, 3], "val_acc": 0.9, "table_ms": 3.0},
        {"columns": [1, 2], "val_acc": 0.8, "table_ms": 2.0},  # the same architecture again
        {"columns": [2, 2], "val_acc": 0.8, "table_ms": 1.5},
        {"columns": [3, 3], "val_acc": 0.1, "table_ms": 1.0},
    ]
    got = finalists(_result(rows), 3)
    assert [r["columns"] for r in got] == [[1, 3], [2, 2], [1, 2]]
    assert finalists(_result([]), 3) == []


@pytest.mark.slow
def test_retrain_top_exports_the_finalist_with_the_best_retrained_val(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    space = create_space("proxyless-mobile", resolution=16, width=0.25, classes=10)
    table = _lut(tmp_path / "lut.json", space)
    lo, hi = table.bounds()
    a, b = lo + 0.3 * (hi - lo), lo + 0.6 * (hi - lo)
    out = tmp_path / "arch.json"
    argv = ["search", "spos", *ARGS, "--lut", str(tmp_path / "lut.json"), "--epochs", "1"]
    argv += ["--max-ms", f"{b:.6f}", "--min-ms", f"{a:.6f}", "--no-verify", "--out", str(out)]
    argv += ["--set", "population=4", "--set", "topk=2", "--set", "generations=1"]
    argv += ["--set", "mutations=2", "--set", "crossovers=2", "--set", "bn_calib_batches=1"]
    argv += ["--retrain-epochs", "1", "--retrain-top", "3"]
    assert main(argv) == 0, capsys.readouterr().err
    assert "finalist 1" in capsys.readouterr().out
    record = json.loads(out.read_text())
    rows = record["selection"]["finalists"]
    assert len(rows) == 3 and sum(r["chosen"] for r in rows) == 1
    chosen = next(r for r in rows if r["chosen"])
    assert chosen["retrained_val_acc"] == max(r["retrained_val_acc"] for r in rows)
    assert record["arch"]["choices"] == chosen["choices"]
    assert record["retrain"]["val_acc"][-1] == chosen["retrained_val_acc"]
    assert record["table_ms"] == pytest.approx(chosen["table_ms"])
    assert all(a - 1e-9 <= r["table_ms"] <= b + 1e-9 for r in rows)


def test_retrain_top_needs_epochs_falls_back_to_one_and_refuses_cells(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    space = create_space("proxyless-mobile", resolution=16, width=0.25, classes=10)
    table = _lut(tmp_path / "lut.json", space)
    lo, hi = table.bounds()
    argv = ["search", "proxyless", *ARGS, "--lut", str(tmp_path / "lut.json"), "--epochs", "2"]
    argv += ["--warmup-epochs", "1", "--target-ms", f"{lo + 0.4 * (hi - lo):.6f}"]
    argv += ["--no-verify", "--out", str(tmp_path / "a.json"), "--retrain-top", "2"]
    assert main([*argv, "--retrain-epochs", "0"]) == 1
    assert "--retrain-top: needs --retrain-epochs >= 1" in capsys.readouterr().err
    assert not (tmp_path / "a.json").exists()
    assert main([*argv, "--retrain-epochs", "1"]) == 0  # the search is kept, retrained alone
    assert "proxyless's selection scored 0 candidate(s)" in capsys.readouterr().err
    record = json.loads((tmp_path / "a.json").read_text())
    assert "finalists" not in record["selection"] and record["retrain"]["epochs"] == 1
    darts = ["search", "darts", "--space", "darts", "--lut", str(tmp_path / "lut.json")]
    assert main([*darts, "--target-ms", "1", "--retrain-top", "2"]) == 1
    assert "--retrain-top: darts is not a chain space" in capsys.readouterr().err
