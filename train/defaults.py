"""Every default and choice of training, torch-free, so the CLI (and `pe --help`) reads them from
here without importing torch.

The loss-network layers and loss weights are shared by `pe train style`, `pe stylize --optimize`
and `pe eval objective`, so the feed-forward network and the Gatys baseline optimise the same
objective (the paper's Eq. 5). Weights follow the scale convention in train/losses.py."""

from __future__ import annotations

STYLE_LAYERS: tuple[str, ...] = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")
# relu3_3 as in Johnson's fast-neural-style code; the paper's text and pytorch/examples use
# relu2_2 (--content-layer).
STYLE_CONTENT_LAYER = "relu3_3"
SR_CONTENT_LAYER = "relu2_2"

# content 1 : style 1e5 is pytorch/examples' ratio (1e5 : 1e10 with the same MSE reductions once
# its content weight is divided out); the paper's TV range is 1e-6..1e-4.
CONTENT_WEIGHT = 1.0
STYLE_WEIGHT = 1e5
TV_WEIGHT = 1e-6

IMAGE_SIZE = 256
SR_PATCH = 288
BATCH_SIZE = 4
ITERATIONS = 40_000
SR_ITERATIONS = 200_000
LR = 1e-3

# Network variants (train/layers.py builds them).
NORMS: tuple[str, ...] = ("instance", "batch")
UPSAMPLES: tuple[str, ...] = ("nearest-conv", "deconv")
OUTPUTS: tuple[str, ...] = ("tanh", "clamp")

# torchvision's vgg16 `features`: (out_channels | "M" for max-pool), layer indices follow.
VGG16_CFG: tuple[int | str, ...] = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M",
                                    512, 512, 512, "M", 512, 512, 512, "M")  # fmt: skip


def _layer_names() -> list[str]:
    names: list[str] = []
    block, conv = 1, 1
    for v in VGG16_CFG:
        if v == "M":
            names.append(f"pool{block}")
            block, conv = block + 1, 1
        else:
            names += [f"conv{block}_{conv}", f"relu{block}_{conv}"]
            conv += 1
    return names


LAYER_NAMES: tuple[str, ...] = tuple(_layer_names())
LAYER_INDEX: dict[str, int] = {n: i for i, n in enumerate(LAYER_NAMES)}
