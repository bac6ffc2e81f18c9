"""Tiled inference: bounded memory for huge images, feathered blending, no visible seams.

The image is cut into tiles of one fixed size (a multiple of the network's `multiple`, so every
tile has the same shape and a TensorRT engine or ONNX Runtime reuses its buffers), neighbouring
tiles overlap by at least `overlap` pixels, and each output tile is weighted by linear ramps
across the overlaps before it is accumulated. Only the output accumulator and one small batch of
tiles are held as float32; the source may stay uint8 (an (N, 3, H, W) view of an HWC image).

Instance-norm style networks normalise each tile with its own statistics, so tiles cannot be
bit-identical to a whole-image run; larger tiles and overlaps bring them closer (see the
runtime notes for measured PSNR).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from perceptual_edge.errors import InputError
from perceptual_edge.spec import ModelSpec

Infer = Callable[[np.ndarray], np.ndarray]  # (N, 3, h, w) float32 -> (N, 3, s*h, s*w) float32

DEFAULT_TILE = 512
# Rows of the accumulator finished per step in `finish_*`: bounds the float temporaries.
_FINISH_ROWS = 256


def round_tile(tile: int, spec: ModelSpec) -> int:
    """A tile side rounded up to the network's multiple and at least its minimum size."""
    if tile < 1:
        raise InputError(f"tile size must be positive, got {tile}")
    t = max(int(tile), spec.min_size)
    return t + (-t) % spec.multiple


