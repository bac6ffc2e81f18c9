"""Open any model file as a runtime `Session`: the one place (an application, like the CLI and
`paper/`) that knows both the torch-free runtime and the PyTorch reference in `train/`.

    with open_model("wave.onnx") as s: ...   # ONNX Runtime (or --backend), torch never imported
    with open_model("wave.pth") as s: ...    # the PyTorch reference network, same Session API
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from perceptual_edge.errors import InputError
from perceptual_edge.runtime.backend import artifact_kind, check_model_path
from perceptual_edge.runtime.session import Session


def open_model(
    path: str | Path,
    backend: str = "auto",
    device: str | None = None,
    precision: str = "auto",
    **engine_options: Any,
) -> Session:
    """A Session for .onnx/.engine files; for a .pth checkpoint, a Session over the PyTorch
    reference (`train.torch_backend`, imported only then, so torch loads only for checkpoints).
    `engine_options` (spec=, allow_other_gpu=) go to the TensorRT backend and need a plan."""
    p = check_model_path(path)
    options = {k: v for k, v in engine_options.items() if v not in (None, False)}
    if options and artifact_kind(p) != "engine":
        names = ", ".join("--" + k.replace("_", "-") for k in options)
        raise InputError(f"{names}: for TensorRT plans (.engine/.plan/.trt), not {p.name}")
    if artifact_kind(p) == "checkpoint":
        if precision not in ("auto", "fp32"):
            raise InputError("--precision needs an .onnx model; a .pth runs in PyTorch FP32")
        from perceptual_edge.train.torch_backend import TorchBackend

        return Session.from_backend(TorchBackend(p, backend=backend, device=device), p)
    return Session(p, backend=backend, device=device, precision=precision, **options)
