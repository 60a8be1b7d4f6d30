"""Single-Path NAS's runtime model, `pixel1_runtime_model.json`, for singlepath-mobile.

    {"1": {"0": 4.4905, "1": 9.2015, "2": 5.9248, "3": 11.5892}, ..., "overhead_ms": 19.5999}

One object per MBConv block of the supernet ("0".."21"; "0" and "21" are the fixed first
and last blocks, which the reference reads but never uses), each with the ms of its four
superkernel choices: "0" k3 e3, "1" k3 e6, "2" k5 e3, "3" k5 e6. File layer i + 1 is
searchable layer i of singlepath-mobile. `skip` has no entry: it costs 0.

The rest of the network (stem, head, blocks 0 and 21) is a constant in the reference
CODE, 19.5999 ms for Pixel 1, not in the file. hwlat writes it as a top-level
`"overhead_ms"` (its extension; the reference reads the file by block index and ignores
it) and reads it back as the stem's latency, the other fixed ops counting 0. A file
without it leaves the stem unfilled: hwlat never assumes Pixel 1's constant.

hwlat uses the file's measured k3 e3 ("0"), whereas the reference search approximates
it as R2·R1/R3 and never reads "0" (issue 28's searcher reproduces the reference
formula).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from profiler.lutformats.base import (
    Cell,
    Entries,
    Entry,
    LutFormat,
    Recipe,
    Slot,
    check_size,
    latency,
)
from profiler.ops import OpSpec

OVERHEAD = "overhead_ms"
LAYERS = 22  # supernet blocks 0..21; 1..20 are searchable
OPS = {"3x3_MBConv3": "0", "3x3_MBConv6": "1", "5x5_MBConv3": "2", "5x5_MBConv6": "3"}
KE = {"0": (3, 3), "1": (3, 6), "2": (5, 3), "3": (5, 6)}  # op -> (kernel, expansion)
STAGE = 4  # searchable layers per stage; the first of each has no residual
STRIDES = (2, 2, 2, 1, 2)  # first stride of each of the five searchable stages
SKIP_NOTE = "skip costs 0 in Single-Path NAS"
FIXED_NOTE = "in the file's overhead (stem, head, blocks 0 and 21)"
OTHER_SPACE = "singlepath-json describes the singlepath-mobile space only"
NO_OVERHEAD = (
    "the file has no overhead_ms; Single-Path NAS's code adds 19.5999 ms for stem, head and "
    'blocks 0 and 21: add "overhead_ms": 19.5999 to the file if that is your device\'s'
)
_INDEX = re.compile(r"^(0|[1-9][0-9]*)$")  # "5", not "05" or "+5"


class SinglePathJson(LutFormat):
    name = "singlepath-json"
    description = "Single-Path NAS runtime model JSON (layer -> 4 superkernel ops; ms)"
    suffix = ".json"
    space = "singlepath-mobile"

    # --- reading and writing ---------------------------------------------------------
    def parse(self, text: str) -> Entries:
        check_size(len(text))
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not JSON ({exc.msg} at line {exc.lineno})") from None
        if not isinstance(data, dict) or not data:
            raise ValueError('expected an object of layer -> {"0".."3": ms}, got ' + _what(data))
        unknown = sorted(k for k in data if k != OVERHEAD and not _index(k, LAYERS))
        if unknown:
            raise ValueError(
                f'unknown key {unknown[0]!r} (the file has layers "0".."{LAYERS - 1}" '
                f"and {OVERHEAD})"
            )
        entries: Entries = {}
        for layer in sorted((k for k in data if k != OVERHEAD), key=int):
            entries.update(_layer(layer, data[layer]))
        if OVERHEAD in data:
            entries[OVERHEAD] = Entry(latency(data[OVERHEAD], OVERHEAD))
        return entries

    def render(self, entries: Entries, comment: str = "") -> str:
        """The reference's single-line JSON (`comment` is dropped: JSON has none)."""
        layers: dict[str, dict[str, float]] = {}
        for key in sorted(entries, key=_order):
            if key == OVERHEAD:
                continue
            layer, _, op = key.partition("/")
            if not _index(layer, LAYERS) or op not in KE:
                raise ValueError(f'{key!r}: not a {self.name} key ("layer/op" or {OVERHEAD})')
            layers.setdefault(layer, {})[op] = entries[key].ms
        out: dict[str, Any] = dict(layers)
        if OVERHEAD in entries:
            out[OVERHEAD] = entries[OVERHEAD].ms
        return json.dumps(out) + "\n"

    def sniff(self, text: str) -> bool:
        head = text.lstrip()[:4000]
        return bool(re.match(r'\{\s*"(\d+|overhead_ms)"\s*:', head)) and bool(
            re.search(r'"[0-3]"\s*:\s*[0-9]', head)
        )

    # --- keys ------------------------------------------------------------------------
    def recipe(self, slot: Slot) -> Recipe:
        op, p = slot.op, slot.op.p
        if slot.fixed is not None:
            if not _fixed_fits(slot.fixed, op):
                return Recipe((), note=OTHER_SPACE)
            if slot.fixed == 0:
                return Recipe((OVERHEAD,), note=FIXED_NOTE, absent=NO_OVERHEAD)
            return Recipe((), free=True, note=FIXED_NOTE)
        row = slot.layer
        if row is None or not 0 <= row < LAYERS - 2:
            return Recipe((), note=OTHER_SPACE)
        first = row % STAGE == 0
        stride = STRIDES[row // STAGE] if first else 1
        if slot.candidate == "skip" and op.kind == "skip" and not first:
            return Recipe((), free=True, note=SKIP_NOTE)
        idx = OPS.get(slot.candidate or "")
        fits = (
            idx is not None
            and op.kind == "mbconv"
            and (p["k"], p["e"]) == KE[idx]
            and (p["s"], p["res"], p["se"], p["g"]) == (stride, int(not first), 0, 1)
        )
        return Recipe((f"{row + 1}/{idx}",)) if fits else Recipe((), note=OTHER_SPACE)

    def finish_export(
        self, out: Entries, slots: Sequence[Slot], cells: Mapping[str, Cell]
    ) -> list[str]:
        """The overhead is every fixed op's: a measured table's four fixed cells summed
        (an imported file's own overhead, kept as its part, is written back as it was)."""
        fixed = [cells.get(s.op.key) for s in slots if s.fixed is not None]
        if OVERHEAD not in out or not fixed or fixed[0] is None or fixed[0].parts:
            return []
        if any(c is None for c in fixed):
            del out[OVERHEAD]  # a part of it unmeasured: no overhead rather than a short one
            return [f"{OVERHEAD} left out: not every fixed op is measured"]
        total = math.fsum(c.ms for c in fixed if c is not None)
        out[OVERHEAD] = Entry(total)
        return [f"{OVERHEAD}: the sum of the {len(fixed)} fixed ops (stem, blocks 0 and 21, head)"]

    def explain(self, key: str) -> str:
        layer = key.partition("/")[0]
        if layer in ("0", str(LAYERS - 1)):
            return (
                f"block {layer} is a fixed block of Single-Path NAS's supernet: the reference "
                "counts it in its overhead (stem, head, blocks 0 and 21), not from this row"
            )
        return f"no op of this space has this key ({OTHER_SPACE})"


def _layer(layer: str, ops: Any) -> Entries:
    if not isinstance(ops, dict):
        raise ValueError(f'layer {layer}: expected {{"0".."3": ms}}, got {_what(ops)}')
    unknown = sorted(k for k in ops if k not in KE)
    if unknown:
        raise ValueError(
            f'layer {layer}: unknown op {unknown[0]!r} (ops are "0".."3": k3e3, k3e6, k5e3, k5e6)'
        )
    missing = [k for k in KE if k not in ops]
    if missing:
        raise ValueError(
            f"layer {layer}: missing op {missing[0]!r} (the reference reads all four: "
            '"0".."3" = k3e3, k3e6, k5e3, k5e6)'
        )
    return {f"{layer}/{op}": Entry(latency(ops[op], f"layer {layer} op {op}")) for op in KE}


def _fixed_fits(index: int, op: OpSpec) -> bool:
    """Whether fixed op `index` is singlepath-mobile's: stem, block 0, block 21, head."""
    p = op.p
    if index == 0:
        return op.kind == "conv" and (p["cin"], p["k"], p["s"]) == (3, 3, 2)
    if index in (1, 2):
        return op.kind == "mbconv" and (p["k"], p["s"], p["e"]) == (3, 1, 1 if index == 1 else 6)
    return index == 3 and op.kind == "head"


def _index(key: str, n: int) -> bool:
    return bool(_INDEX.match(key)) and int(key) < n


def _order(key: str) -> tuple[int, str]:
    layer, _, op = key.partition("/")
    return (int(layer), op) if _INDEX.match(layer) else (LAYERS, key)


def _what(v: Any) -> str:
    return type(v).__name__ if v is not None else "nothing"
