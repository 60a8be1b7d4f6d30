"""ONNX export of blocks, cached on disk by op key, and static QDQ int8 quantisation.

Exports are slow next to the measurements they feed (a cold cache's share of a profile:
docs/BENCHMARKS.md, "Profiler repeatability and efficiency"), so each is made once per
(op key, torch version, opset) and kept.
Files are written to a temporary name and renamed, so a crash never leaves a torn file.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from profiler.errors import ExportError
from profiler.ops import OpSpec

OPSET = 17
QUANTIZED_OPS = {
    "QLinearConv",
    "QLinearMatMul",
    "ConvInteger",
    "MatMulInteger",
    "QLinearAdd",
    "QLinearMul",
    "QLinearGlobalAveragePool",
    "QLinearAveragePool",
    "QLinearConcat",
    "QLinearSigmoid",
    "QLinearLeakyRelu",
}


def default_cache_dir() -> Path:
    root = os.environ.get("HWLAT_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "hwlat"
    )
    return Path(root) / "onnx"


@dataclass
class Exported:
    path: Path
    seconds: float  # time spent exporting now (0.0 when it came from the cache)
    cached: bool
    info: dict[str, Any] = field(default_factory=dict)


def _cache_path(spec: OpSpec, cache_dir: Path, variant: str) -> Path:
    import torch

    ident = f"{spec.key}|torch={torch.__version__}|opset={OPSET}|{variant}"
    digest = hashlib.sha256(ident.encode()).hexdigest()[:24]
    return cache_dir / f"{spec.kind}-{digest}-{variant}.onnx"


def _atomic_target(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def export_onnx(spec: OpSpec, cache_dir: Path | None = None) -> Exported:
    """The block as a float32 ONNX file (int8 specs export float32, then quantise)."""
    from profiler.blocks import build_module, example_input

    if spec.dtype not in ("float32", "int8"):
        raise ExportError(
            f"ONNX export makes float32 graphs; {spec.dtype} is not supported "
            "by the ONNX runtimes here (use a torch runtime)",
            spec.key,
        )
    path = _cache_path(spec, cache_dir or default_cache_dir(), "fp32")
    return export_module(
        lambda: (build_module(spec), example_input(spec.replace(dtype="float32"))), path, spec.key
    )


def network_path(ident: str, cache_dir: Path | None, variant: str = "fp32") -> Path:
    """Cache path of a whole network's export, named by a digest of its architecture."""
    import torch

    digest = hashlib.sha256(f"{ident}|torch={torch.__version__}|opset={OPSET}".encode())
    return (cache_dir or default_cache_dir()) / f"net-{digest.hexdigest()[:24]}-{variant}.onnx"


def export_module(
    make: Callable[[], tuple[Any, Any]], path: Path, label: str | None = None
) -> Exported:
    """Export `make()`'s (module, example input) to `path` unless it is cached there."""
    import torch

    if path.exists():
        return Exported(path, 0.0, True)
    t0 = time.perf_counter()
    tmp = _atomic_target(path)
    try:
        module, x = make()
        with warnings.catch_warnings(), torch.inference_mode():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
            torch.onnx.export(
                module,
                (x,),
                str(tmp),
                input_names=["x"],
                output_names=["y"],
                opset_version=OPSET,
                do_constant_folding=True,
                dynamo=False,
            )
        os.replace(tmp, path)
    except Exception as exc:
        raise ExportError(f"ONNX export failed: {type(exc).__name__}: {exc}", label) from exc
    finally:
        tmp.unlink(missing_ok=True)
    return Exported(path, time.perf_counter() - t0, False)


class _RandomCalibration:
    """Seeded random inputs for static calibration (no data set is ever downloaded)."""

    def __init__(self, shape: tuple[int, ...], samples: int, seed: int):
        rng = np.random.default_rng(seed)
        self._batches: Iterator[dict[str, np.ndarray]] = iter(
            [{"x": rng.standard_normal(shape).astype(np.float32)} for _ in range(samples)]
        )

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)


def quantize_int8(
    spec: OpSpec, cache_dir: Path | None = None, samples: int = 8, seed: int = 0
) -> Exported:
    """Static QDQ int8 (per-channel weights, uint8 activations) of the block's ONNX graph."""
    cache_dir = cache_dir or default_cache_dir()
    fp32 = export_onnx(spec, cache_dir)
    path = _cache_path(spec, cache_dir, f"int8-qdq-s{seed}")
    return quantize_file(fp32, path, spec.shape, spec.key, samples, seed)


def quantize_file(
    fp32: Exported,
    path: Path,
    shape: tuple[int, ...],
    label: str | None,
    samples: int = 8,
    seed: int = 0,
) -> Exported:
    """QDQ-quantise an exported float32 graph into `path` (cached)."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    if path.exists():
        return Exported(path, 0.0, True, inspect_quantized(path))
    t0 = time.perf_counter()
    tmp = _atomic_target(path)
    try:
        logging.disable(logging.WARNING)  # the quantiser's advice to pre-process, per call
        quantize_static(
            str(fp32.path),
            str(tmp),
            _RandomCalibration(shape, samples, seed),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        )
        os.replace(tmp, path)
    except Exception as exc:
        raise ExportError(f"int8 quantisation failed: {type(exc).__name__}: {exc}", label) from exc
    finally:
        logging.disable(logging.NOTSET)
        tmp.unlink(missing_ok=True)
    return Exported(path, fp32.seconds + time.perf_counter() - t0, False, inspect_quantized(path))


def inspect_quantized(path: Path) -> dict[str, Any]:
    """How much of a QDQ graph is really quantised: Q/DQ pairs and which float ops they wrap."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    ops = Counter(node.op_type for node in model.graph.node)
    dq_fed: Counter[str] = Counter()
    producers = {out: node.op_type for node in model.graph.node for out in node.output}
    for node in model.graph.node:
        if node.op_type not in ("QuantizeLinear", "DequantizeLinear") and any(
            producers.get(i) == "DequantizeLinear" for i in node.input
        ):
            dq_fed[node.op_type] += 1
    return {
        "quantize_nodes": ops.get("QuantizeLinear", 0),
        "dequantize_nodes": ops.get("DequantizeLinear", 0),
        "int8_ops": dict(sorted(dq_fed.items())),
        "float_ops": sorted(set(ops) - {"QuantizeLinear", "DequantizeLinear"} - set(dq_fed)),
    }


def fused_int8_kernels(optimized_path: Path) -> dict[str, int]:
    """Quantised kernels ORT really runs, read from the graph it optimised."""
    import onnx

    model = onnx.load(str(optimized_path), load_external_data=False)
    ops = Counter(node.op_type for node in model.graph.node)
    return {op: n for op, n in sorted(ops.items()) if op in QUANTIZED_OPS}
