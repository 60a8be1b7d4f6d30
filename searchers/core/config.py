"""Typed searcher configs: defaults with the reason and the paper, `--set key=value`.

Each algorithm declares a dataclass that extends `SearchConfig`; every field carries
its help text and where the default comes from (`option(...)`). `apply_sets` turns
`["epochs=20", "mode=two"]` into a validated config, and refuses unknown keys and wrong
types with one line naming what is valid; `describe` lists the options for
`hwlat search NAME --help-options`.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

C = TypeVar("C", bound="SearchConfig")


def option(default: Any, help: str, paper: str = "hwlat") -> Any:
    return field(default=default, metadata={"help": help, "paper": paper})


@dataclass
class SearchConfig:
    """What every searcher shares: the schedule, the weights' optimiser, initialisation."""

    epochs: int = option(15, "search epochs over the train split")
    warmup_epochs: int = option(
        5,
        "epochs of weights only, paths uniform, before any architecture step",
        "ProxylessNAS (40 of 160), FBNet (10 of 90)",
    )
    lr: float = option(
        0.005, "weights: SGD learning rate (cosine to 0); 0.02 did not learn under path sampling"
    )
    momentum: float = option(0.9, "weights: SGD (Nesterov) momentum")
    weight_decay: float = option(4e-5, "weights: L2", "ProxylessNAS")
    grad_clip: float = option(5.0, "weights: gradient norm clip (0: none)")
    shared_init: bool = option(
        True,
        "candidates of a layer start as one function (core/init.py)",
        "Single-Path NAS / OFA kernel nesting",
    )
    zero_residual_bn: bool = option(
        True, "last BN of residual candidates starts at γ=0", "Goyal et al. 2017"
    )
    arch_lr: float = option(
        0.5,
        "architecture: Adam learning rate; the papers' 1e-3 to 1e-2 left p flat in a "
        "search of ~200 architecture steps",
    )
    arch_beta1: float = option(0.0, "architecture: Adam β1", "ProxylessNAS")
    arch_weight_decay: float = option(0.0, "architecture: Adam weight decay")
    arch_every: int = option(1, "an architecture step every k weight steps")
    bn_calib_batches: int = option(
        4, "train batches that re-estimate BN statistics before a path is scored", "SPOS"
    )
    checkpoint_every: int = option(20, "weight steps between checkpoints (with --checkpoint)")
    seed: int = option(0, "initialisation, path sampling and data order")

    def __post_init__(self) -> None:
        if self.epochs < 1 or not 0 <= self.warmup_epochs < self.epochs:
            raise ValueError("epochs: need epochs >= 1 and 0 <= warmup_epochs < epochs")
        positive = ("lr", "arch_lr", "arch_every", "checkpoint_every")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}: must be positive, got {getattr(self, name)}")
        for name in ("momentum", "arch_beta1"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"{name}: must be in [0, 1), got {getattr(self, name)}")
        for name in ("weight_decay", "grad_clip", "arch_weight_decay", "bn_calib_batches"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: must be >= 0, got {getattr(self, name)}")


def apply_sets(cls: type[C], sets: list[str], base: dict[str, Any] | None = None) -> C:
    """The config `cls` with `base` then every `key=value` of `sets` applied."""
    hints = typing.get_type_hints(cls)
    values = dict(base or {})
    names = [f.name for f in dataclasses.fields(cls)]
    for item in sets:
        key, sep, raw = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise ValueError(f"--set: expected KEY=VALUE, got {item!r}")
        if key not in names:
            raise ValueError(f"--set {key}: unknown option (options: {', '.join(names)})")
        values[key] = parse_value(key, raw.strip(), hints[key])
    return cls(**values)


def parse_value(key: str, raw: str, kind: Any) -> Any:
    if typing.get_origin(kind) is Literal:
        allowed = typing.get_args(kind)
        if raw not in allowed:
            raise ValueError(f"--set {key}: one of {', '.join(map(str, allowed))}, got {raw!r}")
        return raw
    if kind is bool:
        if raw.lower() in ("true", "1", "yes", "on"):
            return True
        if raw.lower() in ("false", "0", "no", "off"):
            return False
        raise ValueError(f"--set {key}: expected true or false, got {raw!r}")
    if kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            what = "an integer" if kind is int else "a number"
            raise ValueError(f"--set {key}: expected {what}, got {raw!r}") from None
    if kind is str:
        return raw
    raise ValueError(f"--set {key}: cannot be set from the command line ({_type_name(kind)})")


def describe(cls: type[SearchConfig]) -> list[dict[str, str]]:
    """One row per option: name, type, default, help, paper."""
    hints = typing.get_type_hints(cls)
    rows = []
    for f in dataclasses.fields(cls):
        rows.append(
            {
                "name": f.name,
                "type": _type_name(hints[f.name]),
                "default": str(f.default).lower()
                if isinstance(f.default, bool)
                else str(f.default),
                "help": f.metadata.get("help", ""),
                "paper": f.metadata.get("paper", ""),
            }
        )
    return rows


def _type_name(kind: Any) -> str:
    if typing.get_origin(kind) is Literal:
        return "|".join(map(str, typing.get_args(kind)))
    if isinstance(kind, type):
        return kind.__name__
    if isinstance(kind, types.UnionType):
        return str(kind)
    return str(kind)
