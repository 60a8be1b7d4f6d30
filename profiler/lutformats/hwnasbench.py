"""HW-NAS-Bench's FBNet op tables (`hw_nas_bench_api`, `HW_metrics["fbnet"][metric]`).

HW-NAS-Bench ships a pickle; hwlat never unpickles. Its file here is one device metric
as a JSON object `{key: ms}`, what this writes from the pickle HW-NAS-Bench loads:

    json.dump(pickle_data["fbnet"]["pixel3_latency"], open("pixel3.json", "w"))

Pick a `*_latency` metric (edgegpu, raspi4, pixel3, eyeriss, fpga; ms): the `*_energy`
ones are in mJ and their keys look the same, so nothing here can tell them apart.

Keys (H, W: the op's input size) and the ops of `hwnasbench-fbnet` they are:

    ConvBlock_H32_W32_Cin16_Cout24_exp6_kernel3_stride1_group1   mbconv, ReLU, pw=1 at e1 g1
    Skip_H32_W32_Cin24_Cout32_stride2    the layer's `skip`: identity, or conv k1 + BN + ReLU
    ConvNorm_H32_W32_Cin3_Cout16_kernel3_stride1_group1          the stem (conv + BN + ReLU)
    ConvNorm_H4_W4_Cin352_Cout1504_kernel1_stride1_group1 + AvgP_H4_W4_Cin1504_Cout1504_
    kernel4_stride1 + FC_Cin1504_Cout100                         the head (their sum)

A network's metric is the plain sum of its 26 keys (stem, 22 layers, the head's three).
One pickle holds both of HW-NAS-Bench's layouts, CIFAR-100 (input 32, stem stride 1,
head 1504, 100 classes) and ImageNet (input 224, stem and stage 2 at stride 2, head
1984, 1000 classes). The recipes go by op, so a file fills whatever space's ops have
keys; `hwnasbench-fbnet` is the CIFAR layout, and the ImageNet keys fill no op of it at
any resolution (other strides, other head): they are reported as unmapped.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from profiler.lutformats.base import Entries, Entry, LutFormat, Recipe, Slot, check_size, latency
from profiler.ops import OpSpec

_INT = r"(\d+)"
GRAMMAR = {  # key type -> its fields, in key order
    "ConvBlock": ("H", "W", "Cin", "Cout", "exp", "kernel", "stride", "group"),
    "Skip": ("H", "W", "Cin", "Cout", "stride"),
    "ConvNorm": ("H", "W", "Cin", "Cout", "kernel", "stride", "group"),
    "AvgP": ("H", "W", "Cin", "Cout", "kernel", "stride"),
    "FC": ("Cin", "Cout"),
}
_KEYS = {
    t: re.compile("^" + "_".join([t, *(f + _INT for f in fs)]) + "$") for t, fs in GRAMMAR.items()
}
IMAGENET_SIDES = {224, 112, 56, 28, 14, 7}  # the ImageNet layout's op inputs (CIFAR: 32..4)
IMAGENET_WIDTHS = {1984, 1000}  # its head width and class count


def fields(key: str) -> tuple[str, dict[str, int]] | None:
    """A key's type and fields (`ConvBlock`, {"H": 32, ...}), or None if it is no key."""
    kind = key.split("_", 1)[0]
    m = _KEYS[kind].match(key) if kind in _KEYS else None
    if m is None:
        return None
    return kind, dict(zip(GRAMMAR[kind], map(int, m.groups()), strict=True))


