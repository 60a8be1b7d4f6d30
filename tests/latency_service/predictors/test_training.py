"""Regressor training on synthetic latencies of a known law."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from latency_service.predictors import kernel_table
from latency_service.predictors.features import feature_names, feature_vector, layout_vector
from latency_service.predictors.kernel_table import KERNEL_MIN, KernelTable
from latency_service.predictors.layout import mlas_names, mlas_vector, nchwc
from latency_service.predictors.registry import NET_MIN, candidate, list_candidates
from latency_service.predictors.training import MIN_SAMPLES, train
from profiler.decompose import conv_ops
from profiler.features import features, kernels
from profiler.ops import OpSpec
from profiler.sampling import sample_ops


def roofline_law(spec: OpSpec) -> float:
    f = features(spec)
    return 2e-9 * f.flops + 5e-8 * (f.input_bytes + f.output_bytes + f.weight_bytes) + 0.004


def test_a_roofline_law_is_recovered() -> None:
    specs = sample_ops("mbconv", 120, seed=1)
    trained = train("mbconv", specs, [roofline_law(s) for s in specs], models=["all"])
    assert trained.cv["roofline"]["rmspe"] < 0.01  # the linear model is exact here
    # every roofline variant carries the exact law
    assert trained.model in (
        "roofline",
        "roofline_forest",
        "kernel_roofline",
        "kernel_forest",
        "kernel_gbm",
    )
    assert trained.rmspe < 0.01
    fresh = sample_ops("mbconv", 40, seed=99)
    pred = trained.predict(fresh)
    true = np.array([roofline_law(s) for s in fresh])
    assert np.max(np.abs(pred - true) / true) < 0.01


def kernel_law(spec: OpSpec) -> float:
    """A CPU-like law: a depthwise MAC costs 8x a 1x1 MAC, each kernel call 3 µs."""
    cost = {"pw": 1e-9, "conv": 1e-9, "gconv": 2e-9, "dw": 8e-9, "fc": 1e-9}
    return sum(cost[k.kernel] * k.macs + 0.003 for k in kernels(spec)) + 0.002


def test_a_kernel_level_law_needs_the_kernel_roofline() -> None:
    specs = sample_ops("mbconv", 150, seed=3)
    trained = train("mbconv", specs, [kernel_law(s) for s in specs], models=["all"])
    assert trained.cv["kernel_roofline"]["rmspe"] < 0.01
    assert trained.cv["roofline"]["rmspe"] > 0.1  # one FLOPs coefficient cannot fit it
    assert trained.model in ("kernel_roofline", "kernel_forest", "kernel_gbm", "kernel_gbm_layout")


def conv_law(op: OpSpec) -> float:
    """A standalone conv: per-MAC cost by kernel type, dearer on small outputs (edges)
    and few output channels, plus 4 µs a call."""
    [c] = kernels(op)
    per_mac = {"pw": 1e-9, "gconv": 2e-9, "dw": 8e-9, "fc": 1.5e-9}[c.kernel]
    return per_mac * c.macs * (1 + 3 / op.out_shape[2]) * (1 + 8 / c.cout) + 0.004


def test_blocks_are_learned_from_their_kernels_measured_alone() -> None:
    convs = sample_ops("mbconv", 400, seed=2, kernels=True)  # other blocks' kernels
    kernel_ms = np.array([conv_law(c) for c in convs])
    specs = sample_ops("mbconv", 200, seed=3)
    ms = [0.9 * sum(conv_law(c) for c in conv_ops(s)) + 0.003 * (1 + s.num("se")) for s in specs]
    models = ("kernel_forest", "kernel_gbm_mlas", "kernel_table_gbm")
    trained = train("mbconv", specs, ms, models=models, kernels=(convs, kernel_ms))
    assert trained.model == "kernel_table_gbm" and trained.kernels == 400
    others = min(trained.cv[m]["rmspe"] for m in models[:-1])
    assert trained.cv["kernel_table_gbm"]["rmspe"] < 0.8 * others
    assert trained.cv["kernel_table_gbm"]["within_10pct"] >= 0.95
    # without measured kernels, or too few, the candidate is left out
    assert "kernel_table_gbm" not in train("mbconv", specs, ms, models=models).cv
    few = (convs[: KERNEL_MIN - 1], kernel_ms[: KERNEL_MIN - 1])
    assert "kernel_table_gbm" not in train("mbconv", specs, ms, models=models, kernels=few).cv
    with pytest.raises(ValueError, match=r"^models: the kernel-table candidates need at least"):
        train("mbconv", specs, ms, models=("kernel_table_gbm",), kernels=few)
    with pytest.raises(ValueError, match=r"^models: the kernel-table candidates do not apply"):
        train("shuffle", sample_ops("shuffle", 40), [1.0] * 40, models=("kernel_table_gbm",))


def test_kernel_estimates_are_cached_per_block_within_a_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    convs = sample_ops("mbconv", KERNEL_MIN, seed=2, kernels=True)
    table = KernelTable(convs, np.array([conv_law(c) for c in convs]))
    blocks = sample_ops("mbconv", 12, seed=4)
    one_by_one = np.vstack([table.parts([b]) for b in blocks])  # (12, 3)
    monkeypatch.setattr(kernel_table, "CACHE_MAX", 5)
    fresh = KernelTable(convs, np.array([conv_law(c) for c in convs]))
    assert np.array_equal(fresh.parts(blocks + blocks[:3]), np.vstack([one_by_one, one_by_one[:3]]))
    assert np.array_equal(fresh.parts(blocks[::-1]), one_by_one[::-1])
    assert len(fresh._known) <= 12
    no_expand = OpSpec.make("mbconv", (1, 16, 8, 8), cin=16, cout=16, e=1, k=3, s=1)
    assert fresh.parts([no_expand])[0, 0] == 0.0 and fresh.parts([no_expand])[0, 1] > 0


def test_simd_padding_is_learned_with_the_layout_features() -> None:
    """ORT's CPU convs work on channels in blocks of 8/16: 20 channels cost like 32.
    The same data, the same trees: only the layout features tell the blocks apart."""

    def padded_law(spec: OpSpec) -> float:
        mid = spec.shape[1] * spec.num("e")
        return kernel_law(spec) * math.ceil(mid / 16) * 16 / mid

    specs = sample_ops("mbconv", 300, seed=4)
    models = ("kernel_gbm", "kernel_gbm_layout")
    cv = train("mbconv", specs, [padded_law(s) for s in specs], models=models).cv
    assert cv["kernel_gbm_layout"]["rmspe"] < 0.75 * cv["kernel_gbm"]["rmspe"]
    assert cv["kernel_gbm_layout"]["within_5pct"] > cv["kernel_gbm"]["within_5pct"] + 0.1
    spec = OpSpec.make("mbconv", (1, 20, 8, 8), cin=20, cout=40, e=3, k=3, s=1)
    assert layout_vector(spec) == [24 / 20, 32 / 20, 64 / 60, 64 / 60, 40 / 40, 48 / 40, 1.0]


def test_the_layout_path_of_each_kernel_is_learned_with_the_nchwc_features() -> None:
    """A grouped 1x1 whose per-group channels are not whole blocks runs in plain NCHW,
    4x slower per MAC: only the per-kernel layout path tells those blocks apart (the
    channel counts alone are aligned, per group they are not)."""

    def path_law(spec: OpSpec) -> float:
        slow = sum(c.macs for c in kernels(spec) if not nchwc(c, 16))
        return kernel_law(spec) + 4e-9 * slow

    specs = sample_ops("mbconv", 300, seed=4)
    models = ("kernel_gbm_layout", "kernel_gbm_nchwc")
    trained = train("mbconv", specs, [path_law(s) for s in specs], models=models)
    cv = trained.cv
    assert cv["kernel_gbm_nchwc"]["rmspe"] < 0.5 * cv["kernel_gbm_layout"]["rmspe"]
    assert cv["kernel_gbm_nchwc"]["within_5pct"] > cv["kernel_gbm_layout"]["within_5pct"] + 0.1
    assert trained.model == "kernel_gbm_nchwc"


def test_empty_filter_slots_are_learned_with_the_mlas_features() -> None:
    """MLAS's dense NCHWc kernels compute four blocks of 16 output channels at once, so
    a 1x1 conv to 80 channels (5 blocks) costs like 128. Here that is the law: the
    channel counts and their padding to 16 do not show it, the MLAS-fit features do."""

    def slot_law(spec: OpSpec) -> float:
        extra = 0.0
        for c in kernels(spec):
            if c.kernel == "pw" and nchwc(c, 16):
                blocks = math.ceil(c.cout / 16)
                extra += 2e-9 * c.macs * (math.ceil(blocks / 4) * 4 / blocks - 1)
        return kernel_law(spec) + extra

    specs = sample_ops("mbconv", 300, seed=4)
    models = ("kernel_gbm_nchwc", "kernel_gbm_mlas")
    trained = train("mbconv", specs, [slot_law(s) for s in specs], models=models)
    cv = trained.cv
    assert cv["kernel_gbm_mlas"]["rmspe"] < 0.75 * cv["kernel_gbm_nchwc"]["rmspe"]
    assert trained.model == "kernel_gbm_mlas"
    # k=7 over a 14x14 map at stride 2: outputs 2..5 of 7 per side are interior
    spec = OpSpec.make("mbconv", (1, 24, 14, 14), cin=24, cout=40, e=3, k=7, s=2)
    fit = dict(zip(mlas_names(), mlas_vector(spec), strict=True))
    assert math.isclose(fit["dw_interior_share"], (4 / 7) ** 2) and fit["dw_output_side"] == 7
    # 24 -> 72: 5 blocks (3 of 8 slots empty), 72 -> 40: 3 blocks (1 of 4), by MACs
    expand, project = 196 * 24 * 72, 49 * 72 * 40
    empty = (expand * 3 / 8 + project * 1 / 4) / (expand + project)
    assert math.isclose(fit["pw_empty_filter_slots"], empty)
    assert fit["dw_empty_filter_slots"] == 0.0 and fit["gconv_output_side"] == 0.0


def test_trees_learn_a_nonlinear_law_from_features() -> None:
    specs = [s for s in sample_ops("shuffle", 450, seed=2) if s.kind == "shuffle"][:300]
    stride2 = {s.key: 1.2 if s.num("s") == 2 else 1.0 for s in specs}
    law = [0.01 + 1e-7 * features(s).flops ** 0.9 * stride2[s.key] for s in specs]
    trees = tuple(m for m in list_candidates() if candidate(m).min_rows < NET_MIN)  # not nets
    trained = train("shuffle", specs, law, models=trees)
    best = trained.cv[trained.model]
    assert trained.model in (
        "random_forest",
        "hist_gbm",
        "roofline_forest",
        "kernel_forest",
        "kernel_gbm",
        "kernel_gbm_layout",
    )
    assert best["within_10pct"] >= 0.7 and best["rmspe"] < 0.15
    constant = np.full(len(law), float(np.median(law)))  # what knowing nothing gives
    naive = np.mean(np.abs(constant - np.array(law)) / np.array(law) <= 0.10)
    assert best["within_10pct"] >= 5 * naive
    assert len(trained.heldout) == len(specs)  # out-of-fold (measured, predicted) pairs


def test_training_is_deterministic() -> None:
    specs = sample_ops("sep_conv", 60, seed=5)
    ms = [0.002 + 1e-8 * features(s).flops for s in specs]
    a, b = train("sep_conv", specs, ms), train("sep_conv", specs, ms)
    assert a.cv == b.cv
    assert np.array_equal(a.predict(specs), b.predict(specs))


def test_too_few_samples_is_a_clear_error() -> None:
    specs = sample_ops("mbconv", MIN_SAMPLES - 1, seed=0)
    with pytest.raises(ValueError, match=r"^samples: mbconv has 29 measured ops.*jobs sample"):
        train("mbconv", specs, [1.0] * len(specs))


def test_feature_vectors_match_their_names() -> None:
    for kind in ("mbconv", "shuffle", "xception", "sep_conv", "conv"):
        op = next(
            o for o in sample_ops("shuffle" if kind == "xception" else kind, 50) if o.kind == kind
        )
        assert len(feature_vector(op)) == len(feature_names(kind))


@pytest.mark.slow
def test_every_candidate_refits_to_the_bit_in_a_fresh_single_threaded_process() -> None:
    """Predictors are stored as recipes, so every candidate must refit identically,
    whatever the process and its OpenMP thread count (gradient boosting is threaded)."""
    code = """
import json
import numpy as np
from latency_service.predictors.kernel_table import KernelTable
from latency_service.predictors.registry import list_candidates, make
from profiler.features import features
from profiler.sampling import sample_ops
def law(s):
    return 1e-9 * features(s).flops ** 0.95 * (1.3 if s.p.get("se") else 1.0) + 0.01
specs = sample_ops("mbconv", 80, seed=5)
fresh = sample_ops("mbconv", 10, seed=6)
convs = sample_ops("mbconv", 120, seed=7, kernels=True)
table = KernelTable(convs, np.array([law(c) for c in convs]))
y = np.array([law(s) for s in specs])
fits = {m: make(m, table).fit(specs, y).predict(fresh).tolist() for m in list_candidates()}
print(json.dumps(fits))
"""
    runs = []
    for threads in ("1", "2"):
        env = {**os.environ, "OMP_NUM_THREADS": threads}
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
        )
        runs.append(json.loads(out.stdout))
    assert set(runs[0]) == set(list_candidates())
    assert runs[0] == runs[1]
