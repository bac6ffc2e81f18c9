"""The standard super-resolution scoring protocol, in numpy only (no torch).

As in RCAN/BasicSR and the MATLAB scripts behind the published tables:

1. HR is cropped (top-left) to a multiple of the factor (`mod_crop`).
2. LR = MATLAB ``imresize(HR, 1/f, 'bicubic')`` on uint8, anti-aliased (`imresize`); the paper's
   training degradation adds a Gaussian blur before it (`degrade(..., blur_sigma=1.0)`).
3. Output and HR go to the Y channel of MATLAB ``rgb2ycbcr`` (16..235) as float64 (`rgb_to_y`).
4. `factor` pixels are cropped at every border (`crop_border`).
5. PSNR with peak 255 and SSIM of Wang et al. (Gaussian window 11, sigma 1.5, K1 0.01,
   K2 0.03, L 255, valid region) per image; callers average per image.

`imresize` follows MATLAB's imresize.m: cubic kernel with a = -0.5 and width 4, widened by
1/scale when shrinking (anti-aliasing), weights per output pixel normalised to sum 1, borders
by mirror indexing (``aux = [1:n, n:-1:1]``), one dimension at a time starting with the one
of smallest scale (rows first on a tie). On uint8 input MATLAB keeps the intermediate result
in the input class, so each pass is rounded and saturated to uint8; we do the same.
Each pass is a few gathers (one per kernel tap) with per-output-pixel weights, so a Set14
image takes milliseconds.
"""

from __future__ import annotations

import math

import numpy as np

from perceptual_edge.image import gaussian_blur
from perceptual_edge.metrics import PSNR_PEAK, SSIM_WINDOW, ssim  # noqa: F401 (re-exported)

CUBIC_A = -0.5
CUBIC_WIDTH = 4.0
# ITU-R BT.601 luma as MATLAB's rgb2ycbcr writes it, for RGB in 0..1 -> Y in 16..235.
Y_COEFFS = (65.481, 128.553, 24.966)
Y_OFFSET = 16.0
# The blur of the paper's degradation: a Gaussian truncated at 3 sigma (7x7 for sigma 1),
# normalised, with symmetric borders (MATLAB imfilter(..., 'symmetric')).
BLUR_TRUNCATE = 3.0


def cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB's 'cubic')."""
    ax = np.abs(x)
    ax2 = ax * ax
    ax3 = ax2 * ax
    a = CUBIC_A
    near = ((a + 2) * ax3 - (a + 3) * ax2 + 1) * (ax <= 1)
    far = (a * ax3 - 5 * a * ax2 + 8 * a * ax - 4 * a) * ((ax > 1) & (ax <= 2))
    return near + far


def mirror_index(idx: np.ndarray, length: int) -> np.ndarray:
    """0-based indices folded into 0..length-1 the way MATLAB's ``aux = [1:n, n:-1:1]`` does
    (the edge sample is repeated: -1 -> 0, n -> n-1)."""
    j = np.mod(idx, 2 * length)
    return np.where(j < length, j, 2 * length - 1 - j)


