"""FP16 numerics of a checkpoint on real images: ONNX FP16 vs FP32, PyTorch FP16, activation range.

ONNX Runtime's CPU provider runs an FP16 graph but may compute some operators in FP32 inside,
which hides overflow. So this also runs the network with FP16 activations in PyTorch and
reports the FP32 model's largest activation per layer against FP16's limit (65504).

PyTorch's CPU half-precision convolutions are very slow (about 20x FP32 on 2 cores), so
`native` half runs are only practical at small sizes; `emulated` runs FP32 arithmetic with
weights and every layer's output rounded to FP16 (overflow becomes inf exactly as in FP16
storage; accumulation stays FP32, as on GPUs' FP16 tensor cores).

The report over a folder of photos is `python tests/benchmarks/fp16_report.py CKPT --data DIR`.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np


def _leaf_modules(model: Any) -> list[tuple[str, Any]]:
    return [(n, m) for n, m in model.named_modules() if n and not list(m.children())]


def activation_maxima(model: Any, batch: np.ndarray) -> dict[str, float]:
    """Largest |activation| of every layer and block of the FP32 model on `batch` (N, 3, H, W).

    Blocks are included because their outputs hold what no leaf layer does: the residual sums
    and the activations after ReLU.
    """
    import torch

    maxima: dict[str, float] = {}
    hooks = []
    for name, mod in model.named_modules():
        if not name or isinstance(mod, torch.nn.Sequential):
            continue

        def hook(_m: Any, _i: Any, out: Any, name: str = name) -> None:
            maxima[name] = max(maxima.get(name, 0.0), float(out.detach().abs().max()))

        hooks.append(mod.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model(torch.from_numpy(batch))
    finally:
        for h in hooks:
            h.remove()
    return maxima


def half_forward(model: Any, batch: np.ndarray, mode: str = "emulated") -> np.ndarray:
    """The network's output with FP16 weights and activations, as float32 (N, 3, H, W)."""
    import torch

    m = copy.deepcopy(model).eval()
    x = torch.from_numpy(batch)
    with torch.no_grad():
        if mode == "native":
            return m.half()(x.half()).float().numpy()
        for p in m.parameters():
            p.copy_(p.half().float())
        hooks = [
            mod.register_forward_hook(lambda _m, _i, out: out.half().float())
            for _, mod in _leaf_modules(m)
        ]
        try:
            return m(x.half().float()).numpy()
        finally:
            for h in hooks:
                h.remove()
