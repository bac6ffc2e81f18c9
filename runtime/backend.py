"""The interface every inference backend implements, and the table that picks one by file type.

A backend runs a float32 NCHW batch whose spatial size already fits the network (padding and
cropping are the Session's job) and returns the float32 NCHW output.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Protocol

import numpy as np

from perceptual_edge.errors import InputError, OutOfMemoryError, PeError, first_line
from perceptual_edge.spec import ModelSpec

ONNX_SUFFIXES = (".onnx",)
ENGINE_SUFFIXES = (".engine", ".plan", ".trt")
CHECKPOINT_SUFFIXES = (".pth", ".pt")
SPEC_METADATA_KEY = "perceptual_edge.spec"  # ONNX metadata_props key holding ModelSpec JSON


def cache_root() -> Path:
    """Where backends keep what they compile for this machine (OpenVINO's compiled models, the
    engines ONNX Runtime's TensorRT EP builds): $XDG_CACHE_HOME/perceptual-edge, by default
    ~/.cache/perceptual-edge. Each backend also honours its own override variable."""
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    return Path(os.path.expanduser(xdg)) / "perceptual-edge"


# How the libraries word a failed allocation in the exception they raise: ONNX Runtime's
# arena ("Failed to allocate memory for requested buffer of size N"), C++'s std::bad_alloc
# (OpenVINO's CPU plugin, ORT outside its arena), CUDA ("out of memory",
# cudaErrorMemoryAllocation, CUBLAS/CUDNN_STATUS_ALLOC_FAILED).
_ALLOCATION_FAILURES = re.compile(
    r"failed to allocate|bad_alloc|out of memory|cannot allocate memory|memoryallocation"
    r"|alloc_failed",
    re.IGNORECASE,
)
_REQUESTED_BYTES = re.compile(r"size (\d{4,})")


def inference_error(path: Path, shape: tuple[int, ...], e: BaseException) -> PeError:
    """The one-line error for an exception a library raised while running a batch: an
    OutOfMemoryError (exit 6) when it says an allocation failed, else an InputError (a shape
    the graph rejects, a corrupt graph found late)."""
    text = str(e)
    if _ALLOCATION_FAILURES.search(text):
        h, w = int(shape[-2]), int(shape[-1])
        asked = _REQUESTED_BYTES.search(text)
        detail = f"; it asked for {int(asked.group(1)) / 2**30:.1f} GiB more" if asked else ""
        return OutOfMemoryError(
            f"{path.name}: memory ran out running a {w}x{h} input whole{detail}: run it in "
            "tiles (--tile 512, or Session.run(..., tile=512)), which bounds memory",
            hw=(h, w),
        )
    return InputError(f"{path.name}: inference failed for shape {tuple(shape)} ({first_line(e)})")


class Backend(Protocol):
    """What a backend declares (plain attributes, not probed) and does."""

    name: str  # e.g. "onnxruntime:CPUExecutionProvider", "tensorrt:fp16:cuda-python"
    spec: ModelSpec
    # (H, W) of the largest input it accepts (a TensorRT profile's max; larger inputs are
    # tiled by the Session), or None for any size.
    max_input_hw: tuple[int, int] | None
    # (H, W) of the smallest input it accepts (a TensorRT profile's min; smaller inputs are
    # padded up to it by the Session and cropped back), or None for any size.
    min_input_hw: tuple[int, int] | None
    max_batch: int | None  # the largest batch one call accepts, or None for any
    precision: str  # what the numbers are computed in: fp32 | fp16 | bf16 | int8

    def infer(self, batch: np.ndarray) -> np.ndarray:  # (N, 3, H, W) -> (N, 3, sH, sW)
        ...

    def close(self) -> None: ...


def artifact_kind(path: str | Path) -> str:
    """'onnx', 'engine' or 'checkpoint' (a PyTorch .pth, which only an application with torch
    opens) from the file suffix; anything else is 'unknown'."""
    suffix = Path(path).suffix.lower()
    if suffix in ONNX_SUFFIXES:
        return "onnx"
    if suffix in ENGINE_SUFFIXES:
        return "engine"
    if suffix in CHECKPOINT_SUFFIXES:
        return "checkpoint"
    return "unknown"


def check_model_path(path: str | Path) -> Path:
    """The one check of a model file: it exists, is a non-empty file and has a known suffix."""
    p = Path(path)
    if p.is_dir():
        raise InputError(f"{p}: is a folder, expected a model file (.onnx, .engine or .pth)")
    if not p.exists():
        raise InputError(f"{p}: no such model file")
    if artifact_kind(p) == "unknown":
        raise InputError(
            f"{p}: unknown model file type {p.suffix!r} "
            "(expected .onnx, .engine/.plan/.trt, or a .pth checkpoint)"
        )
    if p.stat().st_size == 0:
        raise InputError(f"{p}: empty file")
    return p