def resize_taps(
    in_len: int, out_len: int, scale: float, antialias: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """MATLAB imresize's contributions along one dimension: 0-based input indices (already
    mirrored into range) and their normalised weights, both (out_len, taps)."""
    if antialias and scale < 1:
        width = CUBIC_WIDTH / scale

        def kernel(d: np.ndarray) -> np.ndarray:
            return scale * cubic(scale * d)
    else:
        width = CUBIC_WIDTH
        kernel = cubic
    x = np.arange(1, out_len + 1, dtype=np.float64)  # 1-based output coordinates, as MATLAB
    u = x / scale + 0.5 * (1 - 1 / scale)  # their centres in input coordinates
    left = np.floor(u - width / 2)
    taps = math.ceil(width) + 2
    idx = left[:, None] + np.arange(taps)[None, :]  # (out, taps), 1-based
    w = kernel(u[:, None] - idx)
    w = w / w.sum(axis=1, keepdims=True)
    return mirror_index(idx.astype(np.int64) - 1, in_len), w


def resize_weights(in_len: int, out_len: int, scale: float, antialias: bool = True) -> np.ndarray:
    """The same contributions as a dense (out_len, in_len) matrix (for tests and inspection)."""
    idx, w = resize_taps(in_len, out_len, scale, antialias)
    mat = np.zeros((out_len, in_len), dtype=np.float64)
    # Mirrored taps can land on the same input sample; their weights add up.
    np.add.at(mat, (np.repeat(np.arange(out_len), idx.shape[1]), idx.ravel()), w.ravel())
    return mat


def _resize_rows(a: np.ndarray, idx: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Resample axis 0 of `a` (H, ...) -> (out, ...) with (out, taps) indices and weights.

    One gather per tap (a handful) instead of a dense product, most of whose weights are zero.
    """
    extra = (1,) * (a.ndim - 1)
    out = np.zeros((idx.shape[0],) + a.shape[1:], dtype=np.float64)
    for t in range(idx.shape[1]):
        out += w[:, t].reshape((-1,) + extra) * a[idx[:, t]]
    return out


def _to_uint8(x: np.ndarray) -> np.ndarray:
    # MATLAB's conversion to uint8 saturates and rounds half away from zero (np.rint would
    # round half to even).
    return np.floor(np.clip(x, 0.0, 255.0) + 0.5).astype(np.uint8)


def imresize(
    image: np.ndarray,
    scale: float | None = None,
    shape: tuple[int, int] | None = None,
    antialias: bool = True,
) -> np.ndarray:
    """MATLAB ``imresize(image, scale)`` / ``imresize(image, [rows cols])``, method bicubic.

    `image` is (H, W) or (H, W, C), uint8 or float. uint8 in -> uint8 out (every pass rounded
    and saturated as MATLAB does); float in -> float64 out, not rounded or clipped.
    """
    img = np.asarray(image)
    if img.ndim not in (2, 3) or img.shape[0] < 1 or img.shape[1] < 1:
        raise ValueError(f"imresize: expected an (H, W) or (H, W, C) image, got {img.shape}")
    in_shape = img.shape[:2]
    if shape is not None:
        out_shape = (int(shape[0]), int(shape[1]))
        scales = (out_shape[0] / in_shape[0], out_shape[1] / in_shape[1])
    elif scale is not None and scale > 0:
        scales = (float(scale), float(scale))
        out_shape = (math.ceil(scale * in_shape[0]), math.ceil(scale * in_shape[1]))
    else:
        raise ValueError("imresize: give a positive scale or an output shape")
    if min(out_shape) < 1:
        raise ValueError(f"imresize: output shape {out_shape} is empty")
    is_uint8 = img.dtype == np.uint8
    out = img.astype(np.float64)
    for dim in np.argsort(scales, kind="stable"):
        idx, w = resize_taps(in_shape[dim], out_shape[dim], scales[dim], antialias)
        if dim == 0:
            out = _resize_rows(out, idx, w)  # (out_h, W[, C])
        else:
            # Rows are contiguous gathers; columns are not, so transpose around the pass.
            cols_first = np.ascontiguousarray(np.swapaxes(out, 0, 1))
            out = np.ascontiguousarray(np.swapaxes(_resize_rows(cols_first, idx, w), 0, 1))
        if is_uint8:
            out = _to_uint8(out)
    return out if is_uint8 else out.astype(np.float64)


def mod_crop(image: np.ndarray, factor: int) -> np.ndarray:
    """Crop (top-left) to the largest size that is a multiple of `factor`."""
    h, w = image.shape[:2]
    return image[: h - h % factor, : w - w % factor]


def degrade(hr: np.ndarray, factor: int, blur_sigma: float | None = None) -> np.ndarray:
    """The LR input of the protocol: [Gaussian blur, then] MATLAB bicubic down by `factor`.

    `hr` must already be mod-cropped; uint8 in, uint8 out.
    """
    h, w = hr.shape[:2]
    if h % factor or w % factor:
        raise ValueError(f"degrade: {h}x{w} is not a multiple of {factor}; mod_crop it first")
    # MATLAB's imfilter(..., 'symmetric') on uint8 rounds back to uint8.
    src = _to_uint8(gaussian_blur(hr, blur_sigma, "symmetric", BLUR_TRUNCATE)) if blur_sigma else hr
    return imresize(src, shape=(h // factor, w // factor))


def bicubic_upscale(lr: np.ndarray, factor: int) -> np.ndarray:
    """The bicubic baseline: MATLAB bicubic up by `factor` (uint8 in, uint8 out)."""
    return imresize(lr, shape=(lr.shape[0] * factor, lr.shape[1] * factor))


def degradation_description(factor: int, blur_sigma: float | None = None) -> str:
    down = f"MATLAB bicubic x1/{factor} (anti-aliased, uint8)"
    if not blur_sigma:
        return down
    size = 2 * max(1, math.ceil(BLUR_TRUNCATE * blur_sigma)) + 1
    return (
        f"Gaussian blur sigma={blur_sigma:g} ({size}x{size}, truncated at "
        f"{BLUR_TRUNCATE:g} sigma, symmetric borders) + {down}"
    )


def rgb_to_y(image: np.ndarray) -> np.ndarray:
    """Y of MATLAB rgb2ycbcr (16..235) as float64, from 0..255 RGB (H, W, 3) or gray (H, W).

    Not rounded: the reference scripts convert im2double images and keep doubles.
    """
    a = np.asarray(image, dtype=np.float64)
    if a.ndim == 2:
        return Y_OFFSET + a * (sum(Y_COEFFS) / 255.0)
    if a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"rgb_to_y: expected (H, W, 3) or (H, W), got {a.shape}")
    r, g, b = Y_COEFFS
    return Y_OFFSET + (r * a[..., 0] + g * a[..., 1] + b * a[..., 2]) / 255.0


def crop_border(image: np.ndarray, border: int) -> np.ndarray:
    if border <= 0:
        return image
    return image[border:-border, border:-border]


def psnr(a: np.ndarray, b: np.ndarray, peak: float = PSNR_PEAK) -> float:
    """PSNR in dB of two same-shape arrays (inf when identical)."""
    if a.shape != b.shape:
        raise ValueError(f"psnr: shapes differ: {a.shape} vs {b.shape}")
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(peak * peak / mse)


def score_y(output: np.ndarray, hr: np.ndarray, border: int) -> tuple[float, float]:
    """(PSNR, SSIM) of an SR output against its HR on Y with `border` pixels cropped."""
    if output.shape[:2] != hr.shape[:2]:
        raise ValueError(f"score_y: output {output.shape} and HR {hr.shape} differ in size")
    y_out = crop_border(rgb_to_y(output), border)
    y_hr = crop_border(rgb_to_y(hr), border)
    return psnr(y_out, y_hr), ssim(y_out, y_hr)


def match_histograms(image: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Per-channel histogram matching of `image` to `reference` (uint8 in, uint8 out).

    Each value of `image` maps to the reference value at the same quantile (CDF matching);
    the two may differ in size (here: the SR output and its LR input).
    """
    img = np.asarray(image)
    ref = np.asarray(reference)
    if img.ndim != ref.ndim or (img.ndim == 3 and img.shape[2] != ref.shape[2]):
        raise ValueError(f"match_histograms: channels differ: {img.shape} vs {ref.shape}")
    if img.ndim == 2:
        return match_histograms(img[..., None], ref[..., None])[..., 0]
    out = np.empty(img.shape, dtype=np.float64)
    for c in range(img.shape[2]):
        src = img[..., c].ravel()
        s_vals, s_inv, s_counts = np.unique(src, return_inverse=True, return_counts=True)
        r_vals, r_counts = np.unique(ref[..., c].ravel(), return_counts=True)
        s_q = np.cumsum(s_counts) / src.size
        r_q = np.cumsum(r_counts) / r_counts.sum()
        mapped = np.interp(s_q, r_q, r_vals.astype(np.float64))
        out[..., c] = mapped[s_inv].reshape(img.shape[:2])
    return _to_uint8(out)
