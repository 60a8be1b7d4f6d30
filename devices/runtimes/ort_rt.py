"""ONNX Runtime: `ort-cpu`, `ort-cuda`, and the phone-like `ort-mobile` / `ort-mobile-int8`.

Session settings are read back from the session (not echoed from the request), and the
execution provider a session really chose is checked: ORT silently falls back to the
CPU when a GPU provider fails to load, and a number measured that way is not a GPU
number.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from devices.runtimes._registry import register_runtime
from devices.runtimes.base import Prepared, Runtime
from profiler.errors import RuntimeFailure, RuntimeUnavailable, classify
from profiler.export import (
    Exported,
    default_cache_dir,
    export_module,
    export_onnx,
    fused_int8_kernels,
    network_path,
    quantize_file,
    quantize_int8,
)
from profiler.hoststate import affinity
from profiler.ops import OpSpec

ort.set_default_logger_severity(3)  # no per-session warnings on stderr

_EXEC_MODES = {
    ort.ExecutionMode.ORT_SEQUENTIAL: "sequential",
    ort.ExecutionMode.ORT_PARALLEL: "parallel",
}


class OrtRunnable:
    timer = "host"  # InferenceSession.run returns when the outputs are ready

    def __init__(
        self,
        make_session: Callable[[], ort.InferenceSession],
        x: np.ndarray,
        device: str,
        session: ort.InferenceSession,
    ):
        self.make_session, self.x, self.device = make_session, x, device
        self._bind(session)

    def reload(self) -> None:
        """A new session: fresh buffers and weights somewhere else in memory, so one
        unlucky allocation does not bias every sample of an op."""
        self._bind(self.make_session())

    def _bind(self, session: ort.InferenceSession) -> None:
        self.session = session
        self.binding = self.session.io_binding()
        if self.device == "cuda":  # keep input and output on the GPU: no copies timed
            value = ort.OrtValue.ortvalue_from_numpy(self.x, "cuda", 0)
            self.binding.bind_ortvalue_input("x", value)
            self.binding.bind_output("y", "cuda")
        else:
            self.binding.bind_cpu_input("x", self.x)
            self.binding.bind_output("y")

    def run(self, calls: int) -> None:
        for _ in range(calls):
            self.session.run_with_iobinding(self.binding)

    def sync(self) -> None:
        pass

    def flush_cache(self) -> None:
        pass


class OrtRuntime(Runtime):
    provider = "CPUExecutionProvider"
    spinning = True
    int8 = False

    def __init__(
        self,
        threads: int | None = None,
        precision: str | None = None,
        cache_dir: Path | None = None,
    ):
        super().__init__(threads, precision, cache_dir)
        if self.provider not in ort.get_available_providers():
            raise RuntimeUnavailable(
                f"{self.name}: onnxruntime {ort.__version__} has no {self.provider} "
                f"(available: {', '.join(ort.get_available_providers())}); install the "
                "matching onnxruntime package (e.g. onnxruntime-gpu) or pick another runtime"
            )
        self._used_providers: set[str] = set()
        self._session_facts: dict[str, Any] = {}
        self._int8_kernels: dict[str, int] = {}
        self._float_only_ops = 0

    def session_options(self) -> ort.SessionOptions:
        so = ort.SessionOptions()
        so.intra_op_num_threads = self.threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.log_severity_level = 3
        if not self.spinning:
            so.add_session_config_entry("session.intra_op.allow_spinning", "0")
            so.add_session_config_entry("session.inter_op.allow_spinning", "0")
        return so

    def prepare(self, op: OpSpec) -> Prepared:
        self.check_op(op)
        cache = self.cache_dir or default_cache_dir()
        exported = quantize_int8(op, cache) if self.int8 else export_onnx(op, cache)
        return self._load(exported, op.shape, op.key)

    def prepare_network(self, module: Any, x: Any, ident: str) -> Prepared:
        cache = self.cache_dir or default_cache_dir()
        fp32 = export_module(lambda: (module, x), network_path(ident, cache), ident[:40])
        exported = fp32
        if self.int8:
            exported = quantize_file(
                fp32, network_path(ident, cache, "int8-qdq-s0"), tuple(x.shape), ident[:40]
            )
        return self._load(exported, tuple(x.shape), ident[:40])

    def _load(self, exported: Exported, shape: tuple[int, ...], label: str) -> Prepared:
        """A session on an exported graph, checked to run on the provider asked for."""
        so = self.session_options()
        optimized = exported.path.with_suffix(".opt.onnx")
        if self.int8:  # keep ORT's optimised graph to see which int8 kernels it really runs
            so.optimized_model_filepath = str(optimized)
        try:
            session = ort.InferenceSession(str(exported.path), so, providers=[self.provider])
        except Exception as exc:
            raise classify(exc, label) from exc
        chosen = session.get_providers()
        if not chosen or chosen[0] != self.provider:
            raise RuntimeFailure(
                f"asked for {self.provider} but the session runs on "
                f"{chosen}; the numbers would not be {self.name} numbers",
                label,
            )
        self._used_providers.update(chosen)
        self._session_facts = self._read_back(session)
        info: dict[str, Any] = {"providers": chosen}
        if self.int8:
            info.update(self._int8_info(exported.info, optimized))
        x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
        device = "cuda" if self.provider == "CUDAExecutionProvider" else "cpu"
        path, providers = str(exported.path), [self.provider]

        def make_session() -> ort.InferenceSession:
            return ort.InferenceSession(path, self.session_options(), providers=providers)

        return Prepared(OrtRunnable(make_session, x, device, session), exported.seconds, info)

    def _int8_info(self, qdq: dict[str, Any], optimized: Path) -> dict[str, Any]:
        kernels = fused_int8_kernels(optimized) if optimized.exists() else {}
        optimized.unlink(missing_ok=True)
        for k, n in kernels.items():
            self._int8_kernels[k] = self._int8_kernels.get(k, 0) + n
        quantized = bool(kernels) or bool(qdq.get("int8_ops"))
        self._float_only_ops += not quantized
        return {"int8": quantized, "int8_kernels": kernels, **qdq}

    def _read_back(self, session: ort.InferenceSession) -> dict[str, Any]:
        so = session.get_session_options()
        spin = (
            so.get_session_config_entry("session.intra_op.allow_spinning")
            if not self.spinning
            else "1"
        )
        return {
            "intra_op_threads": so.intra_op_num_threads,
            "inter_op_threads": so.inter_op_num_threads,
            "execution_mode": _EXEC_MODES.get(so.execution_mode, str(so.execution_mode)),
            "graph_optimization": str(so.graph_optimization_level).rsplit(".", 1)[-1],
            "spinning": spin != "0",
        }

    def describe(self) -> dict[str, Any]:
        if not self._used_providers:  # report from a real session, not from the request
            self.prepare(
                OpSpec.make("conv", (1, 8, 8, 8), self._probe_dtype(), cin=8, cout=8, k=3, s=1)
            )
        out = {
            "runtime": self.name,
            "onnxruntime": ort.__version__,
            "providers_in_use": sorted(self._used_providers),
            "precision": self.precision,
            "affinity": affinity(),
            **self._session_facts,
            "timer": "host",
        }
        if self.int8:
            out["quantization"] = {
                "format": "QDQ",
                "weights": "int8 per-channel",
                "activations": "uint8",
                "calibration": "8 seeded randn",
                "int8_kernels_seen": dict(self._int8_kernels),
                "ops_left_in_float": self._float_only_ops,
            }
        return out

    def _probe_dtype(self) -> str:
        return self.precision

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "provider": self.provider, "spinning": self.spinning}


@register_runtime
class OrtCpu(OrtRuntime):
    name = "ort-cpu"
    description = "ONNX Runtime CPU execution provider, N intra-op threads, spinning on"


@register_runtime
class OrtCuda(OrtRuntime):
    name = "ort-cuda"
    provider = "CUDAExecutionProvider"
    description = "ONNX Runtime CUDA execution provider, inputs and outputs bound on the GPU"

    def default_threads(self) -> int:
        return 1


@register_runtime
class OrtMobile(OrtRuntime):
    """A phone big core: one thread, no spinning, sequential, the process on one core."""

    name = "ort-mobile"
    spinning = False
    description = "phone-like: ORT CPU EP, 1 thread, no spinning, pinned to one core, fp32"

    def __init__(
        self,
        threads: int | None = None,
        precision: str | None = None,
        cache_dir: Path | None = None,
        core: int | None = None,
    ):
        if threads not in (None, 1):
            raise ValueError(f"threads: {self.name} runs one thread, got {threads}")
        super().__init__(1, precision, cache_dir)
        allowed = sorted(os.sched_getaffinity(0))
        self.core = allowed[-1] if core is None else core
        if self.core not in allowed:
            raise ValueError(f"core: {self.core} is not one this process may use ({allowed})")

    def default_threads(self) -> int:
        return 1

    def __enter__(self) -> OrtMobile:
        self.pin_to({self.core})
        return self

    def prepare(self, op: OpSpec) -> Prepared:
        if self._saved_affinity is None:
            self.pin_to({self.core})
        return super().prepare(op)

    def prepare_network(self, module: Any, x: Any, ident: str) -> Prepared:
        if self._saved_affinity is None:
            self.pin_to({self.core})
        return super().prepare_network(module, x, ident)

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "pinned_cores": 1}


@register_runtime
class OrtMobileInt8(OrtMobile):
    name = "ort-mobile-int8"
    precisions = ("int8",)
    int8 = True
    description = "ort-mobile with static QDQ int8 (per-channel weights, seeded calibration)"
