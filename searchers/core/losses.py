"""Latency terms of the architecture loss, and the hard-target controller.

Soft forms (the latency weight is fixed; where the search lands depends on it):

- `mul#log` (ProxylessNAS): α · CE · (log E[LAT] / log T)^β
- `add#linear` (ProxylessNAS): CE + λ · (E[LAT] − T) / T
- `fbnet` (FBNet): CE · α · (log LAT)^β
- `singlepath` (Single-Path NAS): CE + λ · log E[LAT]

The log forms take latency in microseconds, so the log is positive at any scale (the
papers used milliseconds on phones, where networks take 20–100 ms; at 32x32 on a
desktop CPU a whole network can take less than 1 ms, and log(ms) < 0 flips the sign).

Hard target (`HardTarget`): an augmented Lagrangian on the architecture the search
would export. The exported architecture is the argmax, whose latency is not
differentiable, and the expected latency under p is a poor stand-in while p is still
spread: on proxyless-mobile@32 a search held E[LAT] on the target while its argmax sat
far under it (each layer's cheapest candidate leads by a little when p is flat). So
the term uses E_s[LAT], the expected latency under the sharpened distribution
softmax(α/τ_s) (τ_s = 0.3), close to the argmax's and differentiable where it matters
(between a layer's leading candidates):

    loss = CE + λ·u + (ρ/2)·u²,  u = (E_s[LAT] − c) / (c·b)

u is the distance from the controller's setpoint c in half-bands b (eq: c = T, b = tol;
le: c = T(1 − tol/2), b = tol/2, so the search aims inside [T(1 − tol), T]; for le only
u > 0 is penalised and λ ≥ 0). Plain dual ascent (λ alone) swung λ from sign to sign
every few epochs (docs/BENCHMARKS.md, "`hwlat search` with its defaults"): the
multiplier integrates the violation, the architecture answers late through Adam's
averaging, and λ overshoots. Here

- the quadratic term is the proportional part: it pulls the latency back at once,
  harder the farther it is, and vanishes at the setpoint;
- λ is the integral part that removes what offset remains: λ ← λ + η·clip(u_a, ±3) with
  a small η (0.02 per architecture step) and |λ| ≤ λ_max (5): damped and bounded; u_a is
  the exact table latency of the current argmax, so the search lands the exported
  architecture near the target and the repair (core/repair.py) is a last touch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

LOSSES = ("mul#log", "add#linear", "fbnet", "singlepath")
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
        if self.form in ("mul#log", "add#linear") and not (self.target_ms and self.target_ms > 0):
            raise ValueError(f"loss {self.form}: needs a reference latency (--target-ms)")

    def __call__(self, ce: torch.Tensor, lat_ms: torch.Tensor) -> torch.Tensor:
        if self.form == "fbnet":
            return ce * self.alpha * torch.log(lat_ms * US_PER_MS) ** self.beta
        if self.form == "singlepath":
            return ce + self.lam * torch.log(lat_ms * US_PER_MS)
        assert self.target_ms is not None  # checked in __post_init__
        if self.form == "mul#log":
            ratio = torch.log(lat_ms * US_PER_MS) / math.log(self.target_ms * US_PER_MS)
            return self.alpha * ce * ratio**self.beta
        return ce + self.lam * (lat_ms - self.target_ms) / self.target_ms

    def weight(self) -> float:
        return self.lam if self.form in ("add#linear", "singlepath") else self.alpha

    def update(self, exported_ms: float) -> None:
        """A fixed weight: nothing to update."""

    def state(self) -> dict[str, float]:
        return {}

    def load_state(self, state: dict[str, float]) -> None:
        """A fixed weight: nothing to restore."""


@dataclass
class HardTarget:
    target_ms: float
    constraint: Literal["eq", "le"] = "eq"
    tolerance: float = 0.03
    step: float = 0.02  # η of the dual step, per architecture step and half-band
    rho: float = 1.0  # weight of the quadratic (proportional) term
    lam_max: float = 5.0  # |λ| bound
    temperature: float = 0.3  # τ_s of the sharpened distribution the term acts on
    lam: float = 0.0

    def __post_init__(self) -> None:
        if not (self.target_ms > 0 and math.isfinite(self.target_ms)):
            raise ValueError(f"target-ms: must be a positive number, got {self.target_ms}")
        if self.constraint not in ("eq", "le"):
            raise ValueError(f"constraint: eq or le, got {self.constraint!r}")
        if not 0 < self.tolerance < 1:
            raise ValueError(f"tolerance: between 0 and 1, got {self.tolerance}")
        if self.step < 0 or self.rho < 0 or self.lam_max <= 0 or self.temperature <= 0:
            raise ValueError("hard target: step, rho >= 0; lam_max, temperature > 0")

    @property
    def setpoint(self) -> float:
        """Where the controller aims: T for eq, the middle of [T(1 − tol), T] for le."""
        return self.target_ms * (1 - self.tolerance / 2 if self.constraint == "le" else 1)

    @property
    def band(self) -> float:
        return self.tolerance / 2 if self.constraint == "le" else self.tolerance

    def units(self, lat_ms: float) -> float:
        """Distance from the setpoint, in half-bands."""
        return (lat_ms - self.setpoint) / (self.setpoint * self.band)

    def violation(self, lat_ms: float) -> float:
        return (lat_ms - self.target_ms) / self.target_ms

    def __call__(self, ce: torch.Tensor, lat_ms: torch.Tensor) -> torch.Tensor:
        u = (lat_ms - self.setpoint) / (self.setpoint * self.band)
        quad = torch.relu(u) if self.constraint == "le" else u
        return ce + self.lam * u + 0.5 * self.rho * quad**2

    def update(self, exported_ms: float) -> None:
        """The dual step after an architecture step, on the argmax's table latency."""
        u = max(-3.0, min(3.0, self.units(exported_ms)))
        lo = 0.0 if self.constraint == "le" else -self.lam_max
        self.lam = max(lo, min(self.lam_max, self.lam + self.step * u))

    def satisfied(self, lat_ms: float) -> bool:
        v = self.violation(lat_ms)
        return v <= 0 if self.constraint == "le" else abs(v) <= self.tolerance

    @classmethod
    def between(cls, lo_ms: float, hi_ms: float) -> HardTarget:
        """The window [lo, hi] (`--min-ms`, `--max-ms`) as an eq target: T its middle,
        the tolerance its half-width over T."""
        if not (0 < lo_ms < hi_ms and math.isfinite(hi_ms)):
            raise ValueError(f"min-ms/max-ms: need 0 < min < max, got [{lo_ms:g}, {hi_ms:g}] ms")
        return cls((lo_ms + hi_ms) / 2, "eq", (hi_ms - lo_ms) / (hi_ms + lo_ms))

    def window(self) -> tuple[float, float]:
        """[lo, hi] ms of the latencies that satisfy the target (le: from 0)."""
        if self.constraint == "le":
            return 0.0, self.target_ms
        return self.target_ms * (1 - self.tolerance), self.target_ms * (1 + self.tolerance)

    def weight(self) -> float:
        return self.lam

    def state(self) -> dict[str, float]:
        return {"lam": self.lam}

    def load_state(self, state: dict[str, float]) -> None:
        self.lam = float(state["lam"])


LatencyLoss = SoftLatency | HardTarget
