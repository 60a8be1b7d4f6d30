"""Typed measurement failures. A failure is reported as one of these, never as a latency.

Each error has a stable `kind` string (stored by the service and the LUT file) and a
message that says what went wrong and, where it can, what to do about it.
"""

from __future__ import annotations

from typing import Any


class MeasureError(Exception):
    kind = "error"

    def __init__(self, message: str, op_key: str | None = None):
        super().__init__(message)
        self.op_key = op_key

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind, "message": str(self)}


class ExportError(MeasureError):
    """The block could not be exported (ONNX) or quantised."""

    kind = "export_error"


class RuntimeFailure(MeasureError):
    """The runtime raised while loading or running the block."""

    kind = "runtime_error"


class MeasureTimeout(MeasureError):
    """One call (or the first call) took longer than the allowed timeout."""

    kind = "timeout"


class OutOfMemory(MeasureError):
    kind = "out_of_memory"


class RuntimeUnavailable(MeasureError):
    """The runtime cannot run here (no GPU, provider not installed, ...)."""

    kind = "unavailable"


def classify(exc: BaseException, op_key: str | None = None) -> MeasureError:
    """Turn an arbitrary exception raised by a runtime into a typed error."""
    if isinstance(exc, MeasureError):
        return exc
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, MemoryError) or "out of memory" in text.lower():
        return OutOfMemory(text, op_key)
    return RuntimeFailure(text, op_key)
