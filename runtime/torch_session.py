"""A Session-compatible wrapper over a `.pth` checkpoint, using the PyTorch reference network.

Only `pe run` uses it, and only for `.pth` models; it imports torch inside its methods and is
NOT imported by `perceptual_edge.runtime` (the runtime stays torch-free). Same contract as
`Session`: any size in, same size out (x scale for SR), reflect padding to the network's
multiple, `.run(image)` / `.run_batch(batch)`, a context manager; one calling thread at a time.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from perceptual_edge.errors import InputError, UnavailableError
from perceptual_edge.image import batch_to_image, crop_to, image_to_batch, pad_to_multiple
from perceptual_edge.spec import ModelSpec

CHECKPOINT_SUFFIXES = (".pth", ".pt")


class TorchSession:
    def __init__(self, path: str | Path, backend: str = "auto", device: str | None = None) -> None:
        if backend not in ("auto", "torch", "pytorch"):
            raise InputError(f"backend {backend!r} cannot load a checkpoint ({path}); use torch")
        try:
            import torch
        except ImportError as e:
            raise UnavailableError(
                f"running a .pth checkpoint needs PyTorch ({e}); install perceptual-edge[train] "
                "or export the checkpoint to ONNX with `pe export`"
            ) from None
        from perceptual_edge.train.checkpoint import load_model

        dev = "cpu" if device in (None, "auto", "cpu") else device
        if dev.startswith("cuda") and not torch.cuda.is_available():
            raise UnavailableError("--device cuda: PyTorch here has no usable CUDA device")
        try:
            self._device = torch.device(dev)
        except RuntimeError as e:
            raise InputError(f"unknown torch device {device!r} ({e})") from None
        self.path = Path(path)
        model, spec = load_model(self.path)
        self._model: Any = model.to(self._device)
        self.spec: ModelSpec = spec
        self.backend_name = f"torch:{self._device}"

    def run_batch(self, batch: np.ndarray) -> np.ndarray:
        """(N, 3, H, W) float32 0..255, any H and W -> (N, 3, sH, sW) float32."""
        import torch

        if self._model is None:
            raise InputError("this TorchSession is closed")
        if batch.ndim != 4 or batch.shape[1] != 3:
            raise InputError(f"expected an (N, 3, H, W) batch, got shape {batch.shape}")
        padded, (h, w) = pad_to_multiple(
            np.asarray(batch, dtype=np.float32), self.spec.multiple, self.spec.min_size
        )
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(padded)).to(self._device)
            y = self._model(x).float().cpu().numpy()  # (N, 3, sH', sW')
        s = self.spec.scale
        return crop_to(y, h * s, w * s)

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
        self._model = None

    def __enter__(self) -> TorchSession:
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def is_checkpoint_path(path: str | Path) -> bool:
    return Path(path).suffix.lower() in CHECKPOINT_SUFFIXES
