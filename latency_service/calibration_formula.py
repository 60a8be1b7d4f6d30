"""The closed form of a device's calibration (fitted in `predictors/calibration.py`):
from a table sum to a whole-network estimate, and back from a target to the table sum
that meets it. Plain math, beside the schemas that carry the coefficients, so clients
(a searcher aiming at a measured target, the demo) use it without scikit-learn.

    linear: measured_ms ≈ a · table_sum_ms + b · ops + c
    power:  measured_ms ≈ e^c · table_sum_ms^a · ops^b
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def estimate(
    form: str, coef: Sequence[float], intercept: float, table_sum_ms: float, ops: int
) -> float:
    """The calibrated end-to-end estimate (what `Calibration.apply` and clients use)."""
    if form == "power":
        log_ms = coef[0] * math.log(max(table_sum_ms, 1e-9)) + coef[1] * math.log(max(ops, 1))
        return math.exp(log_ms + intercept)
    return max(1e-6, coef[0] * table_sum_ms + coef[1] * ops + intercept)


def table_for(
    form: str, coef: Sequence[float], intercept: float, target_ms: float, ops: int
) -> float:
    """The table sum whose calibrated estimate is `target_ms` for a network of `ops` ops
    (both forms are monotone in the sum while coef[0] > 0)."""
    if form == "power":
        rest = math.log(target_ms) - coef[1] * math.log(max(ops, 1)) - intercept
        return math.exp(rest / coef[0])
    return (target_ms - coef[1] * ops - intercept) / coef[0]
