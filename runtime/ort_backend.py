"""ONNX Runtime backend: the embedded default, runs everywhere.

`device="auto"` (or None) tries the execution providers fastest first (TensorRT EP, CUDA EP,
CPU) and keeps the first that really starts; a GPU provider that is listed but fails to start
is logged with the reason and skipped. An explicit device that cannot start raises
UnavailableError naming the missing library, never a silent fallback.
"""

from __future__ import annotations

import ctypes
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from perceptual_edge.errors import InputError, UnavailableError, first_line
from perceptual_edge.runtime.backend import SPEC_METADATA_KEY
from perceptual_edge.runtime.precision import file_precision
from perceptual_edge.spec import ModelSpec

log = logging.getLogger("perceptual_edge.runtime")

# Provider preference for device="auto": fastest first.
PROVIDER_ORDER = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
DEVICE_PROVIDERS = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}
# The shared library each GPU provider lives in, inside onnxruntime/capi/.
_PROVIDER_LIBS = {
    "CUDAExecutionProvider": "libonnxruntime_providers_cuda.so",
    "TensorrtExecutionProvider": "libonnxruntime_providers_tensorrt.so",
}
OPT_LEVELS = ("disable", "basic", "extended", "all")


def read_onnx_spec(path: str | Path, session: Any = None) -> ModelSpec:
    """The ModelSpec stored in an ONNX file's metadata_props."""
    import onnxruntime as ort

    sess = session or ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    meta = sess.get_modelmeta().custom_metadata_map
    if SPEC_METADATA_KEY not in meta:
        raise InputError(f"{path}: ONNX file has no perceptual-edge model spec in its metadata")
    return ModelSpec.from_json(meta[SPEC_METADATA_KEY])


