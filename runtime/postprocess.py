"""What `pe run` does around the network: --max-size before it, --preserve-color and --strength
after it. One `Processor` applies them to single images or to batches of video frames.

Both post-steps need a reference of the output's size: the (resized) input itself for a style
network, its bicubic upscale for a super-resolution network.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from perceptual_edge.errors import InputError, UnavailableError
from perceptual_edge.image import as_uint8_image
from perceptual_edge.spec import ModelSpec

# ITU-R BT.601 luma weights (as in JPEG's YCbCr).
LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)


class SessionLike(Protocol):
    """What a Processor needs: `Session` (ONNX/TensorRT) or the torch `TorchSession`."""

    spec: ModelSpec

    def run(self, x: np.ndarray, **kwargs: Any) -> np.ndarray: ...

    def run_batch(self, batch: np.ndarray) -> np.ndarray: ...


def fit_long_side(
    height: int, width: int, max_size: int | None, even: bool = False
) -> tuple[int, int]:
    """(H, W) scaled down (never up) so that the long side is <= max_size. `even` rounds a
    resized size down to even sides (4:2:0 video needs them); an unresized size is kept as is
    (the video writer handles odd sizes without resampling)."""
    h, w = height, width
    if max_size is not None and max(h, w) > max_size:
        f = max_size / max(h, w)
        h, w = max(1, round(h * f)), max(1, round(w * f))
        if even:
            h, w = max(2, h - h % 2), max(2, w - w % 2)
    return h, w


def resize(image: np.ndarray, height: int, width: int, upscale: bool = False) -> np.ndarray:
    """(H, W, 3) uint8 -> (height, width, 3) uint8: Lanczos when shrinking, bicubic to upscale."""
    from PIL import Image

    if image.shape[:2] == (height, width):
        return image
    method = Image.Resampling.BICUBIC if upscale else Image.Resampling.LANCZOS
    return np.asarray(Image.fromarray(image).resize((width, height), method))


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

    def __post_init__(self) -> None:
        if not 0.0 <= self.strength <= 1.0:
            raise InputError(f"--strength must be in 0..1, got {self.strength}")
        if self.max_size is not None and self.max_size < 1:
            raise InputError(f"--max-size must be >= 1, got {self.max_size}")
        if self.tile is not None and self.tile < 1:
            raise InputError(f"--tile must be >= 1, got {self.tile}")
        if self.tile_overlap is not None and self.tile_overlap < 0:
            raise InputError(f"--tile-overlap must be >= 0, got {self.tile_overlap}")
        if self.tile_overlap is not None and self.tile is None:
            raise InputError("--tile-overlap needs --tile")


class Processor:
    """A session plus the RunOptions: image in, finished image out (same pixels as `pe run`)."""

    def __init__(self, session: SessionLike, options: RunOptions | None = None) -> None:
        self.session = session
        self.options = options or RunOptions()
        self.spec: ModelSpec = session.spec
        if self.options.tile is not None and not _accepts_tile(session):
            raise UnavailableError(
                "--tile is not available for this model type in this build "
                "(the Session has no tiling support)"
            )

    def prepare(self, image: np.ndarray) -> np.ndarray:
        """Apply --max-size (and even sides for video) to one (H, W, 3) uint8 input."""
        h, w = fit_long_side(
            image.shape[0], image.shape[1], self.options.max_size, self.options.even
        )
        return resize(image, h, w)

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
        o = self.options
        if o.tile is not None:
            kw: dict[str, Any] = {"tile": o.tile}
            if o.tile_overlap is not None:
                kw["tile_overlap"] = o.tile_overlap
            return [self.session.run(x, **kw) for x in inputs]
        if len(inputs) == 1 or len({x.shape for x in inputs}) != 1:
            return [self.session.run(x) for x in inputs]
        batch = np.stack(inputs).transpose(0, 3, 1, 2).astype(np.float32)  # (N, 3, H, W)
        out = self.session.run_batch(batch)  # (N, 3, sH, sW) float 0..255
        return list(as_uint8_image(out.transpose(0, 2, 3, 1)))

    def _finish(self, image: np.ndarray, output: np.ndarray) -> np.ndarray:
        o = self.options
        if not o.preserve_color and o.strength >= 1.0:
            return output
        ref = image
        if output.shape[:2] != image.shape[:2]:  # SR: compare to the bicubic upscale
            ref = resize(image, output.shape[0], output.shape[1], upscale=True)
        if o.preserve_color:
            output = preserve_color(ref, output)
        return blend(ref, output, o.strength)


def _accepts_tile(session: Any) -> bool:
    try:
        params = inspect.signature(session.run).parameters
    except (TypeError, ValueError):
        return False
    return "tile" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())
