"""The reference panel: valid blocks in every precision, strict checks of a reading's
keys, and the drift factor's arithmetic."""

from __future__ import annotations

import math

import pytest

from profiler.ops import DTYPES
from profiler.reference import PANEL, baseline, check, drift, factor, panel_ops


def test_the_panel_is_three_valid_blocks_in_every_precision() -> None:
    for dtype in DTYPES:
        ops = panel_ops(dtype)
        assert len({op.key for op in ops}) == 3 and {op.dtype for op in ops} == {dtype}
        assert check(PANEL, [op.key for op in ops]) == dtype


def test_check_refuses_other_panels_and_other_blocks() -> None:
    keys = [op.key for op in panel_ops()]
    with pytest.raises(ValueError, match="unknown reference panel 'v0'"):
        check("v0", keys)
    with pytest.raises(ValueError, match="not the blocks"):
        check(PANEL, keys[:2])
    mixed = [*keys[:2], panel_ops("int8")[2].key]  # one block in another precision
    with pytest.raises(ValueError, match="in one precision"):
        check(PANEL, mixed)


def test_the_factor_is_the_geometric_mean_of_the_ratios() -> None:
    base = {"a": 1.0, "b": 4.0}
    assert math.isclose(factor({"a": 1.1, "b": 4.4}, base), 1.1)
    assert math.isclose(factor({"a": 2.0, "b": 2.0}, base), 1.0)  # x2 and x0.5 cancel
    assert factor({"c": 3.0}, base) == 1.0  # nothing to compare: no correction
    assert baseline([{"a": 1.0}, {"a": 3.0}, {"a": 2.0, "b": 5.0}]) == {"a": 2.0, "b": 5.0}


def test_drift_is_flagged_symmetrically_beyond_the_tolerance() -> None:
    base = {"a": 1.0}
    assert not drift({"a": 1.04}, base, 0.05).flagged
    assert drift({"a": 1.06}, base, 0.05).flagged
    assert not drift({"a": 1 / 1.04}, base, 0.05).flagged
    assert drift({"a": 1 / 1.06}, base, 0.05).flagged  # faster counts as much as slower
