"""What `pe run` does around the network: --max-size before it, --preserve-color and --strength
after it. One `Processor` applies them to single images or to batches of video frames.

Both post-steps need a reference of the output's size: the (resized) input itself for a style
network, its bicubic upscale for a super-resolution network.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from perceptual_edge.errors import InputError
from perceptual_edge.image import (
    as_uint8_image,
    batch_to_image,
    fit_long_side,
    images_to_nchw,
    resize,
)
from perceptual_edge.spec import ModelSpec

if TYPE_CHECKING:
    from perceptual_edge.runtime.session import Session

# ITU-R BT.601 luma weights (as in JPEG's YCbCr).
LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def luminance(image: np.ndarray) -> np.ndarray:
    """(..., 3) RGB -> (...,) float32 BT.601 luma Y."""
    return np.asarray(image, dtype=np.float32) @ LUMA_WEIGHTS


def preserve_color(reference: np.ndarray, stylised: np.ndarray) -> np.ndarray:
    """Luminance-only transfer: the stylised image's Y with the reference's Cb and Cr.

    Swapping only Y in YCbCr adds the same amount to R, G and B (the inverse transform's Y
    coefficient is 1 for every channel), so no full colour-space round trip is needed.
    Both (H, W, 3) uint8 of one size; returns (H, W, 3) uint8.
    """
    if reference.shape != stylised.shape:
        raise InputError(f"preserve_color: sizes differ {reference.shape} vs {stylised.shape}")
    ref = reference.astype(np.float32)
    delta = luminance(stylised) - luminance(ref)  # (H, W)
    return as_uint8_image(ref + delta[..., None])


def blend(reference: np.ndarray, output: np.ndarray, strength: float) -> np.ndarray:
    """strength * output + (1 - strength) * reference, as uint8 (H, W, 3)."""
    if strength >= 1.0:
        return output
    if strength <= 0.0:
        return reference
    mixed = strength * output.astype(np.float32) + (1.0 - strength) * reference.astype(np.float32)
    return as_uint8_image(mixed)


@dataclass(frozen=True)
class RunOptions:
    max_size: int | None = None
    tile: int | None = None
    tile_overlap: int | None = None
    preserve_color: bool = False
    strength: float = 1.0
    even: bool = False  # round --max-size results to even sides (video)
    temporal: float | None = None  # video: runtime/temporal.py's strength (None: frame by frame)

    def __post_init__(self) -> None:
        if not 0.0 <= self.strength <= 1.0:
            raise InputError(f"--strength must be in 0..1, got {self.strength}")
        if self.max_size is not None and self.max_size < 1:
            raise InputError(f"--max-size must be >= 1, got {self.max_size}")
        if self.tile is not None and self.tile < 1:
            raise InputError(f"--tile must be >= 1, got {self.tile}")
        if self.tile_overlap is not None and self.tile_overlap < 0:
            raise InputError(f"--tile-overlap must be >= 0, got {self.tile_overlap}")
        if self.temporal is not None and not 0.0 <= self.temporal < 1.0:
            raise InputError(f"--temporal must be in [0, 1), got {self.temporal}")
        if self.temporal is not None and self.tile is not None:
            raise InputError("--temporal and --tile cannot be combined")
        if self.tile_overlap is not None and self.tile is None:
            raise InputError("--tile-overlap needs --tile")


class Processor:
    """A session plus the RunOptions: image in, finished image out (same pixels as `pe run`)."""

    def __init__(self, session: Session, options: RunOptions | None = None) -> None:
        self.session = session
        self.options = options or RunOptions()
        self.spec: ModelSpec = session.spec

    def prepare(self, image: np.ndarray) -> np.ndarray:
        """Apply --max-size (and even sides for video) to one (H, W, 3) uint8 input."""
        h, w = fit_long_side(
            image.shape[0], image.shape[1], self.options.max_size, self.options.even
        )
        return resize(image, h, w, "lanczos")

    def run(self, image: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 -> (sH', W'·s, 3) uint8 after all options."""
        return self.run_many([image])[0]

    def run_many(self, images: list[np.ndarray], prepared: bool = False) -> list[np.ndarray]:
        """Several images; one network call for the lot when they share a size and no tiling.
        `prepared`: `prepare` was already applied (the video pipeline does it while decoding)."""
        inputs = images if prepared else [self.prepare(im) for im in images]
        outputs = self._infer(inputs)
        return [self._finish(x, y) for x, y in zip(inputs, outputs, strict=True)]

    def _infer(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        if self.options.temporal is not None:  # frames of one video, in order
            if not hasattr(self, "_stabilizer"):
                from perceptual_edge.runtime.temporal import Stabilizer

                self._stabilizer = Stabilizer(self.session, self.options.temporal)
            return self._stabilizer.run_many(inputs)
        return self._infer_plain(inputs)

    def _infer_plain(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        """One conversion path for one image or many: uint8 images -> one float batch per
        group of equal sizes (or per image when tiling) -> uint8 images."""
        o = self.options
        together = o.tile is None and len({x.shape for x in inputs}) == 1
        groups = [inputs] if together else [[x] for x in inputs]
        outputs: list[np.ndarray] = []
        for group in groups:
            out = self.session.run_batch(
                images_to_nchw(group), tile=o.tile, tile_overlap=o.tile_overlap
            )  # (N, 3, sH, sW) float 0..255
            outputs.extend(batch_to_image(out, i) for i in range(len(group)))
        return outputs

    def _finish(self, image: np.ndarray, output: np.ndarray) -> np.ndarray:
        o = self.options
        if not o.preserve_color and o.strength >= 1.0:
            return output
        ref = image
        if output.shape[:2] != image.shape[:2]:  # SR: compare to the bicubic upscale
            ref = resize(image, output.shape[0], output.shape[1], "bicubic")
        if o.preserve_color:
            output = preserve_color(ref, output)
        return blend(ref, output, o.strength)
