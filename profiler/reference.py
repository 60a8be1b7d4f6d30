"""The reference panel: a few fixed blocks measured with every agent batch, so that a
machine that drifts (a noisy neighbour, a throttled or differently placed VM) shows in
the numbers instead of silently shifting a whole run.

Measured in the same interleaved rounds as the batch, the panel sees what the batch
saw. Its drift factor is the geometric mean, over the panel's blocks, of each block's
median against the device revision's baseline (the median of that block over every
reading). A batch whose factor is far from 1 is flagged; training can divide a batch's
labels by its factor, so one slow run does not teach a predictor a slower machine.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from profiler.ops import DTYPES, OpSpec

PANEL = "mbconv3-v1"  # bump when the blocks change: readings of two panels never mix

# Three MobileNet blocks from the middle of the sampling prior, small to large (an order
# of magnitude apart in latency), so the factor reflects both the per-call overhead
# small blocks pay and the memory traffic large ones do.
_BLOCKS = (
    ((1, 24, 14, 14), {"cin": 24, "cout": 24, "e": 3, "k": 3, "s": 1}),
    ((1, 40, 28, 28), {"cin": 40, "cout": 80, "e": 6, "k": 5, "s": 2}),
    ((1, 96, 28, 28), {"cin": 96, "cout": 96, "e": 6, "k": 3, "s": 1}),
)


def panel_ops(dtype: str = "float32") -> list[OpSpec]:
    """The panel's blocks in the runtime's precision."""
    return [OpSpec.make("mbconv", shape, dtype, **params) for shape, params in _BLOCKS]


def check(panel: str, keys: Iterable[str]) -> str:
    """The precision of a reading's blocks; ValueError unless they are exactly the
    blocks of a panel this version knows, in one precision."""
    if panel != PANEL:
        raise ValueError(
            f"panel: unknown reference panel {panel!r} (this version knows {PANEL!r}); "
            "upgrade the older of agent and service"
        )
    given = set(keys)
    for dtype in DTYPES:
        if given == {op.key for op in panel_ops(dtype)}:
            return dtype
    raise ValueError(
        f"ops: not the blocks of panel {panel!r} in one precision; send exactly the keys "
        "of profiler.reference.panel_ops(dtype)"
    )


Reading = Mapping[str, float]  # panel op key -> median ms of one batch


def medians(ops: Mapping[str, Mapping[str, Any]]) -> dict[str, float]:
    """A stored reading's ops ({key: {"median_ms", ...}}) as a Reading."""
    return {k: float(v["median_ms"]) for k, v in ops.items()}


def baseline(readings: Sequence[Reading]) -> dict[str, float]:
    """The median of each panel op over the readings: the device's usual state."""
    keys = set().union(*readings) if readings else set()
    return {k: statistics.median(r[k] for r in readings if k in r) for k in sorted(keys)}


def factor(reading: Reading, base: Mapping[str, float]) -> float:
    """How much slower (>1) or faster (<1) than the baseline this batch ran: the
    geometric mean of the panel's ratios. 1.0 when no op of the reading has a baseline."""
    logs = [math.log(ms / base[k]) for k, ms in reading.items() if base.get(k, 0) > 0]
    return math.exp(math.fsum(logs) / len(logs)) if logs else 1.0


@dataclass(frozen=True)
class Drift:
    """One reading against the baseline: its factor and whether it is out of tolerance."""

    factor: float
    flagged: bool


def drift(reading: Reading, base: Mapping[str, float], tolerance: float) -> Drift:
    f = factor(reading, base)
    return Drift(f, abs(math.log(f)) > math.log1p(tolerance))


# --- shared by the agent's service and the local `hwlat profile` ------------------------
MIN_READINGS = 5  # fewer, and the baseline is too young to call a batch disturbed
# The panel's own batch-to-batch noise on a quiet machine (sd of a reading's log
# factor): spread beyond it within a run is drift, and each batch keeps that much of it.
PANEL_NOISE = 0.015


@dataclass(frozen=True)
class Rules:
    """When an op is measured again: its batch's panel read more than `drift` (relative)
    off the baseline, or its own CI half-width is more than `ci` of its median; at most
    `extra` more times (so a machine that is always disturbed cannot loop)."""

    drift: float  # relative panel deviation that makes a batch disturbed; 0: never
    ci: float  # relative CI half-width that makes an op unstable; 0: never
    extra: int  # repeats allowed per op (and revision, on a service)

    def disturbed(self, factor: float) -> bool:
        return self.drift > 0 and abs(math.log(factor)) > math.log1p(self.drift)

    def unstable(self, median_ms: float, ci_half_width_ms: float | None) -> bool:
        ci = ci_half_width_ms
        return self.ci > 0 and ci is not None and ci > self.ci * median_ms


DEFAULT_RULES = Rules(drift=0.10, ci=0.15, extra=2)


def shrink(factors: Sequence[tuple[int, float]]) -> dict[int, float]:
    """Each reading's factor of one run, in log space, moved toward the run's median by
    the share of the run's spread (sd of log factors) that the panel's noise explains:
    weight 1 - noise²/spread², at least 0: a drifting run is divided per batch, a quiet
    one per run (the figures: docs/BENCHMARKS.md, issue 6 fifth figures)."""
    logs = np.log([f for _, f in factors])
    mid = float(np.median(logs))
    spread = float(np.std(logs, ddof=1)) if len(logs) > 1 else 0.0
    keep = max(0.0, 1.0 - PANEL_NOISE**2 / spread**2) if spread > 0 else 0.0
    return {
        rid: math.exp(mid + keep * (lf - mid)) for (rid, _), lf in zip(factors, logs, strict=True)
    }
