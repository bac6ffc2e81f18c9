"""--sample-every: run the network on a few held-out images and write PNGs to OUT.samples/.

Held-out images are the files `data.scan_folder` set aside (folders of 40+ images); smaller
folders use the project's generated photo-like images (`perceptual_edge.samples`), so a sample
never shows an image the network trained on.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from perceptual_edge.image import load_image, resize_center_crop, save_image
from perceptual_edge.samples import content_image
from perceptual_edge.train.data import make_lr

SAMPLE_COUNT = 4


def sample_inputs(holdout: list[Path], size: int) -> list[np.ndarray]:
    """(size, size, 3) uint8 images: the held-out files, or generated ones if there are none."""
    images = []
    for p in holdout[:SAMPLE_COUNT]:
        try:
            images.append(resize_center_crop(load_image(p), size))
        except Exception:  # a held-out file that fails to decode is not worth stopping for
            continue
    if not images:
        images = [content_image(1000 + i, size, size) for i in range(SAMPLE_COUNT)]
    return images


@torch.no_grad()
def write_samples(
    model: nn.Module,
    images: list[np.ndarray],
    folder: Path,
    step: int,
    device: torch.device,
    task: str,
    factor: int = 1,
) -> list[Path]:
    """Stylise (or super-resolve the blurred, downsampled version of) each image."""
    folder.mkdir(parents=True, exist_ok=True)
    was_training = model.training
    model.eval()
    out: list[Path] = []
    try:
        for i, image in enumerate(images):
            src = make_lr(image, factor) if task == "sr" else image
            x = torch.from_numpy(np.ascontiguousarray(src.transpose(2, 0, 1)))[None]
            y = model(x.to(device=device, dtype=torch.float32))  # (1, 3, H, W) in 0..255
            result = y[0].float().clamp(0, 255).permute(1, 2, 0).cpu().numpy()
            p = folder / f"step{step:07d}_{i}.png"
            save_image(result, p, overwrite=True)
            out.append(p)
    finally:
        model.train(was_training)
    return out
