"""What the host was doing around a measurement: load, threads, affinity, frequency.

Everything is best effort: a value the OS does not expose is left out, never guessed.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path
from typing import Any

_CPUFREQ = Path("/sys/devices/system/cpu/cpu{}/cpufreq")


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def process_threads() -> int | None:
    """OS threads of this process (Linux /proc), else Python's own thread count."""
    status = _read(Path("/proc/self/status"))
    if status:
        for line in status.splitlines():
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return threading.active_count()


def affinity() -> list[int] | None:
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None


def cpu_frequency(cores: list[int] | None) -> dict[str, Any]:
    """Current frequency (MHz) and governor of the cores we may run on, when readable."""
    out: dict[str, Any] = {}
    for core in (cores or [])[:64]:
        base = Path(str(_CPUFREQ).format(core))
        khz = _read(base / "scaling_cur_freq")
        if khz is not None and khz.isdigit():
            out.setdefault("mhz", {})[str(core)] = int(khz) // 1000
        governor = _read(base / "scaling_governor")
        if governor:
            out.setdefault("governor", {})[str(core)] = governor
    return out


def host_state() -> dict[str, Any]:
    state: dict[str, Any] = {"process_threads": process_threads()}
    with contextlib.suppress(OSError):
        state["loadavg"] = [round(x, 2) for x in os.getloadavg()]
    cores = affinity()
    state["affinity"] = cores
    state.update(cpu_frequency(cores))
    return state
