"""The image contract, in one place.

Files on disk are 8-bit RGB. Networks take and give float32 NCHW RGB batches in
PIXEL_MIN..PIXEL_MAX (0..255, the paper's convention). Everything that converts between the two
goes through the functions here, so there is no scattered `x.mul(255)` in the code base.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from perceptual_edge.errors import InputError
from perceptual_edge.fsutil import atomic_path, check_input

PIXEL_MIN = 0.0
PIXEL_MAX = 255.0
CHANNELS = 3
CHANNEL_ORDER = "RGB"  # of files, arrays and network tensors (ModelSpec's default)
LAYOUT = "NCHW"  # of network tensors (ModelSpec's default)
DTYPE = np.float32
# ImageNet statistics for the VGG-16 loss network, on images scaled to 0..1 (torchvision's).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pnm"}
)


def _to_rgb8(img) -> np.ndarray:  # img: PIL.Image.Image
    """Any PIL mode (L, LA, P, RGBA, CMYK, I;16, I, F, ...) -> (H, W, 3) uint8 RGB."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        a = np.asarray(img, dtype=np.float64)
        hi = 65535.0 if img.mode.startswith("I;16") or a.max(initial=0) > 255 else 255.0
        a = np.clip(np.round(a * (255.0 / hi)), 0, 255).astype(np.uint8)
        return np.repeat(a[:, :, None], 3, axis=2)
    if img.mode == "F":
        a = np.asarray(img, dtype=np.float64)
        a = np.clip(np.round(a * 255.0 if a.max(initial=0) <= 1.0 else a), 0, 255).astype(np.uint8)
        return np.repeat(a[:, :, None], 3, axis=2)
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode != "RGB":
        img = img.convert("RGB")  # alpha is dropped, as every reference implementation does
    return np.asarray(img, dtype=np.uint8).copy()


