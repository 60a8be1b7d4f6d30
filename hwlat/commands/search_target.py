"""The latency goal of `hwlat search`: a target (`--target-ms`, eq or le), a window
(`--max-ms T [--min-ms L]`) or a soft loss, and how it maps onto the table.

A target or window is on the table sum, unless it is end to end: `--calibrated-target`
maps `--target-ms` through the device's calibration, and `--max-ms`/`--min-ms` are
mapped whenever the device has a usable calibration (`--table-constraint` keeps them on
the table sum). The calibration is monotone in the table sum and a chain architecture
always has the same number of ops, so the mapped bound holds exactly; a DARTS genotype's
op count varies, so there the bounds stay on the table sum.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

from hwlat.commands.common import fail
from latency_service.calibration_formula import table_for
from profiler.lutformats import list_formats, read_table
from searchers.core.losses import HardTarget, LatencyLoss, SoftLatency
from searchers.latency import LatencyTable
from searchers.spaces import SearchSpace
from searchers.spaces._chain import ChainSpace


def latency_check(
    target_ms: float | None,
    soft: bool,
    loss: str | None,
    max_ms: float | None = None,
    min_ms: float | None = None,
) -> None:
    if loss is not None and not soft:
        fail(
            f"--loss {loss} is a soft (fixed-weight) loss: add --soft, or drop --loss to keep "
            "the hard target (its own controller, then a repair)"
        )
    if min_ms is not None and max_ms is None:
        fail("--min-ms L needs --max-ms T (the window is [L, T])")
    if max_ms is not None:
        if target_ms is not None or soft:
            fail("--max-ms is a constraint of its own: drop --target-ms and --soft")
        for flag, v in (("--max-ms", max_ms), ("--min-ms", min_ms)):
            if v is not None and not (v > 0 and math.isfinite(v)):
                fail(f"{flag}: must be a positive number of ms, got {v}")
        if min_ms is not None and min_ms >= max_ms:
            fail(f"--min-ms {min_ms:g} must be below --max-ms {max_ms:g}")
        return
    if target_ms is None and not (soft and loss in ("fbnet", "singlepath")):
        fail(
            "--target-ms T is required, or a window --max-ms T [--min-ms L] (only --soft "
            "--loss fbnet or singlepath runs without one)"
        )


def make_latency(
    target_ms: float | None,
    tolerance: float,
    constraint: str,
    soft: bool,
    loss: str | None,
    window: tuple[float | None, float] | None = None,
) -> LatencyLoss:
    """The soft loss, the hard target, or the window [lo, hi] (lo None: at most hi)."""
    if window is not None:
        lo, hi = window
        return HardTarget(hi, "le", tolerance) if lo is None else HardTarget.between(lo, hi)
    if soft:
        return SoftLatency(loss or "mul#log", target_ms)
    if constraint not in ("eq", "le"):
        fail(f"--constraint: eq or le, got {constraint!r}")
    c: Literal["eq", "le"] = "eq" if constraint == "eq" else "le"
    return HardTarget(target_ms, c, tolerance)  # type: ignore[arg-type]


def calibration(c: Any, device: str, space: SearchSpace) -> dict[str, Any] | None:
    """The device's calibration for this space (with the op count of its networks), or
    None when it has no usable one."""
    arch = space.arch_to_json(space.random_arch(0))
    est = c.estimate(device, {**space.params(), "arch": arch})
    cal = dict(est.calibration)
    if not cal.get("available") or cal["coef"][0] <= 0:
        return None
    cal.setdefault("form", "linear")  # a service from before the power form sends none
    cal["ops"] = est.ops
    return cal


def to_table(cal: dict[str, Any], ms: float) -> float:
    return table_for(cal["form"], cal["coef"], cal["intercept"], ms, cal["ops"])


def table_target(
    c: Any, device: str, space: SearchSpace, target_ms: float
) -> tuple[float, dict[str, Any]]:
    """The table latency whose calibrated estimate is `target_ms` end to end."""
    if not (target_ms > 0 and math.isfinite(target_ms)):
        fail(f"--target-ms: must be a positive number, got {target_ms}")
    cal = calibration(c, device, space)
    if cal is None:
        fail(
            f"--calibrated-target: device {device} has no usable calibration yet; measure "
            f"networks end to end first (`hwlat validate --device {device} --space "
            f"{space.name}`)"
        )
    table_ms = to_table(cal, target_ms)
    if table_ms <= 0:
        fail(f"--target-ms {target_ms}: below what the calibration says any network can do")
    info = {"target_ms": target_ms, "table_target_ms": table_ms, "calibration": cal}
    return table_ms, info


def table_window(
    c: Any | None,
    device: str | None,
    space: SearchSpace,
    bounds: tuple[float | None, float],
    table_only: bool,
) -> tuple[tuple[float | None, float], dict[str, Any]]:
    """`--min-ms`/`--max-ms` on the table sum, and how they got there."""
    lo, hi = bounds
    on = {"max_ms": hi, "min_ms": lo, "on": "table sum"}
    if table_only or device is None or c is None:
        return bounds, on
    if not isinstance(space, ChainSpace):
        return bounds, {**on, "why": "a genotype's op count varies: no exact calibrated map"}
    cal = calibration(c, device, space)
    if cal is None:
        return bounds, {**on, "why": f"device {device} has no usable calibration yet"}
    t_hi = to_table(cal, hi)
    t_lo = None if lo is None else max(to_table(cal, lo), 1e-9)
    if t_hi <= 0:
        fail(f"--max-ms {hi:g}: below what the calibration says any network can do")
    info = {**on, "on": "calibrated estimate", "table_min_ms": t_lo, "table_max_ms": t_hi,
            "calibration": cal}  # fmt: skip
    return (t_lo, t_hi), info


def reachable(bounds: tuple[float, float], hard: HardTarget) -> None:
    """Refuse a target no architecture of the table can meet before training anything."""
    lo, hi = bounds
    w_lo, w_hi = hard.window()
    if w_hi < lo or w_lo > hi:
        fail(
            f"latency: the constraint [{w_lo:.4g}, {w_hi:.4g}] ms (table) misses the "
            f"achievable range of this table, {lo:.4g}..{hi:.4g} ms (fixed ops included); "
            "pick one inside it"
        )


def file_classes(lut: Path | None, fmt: str | None) -> int | None:
    """The class count a foreign table's file gives away (ProxylessNAS's Logits: 1000)."""
    if lut is None:
        return None
    try:
        foreign = read_table(lut, fmt)
    except ValueError:
        return None  # hwlat's own JSON, or a broken file: reading the table will say
    return foreign.fmt.infer(foreign.entries).get("classes")


def load_table(
    space: SearchSpace,
    deploy: SearchSpace | None,
    c: Any,
    device: str | None,
    lut: Path | None,
    fmt: str | None,
) -> LatencyTable:
    """The table for the space searched; with a deployment configuration (`--table-
    resolution`), the table of that configuration standing in for the space searched."""
    target = deploy or space
    if device is not None:
        table = LatencyTable.from_service(c, device, target)
    else:
        assert lut is not None  # one of the two, checked by the caller
        table = LatencyTable.from_file(lut, target, fmt)
    return table if deploy is None else table.retarget(space)


def imported(table: LatencyTable) -> str | None:
    """Where a table measured on a device that is not here came from: a foreign file
    (`--lut`) or a device imported from files (`--device`); None for a measured one."""
    if table.meta.get("format") in list_formats():
        return f"a {table.meta['format']} file"
    files = table.meta.get("imported")
    return "files (" + "; ".join(files) + ")" if files else None
