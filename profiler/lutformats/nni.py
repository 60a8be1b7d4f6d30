"""NNI's FBNet latency table, `lut.txt` (the old `nni.algorithms.nas.pytorch.fbnet`).

One Python dict literal per line, read by NNI with `ast.literal_eval`:

    {'op_name': 'mb_k3_res', 'op_data_shape': (14, 14, 32, 32, 1), 'op_dtype': 'float',
     'op_latency': 123.4}   (on one line)

`op_data_shape` is (input_w, input_h, C_in, C_out, stride), a tuple (NNI's lookup hashes
it); NNI looks up only `'float'` rows. Units: the file says none; NNI's own measurement
code stores microseconds, so hwlat reads and writes `op_latency` in µs (an Entry holds
ms). NNI's FBNet cost sums only the searchable layers: fixed ops (stem, head) have no
rows there and count 0 unless hwlat wrote them, as `fixed_...` rows of its own.

Op names follow NNI's PRIMITIVES (PFLD example): an MBConv is `mb_k{k}`, then `_e{e}`
when e != 1, `_res` with a residual, `_se` with SE; `skip` is the identity. hwlat's
extensions: `_g{g}` appended for a grouped 1x1 (FBNet's g2), and `fixed_<kind>_...`
rows for fixed ops. An entry's key is `op_name|WxHxCINxCOUTxS|dtype`.
"""

from __future__ import annotations

import ast
import re
from typing import Any, ClassVar

from profiler.lutformats.base import Entries, Entry, LutFormat, Recipe, Slot, check_size, latency
from profiler.ops import OpSpec

FIELDS = ("op_name", "op_data_shape", "op_dtype", "op_latency")  # NNI's order
DTYPE = "float"  # the only dtype NNI's FBNet looks up
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
FIXED_NOTE = (
    "NNI's FBNet cost counts only the searchable layers: a fixed op is 0 there "
    "unless the file has hwlat's fixed_ row for it"
)
# NNI ops with no hwlat kind, by name prefix (PFLD's PRIMITIVES)
FOREIGN = {
    "gh_": "GhostModule",
    "sep_": "separable conv",
    "conv1x1": "1x1 conv",
    "depth_conv": "depthwise conv",
}


