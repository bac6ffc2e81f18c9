"""Session: load a model artifact once, then run images or batches through it.

    with Session("wave.onnx") as s:
        out = s.run(image)          # (H, W, 3) uint8 -> (H, W, 3) uint8 (x scale for SR)
        y = s.run(batch)            # (N, 3, H, W) float32 0..255 -> float32

Any size in, same size out: inputs are reflect-padded to the network's multiple (and minimum
size) and the output is cropped back. A Session is safe to use from one thread at a time; use
one Session per thread for parallel inference.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

import numpy as np

from perceptual_edge.errors import InputError
from perceptual_edge.image import (
    batch_to_image,
    crop_to,
    image_to_batch,
    pad_to_multiple,
)
from perceptual_edge.runtime.backend import Backend, artifact_kind
from perceptual_edge.spec import ModelSpec


def open_backend(
    path: str | Path, backend: str = "auto", device: str | None = None, **options
) -> Backend:
    """The backend table: file type and `backend` name -> one backend class."""
    kind = artifact_kind(path)
    if backend in ("auto", "onnxruntime", "ort") and kind == "onnx":
        from perceptual_edge.runtime.ort_backend import OrtBackend

        return OrtBackend(path, device=device, **options)
    if backend in ("auto", "tensorrt", "trt") and kind == "engine":
        from perceptual_edge.runtime.trt_backend import TrtBackend

        return TrtBackend(path, device=device, **options)
    if kind == "unknown":
        raise InputError(f"{path}: unknown model file type (expected .onnx, or .engine/.plan/.trt)")
    raise InputError(f"backend {backend!r} cannot load a {kind} file ({path})")


class Session:
    def __init__(
        self, path: str | Path, backend: str = "auto", device: str | None = None, **options
    ) -> None:
        self.path = Path(path)
        self._backend: Backend | None = open_backend(self.path, backend, device, **options)
        self.spec: ModelSpec = self._backend.spec

    @property
    def backend_name(self) -> str:
        return self._require().name

    def _require(self) -> Backend:
        if self._backend is None:
            raise InputError("this Session is closed")
        return self._backend

    def run_batch(self, batch: np.ndarray) -> np.ndarray:
        """(N, 3, H, W) float32 0..255, any H and W -> (N, 3, sH, sW) float32."""
        if batch.ndim != 4 or batch.shape[1] != 3:
            raise InputError(f"expected an (N, 3, H, W) batch, got shape {batch.shape}")
        padded, (h, w) = pad_to_multiple(
            np.asarray(batch, dtype=np.float32), self.spec.multiple, self.spec.min_size
        )
        out = self._require().infer(padded)
        s = self.spec.scale
        return crop_to(out, h * s, w * s)

    def run(self, x: np.ndarray) -> np.ndarray:
        """An (H, W, 3) uint8 image -> uint8 image, or an NCHW float batch -> float batch."""
        if x.ndim == 3:
            if x.dtype != np.uint8:
                raise InputError("an (H, W, 3) image must be uint8; pass floats as NCHW batches")
            return batch_to_image(self.run_batch(image_to_batch(x)))
        if x.ndim == 4:
            return self.run_batch(x)
        raise InputError(f"expected (H, W, 3) uint8 or (N, 3, H, W) float, got shape {x.shape}")

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()
            self._backend = None

    def __enter__(self) -> Session:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
