"""A device's between-session term: how much its lookups' intervals widen beyond one
measurement's own CI (profiler.uncertainty has the math and why it is needed).

Sigma comes from pairs of raw measurements of one op taken at different times, raw
because lookups serve raw values (no drift divided out), per kind in this order:

1. retests of the kind, once it has `retest.MIN_PAIRS` usable pairs: they are the exact
   question a lookup's interval answers (a random measured op of this kind, measured
   again later) and they carry op-specific luck (where an op's buffers land, how its
   kernels react to a neighbour) that no fixed block can;
2. else the reference panel: three mbconv blocks measured with every agent batch, so a
   device has pairs from its first few batches; the spread of other kinds between
   batches only resembles theirs, so it is an approximation;
3. else none ("within"): the measurement's own CI, which understates (retests covered
   62% and 48% of pairs with it, docs/BENCHMARKS.md, issue 31).

Imported values are always "within": another machine measured them, so neither this
device's retests nor its panel say anything about them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from latency_service.models import Device, ReferenceReading
from latency_service.repository import retest
from profiler import reference
from profiler.uncertainty import (
    NOMINAL,
    Calibration,
    Pair,
    calibrate,
    covered,
    half,
    total_half_width,
)

# readings of the panel paired: the newest 40 (780 pairs per block) follow the machine as
# it is now, and keep the pairs' calibration a few milliseconds per upload
PANEL_WINDOW = 40
NO_PANEL = calibrate([], "panel")


@dataclass(frozen=True)
class Between:
    """A device revision's between-session calibrations: per retested kind and panel."""

    kinds: dict[str, Calibration] = field(default_factory=dict)
    panel: Calibration = NO_PANEL

    def for_kind(self, kind: str) -> tuple[float | None, str]:
        """The sigma a measured op of `kind` gets, and its basis (module docstring)."""
        own = self.kinds.get(kind)
        if own is not None and own.pairs >= retest.MIN_PAIRS and own.sigma is not None:
            return own.sigma, "retests"
        if self.panel.sigma is not None:
            return self.panel.sigma, "panel"
        return None, "within"

    def reported_coverage(self, kind: str, pairs: Sequence[Pair]) -> float | None:
        """How the intervals reported for `kind` cover its retest `pairs`, each judged by
        a sigma calibrated without it: the retests' leave-one-out coverage, or every pair
        with the panel's sigma (calibrated on other pairs), or with none."""
        sigma, basis = self.for_kind(kind)
        if basis == "retests":
            return self.kinds[kind].coverage
        good = [p for p in pairs if p.usable()]
        return sum(covered(p, sigma) for p in good) / len(good) if good else None


def interval(
    between: Between, key: str, median_ms: float, within_ms: float | None, imported: bool
) -> tuple[float | None, str | None]:
    """A measured op's reported 95% half-width and its basis; (None, None) when the
    measurement has no CI of its own (nothing to widen)."""
    if within_ms is None:
        return None, None
    if imported:  # measured on another machine: this device's pairs say nothing of it
        return within_ms, "within"
    sigma, basis = between.for_kind(key.split("|", 1)[0])
    return total_half_width(median_ms, within_ms, sigma), basis


def panel_pairs(s: Session, device: Device) -> list[Pair]:
    return _panel(_newest_readings(s, device))


def assess(
    s: Session, device: Device, kinds: Sequence[str] | None = None
) -> tuple[dict[str, list[retest.Pair]], Between]:
    """The retest pairs of `kinds` (default all: labels and raw pairs) and the
    calibrations, from one read of each: what lookups and the repeatability report use."""
    found = retest.pairs(s, device, kinds)
    raw = {kind: [p.raw for p in of_kind] for kind, of_kind in found.items()}
    return found, _between(raw, panel_pairs(s, device))


def repeatability(
    s: Session, device: Device, kinds: Sequence[str] | None = None
) -> dict[str, dict[str, Any]]:
    """Per kind with at least one retest pair at the device's revision: how its labels
    repeat (retest.summary) and how the intervals lookups report cover its pairs."""
    found, calibrated = assess(s, device, kinds)
    out = {}
    for kind, of_kind in found.items():
        sigma, basis = calibrated.for_kind(kind)
        raw = [p.raw for p in of_kind]
        out[kind] = {
            **retest.summary([p.retest / p.label for p in of_kind], [p.covered for p in of_kind]),
            "nominal": NOMINAL,
            "reported_ci_coverage": calibrated.reported_coverage(kind, raw),
            "ci_basis": basis,
            "sigma": sigma,
        }
    return out


def _between(by_kind: dict[str, list[Pair]], panel: list[Pair]) -> Between:
    kinds = {kind: calibrate(pairs, "retests") for kind, pairs in by_kind.items()}
    return Between(kinds, calibrate(panel, "panel"))


def _newest_readings(s: Session, device: Device) -> list[dict[str, Any]]:
    """The `ops` of the device revision's newest PANEL_WINDOW readings of the current
    panel, oldest first (reference.readings, bounded and without whole rows)."""
    ops = s.scalars(
        select(ReferenceReading.ops)
        .where(
            ReferenceReading.device_id == device.id,
            ReferenceReading.revision == device.revision,
            ReferenceReading.panel == reference.PANEL,
        )
        .order_by(ReferenceReading.id.desc())
        .limit(PANEL_WINDOW)
    ).all()
    return list(reversed(ops))


def _panel(readings: Sequence[dict[str, Any]]) -> list[Pair]:
    """Per panel op, every pair of `readings` (a: the older): raw medians of the same
    fixed block, a batch or more apart."""
    out = []
    for older, newer in combinations(readings, 2):
        for key, b in newer.items():
            a = older.get(key)
            if a is not None:
                ha, hb = half(a.get("ci_half_width_ms")), half(b.get("ci_half_width_ms"))
                out.append(Pair(a["median_ms"], b["median_ms"], ha, hb))
    return out