class NniLut(LutFormat):
    name = "nni-lut"
    description = "NNI FBNet lut.txt (one Python dict literal per line; µs)"
    suffix = ".txt"
    unit_ms: ClassVar[float] = 1e-3  # op_latency is in µs (NNI's measurement code)

    # --- reading and writing ---------------------------------------------------------
    def parse(self, text: str) -> Entries:
        check_size(len(text))
        entries: Entries = {}
        first_line: dict[str, int] = {}
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            key, entry = self._record(line.strip(), f"line {number}")
            if key in first_line:
                raise ValueError(f"line {number}: {key} repeats line {first_line[key]}")
            first_line[key] = number
            entries[key] = entry
        if not entries:
            raise ValueError("no records (expected one {'op_name': ...} dict per line)")
        return entries

    def _record(self, line: str, where: str) -> tuple[str, Entry]:
        try:
            rec = ast.literal_eval(line)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            raise ValueError(f"{where}: not a Python dict literal ({line[:40]!r})") from None
        if not isinstance(rec, dict):
            raise ValueError(f"{where}: expected a dict, got {type(rec).__name__}")
        missing = [f for f in FIELDS if f not in rec]
        if missing:
            raise ValueError(f"{where}: missing {missing[0]!r} (a record has {', '.join(FIELDS)})")
        unknown = sorted(str(k) for k in rec if k not in FIELDS)
        if unknown:
            raise ValueError(
                f"{where}: unknown field {unknown[0]!r} (a record has {', '.join(FIELDS)})"
            )
        name, shape, dtype = rec["op_name"], rec["op_data_shape"], rec["op_dtype"]
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(f"{where}: op_name must be a name like 'mb_k3_res', got {name!r}")
        if not isinstance(dtype, str) or not _NAME.match(dtype):
            raise ValueError(f"{where}: op_dtype must be a name like 'float', got {dtype!r}")
        if not isinstance(shape, tuple) or len(shape) != 5 or not all(_positive(d) for d in shape):
            raise ValueError(
                f"{where}: op_data_shape must be a tuple of 5 positive integers "
                f"(input_w, input_h, C_in, C_out, stride), got {shape!r}"
            )
        value = rec["op_latency"]
        if isinstance(value, str):  # NNI would add the string to its cost
            raise ValueError(f"{where}: op_latency must be a number, got {value!r}")
        ms = latency(value, where, "op_latency") * self.unit_ms
        key = f"{name}|{'x'.join(str(d) for d in shape)}|{dtype}"
        return key, Entry(ms, extra=(("op_latency", value),))

    def render(self, entries: Entries, comment: str = "") -> str:
        """One `repr(dict)` per line; no comment (NNI literal_evals every line)."""
        lines = []
        for key, e in entries.items():
            name, shape, dtype = _split(key)
            raw = dict(e.extra).get("op_latency")
            # the file's own number when it is this entry's: exact round trips
            value = raw if raw is not None and raw * self.unit_ms == e.ms else e.ms / self.unit_ms
            rec = {"op_name": name, "op_data_shape": shape, "op_dtype": dtype, "op_latency": value}
            lines.append(repr(rec))
        return "\n".join(lines) + "\n"

    def sniff(self, text: str) -> bool:
        head = text.lstrip()[:4000]
        return head.startswith("{") and ("'op_name'" in head or '"op_name"' in head)

    # --- keys ------------------------------------------------------------------------
    def recipe(self, slot: Slot) -> Recipe:
        op = slot.op
        if op.dtype != "float32":
            return Recipe((), note=f"NNI's latencies are 'float' rows; this op is {op.dtype}")
        if slot.fixed is not None:
            return Recipe((_key(_fixed_name(op), op),), note=FIXED_NOTE, optional=True)
        if op.kind == "mbconv":
            return Recipe((_key(mb_name(op), op),))
        if op.kind == "skip":
            return Recipe((_key("skip", op),))
        return Recipe((), note=f"NNI has no {op.kind} op ({op.key})")

    def explain(self, key: str) -> str:
        name, _, rest = key.partition("|")
        dtype = rest.rpartition("|")[2]
        if dtype != DTYPE:
            return f"dtype {dtype!r}: only {DTYPE!r} rows are NNI's latencies"
        for prefix, what in FOREIGN.items():
            if name.startswith(prefix):
                return f"NNI op {name!r} ({what}) has no hwlat op kind"
        if re.search(r"_d\d+", name):
            return f"NNI op {name!r} (dilated MBConv) has no hwlat op kind"
        return "no op of this space has this name and shape"


def mb_name(op: OpSpec) -> str:
    """NNI's name of an MBConv: `mb_k3_e2_res_se` (+ hwlat's `_g2` for grouped 1x1s)."""
    p = op.p
    name = f"mb_k{p['k']}" + (f"_e{p['e']}" if p["e"] != 1 else "")
    name += ("_res" if p["res"] else "") + ("_se" if p["se"] else "")
    return name + (f"_g{p['g']}" if p["g"] != 1 else "")


def _fixed_name(op: OpSpec) -> str:
    """hwlat's row name for a fixed op: `fixed_mb_k3_e6`, or `fixed_<kind>` and the
    parameters of its key that the shape does not hold (`fixed_conv_actrelu6_g1_k3`)."""
    if op.kind == "mbconv":
        return "fixed_" + mb_name(op)
    shown = op.key.split("|")[1].split(",")
    parts = [p.replace("=", "") for p in shown if p and p.split("=")[0] not in ("cin", "cout", "s")]
    return "_".join(["fixed", op.kind, *parts])


def _key(name: str, op: OpSpec) -> str:
    _, _, h, w = op.shape
    p = op.p
    s = p.get("s", 1)
    return f"{name}|{w}x{h}x{p.get('cin', op.shape[1])}x{p.get('cout', op.shape[1])}x{s}|{DTYPE}"


def _split(key: str) -> tuple[str, tuple[int, ...], str]:
    parts = key.split("|")
    try:
        name, dims, dtype = parts
        shape = tuple(int(d) for d in dims.split("x"))
    except ValueError:
        raise ValueError(
            f"{key!r}: not an {NniLut.name} key (op_name|WxHxCINxCOUTxS|dtype)"
        ) from None
    return name, shape, dtype


def _positive(d: Any) -> bool:
    return isinstance(d, int) and not isinstance(d, bool) and d >= 1
