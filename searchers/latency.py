"""The latency table a searcher optimises against: one space, layers x candidates, in ms.

Searchers need the table as a tensor (differentiable expected latency for DARTS-style
relaxations, exact sums for sampled architectures), but it comes from three places:
the service (`HwlatClient.lut`), a `hwlat lut --out` JSON file, a `hwlat profile`
file (hwlat-lut/1) or a ProxylessNAS-style YAML. All end in `LatencyTable.from_cells`.
Every cell keeps where its number came from, so `check` can refuse missing or
predicted cells *before* a search spends hours on a table with holes in it.

Missing cells hold NaN (never 0: a forgotten `check` must not make an op look free);
illegal cells hold 0.0 and are masked; a space's free candidates (DARTS' `none`, an edge
that is not in the child) hold 0.0 with the source `free`, whatever the table says.
Every layer is its own decision here, DARTS' shared `group`s included.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch

from searchers.spaces import ArchError, Choice, SearchSpace, create_space


class LutSource(Protocol):
    """What `from_service` needs of the service's client (`HwlatClient.lut`); a protocol,
    so that searchers do not import the service package (it imports searchers.spaces)."""

    def lut(
        self,
        device: str,
        space: str,
        resolution: int | None = ...,
        width: float = ...,
        classes: int | None = ...,
        options: dict[str, int] | None = ...,
    ) -> Any: ...


SOURCES = ("measured", "predicted", "free", "missing", "illegal")
_BASE_PARAMS = ("space", "resolution", "width", "classes")
_LISTED = 10  # cells named in an error before "and N more"


def space_options(space: SearchSpace) -> dict[str, int]:
    """The space's extra constructor parameters (DARTS' C and cells), as the service takes."""
    return {k: v for k, v in space.params().items() if k not in _BASE_PARAMS}


def _listing(items: list[str]) -> str:
    more = len(items) - _LISTED
    return "; ".join(items[:_LISTED]) + (f"; and {more} more" if more > 0 else "")


@dataclass
class LatencyTable:
    space: SearchSpace
    fixed_ms: float
    table: torch.Tensor  # [layers x candidates] ms; 0.0 where illegal, NaN where missing
    mask: torch.Tensor  # bool, True where the candidate is legal in the layer
    source: list[list[str]]  # per cell, one of SOURCES
    meta: dict[str, Any] = field(default_factory=dict)
    fixed_source: list[str] = field(default_factory=list)  # per fixed op
    _moved: dict[tuple[torch.device, torch.dtype], torch.Tensor] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    # --- constructors ----------------------------------------------------------------
    @classmethod
    def from_cells(
        cls,
        space: SearchSpace,
        lookup: Mapping[str, tuple[float, str]],
        meta: Mapping[str, Any] | None = None,
    ) -> LatencyTable:
        """The core constructor: `op key -> (ms, source)`; absent keys become missing."""

        def cell(key: str) -> tuple[float, str]:
            if key not in lookup or lookup[key][1] == "missing":
                return math.nan, "missing"
            ms, src = lookup[key]
            if src not in ("measured", "predicted"):
                raise ValueError(f"{key}: source must be measured or predicted, got {src!r}")
            if isinstance(ms, bool) or not isinstance(ms, int | float) or not 0 <= ms < math.inf:
                raise ValueError(f"{key}: latency must be a finite number >= 0 ms, got {ms!r}")
            return float(ms), src

        def choice(c: Choice) -> tuple[float, str]:
            if c.op is None:
                return 0.0, "illegal"
            return (0.0, "free") if c.name in space.free_candidates else cell(c.op.key)

        fixed = [cell(op.key) for op in space.fixed_ops()]
        rows = [[choice(c) for c in layer.choices] for layer in space.layers()]
        return cls(
            space=space,
            fixed_ms=math.fsum(ms for ms, _ in fixed),
            table=torch.tensor([[ms for ms, _ in r] for r in rows], dtype=torch.float64),
            mask=torch.tensor([[s != "illegal" for _, s in r] for r in rows], dtype=torch.bool),
            source=[[s for _, s in r] for r in rows],
            meta=dict(meta or {}),
            fixed_source=[s for _, s in fixed],
        )

    @classmethod
    def from_service(cls, client: LutSource, device: str, space: SearchSpace) -> LatencyTable:
        """One `lut` call; the answer must lay out exactly this space's ops."""
        opts = space_options(space) or None
        out = client.lut(device, space.name, space.resolution, space.width, space.classes, opts)
        meta: dict[str, Any] = {"from": f"device {device}", "device": out.device,
                                 "revision": out.revision}  # fmt: skip
        data = out.model_dump(mode="json")
        try:
            _, cells = _service_cells(data, space)
        except ValueError as exc:
            raise ValueError(f"device {device}: {exc}") from None
        files = {f"{c['imported']['file']} ({c['imported']['format']})"
                 for c in _all_cells(data) if c.get("imported")}  # fmt: skip
        if files:  # measured elsewhere: the device was imported from these files
            meta["imported"] = sorted(files)
        return cls.from_cells(space, cells, meta)

    @classmethod
    def from_file(
        cls, path: str | Path, space: SearchSpace | None = None, fmt: str | None = None
    ) -> LatencyTable:
        """A `hwlat lut --out` JSON, a `hwlat profile` file, or a table in a foreign format
        (ProxylessNAS/OFA yaml, NNI lut.txt, Single-Path NAS JSON, HW-NAS-Bench FBNet),
        told apart by content unless `fmt` names it (a renamed file still loads)."""
        from searchers.latency_io import read_cells

        path = Path(path)
        try:
            space, cells, meta = read_cells(path, space, fmt)
            return cls.from_cells(space, cells, {"from": str(path), **meta})
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(
                f"{path}: malformed latency table ({type(exc).__name__}: {exc}); "
                "write it again with `hwlat lut --out` or `hwlat profile`"
            ) from None
        except ValueError as exc:
            msg = str(exc)
            raise ValueError(msg if msg.startswith(str(path)) else f"{path}: {msg}") from None

    def retarget(self, space: SearchSpace) -> LatencyTable:
        """This table's latencies for the same space at another input resolution or class
        count: what a search trained at the dataset's size (digits: 32, 10 classes) uses
        when the latency must be that of the deployment configuration (224, 1000). The
        layers, candidates and legal cells must be the same; `meta["deployment"]` keeps
        the configuration the numbers are for."""
        mine = [
            (layer.name, [c.op is not None for c in layer.choices]) for layer in self.space.layers()
        ]
        theirs = [
            (layer.name, [c.op is not None for c in layer.choices]) for layer in space.layers()
        ]
        same = (space.name, space.width, space_options(space)) == (
            self.space.name, self.space.width, space_options(self.space))  # fmt: skip
        if not same or mine != theirs:
            raise ValueError(
                f"{space.name}@{space.resolution} does not have the width, layers and legal "
                f"candidates of the table's {self.space.name}@{self.space.resolution}; a table "
                "can only stand in for the same space at another resolution or class count"
            )
        meta = {**self.meta, "deployment": self.space.params()}
        return LatencyTable(
            space, self.fixed_ms, self.table, self.mask, self.source, meta, list(self.fixed_source)
        )

    def restricted(self, keep: torch.Tensor) -> LatencyTable:
        """The same table with only the cells in `keep` legal: the candidates a searcher
        can express (Single-Path NAS's super-kernel holds no grouped or SE block), so the
        bounds, the repair and random draws stay among them."""
        if tuple(keep.shape) != tuple(self.mask.shape):
            raise ValueError(f"restricted: need a {tuple(self.mask.shape)} mask")
        keep = keep.bool() & self.mask
        if not bool(keep.any(dim=1).all()):
            raise ValueError("restricted: every layer needs a legal candidate left")
        source = [
            [s if bool(keep[r, c]) else "illegal" for c, s in enumerate(row)]
            for r, row in enumerate(self.source)
        ]
        table = torch.where(keep, self.table, torch.zeros_like(self.table))
        return LatencyTable(
            self.space, self.fixed_ms, table, keep, source, dict(self.meta), list(self.fixed_source)
        )

    # --- checks ----------------------------------------------------------------------
    def cells(self, source: str) -> list[str]:
        """'where (key)' of every fixed op and layer cell with this source."""
        fixed = self.space.fixed_ops()
        found = [
            f"fixed[{i}] ({fixed[i].key})" for i, s in enumerate(self.fixed_source) if s == source
        ]
        for layer, row in zip(self.space.layers(), self.source, strict=True):
            for choice, s in zip(layer.choices, row, strict=True):
                if s == source and choice.op is not None:
                    found.append(f"{layer.name}/{choice.name} ({choice.op.key})")
        return found

    def check(self, allow_predicted: bool = False) -> None:
        """Refuse a table with holes (always) or with predicted cells (unless allowed)."""
        origin = self.meta.get("from", "latency table")
        missing = self.cells("missing")
        if missing and self.meta.get("unfilled"):  # a foreign file: say why
            raise ValueError(
                f"{origin}: {len(missing)} ops of {self.space.name} have no latency in this "
                f"{self.meta['format']} file: {_listing(self.meta['unfilled'])}; import a file "
                "that covers them, or measure them and search against that device"
            )
        if missing:
            raise ValueError(
                f"{origin}: {len(missing)} cells have no latency: {_listing(missing)}; "
                "have them measured (`hwlat jobs add` or `hwlat profile`) or train a predictor"
            )
        predicted = self.cells("predicted")
        if predicted and not allow_predicted:
            raise ValueError(
                f"{origin}: {len(predicted)} cells are predicted, not measured: "
                f"{_listing(predicted)}; pass --allow-predicted to use predicted cells"
            )

    # --- latency ---------------------------------------------------------------------
    def expected(self, probs: torch.Tensor) -> torch.Tensor:
        """fixed + sum_l sum_i p[l,i] T[l,i]: the relaxed latency, differentiable in probs.
        Probs must be zero on illegal cells (not checked: no host sync in a training step)."""
        if tuple(probs.shape) != tuple(self.table.shape):
            raise ValueError(
                f"probs: expected shape {tuple(self.table.shape)} (layers x candidates), "
                f"got {tuple(probs.shape)}"
            )
        slot = (probs.device, probs.dtype)
        if slot not in self._moved:
            self._moved[slot] = self.table.to(device=probs.device, dtype=probs.dtype)
        return (probs * self._moved[slot]).sum() + self.fixed_ms

    def index(self, arch: Any) -> list[int]:
        """Column indices of an architecture given as names (or its JSON) or indices."""
        layers = self.space.layers()
        if _is_indices(arch):
            if len(arch) != len(layers):
                raise ArchError(f"choices: expected {len(layers)} entries, got {len(arch)}")
            idx = [int(i) for i in arch]
            for layer, i in zip(layers, idx, strict=True):
                if not 0 <= i < len(self.space.candidates):
                    raise ArchError(f"{layer.name}: candidate index {i} out of range")
                layer.op(layer.choices[i].name)  # raises ArchError when illegal
            return idx
        names = self.space.parse_arch(arch)
        if not isinstance(names, tuple) or len(names) != len(layers):
            raise ValueError(
                f"{self.space.name}: architectures are not one name per layer; pass indices"
            )
        column = {name: i for i, name in enumerate(self.space.candidates)}
        return [column[name] for name in names]

    def names(self, indices: Sequence[int]) -> tuple[str, ...]:
        return tuple(self.space.candidates[i] for i in self.index(list(indices)))

    def exact(self, arch: Any) -> float:
        """The table latency of one architecture (fixed ops included)."""
        idx = self.index(arch)
        return self.fixed_ms + math.fsum(float(self.table[row, i]) for row, i in enumerate(idx))

    def bounds(self) -> tuple[float, float]:
        """(min, max) table latency over all architectures (each layer independently)."""
        legal_lo = torch.where(self.mask, self.table, math.inf).min(dim=1).values
        legal_hi = torch.where(self.mask, self.table, -math.inf).max(dim=1).values
        return self.fixed_ms + float(legal_lo.sum()), self.fixed_ms + float(legal_hi.sum())

    def summary(self) -> dict[str, Any]:
        """A JSON-able summary: bounds, counts per source, legal cells per layer."""
        counts = {s: sum(row.count(s) for row in self.source) for s in SOURCES}
        lo, hi = self.bounds()
        layers = {
            layer.name: {
                c.name: (None if s == "missing" else float(self.table[row, i]))
                for i, (c, s) in enumerate(zip(layer.choices, self.source[row], strict=True))
                if s != "illegal"
            }
            for row, layer in enumerate(self.space.layers())
        }
        return {
            **self.meta,
            **self.space.params(),
            "fixed_ms": self.fixed_ms,
            "min_ms": lo,
            "max_ms": hi,
            "cells": counts,
            "layers": layers,
        }


