"""Network calibration: leave-one-out picks the form that fits, and clients can invert
it exactly (a target end to end -> the table latency a searcher should aim at)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from latency_service.calibration_formula import estimate, table_for
from latency_service.predictors.calibration import assess, fit

RNG = np.random.default_rng(0)
SUMS = list(RNG.uniform(0.15, 0.6, 30))
OPS = [int(v) for v in RNG.integers(18, 30, 30)]


def test_an_affine_overhead_is_fitted_linearly_and_exactly() -> None:
    measured = [1.05 * s + 0.004 * o + 0.01 for s, o in zip(SUMS, OPS, strict=True)]
    cal = fit(SUMS, OPS, measured)
    assert cal.form == "linear" and cal.rmspe < 1e-9 and cal.within_5pct == 1.0
    assert math.isclose(cal.apply(0.3, 20), 1.05 * 0.3 + 0.004 * 20 + 0.01)


def test_a_bend_is_fitted_by_the_power_form() -> None:
    """Small networks cost less than their table sum, large ones more (as measured on
    ort-cpu): a line cannot follow it, the power form can."""
    noise = RNG.normal(0, 0.01, 30)
    measured = [
        1.6 * s**1.4 * math.exp(e) for s, e in zip(SUMS, noise, strict=True)
    ]  # the law in log space, with 1% noise
    cal = fit(SUMS, OPS, measured)
    assert cal.form == "power" and cal.within_10pct == 1.0
    assert math.isclose(cal.coef[0], 1.4, abs_tol=0.05)
    sums, ops = np.asarray(SUMS), np.asarray(OPS)
    x = np.column_stack([sums, ops])
    line = np.linalg.lstsq(np.column_stack([x, np.ones(30)]), measured, rcond=None)[0]
    line_err = np.abs(np.column_stack([x, np.ones(30)]) @ line / measured - 1)
    # its leave-one-out error beats even a line fitted to every point
    assert cal.rmspe < float(np.sqrt(np.mean(line_err**2)))


@pytest.mark.parametrize("form", ["linear", "power"])
def test_table_for_inverts_the_estimate(form: str) -> None:
    coef, intercept = (1.3, 0.2), (-0.4 if form == "power" else 0.01)
    for table_ms in (0.1, 0.5, 2.0):
        target = estimate(form, coef, intercept, table_ms, 22)
        assert math.isclose(table_for(form, coef, intercept, target, 22), table_ms)


def test_too_few_networks_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="needs at least 5"):
        fit(SUMS[:4], OPS[:4], SUMS[:4])


def test_assess_calibrates_each_scope_on_its_own_rows() -> None:
    """Two resolutions whose networks relate to their sums differently: one calibration
    over both misses, one per scope (as estimates are fitted) does not."""
    small = [1.3 * s + 0.01 for s in SUMS]  # the overhead of a 32x32 network
    large = [0.8 * s + 0.2 for s in SUMS]  # fusion wins at 64x64
    rows = [
        {"measured_ms": m, "table_sum_ms": s, "ops": o, "scope": scope}
        for scope, ms in (("fbnet@32", small), ("fbnet@64", large))
        for m, s, o in zip(ms, SUMS, OPS, strict=True)
    ]
    out = assess([dict(r) for r in rows])
    assert out["calibrated"]["within_5pct"] == 1.0 and out["calibrated"]["max_abs_error"] < 1e-6
    pooled = assess([{k: v for k, v in r.items() if k != "scope"} for r in rows])
    assert pooled["calibrated"]["within_10pct"] < 0.8
