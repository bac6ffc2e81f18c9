"""Loss-network layers and loss weights shared by `pe train style`, `pe stylize --optimize` and
`pe eval objective`, so the feed-forward network and the Gatys baseline optimise the same
objective (the paper's Eq. 5). Weights follow the scale convention in train/losses.py."""

from __future__ import annotations

STYLE_LAYERS: tuple[str, ...] = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")
STYLE_CONTENT_LAYER = "relu3_3"  # DESIGN.md §4; relu2_2 is the other common choice
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
