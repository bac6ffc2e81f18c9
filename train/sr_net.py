"""The super-resolution network (Johnson et al. 2016): x4 or x8, log2(f) upsampling stages.

Input: (N, 3, h, w) float RGB 0..255 low-resolution; output (N, 3, f*h, f*w) in 0..255.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from perceptual_edge.train.layers import (
    Conv,
    ConvNormReLU,
    Norm,
    Output,
    ResidualBlock,
    UpBlock,
    Upsample,
    output_activation,
)

FACTORS = (2, 4, 8)


@dataclass(frozen=True)
class SRNetConfig:
    factor: int = 4
    norm: Norm = "instance"
    upsample: Upsample = "nearest-conv"
    output: Output = "tanh"
    channels: int = 64
    res_blocks: int = 4

    def __post_init__(self) -> None:
        if self.factor not in FACTORS:
            raise ValueError(f"SR factor must be one of {FACTORS}, got {self.factor}")

    @property
    def stages(self) -> int:
        return int(math.log2(self.factor))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> SRNetConfig:
        return cls(**d)


class SRNet(nn.Module):
    multiple = 1

    def __init__(self, config: SRNetConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or SRNetConfig()
        c = cfg.channels
        self.stem = ConvNormReLU(3, c, 9, 1, cfg.norm)
        self.res = nn.Sequential(*[ResidualBlock(c, cfg.norm) for _ in range(cfg.res_blocks)])
        self.up = nn.Sequential(*[UpBlock(c, c, cfg.norm, cfg.upsample) for _ in range(cfg.stages)])
        self.head = Conv(c, 3, 9)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, 3, h, w) -> (N, 3, f*h, f*w)
        y = self.up(self.res(self.stem(x)))  # (N, 64, f*h, f*w)
        # The last convolution and the 0..255 mapping in float32 even under mixed precision:
        # bfloat16 resolves 0..255 only to about 1 unit, which the losses and TV would see.
        # (A no-op without autocast; about 1% of the network's FLOPs.)
        with torch.autocast(y.device.type, enabled=False):
            return output_activation(self.head(y.float()), self.config.output, self.training)
