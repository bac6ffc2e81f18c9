"""Which torch device a command runs on: one rule for training, the baseline and benchmarks."""

from __future__ import annotations

import torch

from perceptual_edge.errors import InputError, UnavailableError


def select_device(name: str = "auto") -> torch.device:
    """`auto` -> cuda when available, else cpu; `cuda` without a GPU is a clear error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UnavailableError(f"--device {name}: no CUDA GPU visible to PyTorch here")
        return torch.device(name)
    raise InputError(f"unknown device {name!r}; choose auto, cpu or cuda")


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so wall-clock timings measure it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
