"""Latency losses as defined in the papers, and the hard-target controller: damped,
bounded, aimed at the window's middle for le."""

from __future__ import annotations

import math

import pytest
import torch

from searchers.core.losses import HardTarget, SoftLatency


def test_soft_forms_match_their_definitions() -> None:
    ce, lat = torch.tensor(1.7), torch.tensor(2.5)  # ms
    fb = SoftLatency("fbnet")
    assert float(fb(ce, lat)) == pytest.approx(1.7 * 0.2 * math.log(2500.0) ** 0.6)
    mul = SoftLatency("mul#log", target_ms=2.0, alpha=1.0, beta=0.6)
    assert float(mul(ce, lat)) == pytest.approx(1.7 * (math.log(2500) / math.log(2000)) ** 0.6)
    add = SoftLatency("add#linear", target_ms=2.0, lam=0.1)
    assert float(add(ce, lat)) == pytest.approx(1.7 + 0.1 * 0.25)
    single = SoftLatency("singlepath", lam=0.3)  # Single-Path NAS: CE + λ·log E[LAT]
    assert float(single(ce, lat)) == pytest.approx(1.7 + 0.3 * math.log(2500.0))
    assert single.weight() == 0.3


def test_log_forms_stay_increasing_under_one_millisecond() -> None:
    ce = torch.tensor(1.0)
    mul = SoftLatency("mul#log", target_ms=0.5)
    assert float(mul(ce, torch.tensor(0.4))) < float(mul(ce, torch.tensor(0.6)))
    fb = SoftLatency("fbnet")
    assert float(fb(ce, torch.tensor(0.4))) < float(fb(ce, torch.tensor(0.6)))


def test_the_hard_loss_is_lambda_plus_a_quadratic_around_the_setpoint() -> None:
    h = HardTarget(10.0, "eq", tolerance=0.05, rho=2.0, lam=0.5)
    ce = torch.tensor(1.0)
    assert float(h(ce, torch.tensor(10.0))) == pytest.approx(1.0)  # at the setpoint
    u = (11.0 - 10.0) / (10.0 * 0.05)  # 2 half-bands over
    assert float(h(ce, torch.tensor(11.0))) == pytest.approx(1.0 + 0.5 * u + u * u)
    le = HardTarget(10.0, "le", tolerance=0.04)
    assert le.setpoint == pytest.approx(9.8)  # the middle of [9.6, 10]
    assert float(le(ce, torch.tensor(9.0))) == pytest.approx(1.0)  # under: no penalty


def test_the_dual_step_is_damped_and_bounded() -> None:
    h = HardTarget(10.0, "eq", tolerance=0.05, step=0.5, lam_max=1.0)
    h.update(10.5)  # 1 half-band over
    assert h.lam == pytest.approx(0.5)
    h.update(20.0)  # far over: clipped to 3 half-bands, and λ to its bound
    assert h.lam == pytest.approx(1.0)
    for _ in range(10):
        h.update(5.0)
    assert h.lam == pytest.approx(-1.0)  # eq may push up, within the bound
    le = HardTarget(10.0, "le", step=0.5)
    le.update(8.0)
    assert le.lam == 0.0  # under the budget costs nothing
    assert le.satisfied(9.9) and not le.satisfied(10.1)
    assert h.satisfied(10.49) and not h.satisfied(10.51)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"target_ms": 0.0},
        {"target_ms": float("nan")},
        {"target_ms": 1.0, "tolerance": 0.0},
        {"target_ms": 1.0, "lam_max": 0.0},
        {"target_ms": 1.0, "temperature": 0.0},
    ],
)
def test_bad_targets_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        HardTarget(**kwargs)  # type: ignore[arg-type]


def test_soft_forms_need_a_reference_except_fbnet() -> None:
    with pytest.raises(ValueError, match="--target-ms"):
        SoftLatency("mul#log")
    SoftLatency("singlepath")  # λ·log E[LAT] needs none either
    with pytest.raises(ValueError, match="loss"):
        SoftLatency("l2")
