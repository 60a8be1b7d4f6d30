"""Latency tables in other people's formats: what an entry is, and how a file's entries
map onto hwlat's ops (and back).

A format reads a file into `Entries` (its own keys -> `Entry`: a latency in ms and the
spread the file gives, if any) and writes them back. It never guesses: `recipe(slot)`
says which of the file's entries make up one op of a search space (usually one key;
ProxylessNAS's head is two, `Conv_1` and `Logits`; a block the format's own code treats
as free, like ProxylessNAS's `zero`, none). `map_entries` then fills every op it can,
lists the ops it could not fill and the entries no op used, each with the reason, and
`entries_for` turns a table back into entries (the parts an import kept, so an import
followed by an export in the same format gives back the same entries).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from profiler.ops import OpSpec

MAX_BYTES = 8 << 20  # the largest real table is well under 1 MB; refuse to parse more


@dataclass(frozen=True)
class Entry:
    """One row of a foreign table: its latency (ms) and the spread the file gives."""

    ms: float
    std_ms: float | None = None  # sqrt(var) or the file's std; None: the file has none
    count: int | None = None  # measurements behind the value; None: not given
    extra: tuple[tuple[str, Any], ...] = ()  # other fields, kept for the round trip

    def to_dict(self) -> dict[str, Any]:
        return {"ms": self.ms, "std_ms": self.std_ms, "count": self.count, **dict(self.extra)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Entry:
        rest = tuple(sorted((k, v) for k, v in d.items() if k not in ("ms", "std_ms", "count")))
        return cls(float(d["ms"]), d.get("std_ms"), d.get("count"), rest)


Entries = dict[str, Entry]


@dataclass(frozen=True)
class Slot:
    """One op of a space, where it sits: a fixed op (`layer` None) or a layer's candidate."""

    where: str  # "fixed[0]" or "stage1.block1/3x3_MBConv3"
    op: OpSpec
    layer: int | None = None  # index of the searchable layer
    candidate: str | None = None
    fixed: int | None = None  # index among the fixed ops


@dataclass(frozen=True)
class Recipe:
    """Which entries make up a slot's latency: their sum. `keys == ()` with `free` set
    means the format's own code counts the op as 0 ms (`note` says whose convention);
    `keys == ()` without `free` means the format cannot express the op (`note`: why)."""

    keys: tuple[str, ...]
    free: bool = False
    note: str = ""
    # the file may leave these keys out, and then the op counts 0 by the format's own
    # convention (NNI's FBNet cost covers only the searchable layers; `note` says so)
    optional: bool = False
    absent: str = ""  # what to do when the keys are not in the file (said after them)


@dataclass
class Cell:
    """An op's latency made from a file: the sum of its recipe's entries."""

    ms: float
    std_ms: float | None
    count: int | None
    parts: dict[str, Entry] = field(default_factory=dict)  # the entries it was made of
    note: str = ""


@dataclass
class Mapped:
    cells: dict[str, Cell]  # hwlat op key -> cell
    unfilled: list[tuple[str, str]]  # (slot, why) of ops the file has no number for
    unmapped: list[tuple[str, str]]  # (file key, why) of entries no op of the space uses


class LutFormat(ABC):
    """A file format. Subclasses register with `@register_format` (profiler.lutformats)."""

    name: ClassVar[str]
    description: ClassVar[str]
    suffix: ClassVar[str]  # the usual file extension, for `--out` defaults
    # the statistic the file's number is (ProxylessNAS: the mean of `count` runs)
    statistic: ClassVar[str] = "mean"
    space: ClassVar[str | None] = None  # the search space a file of this format is for, if one

    @abstractmethod
    def parse(self, text: str) -> Entries:
        """The file's entries; ValueError (one line, naming the entry) if malformed."""

    @abstractmethod
    def render(self, entries: Entries, comment: str = "") -> str:
        """The file's text for these entries (the inverse of `parse`)."""

    @abstractmethod
    def sniff(self, text: str) -> bool:
        """Whether a file's text looks like this format (cheap; for telling files apart)."""

    @abstractmethod
    def recipe(self, slot: Slot) -> Recipe:
        """The entries whose sum is this slot's latency."""

    def explain(self, key: str) -> str:
        """Why an entry of a file matches no op of a space (overridden to say more)."""
        return "no op of this space has this key"

    def infer(self, entries: Entries) -> dict[str, int]:
        """Space parameters the entries give away (`resolution`, `classes`), if any."""
        return {}

    def finish_export(
        self, out: Entries, slots: Sequence[Slot], cells: Mapping[str, Cell]
    ) -> list[str]:
        """Adjust what `entries_for` wrote where one entry stands for several ops
        (Single-Path's overhead); returns notes for the file's comment."""
        return []


def check_size(size: int, where: str = "") -> None:
    """Refuse `size` bytes over MAX_BYTES, before a file is read or parsed any further."""
    if size > MAX_BYTES:
        raise ValueError(
            (f"{where}: " if where else "")
            + f"{size / 2**20:.1f} MB is far larger than any latency table "
            f"(the limit is {MAX_BYTES >> 20} MB); is this the right file?"
        )


