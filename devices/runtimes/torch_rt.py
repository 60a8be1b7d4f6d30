"""PyTorch eager runtimes: `torch-cpu` and `torch-cuda` (fp32 / fp16 / bf16)."""

from __future__ import annotations

import copy
import platform
from pathlib import Path
from typing import Any

import torch

from devices.runtimes._registry import register_runtime
from devices.runtimes.base import Prepared, Runtime
from profiler.blocks import build_module, example_input
from profiler.errors import RuntimeUnavailable, classify
from profiler.hoststate import affinity
from profiler.ops import OpSpec

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
L2_FLUSH_BYTES = 256 << 20  # larger than any GPU's L2 (Triton's do_bench uses the same)


class TorchRunnable:
    def __init__(self, module: torch.nn.Module, x: torch.Tensor, flush: torch.Tensor | None):
        self.module, self.x, self._flush = module, x, flush
        self.timer = "cuda_events" if x.is_cuda else "host"

    def run(self, calls: int) -> None:
        with torch.inference_mode():
            for _ in range(calls):
                self.module(self.x)

    def sync(self) -> None:
        if self.x.is_cuda:
            torch.cuda.synchronize()

    def flush_cache(self) -> None:
        if self._flush is not None:
            self._flush.zero_()

    def reload(self) -> None:
        """Fresh copies of the weights and the input, at new addresses."""
        self.module = copy.deepcopy(self.module)
        self.x = self.x.clone()


@register_runtime
class TorchCpu(Runtime):
    name = "torch-cpu"
    precisions = ("float32", "bfloat16")
    description = "PyTorch eager on the CPU, inference mode, explicit thread count"

    def prepare(self, op: OpSpec) -> Prepared:
        self.check_op(op)
        torch.set_num_threads(self.threads)
        try:
            module = build_module(op).to(_DTYPES[op.dtype])
            return Prepared(TorchRunnable(module, example_input(op), None))
        except Exception as exc:
            raise classify(exc, op.key) from exc

    def prepare_network(self, module: Any, x: Any, ident: str) -> Prepared:
        torch.set_num_threads(self.threads)
        dtype = _DTYPES[self.precision]
        return Prepared(TorchRunnable(module.eval().to(dtype), x.to(dtype), None))

    def describe(self) -> dict[str, Any]:
        return {
            "runtime": self.name,
            "torch": torch.__version__,
            "device": "cpu",
            "cpu": platform.processor() or platform.machine(),
            "threads": torch.get_num_threads(),
            "interop_threads": torch.get_num_interop_threads(),
            "precision": self.precision,
            "mkldnn": torch.backends.mkldnn.is_available(),
            "affinity": affinity(),
            "timer": "host",
        }


@register_runtime
class TorchCuda(Runtime):
    name = "torch-cuda"
    precisions = ("float32", "float16", "bfloat16")
    description = "PyTorch eager on a CUDA GPU, CUDA-event timing, cuDNN autotuning on"

    def __init__(
        self,
        threads: int | None = None,
        precision: str | None = None,
        cache_dir: Path | None = None,
        device_index: int = 0,
    ):
        super().__init__(threads, precision, cache_dir)
        if not torch.cuda.is_available():
            raise RuntimeUnavailable(
                f"{self.name}: no CUDA device is visible (this torch {torch.__version__} "
                f"was built with CUDA {torch.version.cuda}); run on a GPU machine with a "
                "CUDA build of torch, or use torch-cpu"
            )
        self.device = torch.device("cuda", device_index)
        self._flush: torch.Tensor | None = None

    def prepare(self, op: OpSpec) -> Prepared:
        self.check_op(op)
        torch.backends.cudnn.benchmark = True  # pick the fastest kernels, as deployments do
        if self._flush is None:
            self._flush = torch.empty(L2_FLUSH_BYTES, dtype=torch.uint8, device=self.device)
        try:
            dtype = _DTYPES[op.dtype]
            module = build_module(op).to(self.device, dtype)
            x = example_input(op).to(self.device, dtype)
            return Prepared(TorchRunnable(module, x, self._flush))
        except Exception as exc:
            raise classify(exc, op.key) from exc

    def prepare_network(self, module: Any, x: Any, ident: str) -> Prepared:
        torch.backends.cudnn.benchmark = True
        if self._flush is None:
            self._flush = torch.empty(L2_FLUSH_BYTES, dtype=torch.uint8, device=self.device)
        dtype = _DTYPES[self.precision]
        net = module.eval().to(self.device, dtype)
        return Prepared(TorchRunnable(net, x.to(self.device, dtype), self._flush))

    def describe(self) -> dict[str, Any]:
        props = torch.cuda.get_device_properties(self.device)
        return {
            "runtime": self.name,
            "torch": torch.__version__,
            "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version(),
            "device": "cuda",
            "gpu": props.name,
            "capability": f"{props.major}.{props.minor}",
            "precision": self.precision,
            "cudnn_benchmark": True,
            "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
            "tf32_cudnn": torch.backends.cudnn.allow_tf32,
            "timer": "cuda_events",
        }

    def settings(self) -> dict[str, Any]:
        return {
            "runtime": self.name,
            "precision": self.precision,
            "gpu": torch.cuda.get_device_name(self.device),
        }
