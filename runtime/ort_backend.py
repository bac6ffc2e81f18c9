"""ONNX Runtime backend: the embedded default, runs everywhere."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from perceptual_edge.errors import InputError, UnavailableError
from perceptual_edge.runtime.backend import SPEC_METADATA_KEY
from perceptual_edge.spec import ModelSpec

# Provider preference for backend="auto": fastest first.
PROVIDER_ORDER = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
DEVICE_PROVIDERS = {
    "cpu": ("CPUExecutionProvider",),
    "cuda": ("CUDAExecutionProvider",),
    "tensorrt": ("TensorrtExecutionProvider",),
}


def read_onnx_spec(path: str | Path, session=None) -> ModelSpec:
    """The ModelSpec stored in an ONNX file's metadata_props."""
    import onnxruntime as ort

    sess = session or ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    meta = sess.get_modelmeta().custom_metadata_map
    if SPEC_METADATA_KEY not in meta:
        raise InputError(f"{path}: ONNX file has no perceptual-edge model spec in its metadata")
    return ModelSpec.from_json(meta[SPEC_METADATA_KEY])


class OrtBackend:
    """One onnxruntime.InferenceSession. Safe for one calling thread at a time."""

    def __init__(
        self,
        path: str | Path,
        device: str | None = None,
        threads: int | None = None,
    ) -> None:
        import onnxruntime as ort

        p = Path(path)
        if not p.is_file():
            raise InputError(f"{p}: no such file")
        available = ort.get_available_providers()
        if device is None or device == "auto":
            providers = [pv for pv in PROVIDER_ORDER if pv in available]
        else:
            if device not in DEVICE_PROVIDERS:
                raise InputError(f"unknown device {device!r}; choose cpu, cuda or tensorrt")
            providers = list(DEVICE_PROVIDERS[device])
            missing = [pv for pv in providers if pv not in available]
            if missing:
                raise UnavailableError(
                    f"ONNX Runtime here has no {missing[0]} (available: {', '.join(available)}); "
                    "install onnxruntime-gpu and CUDA/cuDNN for GPU inference"
                )
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            opts.intra_op_num_threads = int(threads)
        opts.log_severity_level = 3
        try:
            self._sess = ort.InferenceSession(str(p), sess_options=opts, providers=providers)
        except Exception as e:  # ORT raises its own Fail/InvalidProtobuf/... types
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise InputError(f"{p}: ONNX Runtime cannot load this file ({first})") from None
        used = self._sess.get_providers()
        if device not in (None, "auto") and used[0] != providers[0]:
            raise UnavailableError(
                f"ONNX Runtime could not start {providers[0]} (it fell back to {used[0]}); "
                "check the CUDA/cuDNN libraries"
            )
        self.name = f"onnxruntime:{used[0]}"
        self.spec = read_onnx_spec(p, self._sess)
        self._input = self._sess.get_inputs()[0]
        self._output = self._sess.get_outputs()[0].name
        self._in_dtype = np.float16 if "float16" in self._input.type else np.float32
        self.path = p
        self.env_threads = os.environ.get("OMP_NUM_THREADS")

    def infer(self, batch: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(batch, dtype=self._in_dtype)
        (y,) = self._sess.run([self._output], {self._input.name: x})
        return y.astype(np.float32, copy=False)

    def close(self) -> None:
        self._sess = None  # type: ignore[assignment]
