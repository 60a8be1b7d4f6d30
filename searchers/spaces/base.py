"""The search-space contract shared by every space.

A space is parameterised by input resolution, width multiplier and class count. It
yields fixed ops (stem, head, ...) and, per searchable layer, its candidate OpSpecs
along one candidate axis shared by all layers (a candidate that is illegal in a layer
has `op=None`: the latency table masks it). The same object validates architectures
and builds standalone child networks whose blocks are exactly `arch_ops(arch)`.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from profiler.lutformats.base import Slot
from profiler.ops import DTYPES, OpSpec

if TYPE_CHECKING:
    from torch import nn


class ArchError(ValueError):
    """An architecture that does not fit its space (wrong length, unknown op, ...)."""


@dataclass(frozen=True)
class Choice:
    name: str
    op: OpSpec | None  # None: this candidate is illegal in this layer


@dataclass(frozen=True)
class Layer:
    """One searchable decision point: a layer of a chain space, or an edge of a cell."""

    name: str
    choices: tuple[Choice, ...]
    group: str = ""  # layers that share one architecture decision (DARTS: edge of a cell type)

    @property
    def legal(self) -> tuple[Choice, ...]:
        return tuple(c for c in self.choices if c.op is not None)

    def op(self, name: str) -> OpSpec:
        for c in self.choices:
            if c.name == name:
                if c.op is None:
                    legal = ", ".join(x.name for x in self.legal)
                    raise ArchError(f"{self.name}: {name!r} is illegal here (legal: {legal})")
                return c.op
        known = ", ".join(c.name for c in self.choices)
        raise ArchError(f"{self.name}: unknown op {name!r} (candidates: {known})")


class SearchSpace(ABC):
    """Base of all spaces. Subclasses set `name`, `candidates` and the defaults."""

    name: ClassVar[str]
    candidates: ClassVar[tuple[str, ...]]  # the candidate axis, in table column order
    default_resolution: ClassVar[int] = 224
    default_classes: ClassVar[int] = 1000
    description: ClassVar[str] = ""
    # candidates that are no op at all in a child network (DARTS' `none`: a dropped
    # edge); the latency table holds 0 ms for them, whatever was measured
    free_candidates: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        resolution: int | None = None,
        width: float = 1.0,
        classes: int | None = None,
        batch: int = 1,
        dtype: str = "float32",
    ):
        self.resolution = self.default_resolution if resolution is None else resolution
        self.width = width
        self.classes = self.default_classes if classes is None else classes
        self.batch, self.dtype = batch, dtype
        for field, value in (
            ("resolution", self.resolution),
            ("classes", self.classes),
            ("batch", batch),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{field}: must be a positive integer, got {value!r}")
        if isinstance(width, bool) or not isinstance(width, int | float) or not width > 0:
            raise ValueError(f"width: must be a positive number, got {width!r}")
        if dtype not in DTYPES:
            raise ValueError(f"dtype: must be one of {list(DTYPES)}, got {dtype!r}")
        try:
            self._fixed, self._layers = self._plan()
        except ValueError as exc:  # an OpSpec that cannot exist at this size
            raise ValueError(
                f"resolution/width: {self.name} cannot be built at "
                f"resolution {self.resolution}, width {width}: {exc}"
            ) from None

    @abstractmethod
    def _plan(self) -> tuple[list[OpSpec], list[Layer]]:
        """Fixed ops and searchable layers; called once by the constructor."""

    def fixed_ops(self) -> list[OpSpec]:
        """Ops every architecture contains, in forward order (repeats kept: each costs)."""
        return list(self._fixed)

    def layers(self) -> list[Layer]:
        return list(self._layers)

    def slots(self) -> list[Slot]:
        """Every op of the space where it sits (fixed ops, then each layer's legal, non-free
        candidates): what a foreign latency table's entries are mapped onto."""
        fixed = [Slot(f"fixed[{i}]", op, fixed=i) for i, op in enumerate(self.fixed_ops())]
        return fixed + [
            Slot(f"{layer.name}/{c.name}", c.op, row, c.name)
            for row, layer in enumerate(self.layers())
            for c in layer.choices
            if c.op is not None and c.name not in self.free_candidates
        ]

    def distinct_ops(self) -> list[OpSpec]:
        """Every op a latency table of this space needs, each once, in first-seen order."""
        ops = self.fixed_ops() + [
            c.op for layer in self._layers for c in layer.legal if c.op is not None
        ]
        return list(dict.fromkeys(ops))

    @abstractmethod
    def size(self) -> int:
        """Number of distinct architectures."""

    @abstractmethod
    def parse_arch(self, data: Any) -> Any:
        """Validate an architecture (JSON form) and return its normalised form."""

    @abstractmethod
    def arch_to_json(self, arch: Any) -> dict[str, Any]:
        """The JSON form of a (parsed) architecture, with the space's parameters."""

    @abstractmethod
    def arch_ops(self, arch: Any) -> list[OpSpec]:
        """Every block of the child network, in forward order."""

    @abstractmethod
    def build_child(self, arch: Any) -> nn.Module:
        """The standalone network of an architecture (eval mode)."""

    @abstractmethod
    def random_arch(self, seed: int) -> Any:
        """A uniformly random architecture (parsed form)."""

    # --- shared helpers ------------------------------------------------------------------
    def params(self) -> dict[str, Any]:
        return {
            "space": self.name,
            "resolution": self.resolution,
            "width": self.width,
            "classes": self.classes,
        }

    def check_params(self, data: dict[str, Any]) -> None:
        """An architecture names the space it was made for; refuse one from another."""
        for field, mine in self.params().items():
            if field in data and data[field] != mine:
                raise ArchError(
                    f"{field}: architecture is for {data[field]!r}, this space has {mine!r}"
                )

    def summary(self) -> dict[str, Any]:
        size = self.size()
        return {
            **self.params(),
            "description": self.description,
            "candidates": list(self.candidates),
            "searchable_layers": len(self._layers),
            "fixed_ops": [op.key for op in self._fixed],
            "layers": [
                {
                    "name": layer.name,
                    "group": layer.group,
                    "choices": {c.name: (c.op.key if c.op else None) for c in layer.choices},
                }
                for layer in self._layers
            ],
            "distinct_ops": len(self.distinct_ops()),
            "size": size,
            "size_formula": self.size_formula(),
            "size_log10": round(math.log10(size), 3),
        }

    def size_formula(self) -> str:
        """The size as a product of powers, e.g. '9^16 * 8^6' for FBNet."""
        counts: dict[int, int] = {}
        for layer in self._layers:
            counts[len(layer.legal)] = counts.get(len(layer.legal), 0) + 1
        return " * ".join(f"{base}^{exp}" for base, exp in sorted(counts.items(), reverse=True))

    def width_of(self, channels: int) -> int:
        from profiler._kinds import make_divisible

        return make_divisible(channels * self.width, 8)


def expect_list(data: Any, field: str, length: int) -> Sequence[Any]:
    if not isinstance(data, list | tuple):
        raise ArchError(f"{field}: expected a list, got {type(data).__name__}")
    if len(data) != length:
        raise ArchError(f"{field}: expected {length} entries, got {len(data)}")
    return data
