"""The ProxylessNAS and Once-for-All latency YAMLs.

ProxylessNAS (`LatencyEstimator`, mobile table for proxyless-mobile at 224):

    "expanded_conv-input:56x56x24-output:28x28x40-expand:6-kernel:5-stride:2-idskip:0":
      count: 100
      mean: 5.21
      var: 0.03

keys `Conv-input:HxWxC-output:HxWxC` (the stem), `expanded_conv-...-expand:E-kernel:K-
stride:S-idskip:0|1` (a block; E the expansion ratio), `Conv_1-input:..-output:..` (the
1x1 conv to 1280) and `Logits-input:HxWxC-output:N` (pool and classifier). Its supernet's
latency is the plain sum of those means; a `zero` block is never looked up: it costs 0.

Once-for-All's tables (one file per input resolution, `{r}_lookup_table.yaml`) use the
same key style, with `expand` read as the block's middle channel count and `-se:0|1-hs:0|1`
on every block; the MobileNetV3 head is `Conv_1`, `AvgPool2D`, `Conv_2`, `Logits`.
hwlat's head op is a 1x1 conv, a global pool and a classifier, so it is `Conv_1` + `Logits`
here (+ `AvgPool2D` in OFA's files); a `Conv_2` after the pool has no hwlat op.
"""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar

from profiler.lutformats.base import (
    Entries,
    Entry,
    LutFormat,
    Recipe,
    Slot,
    check_size,
    count,
    latency,
)
from profiler.ops import OpSpec

_KEY = re.compile(
    r"^(?P<type>[A-Za-z_0-9]+)-input:(?P<inp>[0-9x]+)-output:(?P<out>[0-9x]+)(?P<rest>.*)$"
)
OFA_HEAD = (
    "OFA's MobileNetV3 head is Conv_1, AvgPool2D, Conv_2, Logits; hwlat's head op has no "
    "conv after the pool, so its latency cannot come from such a file"
)
ZERO_NOTE = "a zero block costs 0 by ProxylessNAS's convention (the layer is its identity path)"


def hwc(shape: tuple[int, ...]) -> str:
    """(N, C, H, W) as 'HxWxC'; a classifier's (N, classes) as 'classes'."""
    if len(shape) == 2:
        return str(shape[1])
    _, c, h, w = shape
    return f"{h}x{w}x{c}"


