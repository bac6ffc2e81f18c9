"""The loss side of one training step, written to do no more work than the losses need.

Compared with a plain implementation (the VGG run in full on both the output and the content
batch, every step), this:
- runs the content branch under `no_grad` and only up to the content layer (relu3_3 for style:
  the relu4_3 block is skipped, and no autograd graph is kept for it);
- runs the output branch only up to the deepest layer any loss reads;
- uses in-place ReLUs inside the VGG forward (safe for autograd: ReLU's backward needs its
  output, a convolution's backward its input, and neither is modified afterwards);
- computes Gram matrices once per layer with one batched matmul (`losses.gram`), and their
  gradient with one more (autograd's bmm backward takes two);
- the feature loss as one fused mse_loss kernel.
The loss values are those of `perceptual_edge.train.losses`, term by term.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from perceptual_edge.train.defaults import LAYER_INDEX
from perceptual_edge.train.losses import (
    gram,
    squared_error,
    style_loss,
    total_variation,
)
from perceptual_edge.train.vgg import VGG16Features


def vgg_features(
    vgg: VGG16Features, x: torch.Tensor, layers: Sequence[str]
) -> dict[str, torch.Tensor]:
    """{layer: activation} for `layers`, running `vgg` only as deep as the deepest of them."""
    wanted = {LAYER_INDEX[n]: n for n in layers}
    last = max(wanted)
    h = (x - vgg.mean) / vgg.std  # (N, 3, H, W) ImageNet-normalised
    out: dict[str, torch.Tensor] = {}
    for i, module in enumerate(vgg.features):
        if i > last:
            break
        h = F.relu(h, inplace=True) if isinstance(module, nn.ReLU) else module(h)
        if i in wanted:
            out[wanted[i]] = h
    return out


class StyleObjective(nn.Module):
    """l = w_c l_feat(content layer) + w_s sum_l l_style + w_tv l_tv, with fixed style Grams."""

    def __init__(
        self,
        vgg: VGG16Features,
        style_batch: torch.Tensor,  # (1, 3, H, W) in 0..255
        content_layer: str,
        style_layers: Sequence[str],
        content_weight: float,
        style_weight: float,
        tv_weight: float,
    ) -> None:
        super().__init__()
        self.vgg = vgg
        self.content_layer = content_layer
        self.style_layers = tuple(style_layers)
        self.layers = tuple(dict.fromkeys((content_layer, *self.style_layers)))
        self.weights = (content_weight, style_weight, tv_weight)
        with torch.no_grad():
            feats = vgg_features(vgg, style_batch, self.style_layers)
            for name in self.style_layers:
                # (1, C, C) buffers: they follow .to(device) and stay out of the optimiser.
                self.register_buffer(f"gram_{name}", gram(feats[name]).detach().clone())

    def target_grams(self) -> dict[str, torch.Tensor]:
        return {n: getattr(self, f"gram_{n}") for n in self.style_layers}

    def forward(self, y: torch.Tensor, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """y: (N, 3, H, W) network output, x: (N, 3, H, W) content batch, both 0..255."""
        with torch.no_grad():
            target = vgg_features(self.vgg, x, (self.content_layer,))[self.content_layer]
        feats = vgg_features(self.vgg, y, self.layers)
        wc, ws, wt = self.weights
        content = squared_error(feats[self.content_layer], target)
        style = style_loss(feats, self.target_grams(), self.style_layers)
        tv = total_variation(y)
        total = wc * content + ws * style + wt * tv
        return {"loss": total, "content": content, "style": style, "tv": tv}


class SRObjective(nn.Module):
    """feat: w_c l_feat(relu2_2) + w_tv l_tv; pixel: w_p l_pixel + w_tv l_tv."""

    def __init__(
        self,
        vgg: VGG16Features | None,
        loss: str,
        content_layer: str,
        content_weight: float,
        pixel_weight: float,
        tv_weight: float,
    ) -> None:
        super().__init__()
        if loss == "feat" and vgg is None:
            raise ValueError("the feature loss needs a loss network")
        self.vgg = vgg
        self.loss = loss
        self.content_layer = content_layer
        self.weights = (content_weight, pixel_weight, tv_weight)

    def forward(self, y: torch.Tensor, hr: torch.Tensor) -> dict[str, torch.Tensor]:
        """y: (N, 3, S, S) network output, hr: (N, 3, S, S) HR target, both 0..255."""
        wc, wp, wt = self.weights
        tv = total_variation(y)
        if self.loss == "pixel":
            pix = squared_error(y, hr)
            return {"loss": wp * pix + wt * tv, "pixel": pix, "tv": tv}
        assert self.vgg is not None
        layer = (self.content_layer,)
        with torch.no_grad():
            target = vgg_features(self.vgg, hr, layer)[self.content_layer]
        feat = squared_error(vgg_features(self.vgg, y, layer)[self.content_layer], target)
        return {"loss": wc * feat + wt * tv, "content": feat, "tv": tv}
