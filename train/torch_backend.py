"""The PyTorch reference as a runtime backend: a `.pth` checkpoint behind the same small
interface as ONNX Runtime and TensorRT (`perceptual_edge.runtime.backend.Backend`).

The runtime never imports this module (it stays torch-free); an application that opens a `.pth`
file wraps it in a runtime `Session` with `Session.from_backend`, so padding, cropping, tiling and
the image conversions are the same code for every model file (see `perceptual_edge.models`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from perceptual_edge.errors import InputError, UnavailableError
from perceptual_edge.spec import ModelSpec

CHECKPOINT_SUFFIXES = (".pth", ".pt")
TORCH_BACKENDS = ("auto", "torch", "pytorch")


class TorchBackend:
    """A checkpoint's network in eval mode on one torch device; one calling thread at a time."""

    max_input_hw: tuple[int, int] | None = None  # any size
    min_input_hw: tuple[int, int] | None = None
    max_batch: int | None = None
    precision = "fp32"

    def __init__(self, path: str | Path, backend: str = "auto", device: str | None = None) -> None:
        if backend not in TORCH_BACKENDS:
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
        model, spec = load_model(Path(path))
        self._model: Any = model.to(self._device)
        self.spec: ModelSpec = spec
        self.name = f"torch:{self._device}"

    def infer(self, batch: np.ndarray) -> np.ndarray:  # (N, 3, H, W) -> (N, 3, sH, sW)
        import torch

        if self._model is None:
            raise InputError("this model is closed")
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(self._device)
            return self._model(x).float().cpu().numpy()

    def close(self) -> None:
        self._model = None


def is_checkpoint_path(path: str | Path) -> bool:
    return Path(path).suffix.lower() in CHECKPOINT_SUFFIXES
