"""How well the demo's tables were measured, said plainly after the agent's run: per
table, the cells flagged unstable, the median 95% half-width of one measurement against
the tolerance the agent asked for, and the median half-width a lookup reports (with the
spread between batches added, latency_service/repository/uncertainty.py)."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from latency_service.client import HwlatClient
from latency_service.schemas import LutCell, LutOut

UNSTABLE_LIMIT = 0.10  # a table with more flagged cells than this is not what we promise


def cells(lut: LutOut) -> list[LutCell]:
    """The measured cells of a table, fixed ones included (a cell per layer and choice)."""
    out = [c for layer in lut.layers for c in layer.cells.values() if c is not None]
    return [c for c in out + lut.fixed if c.source == "measured" and c.ms is not None]


def quality(lut: LutOut) -> dict[str, Any]:
    measured = cells(lut)
    own = [c.within_ci_half_width_ms / c.ms for c in measured if c.within_ci_half_width_ms and c.ms]
    rep = [c.ci_half_width_ms / c.ms for c in measured if c.ci_half_width_ms and c.ms]
    return {
        "space": f"{lut.space}@{lut.resolution} w{lut.width}",
        "cells": len(measured),
        "unstable": sum(not c.stable for c in measured) / max(1, len(measured)),
        "own": statistics.median(own) if own else None,
        "reported": statistics.median(rep) if rep else None,
        "basis": sorted({c.ci_basis or "-" for c in measured}),
    }


def print_quality(
    console: Console, c: HwlatClient, device: str, tables: Sequence[dict[str, Any]], rel_tol: float
) -> list[dict[str, Any]]:
    """The table of figures, then what they mean against `rel_tol` (the agent's target)."""
    rows = [quality(c.lut(device, **t)) for t in tables]
    table = Table("table", "cells", "unstable", "one measurement ±", "a lookup reports ±", "basis")
    for r in rows:
        own = "-" if r["own"] is None else f"{r['own']:.1%}"
        rep = "-" if r["reported"] is None else f"{r['reported']:.1%}"
        table.add_row(
            r["space"], str(r["cells"]), f"{r['unstable']:.0%}", own, rep, ", ".join(r["basis"])
        )
    console.print(table)
    flagged = [r["space"] for r in rows if r["unstable"] > UNSTABLE_LIMIT]
    if flagged:
        names = ", ".join(flagged)
        console.print(
            f"[yellow]more than {UNSTABLE_LIMIT:.0%} of the cells of {names} missed the "
            "target: the machine was busy; re-run on a quieter machine[/yellow]"
        )
    worst = max((r["reported"] or 0.0 for r in rows), default=0.0)
    if worst > rel_tol:
        console.print(
            f"asked ±{rel_tol:.0%} of each measurement; a lookup's 95% interval is ±{worst:.1%} "
            "here because it adds how far this machine moves between batches (the reference "
            "panel's spread, or retests once a kind has 20): more rounds narrow one session, "
            f"not that, so a lookup cannot be had to ±{rel_tol:.0%} on this machine. What the "
            f"demo's time buys here: each measurement to ±{rel_tol:.0%} (the cells not "
            "flagged), and lookups to the interval above; only a quieter machine narrows that."
        )
    return rows
