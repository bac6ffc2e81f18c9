"""Optical flow between consecutive frames (OpenCV DIS), its occlusion mask, and the warping
error of one frame pair: shared by `pe eval video` (perceptual_edge/paper/temporal.py) and the
flow-guided blending of `pe run --temporal` (runtime/temporal.py). OpenCV is an extra:
`perceptual-edge[flow]` (opencv-python-headless)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from perceptual_edge.errors import UnavailableError

FB_ALPHA, FB_BETA = 0.01, 0.5  # forward-backward consistency (Sundaram et al. 2010)


def import_cv2() -> Any:
    try:
        import cv2
    except ImportError as e:
        raise UnavailableError(
            f"optical flow needs OpenCV ({e}); install perceptual-edge[flow] "
            "(opencv-python-headless)"
        ) from None
    return cv2


def frames(path: str | os.PathLike[str], limit: int | None = None) -> Iterator[np.ndarray]:
    """(H, W, 3) uint8 frames of a video, in order."""
    from perceptual_edge.video.formats import VideoFrame
    from perceptual_edge.video.reader import VideoReader

    with VideoReader(path) as reader:
        n = 0
        for item in reader:
            if isinstance(item, VideoFrame):
                yield item.image
                n += 1
                if limit is not None and n >= limit:
                    return


def _grey(cv2: Any, image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


class FlowPair:
    """Flow between two consecutive frames: `backward` maps frame t to frame t-1
    (frame_t(p) ~ frame_{t-1}(p + backward(p))), and the occlusion mask of frame t."""

    def __init__(self, cv2: Any, dis: Any, prev: np.ndarray, cur: np.ndarray) -> None:
        g0, g1 = _grey(cv2, prev), _grey(cv2, cur)
        self.backward = dis.calc(g1, g0, None)  # (H, W, 2): x, y displacement
        forward = dis.calc(g0, g1, None)
        h, w = g1.shape
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        self.map_x = xs + self.backward[..., 0]
        self.map_y = ys + self.backward[..., 1]
        inside = (self.map_x >= 0) & (self.map_x <= w - 1) & (self.map_y >= 0)
        inside &= self.map_y <= h - 1
        ff = cv2.remap(forward, self.map_x, self.map_y, cv2.INTER_LINEAR)
        err = np.sum((self.backward + ff) ** 2, axis=2)
        bound = FB_ALPHA * (np.sum(self.backward**2, axis=2) + np.sum(ff**2, axis=2)) + FB_BETA
        self.mask = (inside & (err <= bound)).astype(np.float32)  # 1: visible in both frames

    def warp(self, cv2: Any, image: np.ndarray, interp: str = "linear") -> np.ndarray:
        """Frame t-1's image brought onto frame t's pixels (bilinear, or `cubic`/`nearest`)."""
        mode = getattr(cv2, f"INTER_{interp.upper()}")
        return cv2.remap(image, self.map_x, self.map_y, mode, cv2.BORDER_REPLICATE)


def dis_flow(cv2: Any, preset: str = "medium") -> Any:
    """DIS optical flow: `medium` for measuring, `fast` where it runs beside inference."""
    return cv2.DISOpticalFlow_create(getattr(cv2, f"DISOPTICAL_FLOW_PRESET_{preset.upper()}"))


def pair_error(cv2: Any, flow: FlowPair, prev: np.ndarray, cur: np.ndarray) -> float:
    """Masked mean over pixels of ||cur - warp(prev)||^2 (RGB in 0..1, summed over channels)."""
    warped = flow.warp(cv2, prev.astype(np.float32) / 255.0)
    d = np.sum((cur.astype(np.float32) / 255.0 - warped) ** 2, axis=2)
    m = flow.mask
    total = float(m.sum())
    return float((d * m).sum() / total) if total > 0 else 0.0
