"""Device fingerprint: what the machine is and how the runtime is set, and a stable id.

Two runs on the same machine with the same runtime settings give the same id; a new
CPU, GPU, driver, OS kernel, library version, thread count or precision gives a new
one, and so a new device revision: numbers are never silently mixed across them.
Nothing volatile (load, free memory, frequency) goes in.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
from pathlib import Path
from typing import Any

from devices.runtimes.base import Runtime


def _cpuinfo() -> dict[str, Any]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {"cpu_model": platform.processor() or platform.machine()}
    model, cores, physical = None, set(), None
    for block in text.split("\n\n"):
        fields = dict(
            (k.strip(), v.strip()) for k, _, v in (ln.partition(":") for ln in block.splitlines())
        )
        model = model or fields.get("model name") or fields.get("Hardware")
        if "core id" in fields:
            cores.add((fields.get("physical id", "0"), fields["core id"]))
    physical = len(cores) or None
    return {"cpu_model": model or platform.machine(), "cpu_physical_cores": physical}


def _memory_gib() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / (1 << 20))
    except OSError:
        pass
    return None


def _gpus() -> list[dict[str, Any]]:
    try:
        import torch
    except ImportError:
        return []
    if not torch.cuda.is_available():
        return []
    driver = None
    if shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(
                ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
            driver = out.stdout.strip().splitlines()[0] if out.stdout.strip() else None
        except (OSError, subprocess.TimeoutExpired):
            driver = None
    gpus = []
    for i in range(torch.cuda.device_count()):
        p = torch.cuda.get_device_properties(i)
        gpus.append(
            {
                "name": p.name,
                "capability": f"{p.major}.{p.minor}",
                "memory_gib": round(p.total_memory / (1 << 30)),
                "driver": driver,
                "cuda": torch.version.cuda,
            }
        )
    return gpus


def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for lib in ("torch", "onnxruntime"):
        try:
            out[lib] = __import__(lib).__version__
        except ImportError:
            out[lib] = None
    return out


def machine_facts() -> dict[str, Any]:
    return {
        **_cpuinfo(),
        "cpu_logical_cores": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "gpus": _gpus(),
        "os": f"{platform.system()} {platform.release()}",
        "arch": platform.machine(),
        **_versions(),
    }


def fingerprint(runtime: Runtime) -> dict[str, Any]:
    return {"machine": machine_facts(), "runtime": runtime.settings()}


def fingerprint_id(fp: dict[str, Any]) -> str:
    blob = json.dumps(fp, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