def physical_cores(sysfs: Path = Path("/sys/devices/system/cpu")) -> int:
    """Physical cores this process may use (hyper-threads share one core's FMA units, so more
    intra-op threads than cores only adds contention): the distinct sibling sets of the CPUs in
    this process's affinity mask, a CPU without topology information counting as its own core."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return max(1, (os.cpu_count() or 2) // 2)
    cores = set()
    for c in cpus:
        sib = sysfs / f"cpu{c}" / "topology" / "thread_siblings_list"
        try:
            cores.add(sib.read_text().strip())
        except OSError:
            cores.add(str(c))
    return max(1, len(cores))


def provider_library_error(provider: str) -> str | None:
    """Why a GPU provider's shared library cannot load here (the dynamic loader names the
    missing CUDA/cuDNN/TensorRT library), or None if it loads or is not a separate library."""
    lib = _PROVIDER_LIBS.get(provider)
    if lib is None:
        return None
    import onnxruntime as ort

    path = Path(ort.__file__).parent / "capi" / lib
    if not path.exists():
        return f"{lib} is not part of this onnxruntime build (install onnxruntime-gpu)"
    try:
        ctypes.CDLL(str(path))
    except OSError as e:
        return str(e)
    return None


def session_options(
    threads: int | None = None, optimization: str = "all", spinning: bool = False
) -> Any:
    """Options measured to help on CPU (see tests/benchmarks/runtime_cpu.py and cpu_load.py): all
    graph optimisations (NCHWc conv layouts and fusions), intra-op threads = physical cores,
    sequential execution (this graph is a chain: parallel mode only adds scheduling), memory arena
    and pattern on, and no spin-waiting: ORT's idle pool threads otherwise busy-wait between
    operators, which costs nothing on an idle machine but, when another process wants the same
    cores, burns the time slices the working thread needs (measured: see README, "CPU load")."""
    import onnxruntime as ort

    if optimization not in OPT_LEVELS:
        raise InputError(f"unknown optimisation level {optimization!r}; choose {OPT_LEVELS}")
    opts = ort.SessionOptions()
    opts.graph_optimization_level = {
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[optimization]
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.intra_op_num_threads = int(threads) if threads else physical_cores()
    opts.inter_op_num_threads = 1
    opts.enable_cpu_mem_arena = True
    opts.enable_mem_pattern = True
    opts.log_severity_level = 3
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    return opts


class OrtBackend:
    """One onnxruntime.InferenceSession. Safe for one calling thread at a time."""

    max_input_hw: tuple[int, int] | None = None  # dynamic height and width: any size
    min_input_hw: tuple[int, int] | None = None
    max_batch: int | None = None

    def __init__(
        self,
        path: str | Path,
        device: str | None = None,
        threads: int | None = None,
        optimization: str = "all",
        spinning: bool = False,
    ) -> None:
        import onnxruntime as ort

        p = self.path = Path(path)  # checked by the Session (runtime.backend.check_model_path)
        self.precision = file_precision(p)  # ONNX Runtime computes in the graph's own types
        self._opts = session_options(threads, optimization, spinning)
        available = ort.get_available_providers()
        if device is None or device == "auto":
            self._sess = self._open_auto(available)
        else:
            self._sess = self._open_explicit(device, available)
        used = self._sess.get_providers()[0]
        self.name = f"onnxruntime:{used}"
        self.device = "cpu" if used == "CPUExecutionProvider" else "gpu"
        self.spec = read_onnx_spec(p, self._sess)
        self._input = self._sess.get_inputs()[0]
        self._output = self._sess.get_outputs()[0].name
        self._in_dtype = np.float16 if "float16" in self._input.type else np.float32

    def _create(self, providers: list[str]) -> Any:
        import onnxruntime as ort

        try:
            return ort.InferenceSession(
                str(self.path), sess_options=self._opts, providers=providers
            )
        except Exception as e:  # ORT raises its own Fail/InvalidProtobuf/... types
            first = first_line(e)
            raise InputError(f"{self.path}: ONNX Runtime cannot load this file ({first})") from None

    def _open_auto(self, available: list[str]) -> Any:
        for provider in PROVIDER_ORDER:
            if provider not in available:
                continue
            if provider == "CPUExecutionProvider":
                return self._create([provider])
            why = provider_library_error(provider)
            if why is None:
                try:
                    sess = self._create([provider, "CPUExecutionProvider"])
                except InputError as e:
                    why = str(e)
                else:
                    if sess.get_providers()[0] == provider:
                        return sess
                    why = "it did not start (ONNX Runtime fell back to the CPU)"
            log.warning("auto: skipping %s: %s", provider, why)
        raise UnavailableError("ONNX Runtime has no usable execution provider here")

    def _open_explicit(self, device: str, available: list[str]) -> Any:
        if device not in DEVICE_PROVIDERS:
            raise InputError(f"unknown device {device!r}; choose auto, cpu, cuda or tensorrt")
        provider = DEVICE_PROVIDERS[device]
        if provider not in available:
            raise UnavailableError(
                f"ONNX Runtime here has no {provider} (available: {', '.join(available)}); "
                "install onnxruntime-gpu (not together with onnxruntime) for GPU inference"
            )
        why = provider_library_error(provider)
        if why is not None:
            raise UnavailableError(f"{provider} cannot load: {why}")
        # CPU listed second only so that CPU-only ops (shape arithmetic) have a home.
        providers = (
            [provider] if provider == "CPUExecutionProvider" else [provider, "CPUExecutionProvider"]
        )
        sess = self._create(providers)
        if sess.get_providers()[0] != provider:
            raise UnavailableError(
                f"ONNX Runtime could not start {provider} (it fell back to "
                f"{sess.get_providers()[0]}); check the CUDA/cuDNN libraries"
            )
        return sess

    def infer(self, batch: np.ndarray) -> np.ndarray:  # (N, 3, H, W) -> (N, 3, sH, sW)
        x = np.ascontiguousarray(batch, dtype=self._in_dtype)
        try:
            (y,) = self._sess.run([self._output], {self._input.name: x})
        except Exception as e:  # e.g. a shape the graph rejects
            first = first_line(e)
            raise InputError(
                f"{self.path.name}: inference failed for shape {x.shape} ({first})"
            ) from None
        return y.astype(np.float32, copy=False)

    def close(self) -> None:
        self._sess = None  # type: ignore[assignment]
