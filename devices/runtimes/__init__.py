"""Runtimes: `create_runtime(name, threads=..., precision=...)`; see `list_runtimes()`."""

# Importing the modules registers the runtimes.
from devices.runtimes import ort_rt, torch_rt  # noqa: F401
from devices.runtimes._registry import (
    create_runtime,
    list_runtimes,
    register_runtime,
    runtime_class,
)
from devices.runtimes.base import Prepared, Runtime

__all__ = [
    "Prepared",
    "Runtime",
    "create_runtime",
    "list_runtimes",
    "register_runtime",
    "runtime_class",
]
