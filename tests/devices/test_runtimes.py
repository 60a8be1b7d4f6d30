"""Every runtime that can run here, what it reports, and the int8 graph check."""

from __future__ import annotations

import os
from dataclasses import replace

import onnxruntime as ort
import pytest
import torch

from devices.runtimes import create_runtime, list_runtimes
from profiler.errors import RuntimeUnavailable
from profiler.ops import OpSpec
from profiler.timing import Engine, Measurement, TimingConfig

QUICK = TimingConfig(budget_s=0.05, min_sample_s=0.0005, min_samples_per_round=3, warmup_s=0.005)
MBCONV = OpSpec.make("mbconv", (1, 8, 16, 16), cin=8, cout=16, e=3, k=3, s=2)
HAS_CUDA = torch.cuda.is_available()
HAS_ORT_CUDA = "CUDAExecutionProvider" in ort.get_available_providers()


def measure(rt_name: str, op: OpSpec, **kw: object) -> tuple[Measurement, dict[str, object]]:
    with create_runtime(rt_name, **kw) as rt:  # type: ignore[arg-type]
        prepared = rt.prepare(op)
        result = Engine(QUICK).measure([(op.key, prepared.runnable)])[op.key]
        assert isinstance(result, Measurement), result
        return result, {**rt.describe(), "info": prepared.info}


def test_registry() -> None:
    assert list_runtimes() == [
        "ort-cpu",
        "ort-cuda",
        "ort-mobile",
        "ort-mobile-int8",
        "torch-cpu",
        "torch-cuda",
    ]
    with pytest.raises(ValueError, match=r"^runtime: unknown runtime 'tvm'"):
        create_runtime("tvm")


def test_torch_cpu_reports_its_threads() -> None:
    m, desc = measure("torch-cpu", MBCONV, threads=1)
    assert m.stats.median_ms > 0 and m.timer == "host"
    assert desc["threads"] == 1 and desc["device"] == "cpu"
    assert desc["torch"] == torch.__version__


def test_ort_cpu_reads_settings_back_from_the_session() -> None:
    m, desc = measure("ort-cpu", MBCONV, threads=2)
    assert m.stats.median_ms > 0
    assert desc["providers_in_use"] == ["CPUExecutionProvider"]
    assert desc["intra_op_threads"] == 2 and desc["spinning"] is True
    assert desc["execution_mode"] == "sequential"


def test_ort_mobile_is_one_thread_no_spin_one_core_and_restores_affinity() -> None:
    before = os.sched_getaffinity(0)
    with create_runtime("ort-mobile") as rt:
        rt.prepare(MBCONV)
        desc = rt.describe()
        assert len(os.sched_getaffinity(0)) == 1
    assert os.sched_getaffinity(0) == before
    assert desc["intra_op_threads"] == 1 and desc["inter_op_threads"] == 1
    assert desc["spinning"] is False and len(desc["affinity"]) == 1  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^threads: ort-mobile runs one thread"):
        create_runtime("ort-mobile", threads=2)


def test_int8_runtime_really_quantises_convolutions() -> None:
    _, desc = measure("ort-mobile-int8", MBCONV.replace(dtype="int8"))
    info = desc["info"]
    assert info["int8"] is True  # type: ignore[index]
    assert info["int8_kernels"].get("QLinearConv", 0) >= 1  # type: ignore[index]
    assert info["quantize_nodes"] >= 1  # type: ignore[index]
    assert desc["quantization"]["format"] == "QDQ"  # type: ignore[index]


def test_int8_runtime_says_when_nothing_was_quantised() -> None:
    pool = OpSpec.make("pool", (1, 8, 8, 8), "int8", c=8, k=3, s=1, mode="max")
    with create_runtime("ort-mobile-int8") as rt:
        info = rt.prepare(pool).info
        assert info["int8"] is False and info["int8_kernels"] == {}
        assert rt.describe()["quantization"]["ops_left_in_float"] >= 1


def test_precision_must_match_the_op() -> None:
    with create_runtime("ort-cpu") as rt, pytest.raises(ValueError, match=r"^dtype: .* is int8"):
        rt.prepare(MBCONV.replace(dtype="int8"))
    with pytest.raises(ValueError, match=r"^precision: ort-cpu runs float32"):
        create_runtime("ort-cpu", precision="float16")


def test_exports_are_cached() -> None:
    op = OpSpec.make("conv", (1, 4, 8, 8), cin=4, cout=4, k=3, s=1, act="hswish")
    with create_runtime("ort-cpu", threads=1) as rt:
        first, second = rt.prepare(op), rt.prepare(op)
    assert first.export_s > 0 and second.export_s == 0


@pytest.mark.skipif(HAS_CUDA, reason="a GPU is present: the GPU tests below run instead")
def test_torch_cuda_says_clearly_why_it_cannot_run() -> None:
    with pytest.raises(RuntimeUnavailable, match=r"^torch-cuda: no CUDA device is visible"):
        create_runtime("torch-cuda")


@pytest.mark.skipif(HAS_ORT_CUDA, reason="onnxruntime has its CUDA provider here")
def test_ort_cuda_says_clearly_why_it_cannot_run() -> None:
    with pytest.raises(RuntimeUnavailable, match=r"^ort-cuda: .* has no CUDAExecutionProvider"):
        create_runtime("ort-cuda")


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_CUDA, reason="no CUDA device on this machine")
@pytest.mark.parametrize("precision", ["float32", "float16", "bfloat16"])
def test_torch_cuda_times_with_cuda_events(precision: str) -> None:
    m, desc = measure("torch-cuda", MBCONV.replace(dtype=precision), precision=precision)
    assert m.timer == "cuda_events" and m.stats.median_ms > 0
    assert desc["device"] == "cuda" and desc["precision"] == precision
    assert desc["gpu"] == torch.cuda.get_device_name(0)


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_CUDA, reason="no CUDA device on this machine")
def test_torch_cuda_l2_flush_and_whole_networks() -> None:
    """The L2 flush runs before each sample's start event, outside the timed region: a
    block whose weights fit in L2 reads about the same either way. Whole networks take
    the same CUDA-event path."""
    op = OpSpec.make("conv", (1, 256, 14, 14), cin=256, cout=256, k=3, s=1)
    with create_runtime("torch-cuda") as rt:
        warm = Engine(QUICK).measure([(op.key, rt.prepare(op).runnable)])[op.key]
        flushed = Engine(replace(QUICK, l2_flush=True)).measure(
            [(op.key, rt.prepare(op).runnable)]
        )[op.key]
        net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU())
        whole = rt.prepare_network(net, torch.randn(1, 3, 32, 32), "tiny").runnable
        got = Engine(QUICK).measure([("net", whole)])["net"]
    assert isinstance(warm, Measurement) and isinstance(flushed, Measurement)
    assert 0.8 < flushed.stats.median_ms / warm.stats.median_ms < 2.0
    assert isinstance(got, Measurement) and got.timer == "cuda_events"


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_ORT_CUDA, reason="onnxruntime has no CUDA provider here")
def test_ort_cuda_runs_on_the_cuda_provider() -> None:
    m, desc = measure("ort-cuda", MBCONV)
    assert m.stats.median_ms > 0
    assert desc["providers_in_use"] == ["CUDAExecutionProvider"]
