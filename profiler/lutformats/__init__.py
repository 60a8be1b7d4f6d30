"""Foreign latency-table formats, by name: `create_format("proxyless-yaml").parse(text)`.

Formats: proxyless-yaml, ofa-yaml (profiler.lutformats.proxyless), nni-lut (NNI's FBNet
`lut.txt`), singlepath-json (Single-Path NAS's runtime model), hwnasbench-fbnet
(HW-NAS-Bench's FBNet op tables). `read_table` is the one way in: it checks the size,
tells the format apart by content when not named, and parses.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from profiler.lutformats.base import (
    MAX_BYTES,
    Cell,
    Entries,
    Entry,
    LutFormat,
    Mapped,
    Recipe,
    Slot,
    check_size,
    entries_for,
    map_entries,
)
from profiler.registry import Registry

FORMATS = Registry[LutFormat]("format", "table format")
register_format = FORMATS.register
list_formats = FORMATS.names


def create_format(name: str) -> LutFormat:
    return FORMATS.create(name)


# Importing the modules registers the formats (after the registry exists).
from profiler.lutformats import hwnasbench, nni, proxyless, singlepath  # noqa: E402

for _cls in (
    proxyless.ProxylessYaml,
    proxyless.OfaYaml,
    nni.NniLut,
    singlepath.SinglePathJson,
    hwnasbench.HwNasBenchFbnet,
):
    register_format(_cls)


@dataclass
class ForeignTable:
    """A file read in one of the formats: its entries and where they came from."""

    fmt: LutFormat
    entries: Entries
    file_name: str
    sha256: str


def sniff(text: str) -> LutFormat | None:
    """The one format whose `sniff` accepts the text (OFA and ProxylessNAS share keys:
    each sniffs for the other's absence)."""
    found = [f for f in map(create_format, list_formats()) if f.sniff(text)]
    return found[0] if len(found) == 1 else None


def read_bytes(path: Path) -> bytes:
    """A table file's bytes, its size checked before it is read."""
    try:
        check_size(path.stat().st_size, str(path))
        return path.read_bytes()
    except OSError as exc:
        raise ValueError(f"{path}: cannot read ({exc.strerror})") from None


def read_table(path: Path, fmt: str | None = None) -> ForeignTable:
    """Read and parse a file; a one-line ValueError names the file and what is wrong."""
    return parse_bytes(read_bytes(path), path.name, fmt)


def parse_bytes(raw: bytes, name: str, fmt: str | None = None) -> ForeignTable:
    check_size(len(raw), name)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{name}: not a text file (not UTF-8); latency tables are text") from None
    chosen = create_format(fmt) if fmt else sniff(text)
    if chosen is None:
        raise ValueError(
            f"{name}: cannot tell its format from its content; name it with --format "
            f"({', '.join(list_formats())})"
        )
    try:
        entries = chosen.parse(text)
    except ValueError as exc:
        raise ValueError(f"{name} ({chosen.name}): {exc}") from None
    return ForeignTable(chosen, entries, name, hashlib.sha256(raw).hexdigest())


__all__ = [
    "FORMATS",
    "MAX_BYTES",
    "Cell",
    "Entries",
    "Entry",
    "ForeignTable",
    "LutFormat",
    "Mapped",
    "Recipe",
    "Slot",
    "create_format",
    "entries_for",
    "list_formats",
    "map_entries",
    "parse_bytes",
    "read_bytes",
    "read_table",
    "register_format",
    "sniff",
]
