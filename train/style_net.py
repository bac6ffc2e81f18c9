"""The image transformation network for style transfer (Johnson et al. 2016, supplementary).

Input and output: (N, 3, H, W) float RGB in 0..255, H and W multiples of 4.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from perceptual_edge.train.layers import Conv as _Conv
from perceptual_edge.train.layers import (
    ConvNormReLU,
    Norm,
    Output,
    ResidualBlock,
    UpBlock,
    Upsample,
    output_activation,
)


@dataclass(frozen=True)
class StyleNetConfig:
    norm: Norm = "instance"  # the paper used batch norm; instance norm gives better results
    upsample: Upsample = "nearest-conv"  # the paper: "deconv"
    output: Output = "tanh"  # the paper's scaled tanh; "clamp" for pytorch/examples models
    channels: tuple[int, int, int] = (32, 64, 128)
    res_blocks: int = 5

    def to_dict(self) -> dict:
        d = asdict(self)
        d["channels"] = list(self.channels)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> StyleNetConfig:
        d = dict(d)
        if "channels" in d:
            d["channels"] = tuple(int(c) for c in d["channels"])
        return cls(**d)


class StyleNet(nn.Module):
    multiple = 4  # two stride-2 convolutions

    def __init__(self, config: StyleNetConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or StyleNetConfig()
        c1, c2, c3 = cfg.channels
        self.stem = ConvNormReLU(3, c1, 9, 1, cfg.norm)
        self.down1 = ConvNormReLU(c1, c2, 3, 2, cfg.norm)
        self.down2 = ConvNormReLU(c2, c3, 3, 2, cfg.norm)
        self.res = nn.Sequential(*[ResidualBlock(c3, cfg.norm) for _ in range(cfg.res_blocks)])
        self.up1 = UpBlock(c3, c2, cfg.norm, cfg.upsample)
        self.up2 = UpBlock(c2, c1, cfg.norm, cfg.upsample)
        self.head = _Conv(c1, 3, 9)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, 3, H, W) -> (N, 3, H, W)
        y = self.down2(self.down1(self.stem(x)))  # (N, 128, H/4, W/4)
        y = self.up2(self.up1(self.res(y)))  # (N, 32, H, W)
        # The last convolution and the 0..255 mapping in float32 even under mixed precision:
        # bfloat16 resolves 0..255 only to about 1 unit, which the losses and TV would see.
        # (A no-op without autocast; about 1% of the network's FLOPs.)
        with torch.autocast(y.device.type, enabled=False):
            return output_activation(self.head(y.float()), self.config.output, self.training)
