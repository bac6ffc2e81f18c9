"""Building blocks shared by the style and super-resolution networks.

Every variant (instance/batch norm, nearest-conv/deconv upsampling) keeps the same module
names, so state-dict keys only differ where the layer type itself differs (batch norm adds
running statistics; a transposed convolution stores its weight as (in, out, k, k)).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from perceptual_edge.train.defaults import NORMS, OUTPUTS, UPSAMPLES

Norm = Literal["instance", "batch"]
Upsample = Literal["nearest-conv", "deconv"]
Output = Literal["tanh", "clamp"]


class _Float32UnderAutocast:
    """Normalisation in float32 when autocast is on: CPU autocast runs instance and batch norm
    in bfloat16, whose mean and variance over H*W values lose most of their digits (measured:
    a 300-step run drifted 37% from float32 with it, 2-3% like float32 noise without). The
    output stays float32; the next convolution casts it down again. Without autocast, and so
    in export and inference, this is the plain layer."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_autocast_enabled(x.device.type):
            with torch.autocast(x.device.type, enabled=False):
                return super().forward(x.float())  # type: ignore[misc]
        return super().forward(x)  # type: ignore[misc]


class InstanceNorm2d(_Float32UnderAutocast, nn.InstanceNorm2d):
    pass


class BatchNorm2d(_Float32UnderAutocast, nn.BatchNorm2d):
    pass


def make_norm(kind: Norm, channels: int) -> nn.Module:
    if kind == "instance":
        # affine, no running statistics: instance norm always normalises with the image's own
        # statistics, in training and at inference alike (what the reference code does).
        return InstanceNorm2d(channels, affine=True, track_running_stats=False)
    if kind == "batch":
        return BatchNorm2d(channels)
    raise ValueError(f"unknown normalisation {kind!r}; choose from {NORMS}")


class Conv(nn.Module):
    """Reflection padding of k // 2, then a convolution: output size = ceil(input / stride)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1) -> None:
        super().__init__()
        self.pad = kernel // 2
        self.conv = nn.Conv2d(cin, cout, kernel, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (self.pad,) * 4, mode="reflect"))


class ConvNormReLU(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int, stride: int, norm: Norm) -> None:
        super().__init__()
        self.conv = Conv(cin, cout, kernel, stride)
        self.norm = make_norm(norm, cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.norm(self.conv(x)))


class ResidualBlock(nn.Module):
    """conv-norm-ReLU-conv-norm plus the input, with no ReLU after the addition (the paper)."""

    def __init__(self, channels: int, norm: Norm) -> None:
        super().__init__()
        self.conv1 = Conv(channels, channels, 3)
        self.norm1 = make_norm(norm, channels)
        self.conv2 = Conv(channels, channels, 3)
        self.norm2 = make_norm(norm, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.norm1(self.conv1(x)))
        return x + self.norm2(self.conv2(y))


class UpBlock(nn.Module):
    """Doubles the spatial size.

    nearest-conv: nearest-neighbour x2 then a 3x3 convolution (the later reference code; no
    checkerboard artefacts). deconv: a stride-2 transposed convolution (the paper's
    "fractionally strided" convolution), padding 1 and output_padding 1 so that it is exactly x2.
    """

    def __init__(self, cin: int, cout: int, norm: Norm, upsample: Upsample) -> None:
        super().__init__()
        self.mode = upsample
        if upsample == "nearest-conv":
            self.conv: nn.Module = Conv(cin, cout, 3)
        elif upsample == "deconv":
            self.conv = nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=1, output_padding=1)
        else:
            raise ValueError(f"unknown upsampling {upsample!r}; choose from {UPSAMPLES}")
        self.norm = make_norm(norm, cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "nearest-conv":
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        return F.relu(self.norm(self.conv(x)))


def output_activation(x: torch.Tensor, kind: Output, training: bool) -> torch.Tensor:
    """Map the last convolution to 0..255.

    tanh: 127.5 * (tanh(x) + 1), the paper's scaled tanh, always in range.
    clamp: the raw value, clamped to 0..255 at inference only (as pytorch/examples does when it
    saves an image) so that training keeps gradients for out-of-range pixels.
    """
    if kind == "tanh":
        return 127.5 * (torch.tanh(x) + 1.0)
    if kind == "clamp":
        return x if training else x.clamp(0.0, 255.0)
    raise ValueError(f"unknown output {kind!r}; choose from {OUTPUTS}")
