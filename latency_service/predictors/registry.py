"""The predictor candidates by name: what each is, what it needs, and which ones `hwlat
train` cross-validates by default.

A candidate carries what decides whether it applies to a kind on a device: the device's
measured kernels (`needs_kernels`: a `KernelTable` of its conv ops measured alone), a
minimum of measured rows (`min_rows`), and for a blend its parts (the geometric mean of
their estimates). `resolve(models)` turns a request into the candidates to
cross-validate: the default set (None), every candidate (`["all"]`) or the ones named,
each blend with its parts, which cross-validation needs first.

The default set is the few that win on the figures in docs/BENCHMARKS.md ("Predictor
registry (issue 24)" and the issue-6 sections before it): the boosted kernel law with
every feature set (`kernel_gbm_mlas`), the three blends and their parts, and two cheap
ones for kinds with few or noisy rows (`kernel_forest`, `kernel_roofline`). Where the
device's kernels let `kernel_net_joint` in, `kernel_net` and its blend stay out (`unless`):
they never beat it there, and the networks are most of training's time. The rest stay
registered, for `--model all` and because a stored predictor is rebuilt from its
candidate's name: plain trees and rooflines (the baselines), and the feature ablations
of the boosted kernel law (`kernel_gbm` → `_layout` → `_nchwc` → `_mlas`, each adds
features to the last).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from latency_service.predictors.kernel_net import KernelNet
from latency_service.predictors.kernel_table import KernelTable, KernelTableBoost
from latency_service.predictors.models import (
    Blend,
    KernelRoofline,
    LogTree,
    Predicts,
    Roofline,
    RooflineForest,
    boosted_kernel_law,
)

# the kernel networks learn from a few hundred blocks; below that they only cost time
NET_MIN = 200
Build = Callable[[KernelTable | None], Predicts]


@dataclass(frozen=True)
class Candidate:
    name: str
    about: str
    build: Build | None  # None for a blend: built from its parts
    needs_kernels: bool = False  # fitted with the device's conv ops measured alone
    min_rows: int = 0  # offered from this many measured ops of the kind
    parts: tuple[str, ...] = ()  # a blend: the geometric mean of these candidates
    default: bool = False  # cross-validated by `hwlat train` without --model
    # in the default set only where this candidate is not offered: one that wins over it
    # wherever both apply, so fitting both costs time for nothing
    unless: str | None = None


_CANDIDATES: dict[str, Candidate] = {}


def register(candidate: Candidate) -> Candidate:
    if candidate.name in _CANDIDATES or candidate.name == "all":
        raise RuntimeError(f"predictor candidate {candidate.name!r} registered twice")
    missing = [p for p in candidate.parts if p not in _CANDIDATES]
    if missing or (candidate.build is None) == (not candidate.parts):
        raise RuntimeError(f"{candidate.name}: a blend has registered parts and no build")
    parts = [_CANDIDATES[p] for p in candidate.parts]
    if parts:  # a blend needs what its parts need
        candidate = replace(
            candidate,
            needs_kernels=any(p.needs_kernels for p in parts),
            min_rows=max(p.min_rows for p in parts),
        )
    _CANDIDATES[candidate.name] = candidate
    return candidate


def candidate(name: str) -> Candidate:
    try:
        return _CANDIDATES[name]
    except KeyError:
        raise ValueError(
            f"models: unknown candidate {name!r} (candidates: all, {', '.join(_CANDIDATES)})"
        ) from None


def list_candidates() -> tuple[str, ...]:
    """Every candidate, in registration order (parts before their blends)."""
    return tuple(_CANDIDATES)


def default_candidates() -> tuple[str, ...]:
    return tuple(n for n, c in _CANDIDATES.items() if c.default)


def resolve(models: Sequence[str] | None) -> tuple[str, ...]:
    """The candidates to cross-validate for a request: None the default set, ["all"] every
    one, else the ones named (a ValueError names an unknown one); blends bring their parts,
    and the order is registration order, so parts come before their blends."""
    if models is None:
        return default_candidates()
    if not models:
        raise ValueError("models: give at least one candidate, or all")
    named = [candidate(name) for name in models if name != "all"]  # unknown: ValueError
    if "all" in models:
        return list_candidates()
    wanted: set[str] = set().union(*(_with_parts(c) for c in named))
    return tuple(n for n in _CANDIDATES if n in wanted)


def without_superseded(offered: Sequence[str]) -> tuple[str, ...]:
    """The default set's candidates where what supersedes them (`unless`) is not offered
    (the networks: `kernel_net_joint`, with the device's kernels, over `kernel_net`)."""
    return tuple(n for n in offered if _CANDIDATES[n].unless not in offered)


def _with_parts(c: Candidate) -> set[str]:
    return {c.name}.union(*(_with_parts(_CANDIDATES[p]) for p in c.parts))


def make(name: str, table: KernelTable | None = None) -> Predicts:
    """A fresh, unfitted candidate; `table` for those that need the device's kernels."""
    c = candidate(name)
    if c.needs_kernels and table is None:
        raise ValueError(f"{name}: needs the device's measured kernels (a KernelTable)")
    if c.parts:
        return Blend([make(part, table) for part in c.parts])
    assert c.build is not None  # register() checks: a build, or parts
    return c.build(table)


def _table(table: KernelTable | None) -> KernelTable:
    assert table is not None  # make() checks needs_kernels first
    return table


def _add(name: str, about: str, build: Build, **kw: object) -> None:
    register(Candidate(name, about, build, **kw))  # type: ignore[arg-type]


def _blend(name: str, *parts: str, unless: str | None = None) -> None:
    about = "geometric mean of " + " and ".join(parts)
    register(Candidate(name, about, None, parts=parts, default=True, unless=unless))


def _boosted(name: str) -> Build:
    return lambda table: boosted_kernel_law(name)


_add("random_forest", "random forest on log latency", lambda t: LogTree("random_forest"))
_add("hist_gbm", "gradient boosting on log latency", lambda t: LogTree("hist_gbm"))
_add("roofline", "a·FLOPs + b·bytes + c, non-negative", lambda t: Roofline())
_add("roofline_forest", "roofline × extra-trees on its log residual", lambda t: RooflineForest())
# the kernel law alone won where labels were too noisy for trees (torch-cuda, few rows)
_add(
    "kernel_roofline",
    "one roofline law per conv kernel type",
    lambda t: KernelRoofline(),
    default=True,
)
_add(
    "kernel_forest",
    "kernel law × extra-trees on its log residual",
    lambda t: RooflineForest(KernelRoofline()),
    default=True,
)
# the kernel law × gradient boosting; the first three are feature ablations of the last
_add("kernel_gbm", "kernel law × boosting, the law's features", _boosted("kernel_gbm"))
_add("kernel_gbm_layout", "kernel_gbm + SIMD layout features", _boosted("kernel_gbm_layout"))
_add("kernel_gbm_nchwc", "+ ORT's layout path", _boosted("kernel_gbm_nchwc"))
_add("kernel_gbm_mlas", "+ the MLAS fit", _boosted("kernel_gbm_mlas"), default=True)
_add(
    "kernel_table_gbm",
    "the block's kernels looked up in the device's measured kernels × boosting",
    lambda t: KernelTableBoost(_table(t)),
    needs_kernels=True,
    default=True,
)
_blend("kernel_table_blend", "kernel_table_gbm", "kernel_gbm_mlas")
_add(
    "kernel_net",
    "the block as the sum of its kernels' learned times",
    lambda t: KernelNet(),
    min_rows=NET_MIN,
    default=True,
    unless="kernel_net_joint",
)
_add(
    "kernel_net_joint",
    "kernel_net, also trained on the device's kernels measured alone",
    lambda t: KernelNet(extra=_table(t).rows),
    needs_kernels=True,
    min_rows=NET_MIN,
    default=True,
)
_blend("kernel_net_blend", "kernel_net", "kernel_gbm_mlas", unless="kernel_net_joint")
_blend("kernel_net_table_blend", "kernel_net_joint", "kernel_table_blend")
