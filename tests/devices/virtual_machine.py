"""A machine on a virtual clock, for tests of the measuring discipline that must not
depend on this VM's speed: every block costs a fixed time (from its key) times the
machine's current speed, times a little seeded noise; the timing engine reads the
virtual clock (tests patch profiler.timing's `time` with the Clock)."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from typing import Any

from devices.runtimes.base import Prepared, Runtime
from profiler import reference
from profiler.ops import OpSpec


@dataclass
class Clock:
    ns: int = 0

    def perf_counter_ns(self) -> int:
        return self.ns

    def perf_counter(self) -> float:
        return self.ns / 1e9


@dataclass
class Machine:
    """`speeds[i]`: how slow the machine is while batch i runs (the last one after)."""

    clock: Clock
    speeds: list[float] = field(default_factory=lambda: [1.0])
    noise: float = 0.01
    batch: int = -1
    rng: random.Random = field(default_factory=lambda: random.Random(0))

    @property
    def speed(self) -> float:
        return self.speeds[min(max(self.batch, 0), len(self.speeds) - 1)]


class Block:
    timer = "host"

    def __init__(self, machine: Machine, cost_s: float):
        self.machine, self.cost_s = machine, cost_s

    def run(self, calls: int) -> None:
        m = self.machine
        jitter = m.rng.lognormvariate(0.0, m.noise)
        m.clock.ns += int(calls * self.cost_s * m.speed * jitter * 1e9)

    def sync(self) -> None:
        pass

    def flush_cache(self) -> None:
        pass

    def reload(self) -> None:
        pass


def cost(op: OpSpec) -> float:
    """0.1 to 1 ms per call, fixed by the op's key."""
    h = int(hashlib.sha256(op.key.encode()).hexdigest()[:8], 16)
    return 1e-4 * (1 + 9 * h / 0xFFFFFFFF)


class VirtualRuntime(Runtime):
    """Prepares any op as a Block; a new batch begins when the panel is prepared
    (profile_ops prepares it once per batch, after the batch's own ops)."""

    name = "virtual"

    def __init__(self, machine: Machine):
        super().__init__(threads=1)
        self.machine = machine
        self.first_panel_key = reference.panel_ops()[0].key

    def prepare(self, op: OpSpec) -> Prepared:
        if op.key == self.first_panel_key:
            self.machine.batch += 1
        return Prepared(Block(self.machine, cost(op)))

    def prepare_network(self, module: Any, x: Any, ident: str) -> Prepared:
        raise NotImplementedError("virtual runtime: blocks only")

    def describe(self) -> dict[str, Any]:
        return {"runtime": self.name, "threads": 1}
