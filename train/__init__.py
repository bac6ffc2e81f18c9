"""Training: networks, the VGG-16 loss network, losses, data, the training loop, checkpoints.

Importing this package does not import torch: the names below load their module on first use,
so `perceptual_edge.train.defaults` and `perceptual_edge.train.config` (what the CLI reads) stay
torch-free.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Checkpoint": "checkpoint",
    "load_checkpoint": "checkpoint",
    "load_model": "checkpoint",
    "save_checkpoint": "checkpoint",
    "TrainConfig": "config",
    "TrainResult": "loop",
    "train": "loop",
    "train_sr": "loop",
    "train_style": "loop",
    "build_network": "networks",
    "network_config": "networks",
    "spec_for": "networks",
    "SRNet": "sr_net",
    "SRNetConfig": "sr_net",
    "StyleNet": "style_net",
    "StyleNetConfig": "style_net",
    "TorchBackend": "torch_backend",
    "VGG16Features": "vgg",
    "load_loss_network": "vgg",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
