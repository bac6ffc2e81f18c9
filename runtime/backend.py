"""The interface every inference backend implements, and the table that picks one by file type.

A backend runs a float32 NCHW batch whose spatial size already fits the network (padding and
cropping are the Session's job) and returns the float32 NCHW output.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from perceptual_edge.spec import ModelSpec

ONNX_SUFFIXES = (".onnx",)
ENGINE_SUFFIXES = (".engine", ".plan", ".trt")
SPEC_METADATA_KEY = "perceptual_edge.spec"  # ONNX metadata_props key holding ModelSpec JSON


class Backend(Protocol):
    """Optional attributes a Session reads with getattr: `max_input_hw` ((H, W) of the largest
    input, e.g. a TensorRT profile's max; larger inputs are tiled) and `max_batch`."""

    name: str  # e.g. "onnxruntime:CPUExecutionProvider", "tensorrt:fp16:cuda-python"
    spec: ModelSpec

    def infer(self, batch: np.ndarray) -> np.ndarray:  # (N, 3, H, W) -> (N, 3, sH, sW)
        ...

    def close(self) -> None: ...


def artifact_kind(path: str | Path) -> str:
    """'onnx' or 'engine' from the file suffix; anything else is not a runtime artifact."""
    suffix = Path(path).suffix.lower()
    if suffix in ONNX_SUFFIXES:
        return "onnx"
    if suffix in ENGINE_SUFFIXES:
        return "engine"
    return "unknown"