def load_image(
    path: str | os.PathLike[str], max_pixels: int | None = None, still: bool = False
) -> np.ndarray:
    """Read an image file as (H, W, 3) uint8 RGB, honouring EXIF orientation.

    Raises InputError with one clear line for missing, empty, corrupt, truncated or
    non-image files, for images larger than `max_pixels`, and, with `still`, for animated
    images (whose other frames would be dropped without a word).
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    p = check_input(path, "an image file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(p) as img:
                if max_pixels is not None and img.width * img.height > max_pixels:
                    raise InputError(
                        f"{p}: {img.width}x{img.height} is larger than the limit of "
                        f"{max_pixels} pixels"
                    )
                if still:
                    _check_still(img, str(p))
                img.load()
                img = ImageOps.exif_transpose(img) or img
                return _to_rgb8(img)
    except InputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise InputError(f"{p}: image too large ({e})") from None
    except UnidentifiedImageError:
        raise InputError(f"{p}: not an image file (or a format Pillow cannot read)") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise InputError(f"{p}: corrupt or truncated image ({e})") from None


def _check_still(img: Any, name: str) -> None:
    frames = int(getattr(img, "n_frames", 1) or 1)
    if frames > 1:
        raise InputError(
            f"{name}: an animated image ({frames} frames); pe run styles still images and "
            "videos: convert it to a video first (e.g. ffmpeg -i in.gif clip.mp4)"
        )


def decode_image_bytes(data: bytes, name: str = "<stdin>") -> np.ndarray:
    """Decode an in-memory image (e.g. from stdin) as (H, W, 3) uint8 RGB."""
    import io

    from PIL import Image, ImageOps, UnidentifiedImageError

    if not data:
        raise InputError(f"{name}: empty input")
    try:
        with Image.open(io.BytesIO(data)) as img:
            _check_still(img, name)
            img.load()
            img = ImageOps.exif_transpose(img) or img
            return _to_rgb8(img)
    except UnidentifiedImageError:
        raise InputError(f"{name}: not an image") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise InputError(f"{name}: corrupt or truncated image ({e})") from None


def encode_image(image: np.ndarray, fmt: str = "PNG", quality: int = 95) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    kwargs = {"quality": quality} if fmt.upper() in ("JPEG", "JPG", "WEBP") else {}
    Image.fromarray(as_uint8_image(image)).save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def save_image(
    image: np.ndarray, path: str | os.PathLike[str], overwrite: bool = False, quality: int = 95
) -> Path:
    """Write (H, W, 3) uint8 RGB atomically; the format follows the file suffix."""
    from PIL import Image

    p = Path(path)
    if p.suffix.lower() not in IMAGE_EXTENSIONS:
        raise InputError(f"{p}: unknown image suffix {p.suffix!r} (use .png or .jpg)")
    with atomic_path(p, overwrite) as tmp:
        kwargs = {"quality": quality} if p.suffix.lower() in (".jpg", ".jpeg", ".webp") else {}
        fmt = Image.registered_extensions().get(p.suffix.lower())
        Image.fromarray(as_uint8_image(image)).save(tmp, format=fmt, **kwargs)
    return p


def as_uint8_image(image: np.ndarray) -> np.ndarray:
    """Round and clip a 0..255 float image (H, W, 3) to uint8; uint8 passes through."""
    if image.dtype == np.uint8:
        return image
    return np.clip(np.rint(image), PIXEL_MIN, PIXEL_MAX).astype(np.uint8)


# ------------------------------------------------------------------ resizing and filtering
# The one home of every resize in the project. Pillow does the resampling (antialiased when
# shrinking); float images are resized channel by channel in Pillow's 32-bit float mode.
RESAMPLING = ("nearest", "bilinear", "bicubic", "lanczos")


def resize(image: np.ndarray, height: int, width: int, method: str = "bicubic") -> np.ndarray:
    """(H, W, C) uint8 or float -> (height, width, C) of the same kind; the same array back
    when the size does not change."""
    from PIL import Image

    if method not in RESAMPLING:
        raise ValueError(f"unknown resampling {method!r}; choose from {RESAMPLING}")
    if image.shape[:2] == (height, width):
        return image
    filt = getattr(Image.Resampling, method.upper())
    if image.dtype == np.uint8:
        return np.asarray(Image.fromarray(image).resize((width, height), filt), dtype=np.uint8)
    planes = [
        np.asarray(
            Image.fromarray(
                np.ascontiguousarray(image[:, :, c], dtype=np.float32), mode="F"
            ).resize((width, height), filt),
            dtype=np.float32,
        )
        for c in range(image.shape[2])
    ]
    return np.stack(planes, axis=2)


def shorter_side_size(height: int, width: int, size: int, at_least: int = 1) -> tuple[int, int]:
    """(H, W) scaled so the shorter side is `size`, each side rounded and at least `at_least`."""
    s = size / min(height, width)
    return max(at_least, round(height * s)), max(at_least, round(width * s))


def resize_shorter_side(image: np.ndarray, size: int, method: str = "bicubic") -> np.ndarray:
    """Scale (keeping the aspect ratio) so the shorter side is `size`."""
    return resize(image, *shorter_side_size(image.shape[0], image.shape[1], size), method)


def center_crop(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """The centred (height, width) window of an (H, W, ...) array (a view)."""
    top, left = (image.shape[0] - height) // 2, (image.shape[1] - width) // 2
    return image[top : top + height, left : left + width]


def center_square(image: np.ndarray, size: int, method: str = "bicubic") -> np.ndarray:
    """The largest centred square, resized to (size, size)."""
    s = min(image.shape[:2])
    return resize(center_crop(image, s, s), size, size, method)


def square_photos(
    folder: str | os.PathLike[str], size: int, limit: int | None = None, method: str = "lanczos"
) -> list[tuple[str, np.ndarray]]:
    """(file name, centre square at size x size) of the first `limit` images under `folder`
    (sorted, recursive): the real photos that calibration and numerics reports measure on."""
    out = []
    for p in iter_image_files(folder):
        out.append((p.name, center_square(load_image(p), size, method)))
        if limit and len(out) >= limit:
            break
    return out


def resize_center_crop(image: np.ndarray, size: int, method: str = "bilinear") -> np.ndarray:
    """(H, W, 3) -> (size, size, 3): the shorter side to `size`, then the centre square (the
    training crop of pytorch/examples and of `pe train`)."""
    h, w = shorter_side_size(image.shape[0], image.shape[1], size, at_least=size)
    return np.ascontiguousarray(center_crop(resize(image, h, w, method), size, size))


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


def gaussian_kernel(sigma: float, truncate: float = 3.0) -> np.ndarray:
    """Normalised 1-D Gaussian taps over [-r, r], r = ceil(truncate * sigma) (at least 1)."""
    radius = max(1, int(np.ceil(truncate * sigma)))
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-(x * x) / (2.0 * sigma * sigma))
    return k / k.sum()


def separable_filter(a: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Valid-region correlation of `a` (H, W, ...) with the 1-D kernel `k` along axes 0 and 1."""

    def rows(x: np.ndarray) -> np.ndarray:
        n = x.shape[0] - len(k) + 1
        out = k[0] * x[:n]
        for i in range(1, len(k)):
            out += k[i] * x[i : i + n]
        return out

    # Axis 1 with contiguous slices: transpose, filter along axis 0, transpose back.
    return np.swapaxes(rows(np.ascontiguousarray(np.swapaxes(rows(a), 0, 1))), 0, 1)


