"""Image-comparison metrics from their definitions, numpy only (no torch, no stage imports):
used by export verification (any precision against the PyTorch reference) and by the SR scoring
protocol in perceptual_edge.paper.srmetrics.
"""

from __future__ import annotations

import numpy as np

from perceptual_edge.image import separable_filter

PSNR_PEAK = 255.0
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03


def ssim(a: np.ndarray, b: np.ndarray, data_range: float = PSNR_PEAK) -> float:
    """Mean SSIM of Wang et al. over the valid region of an 11x11 Gaussian (sigma 1.5) window.

    `a`, `b`: (H, W) arrays with H, W >= 11 (the Y channel, float64).
    """
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"ssim: expected two same-shape 2-D arrays, got {a.shape}, {b.shape}")
    if min(a.shape) < SSIM_WINDOW:
        raise ValueError(f"ssim: {a.shape} is smaller than the {SSIM_WINDOW}x{SSIM_WINDOW} window")
    x = np.asarray(a, np.float64)
    y = np.asarray(b, np.float64)
    # fspecial('gaussian', 11, 1.5) is the outer product of this normalised 1-D kernel.
    t = np.arange(SSIM_WINDOW, dtype=np.float64) - (SSIM_WINDOW - 1) / 2
    k = np.exp(-(t * t) / (2 * SSIM_SIGMA**2))
    k /= k.sum()

    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    # All five local statistics in one pass over a (H, W, 5) stack.
    f = separable_filter(np.stack([x, y, x * x, y * y, x * y], axis=-1), k)
    mu_x, mu_y = f[..., 0], f[..., 1]
    mu_xx, mu_yy, mu_xy = mu_x * mu_x, mu_y * mu_y, mu_x * mu_y
    s_xx = f[..., 2] - mu_xx
    s_yy = f[..., 3] - mu_yy
    s_xy = f[..., 4] - mu_xy
    num = (2 * mu_xy + c1) * (2 * s_xy + c2)
    den = (mu_xx + mu_yy + c1) * (s_xx + s_yy + c2)
    return float(np.mean(num / den))


def ssim_rgb(a: np.ndarray, b: np.ndarray, data_range: float = PSNR_PEAK) -> float:
    """Mean SSIM over the channels of two (3, H, W) images (each channel as `ssim`)."""
    return float(np.mean([ssim(x, y, data_range) for x, y in zip(a, b, strict=True)]))
