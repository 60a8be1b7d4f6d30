"""repair(): within tolerance, fewest changed layers (against brute force on a tiny space),
then the most probable; the le constraint; infeasible targets; speed on a real space."""

from __future__ import annotations

import itertools
import math
import time

import numpy as np
import pytest
import torch

from profiler.ops import OpSpec
from searchers.core.repair import BUCKETS_PER_LAYER, repair
from searchers.latency import LatencyTable
from searchers.spaces import Layer, SearchSpace, create_space
from searchers.spaces._chain import ChainSpace
from searchers.spaces.base import Choice

N_LAYERS = 6


class _Tiny(ChainSpace):
    """6 layers x 4 candidates, the last one illegal on odd layers: 4^3 * 3^3 = 1728 archs.
    Not registered: it exists only for brute force."""

    name = "tiny-test"
    candidates = ("k3", "k5", "k7", "skip")
    default_resolution = 8

    def _plan(self) -> tuple[list[OpSpec], list[Layer]]:
        fixed = [OpSpec.make("conv", (1, 3, 8, 8), cin=3, cout=8, k=3, s=1, g=1)]
        layers = []
        for row in range(N_LAYERS):
            shape = (1, 8, 8 + row, 8 + row)  # every cell its own op key
            ops: list[OpSpec | None] = [
                OpSpec.make("mbconv", shape, cin=8, cout=8, e=3, g=1, k=k, s=1, se=0)
                for k in (3, 5, 7)
            ]
            ops.append(OpSpec.make("skip", shape, cin=8, cout=8, s=1) if row % 2 == 0 else None)
            choices = tuple(Choice(n, op) for n, op in zip(self.candidates, ops, strict=True))
            layers.append(Layer(f"layer{row}", choices))
        return fixed, layers


def _random_table(seed: int) -> LatencyTable:
    space = _Tiny()
    rng = np.random.default_rng(seed)
    ops = space.fixed_ops() + space.distinct_ops()
    return LatencyTable.from_cells(
        space, {op.key: (float(rng.uniform(1, 10)), "measured") for op in ops}
    )


