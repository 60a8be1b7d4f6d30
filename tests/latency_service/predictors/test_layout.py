"""The NCHWc layout rules against the graphs ONNX Runtime really builds on this CPU."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import onnx
import onnxruntime as ort
import pytest

from latency_service.predictors.layout import (
    nchwc,
    nchwc_vector,
    padded_macs,
    reorder_elements,
    stretches,
)
from profiler.export import export_onnx
from profiler.features import Cost, conv_cost, kernels
from profiler.ops import OpSpec
from profiler.sampling import sample_ops


def _block() -> int | None:
    """MLAS's NCHWc block on this CPU: 16 with AVX-512, 8 with AVX2, none elsewhere."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    return 16 if " avx512f" in flags else 8 if " avx2" in flags else None


def _optimised_nodes(spec: OpSpec, tmp: Path) -> Counter[str]:
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.optimized_model_filepath = str(tmp / "opt.onnx")
    so.intra_op_num_threads = 1
    so.log_severity_level = 3
    ort.InferenceSession(str(export_onnx(spec, tmp).path), so, providers=["CPUExecutionProvider"])
    nodes = onnx.load(str(tmp / "opt.onnx")).graph.node
    return Counter(n.op_type + ("@nchwc" if n.domain.endswith("nchwc") else "") for n in nodes)


def _specs() -> list[OpSpec]:
    # small maps keep the export quick; the rules depend on channels, groups and order
    small = [s for s in sample_ops("mbconv", 400, seed=7) if s.shape[2] <= 16][:40]
    units = [s for s in sample_ops("shuffle", 200, seed=7) if s.shape[2] <= 16][:12]
    return [
        *small,
        *units,
        OpSpec.make("mbconv", (1, 48, 8, 8), cin=48, cout=48, e=6, k=3, s=1, g=2),  # NCHW gconv
        OpSpec.make("mbconv", (1, 64, 8, 8), cin=64, cout=64, e=4, k=5, s=1, g=2, se=1),
        OpSpec.make("mbconv", (1, 40, 8, 8), cin=40, cout=40, e=3, k=3, s=1, se=1, res=1),
        OpSpec.make("shuffle", (1, 64, 8, 8), cin=64, cout=64, k=3, s=1),
        OpSpec.make("shuffle", (1, 48, 8, 8), cin=48, cout=96, k=5, s=2),
        OpSpec.make("sep_conv", (1, 40, 8, 8), c=40, k=3, s=1),
        OpSpec.make("conv", (1, 18, 8, 8), cin=18, cout=32, k=3, s=1),  # cin % 4: NCHW
        OpSpec.make("conv", (1, 12, 8, 8), cin=12, cout=24, k=3, s=1),  # cin < 16: NCHWc
        OpSpec.make("conv", (1, 20, 8, 8), cin=20, cout=20, k=3, s=1, g=20),
        OpSpec.make("conv", (1, 18, 8, 8), cin=18, cout=18, k=3, s=1, g=18),
    ]


@pytest.mark.skipif(_block() != 16, reason="the rules are checked on an AVX-512 CPU")
def test_the_layout_rules_match_the_graphs_onnx_runtime_builds(tmp_path: Path) -> None:
    for spec in _specs():
        costs = kernels(spec)
        nodes = _optimised_nodes(spec, tmp_path)
        fast = sum(nchwc(c, 16) for c in costs)
        assert nodes["Conv@nchwc"] == fast, spec.key
        assert nodes["FusedConv"] + nodes["Conv"] == len(costs) - fast, spec.key
        assert nodes["ReorderOutput@nchwc"] == len(stretches(costs, 16)), spec.key


def test_padding_counts_whole_blocks_of_channels() -> None:
    pw = conv_cost(1, 20, 24, 1, 49)  # 20 -> 32 in, 24 -> 32 out
    assert padded_macs(pw, 16) == pytest.approx(pw.macs * (32 / 24) * (32 / 20))
    assert padded_macs(pw, 8) == pytest.approx(pw.macs * (24 / 24) * (24 / 20))
    small = conv_cost(1, 12, 24, 3, 49)  # cin below the block is read as it is
    assert padded_macs(small, 16) == pytest.approx(small.macs * 32 / 24)
    dw = conv_cost(1, 40, 40, 3, 49, 40)
    assert padded_macs(dw, 16) == pytest.approx(dw.macs * 48 / 40)
    odd = conv_cost(1, 18, 18, 3, 49, 18)  # NCHW: no padding
    assert not nchwc(odd, 16) and padded_macs(odd, 16) == odd.macs


def test_nchw_only_ops_end_a_stretch_and_reorders_count_its_ends() -> None:
    a, b = conv_cost(1, 32, 64, 1, 100), conv_cost(1, 64, 64, 3, 25, 64, hw_in=100)
    c = conv_cost(1, 64, 32, 1, 25)
    assert stretches([a, b, c], 16) == [(0, 2)]
    assert reorder_elements([a, b, c], 16) == a.inp + c.out
    cut = [a, b._replace(after_nchw=True), c]
    assert stretches(cut, 16) == [(0, 0), (1, 2)]
    assert reorder_elements(cut, 16) == a.inp + a.out + b.inp + c.out
    grouped = Cost(100, 10, "gconv", 50, cin=48, cout=48, g=2, inp=50)  # 24 per group
    assert stretches([a, grouped, c], 16) == [(0, 0), (2, 2)]


def test_the_vector_says_how_much_work_leaves_nchwc() -> None:
    aligned = OpSpec.make("mbconv", (1, 64, 8, 8), cin=64, cout=64, e=4, k=3, s=1, g=2)
    unaligned = OpSpec.make("mbconv", (1, 48, 8, 8), cin=48, cout=48, e=4, k=3, s=1, g=2)
    assert nchwc_vector(aligned)[0] == 0.0  # every MAC in NCHWc at block 16
    assert 0.5 < nchwc_vector(unaligned)[0] < 1.0  # both grouped 1x1s in NCHW, dw not