def default_overlap(tile: int, spec: ModelSpec) -> int:
    """An overlap wide enough to hide tile borders: 1/8 of the tile, at least 16 px, at most
    a quarter of the tile (so that tiles still advance)."""
    ov = min(max(16, tile // 8), tile // 4)
    return ov - ov % spec.multiple


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of size `tile` covering [0, length) with >= `overlap` overlap.

    The last tile is shifted back to end exactly at `length`, so all tiles have the same size;
    when `length <= tile` there is one tile (the caller pads it).
    """
    if length <= tile:
        return [0]
    stride = tile - overlap
    if stride < 1:
        raise InputError(f"tile overlap {overlap} must be smaller than the tile size {tile}")
    n = math.ceil((length - tile) / stride) + 1
    starts = [min(i * stride, length - tile) for i in range(n)]
    return sorted(set(starts))


def ramp_weights(starts: list[int], tile: int, length: int, index: int, scale: int) -> np.ndarray:
    """1-D blending weight of tile `index` in output pixels: linear ramps over its overlaps.

    The ramp of a tile rising over an overlap and its neighbour's falling ramp sum to one, so
    blending is a partition of unity up to the final normalisation by the summed weights.
    """
    size = min(tile, length) * scale
    w = np.ones(size, dtype=np.float32)
    start, end = starts[index], starts[index] + min(tile, length)
    if index > 0:
        ov = (starts[index - 1] + tile - start) * scale  # overlap with the previous tile
        if ov > 0:
            w[:ov] = np.minimum(w[:ov], (np.arange(ov, dtype=np.float32) + 0.5) / ov)
    if index + 1 < len(starts):
        ov = (end - starts[index + 1]) * scale  # overlap with the next tile
        if ov > 0:
            w[size - ov :] = np.minimum(
                w[size - ov :], (np.arange(ov, 0, -1, dtype=np.float32) - 0.5) / ov
            )
    return w


def run_tiled(
    infer: Infer,
    batch: np.ndarray,
    spec: ModelSpec,
    tile: int = DEFAULT_TILE,
    overlap: int | None = None,
    tiles_per_call: int = 1,
) -> np.ndarray:
    """Run `infer` over overlapping tiles of `batch` and blend: (N, 3, H, W) -> (N, 3, sH, sW).

    `batch` may be uint8 or float (0..255); `infer` receives float32 tiles of one fixed size
    (tile x tile, or smaller where the image is) and may pad them itself. Returns float32.
    """
    acc, weight = _accumulate(infer, batch, spec, tile, overlap, tiles_per_call)
    _normalise(acc, weight)
    return acc


def run_tiled_image(
    infer: Infer,
    image: np.ndarray,
    spec: ModelSpec,
    tile: int = DEFAULT_TILE,
    overlap: int | None = None,
    tiles_per_call: int = 1,
) -> np.ndarray:
    """(H, W, 3) uint8 -> (sH, sW, 3) uint8 through tiles, without a full float copy of the
    input and with the float-to-uint8 conversion done in row chunks (peak memory ~ 4 bytes
    per output value for the accumulator, plus one tile batch)."""
    if image.ndim != 3 or image.shape[2] != 3:
        raise InputError(f"expected an (H, W, 3) image, got shape {image.shape}")
    view = image.transpose(2, 0, 1)[None]  # (1, 3, H, W), a view of the uint8 pixels
    acc, weight = _accumulate(infer, view, spec, tile, overlap, tiles_per_call)
    out = np.empty((acc.shape[2], acc.shape[3], 3), dtype=np.uint8)  # (sH, sW, 3)
    for r in range(0, acc.shape[2], _FINISH_ROWS):
        rows = acc[0, :, r : r + _FINISH_ROWS]  # (3, rows, sW)
        rows /= weight[r : r + _FINISH_ROWS]
        np.rint(rows, out=rows)
        np.clip(rows, 0.0, 255.0, out=rows)
        out[r : r + _FINISH_ROWS] = rows.transpose(1, 2, 0)
    return out


def _accumulate(
    infer: Infer,
    batch: np.ndarray,
    spec: ModelSpec,
    tile: int,
    overlap: int | None,
    tiles_per_call: int,
) -> tuple[np.ndarray, np.ndarray]:
    if batch.ndim != 4 or batch.shape[1] != 3:
        raise InputError(f"expected an (N, 3, H, W) batch, got shape {batch.shape}")
    n, _, h, w = batch.shape
    if h < 1 or w < 1:
        raise InputError(f"empty image ({h}x{w})")
    t = round_tile(tile, spec)
    ov = default_overlap(t, spec) if overlap is None else int(overlap)
    if ov < 0 or ov >= t:
        raise InputError(f"tile overlap must be in 0..{t - 1} for tile {t}, got {ov}")
    s = spec.scale
    ys, xs = tile_starts(h, t, ov), tile_starts(w, t, ov)
    th, tw = min(t, h), min(t, w)
    acc = np.zeros((n, 3, h * s, w * s), dtype=np.float32)  # (N, 3, sH, sW)
    weight = np.zeros((h * s, w * s), dtype=np.float32)  # (sH, sW)
    wy = [ramp_weights(ys, t, h, i, s) for i in range(len(ys))]
    wx = [ramp_weights(xs, t, w, j, s) for j in range(len(xs))]
    coords = [(i, j) for i in range(len(ys)) for j in range(len(xs))]
    step = max(1, int(tiles_per_call))
    # Tiles of several images of the batch are sent together only when N == 1; for N > 1 the
    # batch dimension already amortises the per-call cost.
    per_call = step if n == 1 else 1
    for k in range(0, len(coords), per_call):
        group = coords[k : k + per_call]
        tiles = np.concatenate(
            [batch[:, :, ys[i] : ys[i] + th, xs[j] : xs[j] + tw] for i, j in group]
        ).astype(np.float32, copy=False)  # (len(group) * N, 3, th, tw)
        out = infer(tiles)  # (len(group) * N, 3, s*th, s*tw)
        if out.shape[2:] != (th * s, tw * s):
            raise InputError(
                f"tiled inference returned {out.shape[2:]} for a {th}x{tw} tile (scale {s})"
            )
        for g, (i, j) in enumerate(group):
            y0, x0 = ys[i] * s, xs[j] * s
            wt = wy[i][:, None] * wx[j][None, :]  # (s*th, s*tw)
            region = (slice(None), slice(None), slice(y0, y0 + th * s), slice(x0, x0 + tw * s))
            acc[region] += out[g * n : (g + 1) * n] * wt
            weight[y0 : y0 + th * s, x0 : x0 + tw * s] += wt
    return acc, weight


def _normalise(acc: np.ndarray, weight: np.ndarray) -> None:
    for r in range(0, acc.shape[2], _FINISH_ROWS):
        acc[:, :, r : r + _FINISH_ROWS] /= weight[r : r + _FINISH_ROWS]


def needs_tiling(height: int, width: int, max_hw: tuple[int, int] | None, spec: ModelSpec) -> bool:
    """Whether an image padded to the network's multiple exceeds a backend's largest shape."""
    if max_hw is None:
        return False
    from perceptual_edge.image import padded_size

    ph, pw = padded_size(height, width, spec.multiple, spec.min_size)
    return ph > max_hw[0] or pw > max_hw[1]
