"""VGG-16 loss network: the `features` part of torchvision's VGG-16, with its state-dict keys.

Takes (N, 3, H, W) RGB in 0..255 and applies the ImageNet normalisation inside (x / 255, then
torchvision's mean and std), so callers never normalise. Weights are resolved, in order, from
an explicit path, $PE_VGG16_WEIGHTS, the torch hub cache, then a download of torchvision's
checkpoint; offline with none of these it fails with a message that says how to provide the
file. `random` weights (fixed seed, same architecture) are an explicit choice, never a fallback.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from perceptual_edge.errors import InputError, UnavailableError
from perceptual_edge.fsutil import sha256_file
from perceptual_edge.image import IMAGENET_MEAN, IMAGENET_STD, PIXEL_MAX
from perceptual_edge.train.defaults import LAYER_INDEX, LAYER_NAMES, VGG16_CFG

VGG16_URL = "https://download.pytorch.org/models/vgg16-397923af.pth"
VGG16_FILENAME = "vgg16-397923af.pth"
ENV_VAR = "PE_VGG16_WEIGHTS"
RANDOM_SEED = 0


class VGG16Features(nn.Module):
    """VGG-16 conv layers up to the deepest requested one; returns {layer name: activation}."""

    def __init__(self, layers: Iterable[str] = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")):
        super().__init__()
        self.layers = tuple(dict.fromkeys(layers))
        for name in self.layers:
            if name not in LAYER_INDEX:
                raise InputError(f"unknown VGG-16 layer {name!r}; choose from {LAYER_NAMES}")
        last = max(LAYER_INDEX[n] for n in self.layers)
        modules: list[nn.Module] = []
        cin = 3
        for v in VGG16_CFG:
            if v == "M":
                modules.append(nn.MaxPool2d(2, 2))
            else:
                modules += [nn.Conv2d(cin, int(v), 3, padding=1), nn.ReLU(inplace=True)]
                cin = int(v)
        self.features = nn.Sequential(*modules[: last + 1])
        mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * PIXEL_MAX
        std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * PIXEL_MAX
        self.register_buffer("mean", mean, persistent=False)
        self.register_buffer("std", std, persistent=False)
        self.weights_id = "uninitialised"
        self.requires_grad_(False)
        self.eval()

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:  # x: (N, 3, H, W) in 0..255
        h = (x - self.mean) / self.std
        out: dict[str, torch.Tensor] = {}
        wanted = {LAYER_INDEX[n]: n for n in self.layers}
        for i, module in enumerate(self.features):
            # In-place ReLU would overwrite an activation we return; use the functional form.
            h = F.relu(h) if isinstance(module, nn.ReLU) else module(h)
            if i in wanted:
                out[wanted[i]] = h
        return out

    def train(self, mode: bool = True) -> VGG16Features:
        return super().train(False)  # the loss network is frozen: always eval


def _hub_cache_path() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / VGG16_FILENAME


def resolve_vgg16_weights(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Find (or download) torchvision's VGG-16 ImageNet weights; see the module docstring."""
    if explicit:
        p = Path(explicit)
        if not p.is_file():
            raise InputError(f"--vgg-weights {p}: no such file")
        return p
    env = os.environ.get(ENV_VAR)
    if env:
        p = Path(env)
        if not p.is_file():
            raise InputError(f"${ENV_VAR}={p}: no such file")
        return p
    cached = _hub_cache_path()
    if cached.is_file():
        return cached
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(VGG16_URL, str(cached), progress=True)
        return cached
    except Exception as e:  # no network, proxy, disk: all end the same way for the user
        raise UnavailableError(
            f"VGG-16 ImageNet weights not found and the download failed ({type(e).__name__}). "
            f"Get {VGG16_URL} on a machine with internet and pass it with --vgg-weights PATH, "
            f"set ${ENV_VAR}=PATH, or put it at {cached}; for an offline smoke run use "
            "--loss-net random"
        ) from None


def load_loss_network(
    loss_net: str = "vgg16",
    layers: Sequence[str] = ("relu1_2", "relu2_2", "relu3_3", "relu4_3"),
    weights: str | os.PathLike[str] | None = None,
) -> VGG16Features:
    """The frozen loss network. `loss_net` is "vgg16" (ImageNet weights) or "random"."""
    net = VGG16Features(layers)
    if loss_net == "random":
        gen = torch.Generator().manual_seed(RANDOM_SEED)
        for m in net.features:
            if isinstance(m, nn.Conv2d):
                fan_in = m.in_channels * 9
                with torch.no_grad():
                    m.weight.copy_(
                        torch.randn(m.weight.shape, generator=gen) * (2.0 / fan_in) ** 0.5
                    )
                    m.bias.zero_()
        net.weights_id = f"random:seed={RANDOM_SEED}"
        return net
    if loss_net != "vgg16":
        raise InputError(f"unknown loss network {loss_net!r}; choose vgg16 or random")
    path = resolve_vgg16_weights(weights)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise InputError(
            f"{path}: not a readable VGG-16 weight file ({type(e).__name__})"
        ) from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise InputError(f"{path}: not a VGG-16 state dict")
    own = net.state_dict()
    feats = {k: v for k, v in state.items() if k in own}
    missing = [k for k in own if k not in feats]
    if missing:
        raise InputError(
            f"{path}: not torchvision VGG-16 weights (missing {missing[0]} and "
            f"{len(missing) - 1} more keys)"
        )
    bad = [k for k in own if tuple(feats[k].shape) != tuple(own[k].shape)]
    if bad:
        raise InputError(f"{path}: wrong shape for {bad[0]}: not VGG-16")
    net.load_state_dict(feats)
    net.weights_id = f"sha256:{sha256_file(path)}"
    return net
