"""The reference panel on this machine: what the service does with an agent's readings,
done for a local `hwlat profile`.

Every batch of a profile measures the panel's blocks in its own interleaved rounds.
The batch's drift factor is the panel against a baseline; an op's corrected value is
its median divided by its batch's factor. On this VM two profiles of fbnet@32 moved by
whole batches (one batch 8% faster than the same batch of the other profile, the next
3% slower, each op within ±5% of its batch's shift): the panel sees that, the engine's
own interval cannot (docs/BENCHMARKS.md, issue 31).

Readings are kept per device fingerprint in a small JSON store, so that two profiles,
hours apart, are divided against one baseline. The baseline is the median of each panel
block over the store's first `BASELINE_READINGS` readings: once earlier runs have left
`MIN_READINGS`, a run is judged against them only (a slower run does not drag the
baseline toward itself); until then it is judged with its own. Delete the store to take
a new baseline (e.g. after moving to another host).

The between-session sigma of corrected values (profiler.uncertainty) comes from the
panel too: each block's value divided by the factor of the *other* blocks of its
reading, compared between readings, so the correction's own error is in it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import statistics
from collections.abc import Iterator, Mapping
from itertools import combinations
from pathlib import Path
from typing import Any

from profiler import reference
from profiler.lut import now, save_json
from profiler.stats import Z95
from profiler.uncertainty import Calibration, Pair, calibrate, half

BASELINE_READINGS = 8
STORE_CAP = 400  # readings kept per fingerprint (the oldest go first, never the baseline's)
SIGMA_WINDOW = 40  # newest readings whose pairs calibrate sigma
FORMAT = "hwlat-reference/1"


def default_store_dir() -> Path:
    """Where readings are kept, one file per device fingerprint (beside the export cache:
    $HWLAT_CACHE_DIR, else $XDG_CACHE_HOME/hwlat)."""
    root = os.environ.get("HWLAT_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "hwlat"
    )
    return Path(root) / "reference"


Reading = dict[str, Any]  # {"id", "run", "at", "ops": {key: {median_ms, ci_half_width_ms}}}


class Store:
    """A fingerprint's readings, oldest first; in memory only when `path` is None."""

    def __init__(self, path: Path | None, fingerprint_id: str):
        self.path, self.fingerprint_id = path, fingerprint_id
        self.readings: list[Reading] = []
        if path is not None and path.exists():
            self.readings = self._load(path)

    def _load(self, path: Path) -> list[Reading]:
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(
                f"{path}: unreadable reference store ({exc}); remove it to start a new baseline"
            ) from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(f"{path}: not a reference store ({FORMAT}); remove it")
        if data.get("fingerprint_id") != self.fingerprint_id:
            raise ValueError(
                f"{path}: not the reference store of fingerprint {self.fingerprint_id}; "
                "pass another --reference-dir or remove the file"
            )
        return [r for r in data.get("readings", []) if r.get("panel") == reference.PANEL]

    def add(self, run: str, ops: Mapping[str, Mapping[str, Any]]) -> Reading:
        """A new reading of `run` (panel key -> its measurement's median and CI), saved;
        under an exclusive lock, so two profiles on one machine add theirs in turn."""
        with self._locked():
            if self.path is not None and self.path.exists():
                self.readings = self._load(self.path)  # another profile may have added some
            return self._append(run, ops)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        if self.path is None:
            yield
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(f".{self.path.name}.lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
            yield

    def _append(self, run: str, ops: Mapping[str, Mapping[str, Any]]) -> Reading:
        rid = max((r["id"] for r in self.readings), default=0) + 1
        row = {
            "id": rid,
            "run": run,
            "at": now(),
            "panel": reference.PANEL,
            "ops": {k: {"median_ms": v["median_ms"], "ci_half_width_ms": v.get("ci_half_width_ms")}
                    for k, v in sorted(ops.items())},
        }  # fmt: skip
        self.readings.append(row)
        if len(self.readings) > STORE_CAP:  # drop the oldest beyond the baseline's own
            keep = self.readings[:BASELINE_READINGS]
            self.readings = keep + self.readings[-(STORE_CAP - BASELINE_READINGS) :]
        self._save()
        return row

    def _save(self) -> None:
        if self.path is None:
            return
        data = {"format": FORMAT, "fingerprint_id": self.fingerprint_id, "readings": self.readings}
        save_json(self.path, data)

    def basis(self, run: str) -> list[Reading]:
        """The readings the baseline of `run` is taken from (see the module docstring)."""
        earlier = [r for r in self.readings if r["run"] != run][:BASELINE_READINGS]
        if len(earlier) >= reference.MIN_READINGS:
            return earlier
        return self.readings[:BASELINE_READINGS]

    def baseline(self, run: str) -> dict[str, float]:
        return reference.baseline([reference.medians(r["ops"]) for r in self.basis(run)])

    def factors(self, run: str) -> dict[int, tuple[float, float]]:
        """reading id -> (raw factor, the factor a batch is divided by) for `run`'s
        readings: raw against the baseline, then pulled toward the run's median as far
        as the panel's own noise explains the run's spread (profiler.reference.shrink)."""
        base = self.baseline(run)
        raw = {
            r["id"]: reference.factor(reference.medians(r["ops"]), base)
            for r in self.readings
            if r["run"] == run
        }
        if not raw:
            return {}
        used = reference.shrink(list(raw.items()))
        return {rid: (f, used[rid]) for rid, f in raw.items()}

    def judged(self, run: str) -> bool:
        """Whether the baseline has enough readings to call a batch disturbed."""
        return len(self.basis(run)) >= reference.MIN_READINGS

    def sigma(self) -> Calibration:
        """Between-session sigma of a corrected value, from the newest readings."""
        return calibrate(corrected_pairs(self.readings[-SIGMA_WINDOW:]), "panel")


def corrected_pairs(readings: list[Reading]) -> list[Pair]:
    """Each panel block, corrected by the factor of its reading's other blocks, paired
    between every two readings: how far a corrected value moves between sessions."""
    if len(readings) < 2:
        return []
    base = reference.baseline([reference.medians(r["ops"]) for r in readings])
    values: dict[str, list[tuple[float, float]]] = {}
    for r in readings:
        meds = reference.medians(r["ops"])
        for key, v in r["ops"].items():
            others = {k: m for k, m in meds.items() if k != key}
            f = reference.factor(others, base)
            values.setdefault(key, []).append((meds[key] / f, half(v.get("ci_half_width_ms")) / f))
    return [
        Pair(a[0], b[0], a[1], b[1])
        for series in values.values()
        for a, b in combinations(series, 2)
    ]


def combine(measurements: list[dict[str, Any]], sigma: float | None) -> dict[str, Any]:
    """An op's reported value from its measurements (each with its batch's `factor`):
    the median of the drift-divided values in log space, as training combines an op's
    labels, the same of the raw values, and the 95% half-width of the corrected value
    (the measurements' own intervals averaged over n, plus sigma whole)."""
    raw = [math.log(m["median_ms"]) for m in measurements]
    cor = [math.log(m["median_ms"] / m["factor"]) for m in measurements]
    raw_ms, corrected_ms = math.exp(statistics.median(raw)), math.exp(statistics.median(cor))
    halves = [m.get("ci_half_width_ms") for m in measurements]
    within = [
        math.inf if h is None else h / (Z95 * m["median_ms"])
        for h, m in zip(halves, measurements, strict=True)
    ]
    # the measurements' own errors average out over n; the session term does not: they
    # were taken in one run, minutes apart, in the machine state they share
    var = math.fsum(w * w for w in within) / len(within) ** 2 + (sigma or 0.0) ** 2
    ci = Z95 * corrected_ms * math.sqrt(var)
    return {
        "raw_ms": raw_ms,
        "corrected_ms": corrected_ms,
        "drift_factor": raw_ms / corrected_ms,
        "reported_ci_half_width_ms": ci if math.isfinite(ci) else None,
        "ci_basis": "panel" if sigma is not None else "within",
        "measured_times": len(measurements),
    }
