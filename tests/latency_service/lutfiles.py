"""Small foreign latency tables for the import tests: a whole proxyless-mobile table in a
format, made by rendering an entry for every key the format's recipes ask for."""

from __future__ import annotations

from typing import Any

from profiler.lutformats import Entry, create_format
from searchers.spaces import create_space

SPACE: dict[str, Any] = {"space": "proxyless-mobile", "resolution": 224, "classes": 1000}


def table_text(fmt: str = "proxyless-yaml", ms: float = 0.5, resolution: int = 224) -> str:
    """Every entry `ms` plus a little per key (so cells differ), var 0.01, count 100."""
    space = create_space("proxyless-mobile", resolution=resolution, width=1.0, classes=1000)
    f = create_format(fmt)
    entries: dict[str, Entry] = {}
    for slot in space.slots():
        for key in f.recipe(slot).keys:
            value = round(ms + 0.001 * len(entries), 6)
            entries.setdefault(key, Entry(value, 0.1, 100, (("spread", "var"),)))
    return f.render(entries, "a test table")


def body(
    text: str, fmt: str | None = "proxyless-yaml", name: str = "mobile.yaml", **space: Any
) -> dict[str, Any]:
    return {"file_name": name, "format": fmt, "content": text, **{**SPACE, **space}}
