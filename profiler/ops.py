"""OpSpec: what a block is. Every part of hwlat names blocks by these.

An OpSpec is a kind, its scalar parameters, an input shape (N, C, H, W) and a dtype.
It is frozen and hashable, validated on construction, and has one canonical string key:

    mbconv|cin=16,cout=24,e=6,g=1,k=3,s=2,se=0|1x16x32x32|float32

Keys list the parameters in sorted order; optional parameters appear only when they
differ from their (frozen) default, so keys stay short and stable across versions.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from profiler._kinds import KINDS, KindDef, Scalar, Shape

DTYPES = ("float32", "float16", "bfloat16", "int8")
ITEMSIZE = {"float32": 4, "float16": 2, "bfloat16": 2, "int8": 1}
MAX_DIM = 1 << 20  # no real block has a side or channel count this large

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def _normalise(kind: KindDef, given: Mapping[str, Any]) -> tuple[tuple[str, Scalar], ...]:
    """Fill defaults, coerce and range-check every parameter; reject unknown ones."""
    known = {p.name for p in kind.params}
    unknown = sorted(set(given) - known)
    if unknown:
        raise ValueError(
            f"{unknown[0]}: unknown parameter for kind {kind.name!r} "
            f"(it takes {', '.join(sorted(known))})"
        )
    out: dict[str, Scalar] = {}
    for p in kind.params:
        value = given.get(p.name, p.default)
        if value is None:
            raise ValueError(f"{p.name}: required by kind {kind.name!r}")
        if p.type is int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{p.name}: must be an integer, got {value!r}")
            if not p.choices and not p.minimum <= value <= MAX_DIM:
                raise ValueError(f"{p.name}: must be in [{p.minimum}, {MAX_DIM}], got {value}")
        elif not isinstance(value, str):
            raise ValueError(f"{p.name}: must be a string, got {value!r}")
        if p.choices and value not in p.choices:
            raise ValueError(f"{p.name}: must be one of {list(p.choices)}, got {value!r}")
        out[p.name] = value
    return tuple(sorted(out.items()))


@dataclass(frozen=True, order=True)
class OpSpec:
    """A block to measure: kind + sorted params + input shape (N, C, H, W) + dtype."""

    kind: str
    params: tuple[tuple[str, Scalar], ...] = field(default=())
    shape: Shape = (1, 1, 1, 1)
    dtype: str = "float32"

    def __post_init__(self) -> None:
        kind = KINDS.get(self.kind)
        if kind is None:
            raise ValueError(f"kind: unknown op kind {self.kind!r} (known: {', '.join(KINDS)})")
        try:
            given = dict(self.params)
            shape = tuple(self.shape)
        except (TypeError, ValueError):
            raise ValueError(
                "params/shape: params must be (name, value) pairs and shape a "
                "sequence; build specs with OpSpec.make"
            ) from None
        if len(shape) != 4 or not all(type(d) is int and 1 <= d <= MAX_DIM for d in shape):
            raise ValueError(f"shape: must be 4 positive integers (N, C, H, W), got {self.shape!r}")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype: must be one of {list(DTYPES)}, got {self.dtype!r}")
        params = _normalise(kind, given)
        object.__setattr__(self, "params", params)
        object.__setattr__(self, "shape", shape)
        kind.check(dict(params), shape)

    @classmethod
    def make(cls, kind: str, shape: Shape, dtype: str = "float32", **params: Scalar) -> OpSpec:
        """The usual way in: `OpSpec.make("mbconv", (1, 16, 32, 32), cin=16, ...)`."""
        return cls(kind, tuple(params.items()), tuple(shape), dtype)

    # --- accessors -------------------------------------------------------------------
    @property
    def p(self) -> dict[str, Scalar]:
        """The parameters as a dict (defaults filled in)."""
        return dict(self.params)

    def num(self, name: str) -> int:
        """An integer parameter (all but `act` and `mode` are integers)."""
        value = self.p[name]
        assert isinstance(value, int), name
        return value

    @property
    def out_shape(self) -> Shape:
        """Shape of the block's output: (N, C, H, W), or (N, classes) for linear/head."""
        return KINDS[self.kind].out_shape(self.p, self.shape)

    @property
    def itemsize(self) -> int:
        return ITEMSIZE[self.dtype]

    def replace(self, **changes: Any) -> OpSpec:
        """A copy with some params (or `shape=`, `dtype=`) changed; re-validated."""
        shape = changes.pop("shape", self.shape)
        dtype = changes.pop("dtype", self.dtype)
        return OpSpec(self.kind, tuple({**self.p, **changes}.items()), shape, dtype)

    # --- canonical key -----------------------------------------------------------------
    @property
    def key(self) -> str:
        kind = KINDS[self.kind]
        values = self.p
        shown = [
            f"{p.name}={values[p.name]}"
            for p in sorted(kind.params, key=lambda q: q.name)
            if p.always or values[p.name] != p.default
        ]
        shape = "x".join(str(d) for d in self.shape)
        return f"{self.kind}|{','.join(shown)}|{shape}|{self.dtype}"

    def __str__(self) -> str:
        return self.key

    @classmethod
    def from_key(cls, key: str) -> OpSpec:
        """Parse a canonical key; raises ValueError naming the broken part."""
        if not isinstance(key, str):
            raise ValueError(f"key: must be a string, got {type(key).__name__}")
        parts = key.split("|")
        if len(parts) != 4:
            raise ValueError(f"key: expected 'kind|params|NxCxHxW|dtype', got {key!r}")
        kind, raw_params, raw_shape, dtype = parts
        if kind not in KINDS:
            raise ValueError(f"kind: unknown op kind {kind!r} in key {key!r}")
        types = {p.name: p.type for p in KINDS[kind].params}
        params: dict[str, Scalar] = {}
        for item in filter(None, raw_params.split(",")):
            name, sep, value = item.partition("=")
            if not sep or not _NAME.match(name) or name in params:
                raise ValueError(f"params: malformed or repeated item {item!r} in key {key!r}")
            params[name] = _parse_scalar(name, value, types.get(name, int))
        try:
            shape = tuple(int(d) for d in raw_shape.split("x"))
        except ValueError:
            raise ValueError(f"shape: expected NxCxHxW, got {raw_shape!r}") from None
        spec = cls(kind, tuple(params.items()), shape, dtype)
        if spec.key != key:
            raise ValueError(f"key: not canonical, the canonical form is {spec.key!r}")
        return spec

    # --- JSON --------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "params": self.p, "shape": list(self.shape), "dtype": self.dtype}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OpSpec:
        if not isinstance(data, Mapping):
            raise ValueError(f"spec: expected a JSON object, got {type(data).__name__}")
        extra = sorted(set(data) - {"kind", "params", "shape", "dtype"})
        if extra:
            raise ValueError(f"{extra[0]}: unknown field in an op spec")
        if "kind" not in data or "shape" not in data:
            raise ValueError("spec: needs at least 'kind' and 'shape'")
        params = data.get("params", {})
        shape = data["shape"]
        if not isinstance(params, Mapping):
            raise ValueError("params: must be an object of name -> value")
        if not isinstance(shape, list | tuple):
            raise ValueError(f"shape: must be a list of 4 integers, got {shape!r}")
        return cls(
            str(data["kind"]),
            tuple(params.items()),
            tuple(shape),
            str(data.get("dtype", "float32")),
        )

    @classmethod
    def from_json(cls, text: str) -> OpSpec:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"spec: invalid JSON ({exc.msg})") from None
        return cls.from_dict(data)


def _parse_scalar(name: str, value: str, typ: type) -> Scalar:
    if typ is str:
        return value
    if not re.fullmatch(r"-?[0-9]+", value):
        raise ValueError(f"{name}: expected an integer, got {value!r}")
    return int(value)
