"""Runtimes by name: `@register_runtime` on the class, `create_runtime(name, ...)` to use."""

from __future__ import annotations

from typing import Any, TypeVar

from devices.runtimes.base import Runtime

_RUNTIMES: dict[str, type[Runtime]] = {}
R = TypeVar("R", bound=type[Runtime])


def register_runtime(cls: R) -> R:
    if cls.name in _RUNTIMES:
        raise RuntimeError(f"runtime {cls.name!r} registered twice")
    _RUNTIMES[cls.name] = cls
    return cls


def list_runtimes() -> list[str]:
    return sorted(_RUNTIMES)


def runtime_class(name: str) -> type[Runtime]:
    try:
        return _RUNTIMES[name]
    except KeyError:
        raise ValueError(
            f"runtime: unknown runtime {name!r} (known: {', '.join(list_runtimes())})"
        ) from None


def create_runtime(name: str, **kwargs: Any) -> Runtime:
    """`create_runtime("ort-cpu", threads=2)`; raises RuntimeUnavailable when it cannot run."""
    return runtime_class(name)(**kwargs)