def gaussian_blur(
    image: np.ndarray, sigma: float, border: str = "symmetric", truncate: float = 3.0
) -> np.ndarray:
    """(H, W[, C]) -> float64 of the same shape, separable Gaussian. `border` is numpy's pad
    mode: "symmetric" repeats the edge pixel (MATLAB's imfilter), "reflect" does not."""
    k = gaussian_kernel(sigma, truncate)
    r = len(k) // 2
    pad = [(r, r), (r, r)] + [(0, 0)] * (image.ndim - 2)
    return separable_filter(np.pad(np.asarray(image, dtype=np.float64), pad, mode=border), k)


# ------------------------------------------------------------------ network batches


def image_to_batch(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 -> (1, 3, H, W) float32 in 0..255."""
    if image.ndim != 3 or image.shape[2] != CHANNELS:
        raise InputError(f"expected an (H, W, 3) image, got shape {image.shape}")
    return np.ascontiguousarray(image.transpose(2, 0, 1)[None], dtype=DTYPE)


def images_to_nchw(images: list[np.ndarray]) -> np.ndarray:
    """N (H, W, 3) uint8 images of one size -> (N, 3, H, W) uint8 in the network's layout (a
    view for one image): a Session takes it as a batch and converts to float32 once, tile by
    tile when tiling, so a huge image never has a full float copy of its input."""
    for im in images:
        if im.ndim != 3 or im.shape[2] != CHANNELS:
            raise InputError(f"expected an (H, W, 3) image, got shape {im.shape}")
    if len(images) == 1:
        return images[0].transpose(2, 0, 1)[None]
    return np.stack(images).transpose(0, 3, 1, 2)


def batch_to_image(batch: np.ndarray, index: int = 0) -> np.ndarray:
    """(N, 3, H, W) float in 0..255 -> (H, W, 3) uint8 (rounded, clipped)."""
    return as_uint8_image(np.asarray(batch[index], dtype=np.float32).transpose(1, 2, 0))


def padded_size(height: int, width: int, multiple: int, min_size: int = 1) -> tuple[int, int]:
    """The smallest (H, W) >= (height, width) and >= min_size that are multiples of `multiple`."""

    def up(n: int) -> int:
        n = max(n, min_size)
        return n + (-n) % multiple

    return up(height), up(width)


def pad_to_multiple(
    batch: np.ndarray, multiple: int, min_size: int = 1
) -> tuple[np.ndarray, tuple[int, int]]:
    """Reflect-pad an (N, C, H, W) batch at the bottom and right to `padded_size`.

    numpy's 'reflect' mode needs the pad to be smaller than the side, so tiny images are padded
    in steps (a 1x1 image becomes edge-replicated, the only sensible reflection of one pixel).
    Returns the padded batch and the (H, W) to crop back to.
    """
    n, c, h, w = batch.shape
    th, tw = padded_size(h, w, multiple, min_size)
    ph, pw = th - h, tw - w
    out = batch
    while ph or pw:
        cur_h, cur_w = out.shape[2], out.shape[3]
        step_h = min(ph, cur_h - 1) if cur_h > 1 else ph
        step_w = min(pw, cur_w - 1) if cur_w > 1 else pw
        mode = "reflect" if (cur_h > 1 or step_h == 0) and (cur_w > 1 or step_w == 0) else "edge"
        out = np.pad(out, ((0, 0), (0, 0), (0, step_h), (0, step_w)), mode=mode)
        ph -= step_h
        pw -= step_w
    return out, (h, w)


def crop_to(batch: np.ndarray, height: int, width: int) -> np.ndarray:
    """Crop an (N, C, H', W') batch back to (height, width) from the top-left."""
    return batch[:, :, :height, :width]


def iter_image_files(root: str | os.PathLike[str]) -> Iterator[Path]:
    """Image files under `root`, recursively, in a stable (sorted) order; hidden files skipped."""
    rootp = Path(root)
    for dirpath, dirnames, filenames in os.walk(rootp):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            p = Path(dirpath) / name
            if p.suffix.lower() in IMAGE_EXTENSIONS:
                yield p
