"""Runtimes by name: `@register_runtime` on the class, `create_runtime(name, ...)` to use."""

from __future__ import annotations

from typing import Any

from devices.runtimes.base import Runtime
from profiler.registry import Registry

RUNTIMES = Registry[Runtime]("runtime", "runtime")
register_runtime = RUNTIMES.register
list_runtimes = RUNTIMES.names
runtime_class = RUNTIMES.get


def create_runtime(name: str, **kwargs: Any) -> Runtime:
    """`create_runtime("ort-cpu", threads=2)`; raises RuntimeUnavailable when it cannot run."""
    return RUNTIMES.create(name, **kwargs)