def _logp(table: LatencyTable, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(table.table.shape, generator=gen, dtype=torch.float64)
    return torch.log_softmax(logits.masked_fill(~table.mask, -math.inf), dim=1)


def _all_archs(table: LatencyTable) -> tuple[np.ndarray, np.ndarray]:
    """Every architecture (rows of indices) and its exact latency."""
    legal = [np.flatnonzero(row) for row in table.mask.numpy()]
    archs = np.array(list(itertools.product(*legal)))
    lat = table.fixed_ms + table.table.numpy()[np.arange(N_LAYERS), archs].sum(axis=1)
    return archs, lat


def _brute(
    archs: np.ndarray, lat: np.ndarray, score: np.ndarray, start: list[int], lo: float, hi: float
) -> tuple[int, float]:
    """(fewest changes, best log-probability with that many) over archs in [lo, hi]."""
    inside = (lat >= lo) & (lat <= hi)
    if not inside.any():
        return N_LAYERS + 1, -math.inf
    changes = (archs != np.array(start)).sum(axis=1)
    k = int(changes[inside].min())
    return k, float(score[inside & (changes == k)].max())


@pytest.mark.parametrize("constraint", ["eq", "le"])
def test_fewest_changes_then_most_probable_against_brute_force(constraint: str) -> None:
    exact_hits = cases = 0
    for seed in range(12):
        table = _random_table(seed)
        logp = _logp(table, seed)
        archs, lat = _all_archs(table)
        score = logp.numpy()[np.arange(N_LAYERS), archs].sum(axis=1)
        start = [int(i) for i in archs[seed * 97 % len(archs)]]
        for target in np.quantile(lat, [0.05, 0.3, 0.5, 0.8, 0.97]):
            tol = 0.03
            lo, hi = (target * (1 - tol), target * (1 + tol)) if constraint == "eq" else (0, target)
            # the DP is exact on a window shrunk by twice its rounding margin
            margin = (N_LAYERS + 1) * tol * target / (BUCKETS_PER_LAYER * N_LAYERS)
            inner_lo = lo + margin if constraint == "eq" else lo
            k_full, _ = _brute(archs, lat, score, start, lo, hi)
            k_inner, best_inner = _brute(archs, lat, score, start, inner_lo, hi - margin)
            if k_full > N_LAYERS:
                continue
            got = repair(table, logp, start, float(target), tol, constraint)  # type: ignore[arg-type]
            got_lat = table.exact(got)
            assert lo <= got_lat <= hi
            k = sum(a != b for a, b in zip(got, start, strict=True))
            got_score = float(logp.numpy()[np.arange(N_LAYERS), got].sum())
            assert k_full <= k <= k_inner
            if k == k_inner:
                assert got_score >= best_inner - 1e-9
            if k == k_full:
                _, best_full = _brute(archs, lat, score, start, lo, hi)
                assert got_score <= best_full + 1e-9
            cases += 1
            exact_hits += k == k_full
    assert cases >= 40
    assert exact_hits >= 0.9 * cases  # the shrunk window rarely costs an extra change


def test_start_within_tolerance_is_returned_unchanged() -> None:
    table = _random_table(1)
    start = [1, 2, 0, 1, 3, 0]
    logp = torch.zeros(table.table.shape, dtype=torch.float64)
    logp[:, 0] = 10.0  # repair would prefer k3 everywhere if it had to change anything
    got = repair(table, logp, start, table.exact(start) * 1.02)
    assert got == start
    assert repair(table, logp, start, table.exact(start), constraint="le") == start


def test_le_constraint_goes_below_the_target() -> None:
    table = _random_table(2)
    lo, hi = table.bounds()
    archs, lat = _all_archs(table)
    start = [int(i) for i in archs[int(np.argmax(lat))]]  # the slowest architecture
    target = lo + 0.2 * (hi - lo)
    got = repair(table, _logp(table, 2), start, target, constraint="le")
    assert table.exact(got) <= target < table.exact(start)
    assert got != start


def test_infeasible_targets_say_the_achievable_range() -> None:
    table = _random_table(3)
    lo, hi = table.bounds()
    logp, start = _logp(table, 3), [0] * N_LAYERS
    for target, constraint in ((lo * 0.5, "eq"), (hi * 2, "eq"), (lo * 0.9, "le")):
        with pytest.raises(ValueError, match=r"achievable range is .* change --target-ms") as err:
            repair(table, logp, start, target, constraint=constraint)  # type: ignore[arg-type]
        assert f"{lo:.4g}..{hi:.4g} ms" in str(err.value)


def test_bad_inputs_are_value_errors() -> None:
    table = _random_table(4)
    logp = _logp(table, 4)
    start = [0] * N_LAYERS
    with pytest.raises(ValueError, match="logp: expected shape"):
        repair(table, logp[:-1], start, 30.0)
    with pytest.raises(ValueError, match="tolerance"):
        repair(table, logp, start, 30.0, tolerance=0.0)
    with pytest.raises(ValueError, match="constraint"):
        repair(table, logp, start, 30.0, constraint="ge")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'skip' is illegal"):
        repair(table, logp, [3] * N_LAYERS, 30.0)
    holes = LatencyTable.from_cells(table.space, {})
    with pytest.raises(ValueError, match=r"call table.check\(\) first"):
        repair(holes, logp, start, 30.0)


def _fbnet_table() -> LatencyTable:
    space: SearchSpace = create_space("fbnet", resolution=32, width=0.5)
    rng = np.random.default_rng(0)
    ops = space.fixed_ops() + space.distinct_ops()
    return LatencyTable.from_cells(
        space, {op.key: (float(rng.uniform(0.05, 1)), "measured") for op in ops}
    )


def test_real_space_is_fast_legal_and_agrees_with_numpy_logp() -> None:
    table = _fbnet_table()
    lo, hi = table.bounds()
    logp = _logp(table, 5)
    logp_np = logp.numpy().copy()
    logp_np[~table.mask.numpy()] = 50.0  # tempting, but illegal cells are never chosen
    start = table.index(table.space.random_arch(5))
    for target in (lo * 1.1, (lo + hi) / 2, hi * 0.95):
        began = time.perf_counter()
        got = repair(table, logp_np, start, target)
        assert time.perf_counter() - began < 1.0
        assert abs(table.exact(got) - target) <= 0.03 * target
        assert all(table.mask[row, i] for row, i in enumerate(got))
        assert repair(table, logp, start, target) == got


def test_rounding_never_accepts_an_architecture_outside_the_tolerance() -> None:
    """Every k5 cell rounds down by 0.49 buckets, so the all-k5 architecture sits inside the
    window in buckets but 2.44 buckets above it in ms: the margin must make repair refuse it."""
    table = _random_table(6)
    target, tol = 100.0, 0.03
    b = tol * target / (BUCKETS_PER_LAYER * N_LAYERS)
    n = math.ceil(7 / b)  # one k5 costs more than the whole window (6 ms)
    hi_s = N_LAYERS * n * b + 0.5 * b  # the top of the window, above layer minima
    table.table[:] = 1000.0
    table.table[:, 0], table.table[:, 1] = 1.0, 1.0 + (n + 0.49) * b
    table.table[~table.mask] = 0.0
    table.fixed_ms = target * (1 + tol) - N_LAYERS - hi_s
    start = [0] * N_LAYERS
    all_k5 = [1] * N_LAYERS
    assert table.exact(all_k5) > target * (1 + tol)  # truly out
    with pytest.raises(ValueError, match="no architecture found"):
        repair(table, _logp(table, 6), start, target, tol)
    assert repair(table, _logp(table, 6), start, table.exact(all_k5), tol) == all_k5
