"""The runtime contract: prepare a block for the timing engine, and say what really ran."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar

from profiler.ops import OpSpec
from profiler.timing import Runnable


@dataclass
class Prepared:
    runnable: Runnable
    export_s: float = 0.0  # export/quantisation time spent for this op now (0 when cached)
    info: dict[str, Any] = field(default_factory=dict)  # per-op facts (e.g. int8 kernels)


class Runtime(ABC):
    """One way of running blocks. Construct, use as a context manager, `prepare(op)`.

    `describe()` reports what is really in use (providers the session chose, threads,
    affinity, precision, library versions), read back from the libraries rather than
    echoed from the request. `settings()` is the part that identifies the configuration
    in a device fingerprint.
    """

    name: ClassVar[str]
    precisions: ClassVar[tuple[str, ...]] = ("float32",)
    description: ClassVar[str] = ""

    def __init__(
        self,
        threads: int | None = None,
        precision: str | None = None,
        cache_dir: Path | None = None,
    ):
        self.precision = precision or self.precisions[0]
        if self.precision not in self.precisions:
            raise ValueError(
                f"precision: {self.name} runs {', '.join(self.precisions)}, not {self.precision!r}"
            )
        if threads is not None and (isinstance(threads, bool) or threads < 1):
            raise ValueError(f"threads: must be a positive integer, got {threads!r}")
        self.threads = threads or self.default_threads()
        self.cache_dir = cache_dir
        self._saved_affinity: set[int] | None = None

    def default_threads(self) -> int:
        """All the cores this process may use but one, which is left to the harness and
        the OS: with every core busy, each interrupt and each neighbour's burst lands on
        a measurement and widens the run-to-run spread (docs/BENCHMARKS.md, issue 3)."""
        return max(1, len(os.sched_getaffinity(0)) - 1)

    def check_op(self, op: OpSpec) -> None:
        if op.dtype != self.precision:
            raise ValueError(
                f"dtype: {op.key} is {op.dtype} but {self.name} runs "
                f"{self.precision}; build ops with dtype={self.precision!r}"
            )

    @abstractmethod
    def prepare(self, op: OpSpec) -> Prepared:
        """Build/export/load the block; raises a MeasureError subclass on failure."""

    @abstractmethod
    def prepare_network(self, module: Any, x: Any, ident: str) -> Prepared:
        """A whole network (torch module + float32 example input), cached by `ident`."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """What really runs: runtime, versions, providers, threads, affinity, precision."""

    def settings(self) -> dict[str, Any]:
        """The settings that make numbers comparable (part of the device fingerprint)."""
        return {"runtime": self.name, "precision": self.precision, "threads": self.threads}

    # --- pinning (mobile-like runtimes) --------------------------------------------------
    def pin_to(self, cores: set[int]) -> None:
        """Pin this process to `cores` until close(); what was there before is restored."""
        if self._saved_affinity is None:
            self._saved_affinity = os.sched_getaffinity(0)
        os.sched_setaffinity(0, cores)

    def close(self) -> None:
        if self._saved_affinity is not None:
            os.sched_setaffinity(0, self._saved_affinity)
            self._saved_affinity = None

    def __enter__(self) -> Runtime:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