class ProxylessYaml(LutFormat):
    name = "proxyless-yaml"
    description = "ProxylessNAS latency YAML (key: {count, mean, var}; ms)"
    suffix = ".yaml"
    # the reference table's space (resolution and classes: read from the file)
    space: ClassVar[str | None] = "proxyless-mobile"
    ofa = False  # OFA: expand is the middle channel count, -se/-hs on every block

    # --- reading and writing ---------------------------------------------------------
    def parse(self, text: str) -> Entries:
        check_size(len(text))
        import yaml  # type: ignore[import-untyped]

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            first = str(exc).splitlines()[0]
            raise ValueError(f"not YAML ({first})") from None
        if not isinstance(data, dict) or not data:
            raise ValueError(
                f"expected a mapping of key -> {{count, mean, var}}, got {_what(data)}"
            )
        return {str(k): self._entry(str(k), v) for k, v in data.items()}

    def _entry(self, key: str, v: Any) -> Entry:
        if not _KEY.match(key):
            raise ValueError(f"{key!r}: not a {self.name} key (TYPE-input:HxWxC-output:...)")
        if not isinstance(v, dict) or "mean" not in v:
            raise ValueError(f"{key}: expected {{count, mean, var}}, got {_what(v)}")
        unknown = sorted(set(v) - {"mean", "var", "std", "count"})
        if unknown:
            raise ValueError(f"{key}: unknown field {unknown[0]!r} (it has mean, var, count)")
        var = latency(v["var"], key, "var") if "var" in v else None
        std = latency(v["std"], key, "std") if "std" in v else None
        spread = std if std is not None else (var**0.5 if var is not None else None)
        field = ("spread", "std" if std is not None else "var")
        return Entry(latency(v["mean"], key, "mean"), spread, count(v.get("count"), key), (field,))

    def render(self, entries: Entries, comment: str = "") -> str:
        lines = [f"# {line}" for line in comment.splitlines()]
        for key, e in entries.items():
            lines.append(f"{json.dumps(key)}:")
            if e.count is not None:
                lines.append(f"  count: {e.count}")
            lines.append(f"  mean: {_yaml_float(e.ms)}")
            if e.std_ms is not None:
                if dict(e.extra).get("spread") == "std":
                    lines.append(f"  std: {_yaml_float(e.std_ms)}")
                else:
                    lines.append(f"  var: {_yaml_float(e.std_ms**2)}")
        return "\n".join(lines) + "\n"

    def sniff(self, text: str) -> bool:
        head = text.lstrip()[:4000]
        has_key = bool(re.search(r"(Conv|expanded_conv|Logits)-input:", head))
        return has_key and "mean" in head and ("-se:" in head) == self.ofa

    # --- keys ------------------------------------------------------------------------
    def recipe(self, slot: Slot) -> Recipe:
        op, p = slot.op, slot.op.p
        io = f"input:{hwc(op.shape)}-output:{hwc(op.out_shape)}"
        if op.kind == "conv" and p["g"] == 1 and p["preact"] == 0 and slot.fixed == 0:
            return Recipe((f"Conv-{io}",))  # the stem: these tables have one plain conv
        if op.kind == "mbconv":
            return self._block(op, io)
        if op.kind == "skip" and p["s"] == 1 and p["cin"] == p["cout"]:
            return Recipe((), free=True, note=ZERO_NOTE)
        if op.kind == "head" and p["cmid"]:
            _, c, h, w = op.shape
            mid = int(p["cmid"])
            keys = [f"Conv_1-input:{h}x{w}x{c}-output:{h}x{w}x{mid}"]
            if not self.ofa:
                keys.append(f"Logits-input:{h}x{w}x{mid}-output:{p['cout']}")
                return Recipe(tuple(keys))
            # OFA pools first, so its Logits reads 1x1; its MobileNetV3 heads also have a
            # Conv_2 after the pool, which hwlat's head op has not: such a head is unfilled
            keys += [f"AvgPool2D-input:{h}x{w}x{mid}-output:1x1x{mid}",
                     f"Logits-input:1x1x{mid}-output:{p['cout']}"]  # fmt: skip
            return Recipe(tuple(keys), absent=OFA_HEAD)
        return Recipe((), note=f"{self.name} has no key for a {op.kind} op ({op.key})")

    def _block(self, op: OpSpec, io: str) -> Recipe:
        """A block's key; grouped 1x1s (FBNet's g2) get hwlat's `-group:G` suffix, which
        the reference code never asks for but which keeps FBNet tables whole."""
        p = op.p
        if p["pw"]:  # an e1 block that keeps its expansion: these tables have no key for it
            return Recipe((), note=f"{self.name} has no key for an e1 block with a 1x1 expansion")
        hs = int(p["act"] == "hswish")
        if not self.ofa and (p["se"] or hs):
            return Recipe((), note=f"no SE or h-swish in ProxylessNAS; use ofa-yaml ({op.key})")
        expand = int(p["cin"]) * int(p["e"]) if self.ofa else p["e"]
        key = (
            f"expanded_conv-{io}-expand:{expand}-kernel:{p['k']}-stride:{p['s']}"
            f"-idskip:{p['res']}" + (f"-se:{p['se']}-hs:{hs}" if self.ofa else "")
        )
        return Recipe((key + (f"-group:{p['g']}" if p["g"] != 1 else ""),))

    def explain(self, key: str) -> str:
        m = _KEY.match(key)
        kind = m.group("type") if m else "?"
        known = ("Conv", "expanded_conv", "Conv_1", "Logits") + (("AvgPool2D",) if self.ofa else ())
        if kind not in known:
            return f"layer type {kind!r} has no hwlat op (this format's are {', '.join(known)})"
        if kind == "Conv_2":
            return OFA_HEAD
        if kind == "expanded_conv" and not self.ofa and "-se:" in key:
            return "an OFA (-se/-hs) key in a ProxylessNAS file; import it as ofa-yaml"
        return "no op of this space has these shapes and parameters"

    def infer(self, entries: Entries) -> dict[str, int]:
        out: dict[str, int] = {}
        for key in entries:
            m = _KEY.match(key)
            if m and m.group("type") == "Conv" and m.group("inp").endswith("x3"):
                out["resolution"] = int(m.group("inp").split("x")[0])
            if m and m.group("type") == "Logits" and "x" not in m.group("out"):
                out["classes"] = int(m.group("out"))
        return out


class OfaYaml(ProxylessYaml):
    name = "ofa-yaml"
    description = "Once-for-All latency YAML, one file per resolution (expand = middle channels)"
    space = None  # OFA's MobileNetV3 is none of hwlat's spaces: name the one to map onto
    ofa = True


def _what(v: Any) -> str:
    return type(v).__name__ if v is not None else "nothing"


def _yaml_float(x: float) -> str:
    """repr, with the mantissa dot YAML 1.1 needs to read 1e-05 as a number, not a string."""
    r = repr(float(x))
    mantissa, e, exp = r.partition("e")
    return f"{mantissa}.0e{exp}" if e and "." not in mantissa else r
