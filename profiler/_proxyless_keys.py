"""Keys in the ProxylessNAS / once-for-all lookup-table style.

ProxylessNAS and OFA name LUT rows like
`expanded_conv-input:32x32x16-output:16x16x24-expand:6-kernel:3-stride:2-idskip:0`
(shapes are H x W x C). hwlat writes these so a table can be handed to their code.
Kinds those projects never had get the same shape of key with their own name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from profiler.ops import OpSpec


def _hwc(shape: tuple[int, ...]) -> str:
    if len(shape) == 2:  # (N, classes): a classifier output
        return f"{shape[1]}"
    _, c, h, w = shape
    return f"{h}x{w}x{c}"


def proxyless_key(spec: OpSpec) -> str:
    p = spec.p
    io = f"input:{_hwc(spec.shape)}-output:{_hwc(spec.out_shape)}"
    if spec.kind == "mbconv":
        key = (
            f"expanded_conv-{io}-expand:{p['e']}-kernel:{p['k']}-stride:{p['s']}-idskip:{p['res']}"
        )
        if p["se"] or p["act"] == "hswish":  # OFA's MobileNetV3 rows carry these two
            key += f"-se:{p['se']}-hs:{int(p['act'] == 'hswish')}"
        if p["g"] != 1:
            key += f"-group:{p['g']}"
        return key
    if spec.kind == "conv":
        return f"Conv-{io}-kernel:{p['k']}-stride:{p['s']}" + (
            f"-group:{p['g']}" if p["g"] != 1 else ""
        )
    if spec.kind == "head":
        return f"Logits-{io}" + (f"-mid:{p['cmid']}" if p["cmid"] else "")
    names = {
        "linear": "Logits",
        "skip": "Identity" if p.get("s") == 1 else "FactorizedReduce",
        "zero": "Zero",
    }
    name = names.get(spec.kind, spec.kind)
    extras = "".join(f"-{n}:{v}" for n, v in sorted(p.items()) if n not in ("cin", "cout", "c"))
    return f"{name}-{io}{extras}"
