"""Latency terms of the architecture loss, and the hard-target controller.

Soft forms (the latency weight is fixed; where the search lands depends on it):

- `mul#log` (ProxylessNAS): α · CE · (log E[LAT] / log T)^β
- `add#linear` (ProxylessNAS): CE + λ · (E[LAT] − T) / T
- `fbnet` (FBNet): CE · α · (log LAT)^β

The log forms take latency in microseconds, so the log is positive at any scale (the
papers used milliseconds on phones, where networks take 20–100 ms; at 32x32 on a
desktop CPU a whole network can take less than 1 ms, and log(ms) < 0 flips the sign).

Hard target (`HardTarget`): CE + λ · (E[LAT] − T) / T where λ is not a knob but a
Lagrange multiplier moved by dual ascent after every architecture step,
λ ← λ + η · (E[LAT] − T) / (T · tol), kept ≥ 0 for the `le` constraint. A λ that is too small
lets E[LAT] drift over T, which raises λ, and the other way round; E[LAT] is pulled to
T whatever the accuracy term wants. A final repair step (searchers.repair) closes what
is left for the discrete architecture.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

LOSSES = ("mul#log", "add#linear", "fbnet")
US_PER_MS = 1000.0


@dataclass
class SoftLatency:
    form: str = "mul#log"
    target_ms: float | None = None  # T of mul#log and add#linear
    alpha: float = 0.2
    beta: float = 0.6
    lam: float = 0.1

    def __post_init__(self) -> None:
        if self.form not in LOSSES:
            raise ValueError(f"loss: one of {', '.join(LOSSES)}, got {self.form!r}")
        if self.form != "fbnet" and not (self.target_ms and self.target_ms > 0):
            raise ValueError(f"loss {self.form}: needs a reference latency (--target-ms)")

    def __call__(self, ce: torch.Tensor, lat_ms: torch.Tensor) -> torch.Tensor:
        if self.form == "fbnet":
            return ce * self.alpha * torch.log(lat_ms * US_PER_MS) ** self.beta
        assert self.target_ms is not None  # checked in __post_init__
        if self.form == "mul#log":
            ratio = torch.log(lat_ms * US_PER_MS) / math.log(self.target_ms * US_PER_MS)
            return self.alpha * ce * ratio**self.beta
        return ce + self.lam * (lat_ms - self.target_ms) / self.target_ms

    def weight(self) -> float:
        return self.lam if self.form == "add#linear" else self.alpha


@dataclass
class HardTarget:
    target_ms: float
    constraint: Literal["eq", "le"] = "eq"
    tolerance: float = 0.03
    step: float = 0.2  # η of the dual ascent, per architecture step and tolerance
    lam: float = 0.0

    def __post_init__(self) -> None:
        if not (self.target_ms > 0 and math.isfinite(self.target_ms)):
            raise ValueError(f"target-ms: must be a positive number, got {self.target_ms}")
        if self.constraint not in ("eq", "le"):
            raise ValueError(f"constraint: eq or le, got {self.constraint!r}")
        if not 0 < self.tolerance < 1:
            raise ValueError(f"tolerance: between 0 and 1, got {self.tolerance}")

    def violation(self, lat_ms: float) -> float:
        return (lat_ms - self.target_ms) / self.target_ms

    def __call__(self, ce: torch.Tensor, lat_ms: torch.Tensor) -> torch.Tensor:
        return ce + self.lam * (lat_ms - self.target_ms) / self.target_ms

    def update(self, lat_ms: float) -> None:
        """Dual ascent on λ after an architecture step. The violation is counted in
        tolerances, so a search 2 tolerances over target pushes twice as hard whatever
        the tolerance is."""
        self.lam += self.step * self.violation(lat_ms) / self.tolerance
        if self.constraint == "le":
            self.lam = max(self.lam, 0.0)

    def satisfied(self, lat_ms: float) -> bool:
        v = self.violation(lat_ms)
        return v <= 0 if self.constraint == "le" else abs(v) <= self.tolerance

    def weight(self) -> float:
        return self.lam


LatencyLoss = SoftLatency | HardTarget
