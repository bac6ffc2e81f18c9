"""The paper's loss terms, on images in 0..255 and VGG-16 activations.

Scale convention (what the weights multiply; documented in the README):
- feature loss  l_feat = ||phi(y) - phi(y_c)||^2 / (C*H*W), averaged over the batch (Eq. 2);
- Gram matrix   G = F F^T / (C*H*W) for F the (C, H*W) activation (Eq. 3);
- style loss    l_style = ||G(y) - G(y_s)||_F^2 / C^2 per layer (the mean squared difference of
  Gram entries, as Johnson's and pytorch/examples' code compute it), summed over layers,
  averaged over the batch;
- total variation l_tv = (sum of squared horizontal + vertical neighbour differences of the
  0..255 output) / (C*H*W), averaged over the batch;
- pixel loss    l_pixel = ||y - y_c||^2 / (C*H*W) on 0..255 values, averaged over the batch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F


class _Gram(torch.autograd.Function):
    """G = F F^T / k with the backward written for a symmetric product: dF = (dG + dG^T) F / k
    is one batched matmul, where autograd's bmm backward takes two (one per operand) and sums
    them. The three (N, C, C) x (N, C, H*W) products are a quarter of a training step's
    arithmetic at relu1_2 (C = 64, H*W = 65,536 at 256 px); one of them goes."""

    @staticmethod
    def forward(ctx: Any, f: torch.Tensor, k: float) -> torch.Tensor:
        ctx.save_for_backward(f)
        ctx.k = k
        return torch.bmm(f, f.transpose(1, 2)) / k

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (f,) = ctx.saved_tensors
        return torch.bmm(grad + grad.transpose(1, 2), f) / ctx.k, None


def gram(features: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, C), normalised by C*H*W; computed in float32 even under AMP (a
    `.float()` alone is not enough: autocast would cast bmm's inputs back down)."""
    n, c, h, w = features.shape
    with torch.autocast(features.device.type, enabled=False):
        f = features.reshape(n, c, h * w).float()
        return _Gram.apply(f, float(c * h * w))


def squared_error(y: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """||y - target||^2 / (C*H*W), averaged over the batch, in float32: the feature loss on VGG
    activations (Eq. 2) and the pixel loss on 0..255 images are this one function. One fused
    kernel (mse_loss) instead of sub, pow and mean: half the time at relu2_2 (4x128x128x128)."""
    return F.mse_loss(y.float(), target.float())


def style_loss(
    features: Mapping[str, torch.Tensor],
    target_grams: Mapping[str, torch.Tensor],
    layers: Sequence[str],
) -> torch.Tensor:
    """Sum over layers of the mean squared Gram difference; target grams are (1 or N, C, C)."""
    total = torch.zeros((), device=next(iter(features.values())).device)
    for name in layers:
        g = gram(features[name])
        t = target_grams[name].expand_as(g)
        total = total + (g - t).pow(2).mean()
    return total


def total_variation(y: torch.Tensor) -> torch.Tensor:
    n, c, h, w = y.shape
    y = y.float()  # differences of 0..255 values in bfloat16 would keep ~3 significant digits
    dy = (y[:, :, 1:, :] - y[:, :, :-1, :]).pow(2).sum()
    dx = (y[:, :, :, 1:] - y[:, :, :, :-1]).pow(2).sum()
    return (dx + dy) / (n * c * h * w)