def latency(value: Any, where: str, name: str = "latency") -> float:
    """A finite latency >= 0 ms from a file, or a one-line error naming the entry."""
    if isinstance(value, str):  # YAML 1.1 reads `1e-05` as a string
        try:
            value = float(value)
        except ValueError:
            raise ValueError(f"{where}: {name} must be a number, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{where}: {name} must be a number, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{where}: {name} must be a finite number >= 0 ms, got {value!r}")
    return float(value)


def count(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise ValueError(f"{where}: count must be a whole number, got {value!r}")
    if value < 1:
        raise ValueError(f"{where}: count must be at least 1, got {value!r}")
    return int(value)


def _combine(parts: dict[str, Entry], note: str) -> Cell:
    """Sum of independent parts: variances add; the count is the smallest one's."""
    stds = [e.std_ms for e in parts.values() if e.std_ms is not None]
    counts = [e.count for e in parts.values() if e.count is not None]
    std = math.sqrt(math.fsum(s * s for s in stds)) if len(stds) == len(parts) else None
    n = min(counts) if len(counts) == len(parts) else None
    return Cell(math.fsum(e.ms for e in parts.values()), std, n, parts, note)


def map_entries(fmt: LutFormat, entries: Entries, slots: Sequence[Slot]) -> Mapped:
    """Fill every op the file has all the entries for; report the rest by name.

    Positional formats (Single-Path NAS: one row per layer) can give several numbers for
    one op (layers with the same shapes); hwlat keeps one number per op, their mean, with
    every layer's entries as parts (so the export writes each layer's own number back)
    and the spread between them as the cell's error."""
    found: dict[str, list[Cell]] = {}
    unfilled: list[tuple[str, str]] = []
    used: set[str] = set()
    for slot in slots:
        r = fmt.recipe(slot)
        absent = [k for k in r.keys if k not in entries]
        if (not r.keys and r.free) or (r.keys and r.optional and len(absent) == len(r.keys)):
            found.setdefault(slot.op.key, []).append(Cell(0.0, None, None, {}, r.note))
        elif not r.keys:
            unfilled.append((slot.where, r.note or "the format cannot express this op"))
        elif absent:
            why = "not in the file: " + ", ".join(absent) + (f"; {r.absent}" if r.absent else "")
            unfilled.append((slot.where, why))
        else:
            used.update(r.keys)
            parts = {k: entries[k] for k in r.keys}
            found.setdefault(slot.op.key, []).append(_combine(parts, r.note))
    cells = {key: _merge(group) for key, group in found.items()}
    filled = {slot.where for slot in slots if slot.op.key in cells}
    unfilled = [(w, why) for w, why in dict.fromkeys(unfilled) if w not in filled]
    unmapped = [(k, fmt.explain(k)) for k in entries if k not in used]
    return Mapped(cells, unfilled, unmapped)


def _merge(group: list[Cell]) -> Cell:
    """One op's cell from every slot that holds it (the same parts, or one per layer)."""
    distinct = list({tuple(sorted(c.parts)): c for c in group}.values())
    if len(distinct) == 1:
        return distinct[0]
    values = [c.ms for c in distinct]
    mean = math.fsum(values) / len(values)
    spread = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1))
    parts = {k: e for c in distinct for k, e in c.parts.items()}
    note = f"the mean of {len(values)} layers' entries ({min(values):.4g}..{max(values):.4g} ms)"
    return Cell(mean, spread, None, parts, note)  # layers are not samples: no count, no CI


def entries_for(
    fmt: LutFormat, slots: Sequence[Slot], cells: Mapping[str, Cell]
) -> tuple[Entries, list[str]]:
    """A table's cells as the format's entries, and notes on what was not a plain copy.

    Where a cell kept the parts it was imported from, they are written back as they
    were. A cell the format splits into several entries that hwlat measured as one op
    (ProxylessNAS's `Conv_1` + `Logits` for hwlat's head) gets its whole latency on the
    first entry and 0 on the others, so the format's sum is still the op's latency."""
    out: Entries = {}
    notes: list[str] = []
    for slot in slots:
        r = fmt.recipe(slot)
        cell = cells.get(slot.op.key)
        if cell is None or not r.keys or (r.optional and not cell.parts and cell.ms == 0):
            continue  # an optional row the file left out stays left out
        if all(k in cell.parts for k in r.keys):
            out.update({k: cell.parts[k] for k in r.keys})
            continue
        out.setdefault(r.keys[0], Entry(cell.ms, cell.std_ms, cell.count))
        for k in r.keys[1:]:
            out.setdefault(k, Entry(0.0))
        if len(r.keys) > 1:
            notes.append(
                f"{slot.where}: measured as one op; its {cell.ms:.4g} ms is under {r.keys[0]} "
                f"and {', '.join(r.keys[1:])} hold 0"
            )
    notes += fmt.finish_export(out, slots, cells)
    return out, list(dict.fromkeys(notes))