Cells = dict[str, tuple[float, str]]


def _all_cells(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The fixed and layer cells of a service LUT's JSON (illegal cells left out)."""
    layers = [c for layer in data["layers"] for c in layer["cells"].values() if c]
    return [*data["fixed"], *layers]


def _is_indices(arch: Any) -> bool:
    return (
        isinstance(arch, Sequence)
        and not isinstance(arch, str)
        and len(arch) > 0
        and all(isinstance(a, numbers.Integral) and not isinstance(a, bool) for a in arch)
    )


def _service_cells(data: dict[str, Any], space: SearchSpace | None) -> tuple[SearchSpace, Cells]:
    """`key -> (ms, source)` of a service LUT, after checking that its layout is the space's
    (rebuilt from the table's own fields when not given)."""
    if space is None:
        options = (data.get("coverage") or {}).get("options") or {}
        fields = {k: data[k] for k in ("resolution", "width", "classes")}
        space = create_space(data["space"], **fields, **options)
    if list(data["candidates"]) != list(space.candidates):
        raise ValueError(f"candidates {data['candidates']} are not {space.name}'s")
    fixed, layers = data["fixed"], data["layers"]
    if [c["key"] for c in fixed] != [op.key for op in space.fixed_ops()]:
        raise ValueError(f"its fixed ops are not those of {space.params()}")
    if [layer["name"] for layer in layers] != [layer.name for layer in space.layers()]:
        raise ValueError(f"its layers are not those of {space.params()}")
    all_cells = list(fixed)
    for got, layer in zip(layers, space.layers(), strict=True):
        for c in layer.choices:
            cell = got["cells"][c.name]
            if (cell and cell["key"]) != (c.op and c.op.key):
                raise ValueError(f"{layer.name}/{c.name}: not the op of {space.params()}")
            all_cells += [cell] if cell else []
    cells = {c["key"]: (c["ms"], c["source"]) for c in all_cells if c["source"] != "missing"}
    return space, cells