class HwNasBenchFbnet(LutFormat):
    name = "hwnasbench-fbnet"
    description = "HW-NAS-Bench FBNet op table: one metric as JSON {key: ms} (from its pickle)"
    suffix = ".json"
    statistic = "latency"  # one number per op, as HW-NAS-Bench stores it
    space = "hwnasbench-fbnet"

    # --- reading and writing ---------------------------------------------------------
    def parse(self, text: str) -> Entries:
        check_size(len(text))
        try:
            data = json.loads(text, object_pairs_hook=_no_duplicates)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not JSON ({exc.msg} at line {exc.lineno})") from None
        if not isinstance(data, dict) or not data:
            got = "an empty object" if data == {} else type(data).__name__
            raise ValueError(
                f"expected a JSON object of key -> ms (one metric of the pickle), got {got}"
            )
        return {key: self._entry(key, v) for key, v in data.items()}

    def _entry(self, key: str, value: Any) -> Entry:
        if fields(key) is None:
            raise ValueError(
                f"{key!r}: not an HW-NAS-Bench FBNet key (ConvBlock_, Skip_, ConvNorm_, "
                "AvgP_ or FC_ with its fields, e.g. FC_Cin1504_Cout100)"
            )
        if isinstance(value, dict | list):
            raise ValueError(
                f"{key}: expected a number, got a {type(value).__name__}; pass one metric, "
                'e.g. pickle_data["fbnet"]["pixel3_latency"], not the whole pickle'
            )
        return Entry(latency(value, key))

    def render(self, entries: Entries, comment: str = "") -> str:
        """JSON has no comments and HW-NAS-Bench reads only keys, so `comment` is dropped;
        so is any spread (the format has one number per op)."""
        body = ",\n".join(
            f"  {json.dumps(k)}: {_number(k, entries[k].ms)}" for k in sorted(entries)
        )
        return "{\n" + body + "\n}\n"

    def sniff(self, text: str) -> bool:
        head = text.lstrip()[:2000]
        keys = re.findall(r'"([^"\\]{1,200})"\s*:', head)[:5]
        ok = all("_" in k and k.split("_", 1)[0] in GRAMMAR for k in keys)
        return head.startswith("{") and bool(keys) and ok

    # --- keys ------------------------------------------------------------------------
    def recipe(self, slot: Slot) -> Recipe:
        op, p = slot.op, slot.op.p
        if "cout" not in p:  # DARTS' ops (c, not cin/cout): none of HW-NAS-Bench's
            return Recipe((), note=f"{self.name} has no key for this op ({op.key})")
        _, cin, h, w = op.shape
        hw = f"H{h}_W{w}_Cin{cin}_Cout{p['cout']}"
        if slot.candidate == "skip" and (op.kind == "skip" or _is_convnorm(op, k=1)):
            if op.kind == "skip" and p["s"] != 1:
                return Recipe((), note=f"HW-NAS-Bench's Skip is no factorized reduce ({op.key})")
            return Recipe((f"Skip_{hw}_stride{p['s']}",))
        if op.kind == "mbconv":
            return _conv_block(op, hw)
        if _is_convnorm(op):
            return Recipe((f"ConvNorm_{hw}_kernel{p['k']}_stride{p['s']}_group{p['g']}",))
        if op.kind == "head" and p["cmid"] and p["act"] == "relu" and h == w:
            mid = p["cmid"]
            return Recipe(
                (
                    f"ConvNorm_H{h}_W{w}_Cin{cin}_Cout{mid}_kernel1_stride1_group1",
                    f"AvgP_H{h}_W{w}_Cin{mid}_Cout{mid}_kernel{h}_stride1",
                    f"FC_Cin{mid}_Cout{p['cout']}",
                )
            )
        return Recipe((), note=f"{self.name} has no key for this op ({op.key})")

    def explain(self, key: str) -> str:
        got = fields(key)
        if got is None:
            return "not an HW-NAS-Bench FBNet key"
        _, f = got
        if f.get("H") in IMAGENET_SIDES or {f.get("Cin"), f.get("Cout")} & IMAGENET_WIDTHS:
            return (
                "a key of HW-NAS-Bench's ImageNet layout (input 224, head 1984, 1000 "
                "classes); hwnasbench-fbnet is its CIFAR-100 layout"
            )
        return (
            "no op of this space has these shapes (HW-NAS-Bench's CIFAR-100 layout is "
            "hwnasbench-fbnet at resolution 32, width 1.0, 100 classes)"
        )

    def infer(self, entries: Entries) -> dict[str, int]:
        """Resolution and classes where the file has one layout; a whole pickle metric
        holds both (CIFAR and ImageNet), and then it says nothing."""
        sides: set[int] = set()
        classes: set[int] = set()
        for key in entries:
            got = fields(key)
            if got and got[0] == "ConvNorm" and got[1]["Cin"] == 3:
                sides.add(got[1]["H"])
            if got and got[0] == "FC":
                classes.add(got[1]["Cout"])
        out = {"resolution": sides.pop()} if len(sides) == 1 else {}
        return out | ({"classes": classes.pop()} if len(classes) == 1 else {})


def _is_convnorm(op: OpSpec, k: int | None = None) -> bool:
    """HW-NAS-Bench's ConvNorm: a conv, BN, then ReLU."""
    p = op.p
    plain = op.kind == "conv" and p["bn"] == 1 and p["act"] == "relu" and p["preact"] == 0
    return plain and (k is None or p["k"] == k)


def _conv_block(op: OpSpec, hw: str) -> Recipe:
    p = op.p
    if p["act"] != "relu" or p["se"]:
        return Recipe((), note=f"HW-NAS-Bench's ConvBlock has ReLU and no SE ({op.key})")
    if p["e"] == 1 and p["g"] == 1 and not p["pw"]:
        return Recipe(
            (),
            note="HW-NAS-Bench's ConvBlock keeps its 1x1 expansion at e=1 (pw=1), "
            f"this block has none ({op.key})",
        )
    if p["res"] != int(p["s"] == 1 and p["cin"] == p["cout"]):
        return Recipe((), note=f"HW-NAS-Bench's ConvBlock adds a residual iff it can ({op.key})")
    return Recipe((f"ConvBlock_{hw}_exp{p['e']}_kernel{p['k']}_stride{p['s']}_group{p['g']}",))


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"{key}: given twice; keep one value per key")
        out[key] = value
    return out


def _number(key: str, ms: float) -> str:
    """repr, which reads back as the same float; JSON has no NaN or infinity."""
    if not math.isfinite(ms):
        raise ValueError(f"{key}: {ms} ms cannot be written (JSON has no NaN or infinity)")
    return repr(float(ms))
