"""`hwlat devices repeatability` (and `hwlat train`): the repeatability table shows the
measurements' own CI coverage beside the coverage of the intervals lookups report, the
level they claim and where their between-session term comes from."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from hwlat.commands.devices import repeat_table
from latency_service.schemas import RepeatabilityOut

SHARES = {"within_5pct": 0.7, "within_10pct": 0.9, "rmspe": 0.04, "median_ratio": 1.0}


def text(table: Table) -> str:
    console = Console(width=200, record=True)
    console.print(table)
    return console.export_text()


def test_the_table_shows_own_and_reported_coverage() -> None:
    kinds = {
        "mbconv": RepeatabilityOut(
            pairs=30, **SHARES, ci_coverage=0.48, reported_ci_coverage=0.93,
            ci_basis="retests", sigma=0.031,
        ),
        "conv": RepeatabilityOut(
            pairs=4, **SHARES, ci_coverage=0.25, reported_ci_coverage=1.0,
            ci_basis="panel", sigma=0.05,
        ),
        "dwconv": RepeatabilityOut(
            pairs=2, **SHARES, ci_coverage=None, reported_ci_coverage=None,
            ci_basis="within", sigma=None,
        ),
    }  # fmt: skip
    out = text(repeat_table(kinds, "dev1 rev 1: retest / label"))
    assert "CI coverage (own)" in out and "reported CI coverage / nominal" in out
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if "│" in line}
    assert "48%" in rows["mbconv"] and "93% / 95% (retests, σ 3.1%)" in rows["mbconv"]
    assert "25%" in rows["conv"] and "100% / 95% (panel, σ 5.0%)" in rows["conv"]
    assert "- / 95% (within)" in rows["dwconv"]


def test_an_older_server_without_the_reported_coverage_shows_none() -> None:
    old = RepeatabilityOut.model_validate({"pairs": 30, **SHARES, "ci_coverage": 0.6})
    out = text(repeat_table({"mbconv": old}, "t"))
    assert "60%" in out and "- / 95% (within)" in out
