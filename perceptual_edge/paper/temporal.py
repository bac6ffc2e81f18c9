"""`pe eval video`: how much a styled video flickers, and whether it kept the style.

Temporal warping error (Lai et al., "Learning Blind Video Temporal Consistency", ECCV 2018):
optical flow between consecutive *input* frames (OpenCV's DIS flow, medium preset, on grey
frames), an occlusion mask from forward-backward consistency (a pixel counts where the backward
flow and the forward flow at its destination cancel: |f_b + f_f|^2 <= 0.01 (|f_b|^2 + |f_f|^2)
+ 0.5, and the destination is inside the frame), and

    E_warp = mean over t of  sum_p M_t(p) ||O_t(p) - warp(O_{t-1})(p)||^2 / sum_p M_t(p)

with RGB in 0..1 and the squared norm summed over the three channels, as in the paper. The same
figure of the input video is its floor (what motion and occlusion errors leave). The flow is
computed once, on the input, and applied to every styled video, so two styled versions of one
clip are compared on the same pixels.

Style fidelity: the mean over sampled output frames of the style loss (the sum over the style
layers of the mean squared difference of Gram matrices, train/losses.py) between the frame and
the style image on the loss network: a method cannot lower E_warp by washing the style out.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from perceptual_edge.errors import InputError
from perceptual_edge.runtime.flow import FlowPair, dis_flow, frames, import_cv2, pair_error


@dataclass
class TemporalReport:
    input: str
    frames: int
    pairs: int
    input_e_warp: float
    cuts: int = 0
    e_warp: dict[str, float] = field(default_factory=dict)  # styled video -> E_warp
    style_loss: dict[str, float] = field(default_factory=dict)  # styled video -> fidelity
    visible: float = 0.0  # mean share of pixels the occlusion mask keeps

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


def _resized(cv2: Any, image: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    if image.shape[:2] == shape[:2]:
        return image
    return cv2.resize(image, (shape[1], shape[0]), interpolation=cv2.INTER_AREA)


def warping_error(
    input_video: str | os.PathLike[str],
    styled: list[str | os.PathLike[str]],
    limit: int | None = None,
) -> TemporalReport:
    """E_warp of the input and of each styled video (same frame count expected)."""
    streams = {str(p): frames(p, limit) for p in styled}
    return warping_error_frames(frames(input_video, limit), streams, str(input_video))


def warping_error_frames(
    inputs: Iterable[np.ndarray], styled: dict[str, Iterator[np.ndarray]], name: str = "input"
) -> TemporalReport:
    """The same from frames: `inputs` and, per name, the styled frames in step with them.
    Pairs across a scene cut (runtime/temporal.py `scene_cut`, on the input) are left out:
    the flow means nothing there; `cuts` counts them."""
    from perceptual_edge.runtime.temporal import scene_cut

    cv2 = import_cv2()
    dis = dis_flow(cv2)
    prev_in: np.ndarray | None = None
    prev_out: list[np.ndarray] = []
    sums = dict.fromkeys(styled, 0.0)
    in_sum, visible, pairs, n, cuts = 0.0, 0.0, 0, 0, 0
    for frame in inputs:
        outs = []
        for key, stream in styled.items():
            out = next(stream, None)
            if out is None:
                raise InputError(f"{key}: fewer frames than {name} ({n})")
            outs.append(out)
        frame = _resized(cv2, frame, outs[0].shape) if outs else frame
        if prev_in is not None and scene_cut(prev_in, frame):
            cuts += 1
        elif prev_in is not None:
            flow = FlowPair(cv2, dis, prev_in, frame)
            in_sum += pair_error(cv2, flow, prev_in, frame)
            for key, a, b in zip(styled, prev_out, outs, strict=True):
                sums[key] += pair_error(cv2, flow, _resized(cv2, a, b.shape), b)
            visible += float(flow.mask.mean())
            pairs += 1
        prev_in, prev_out = frame, outs
        n += 1
    if pairs == 0:
        raise InputError(f"{name}: needs at least two consecutive frames of one shot")
    return TemporalReport(
        input=name,
        frames=n,
        pairs=pairs,
        cuts=cuts,
        input_e_warp=in_sum / pairs,
        e_warp={k: v / pairs for k, v in sums.items()},
        visible=visible / pairs,
    )


def style_fidelity(
    styled: str | os.PathLike[str],
    style: str | os.PathLike[str],
    loss_net: str = "vgg16",
    vgg_weights: str | os.PathLike[str] | None = None,
    samples: int = 8,
    size: int = 256,
) -> float:
    """Mean style loss of `samples` evenly spaced frames (shorter side `size`) to the style."""
    import torch

    from perceptual_edge.image import image_to_batch, load_image, resize_shorter_side
    from perceptual_edge.train.defaults import STYLE_LAYERS
    from perceptual_edge.train.losses import gram, style_loss
    from perceptual_edge.train.vgg import load_loss_network

    vgg = load_loss_network(loss_net, STYLE_LAYERS, vgg_weights)
    all_frames = list(frames(styled))
    picks = np.linspace(0, len(all_frames) - 1, min(samples, len(all_frames))).round()
    with torch.no_grad():
        target_img = resize_shorter_side(load_image(Path(style)), size)
        target = vgg(torch.from_numpy(image_to_batch(target_img)))
        grams = {k: gram(v) for k, v in target.items()}
        losses = []
        for i in dict.fromkeys(int(p) for p in picks):
            x = torch.from_numpy(image_to_batch(resize_shorter_side(all_frames[i], size)))
            losses.append(float(style_loss(vgg(x), grams, STYLE_LAYERS)))
    return float(np.mean(losses))


def write_strip(
    rows: list[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    start: int = 0,
    count: int = 5,
    height: int = 160,
    overwrite: bool = False,
) -> Path:
    """A PNG of `count` consecutive frames from `start`, one row per video (input first)."""
    from perceptual_edge.image import resize, save_image

    lines = []
    for path in rows:
        picked = list(frames(path, start + count))[start:]
        if len(picked) < count:
            raise InputError(f"{path}: fewer than {start + count} frames")
        scaled = [
            resize(f, height, max(1, round(f.shape[1] * height / f.shape[0]))) for f in picked
        ]
        lines.append(np.concatenate(scaled, axis=1))
    width = min(line.shape[1] for line in lines)
    strip = np.concatenate([line[:, :width] for line in lines], axis=0)
    return save_image(strip, out, overwrite=overwrite)
