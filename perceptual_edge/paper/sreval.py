"""`pe eval sr`: score a super-resolution model, or the bicubic baseline, on a folder of HR images
with the standard protocol of `perceptual_edge.paper.srmetrics`.

    result = evaluate_sr("Set5/", factor=4, model="sr4.onnx", histogram_match=True)
    print(format_table(result)); json.dumps(result.to_dict())

Models: any file `perceptual_edge.models.open_model` opens (.onnx/.engine through the torch-free
runtime; .pth through the PyTorch reference, torch imported only then). Every model
sees the LR image as uint8 and its output is rounded to uint8, as a saved result would be.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from perceptual_edge.errors import InputError
from perceptual_edge.image import iter_image_files, load_image
from perceptual_edge.paper import srmetrics
from perceptual_edge.spec import ModelSpec

SUPPORTED_FACTORS = (2, 3, 4, 8)
PROTOCOL = (
    "HR mod-cropped to the factor; Y of MATLAB rgb2ycbcr (16..235, float64); "
    "border of `factor` px cropped; PSNR peak 255 and SSIM (Gaussian 11x11, sigma 1.5, "
    "K1 0.01, K2 0.03, L 255, valid) per image, then mean"
)
GRID_IMAGES = 3  # how many images the crop grid shows
GRID_CROP = 128  # side of each HR crop in the grid, in pixels
MAX_PIXELS = 64_000_000  # refuse absurdly large HR files with one line instead of swapping


class Upscaler(Protocol):
    name: str

    def __call__(self, lr: np.ndarray) -> np.ndarray:  # (h, w, 3) uint8 -> (fh, fw, 3) uint8
        ...

    def close(self) -> None: ...


class _SessionUpscaler:
    """Any model file through `perceptual_edge.models.open_model` (it pads and crops)."""

    def __init__(self, path: Path, device: str | None = None) -> None:
        from perceptual_edge.models import open_model

        self._session = open_model(path, device=device)
        self.spec: ModelSpec = self._session.spec
        self.name = f"{path.name} ({self._session.backend_name})"

    def __call__(self, lr: np.ndarray) -> np.ndarray:
        return self._session.run(lr)

    def close(self) -> None:
        self._session.close()


class _BicubicUpscaler:
    def __init__(self, factor: int) -> None:
        self.factor = factor
        self.name = "bicubic (MATLAB imresize)"

    def __call__(self, lr: np.ndarray) -> np.ndarray:
        return srmetrics.bicubic_upscale(lr, self.factor)

    def close(self) -> None:
        return None


def open_upscaler(
    model: str | os.PathLike[str], factor: int, device: str | None = None
) -> Upscaler:
    """Load a model file and check it is an SR network of this factor."""
    p = Path(model)
    up = _SessionUpscaler(p, device)
    if up.spec.kind != "sr":
        up.close()
        raise InputError(f"{p}: a {up.spec.kind} network, not a super-resolution one")
    if up.spec.scale != factor:
        up.close()
        raise InputError(
            f"{p}: a x{up.spec.scale} network, but --factor is {factor}; "
            f"use --factor {up.spec.scale}"
        )
    return up


@dataclass
class ImageScore:
    name: str
    size: tuple[int, int]  # HR (H, W) after the mod-crop
    psnr: float
    ssim: float
    bicubic_psnr: float
    bicubic_ssim: float
    psnr_hm: float | None = None  # after histogram matching to the LR input
    ssim_hm: float | None = None
    seconds_model: float = 0.0
    seconds_protocol: float = 0.0  # degradation + bicubic + Y + PSNR + SSIM, numpy


@dataclass
class SrEvalResult:
    method: str  # "model" | "bicubic"
    model: str | None
    factor: int
    degradation: str
    blur_sigma: float | None
    histogram_match: bool
    data: str
    images: list[ImageScore] = field(default_factory=list)
    grid: str | None = None

    def _mean(self, attr: str) -> float | None:
        vals = [getattr(s, attr) for s in self.images]
        if not vals or any(v is None for v in vals):
            return None
        return float(np.mean(vals))

    @property
    def mean_psnr(self) -> float:
        m = self._mean("psnr")
        return math.nan if m is None else m

    @property
    def mean_ssim(self) -> float:
        m = self._mean("ssim")
        return math.nan if m is None else m

    def to_dict(self) -> dict[str, Any]:
        """One JSON-safe dict (an infinite PSNR, from identical images, becomes null)."""

        def clean(v: Any) -> Any:
            if isinstance(v, float) and not math.isfinite(v):
                return None
            if isinstance(v, dict):
                return {k: clean(x) for k, x in v.items()}
            if isinstance(v, list | tuple):
                return [clean(x) for x in v]
            return v

        n = len(self.images)
        d = {
            "method": self.method,
            "model": self.model,
            "factor": self.factor,
            "degradation": self.degradation,
            "blur_sigma": self.blur_sigma,
            "protocol": PROTOCOL,
            "data": self.data,
            "count": n,
            "mean_psnr": self.mean_psnr,
            "mean_ssim": self.mean_ssim,
            "mean_bicubic_psnr": self._mean("bicubic_psnr"),
            "mean_bicubic_ssim": self._mean("bicubic_ssim"),
            "histogram_match": self.histogram_match,
            "mean_psnr_hm": self._mean("psnr_hm"),
            "mean_ssim_hm": self._mean("ssim_hm"),
            "seconds_per_image_model": (
                self._mean("seconds_model") if self.method == "model" else None
            ),
            "seconds_per_image_protocol": self._mean("seconds_protocol"),
            "images": [asdict(s) for s in self.images],
            "grid": self.grid,
        }
        return clean(d)


def hr_files(data: str | os.PathLike[str], limit: int | None = None) -> list[Path]:
    p = Path(data)
    if not p.exists():
        raise InputError(f"{p}: no such folder")
    if not p.is_dir():
        raise InputError(f"{p}: not a folder (give a folder of HR images)")
    files = list(iter_image_files(p))
    if not files:
        raise InputError(f"{p}: no image files found")
    if limit is not None:
        if limit < 1:
            raise InputError(f"--limit must be >= 1, got {limit}")
        files = files[:limit]
    return files


def _check_options(factor: int, blur: float | None) -> None:
    if factor not in SUPPORTED_FACTORS:
        raise InputError(f"--factor must be one of {SUPPORTED_FACTORS}, got {factor}")
    if blur is not None and (not math.isfinite(blur) or blur < 0 or blur > 10):
        raise InputError(f"--blur must be a sigma between 0 and 10, got {blur}")


def evaluate_sr(
    data: str | os.PathLike[str],
    factor: int = 4,
    model: str | os.PathLike[str] | None = None,
    blur: float | None = None,
    histogram_match: bool = False,
    limit: int | None = None,
    grid: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    device: str | None = None,
    progress: Callable[[ImageScore], None] | None = None,
) -> SrEvalResult:
    """Score `model` (or the bicubic baseline when None) on every HR image under `data`."""
    _check_options(factor, blur)
    blur = blur or None
    files = hr_files(data, limit)
    if grid is not None:
        from perceptual_edge.fsutil import check_output

        check_output(grid, overwrite)
        if Path(grid).suffix.lower() != ".png":
            raise InputError(f"{grid}: the crop grid is written as PNG; name it *.png")
    up: Upscaler = (
        open_upscaler(model, factor, device) if model is not None else _BicubicUpscaler(factor)
    )
    result = SrEvalResult(
        method="model" if model is not None else "bicubic",
        model=str(model) if model is not None else None,
        factor=factor,
        degradation=srmetrics.degradation_description(factor, blur),
        blur_sigma=blur,
        histogram_match=histogram_match,
        data=str(data),
    )
    crops: list[tuple[str, list[np.ndarray]]] = []
    try:
        for path in files:
            score, panels = _score_one(path, factor, blur, up, histogram_match, model is not None)
            result.images.append(score)
            if len(crops) < GRID_IMAGES:
                crops.append((score.name, panels))
            if progress is not None:
                progress(score)
    finally:
        up.close()
    if grid is not None:
        labels = ["bicubic", "model", "HR"] if model is not None else ["bicubic", "HR"]
        result.grid = str(write_crop_grid(crops, labels, grid, overwrite))
    return result


def _score_one(
    path: Path,
    factor: int,
    blur: float | None,
    up: Upscaler,
    histogram_match: bool,
    has_model: bool,
) -> tuple[ImageScore, list[np.ndarray]]:
    hr = srmetrics.mod_crop(load_image(path, max_pixels=MAX_PIXELS), factor)
    h, w = hr.shape[:2]
    # The SSIM window needs 11 px after the border crop, the network a few LR pixels.
    if min(h, w) < max(2 * factor + srmetrics.SSIM_WINDOW, 8 * factor):
        raise InputError(f"{path}: {w}x{h} is too small to score at x{factor}")
    t0 = time.perf_counter()
    lr = srmetrics.degrade(hr, factor, blur)
    bicubic = srmetrics.bicubic_upscale(lr, factor)
    b_psnr, b_ssim = srmetrics.score_y(bicubic, hr, factor)
    t1 = time.perf_counter()
    out = up(lr) if has_model else bicubic
    t2 = time.perf_counter()
    if out.shape != hr.shape:
        raise InputError(f"{path}: the model gave {out.shape}, expected {hr.shape}")
    psnr, ssim = (b_psnr, b_ssim) if not has_model else srmetrics.score_y(out, hr, factor)
    score = ImageScore(path.name, (h, w), psnr, ssim, b_psnr, b_ssim, seconds_model=t2 - t1)
    if histogram_match:
        score.psnr_hm, score.ssim_hm = srmetrics.score_y(
            srmetrics.match_histograms(out, lr), hr, factor
        )
    score.seconds_protocol = (t1 - t0) + (time.perf_counter() - t2)
    panels = [bicubic, out, hr] if has_model else [bicubic, hr]
    return score, [_center_crop(p, GRID_CROP) for p in panels]


def _center_crop(image: np.ndarray, side: int) -> np.ndarray:
    h, w = image.shape[:2]
    ch, cw = min(side, h), min(side, w)
    top, left = (h - ch) // 2, (w - cw) // 2
    return image[top : top + ch, left : left + cw]


def write_crop_grid(
    rows: list[tuple[str, list[np.ndarray]]],
    labels: list[str],
    path: str | os.PathLike[str],
    overwrite: bool = False,
    scale: int = 2,
) -> Path:
    """One row per image, one column per panel (e.g. bicubic | model | HR), with captions.

    Crops are enlarged `scale` times with nearest neighbour so single pixels stay visible.
    """
    from PIL import Image, ImageDraw

    from perceptual_edge.image import resize, save_image

    if not rows:
        raise InputError("no images to put in the grid")
    gap, caption = 4, 14
    cell_h = max(p.shape[0] for _, panels in rows for p in panels) * scale
    cell_w = max(p.shape[1] for _, panels in rows for p in panels) * scale
    ncols = len(labels)
    width = ncols * cell_w + (ncols + 1) * gap
    height = len(rows) * (cell_h + caption + gap) + gap
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for r, (name, panels) in enumerate(rows):
        y = gap + r * (cell_h + caption + gap)
        for c, (label, panel) in enumerate(zip(labels, panels, strict=True)):
            x = gap + c * (cell_w + gap)
            draw.text((x, y), f"{name}: {label}", fill=(0, 0, 0))
            big = resize(panel, panel.shape[0] * scale, panel.shape[1] * scale, "nearest")
            canvas.paste(Image.fromarray(big), (x, y + caption))
    return save_image(np.asarray(canvas), path, overwrite=overwrite)


def _fmt(v: float | None, digits: int) -> str:
    if v is None:
        return "-"
    if math.isinf(v):
        return "inf"
    return f"{v:.{digits}f}"


def format_table(result: SrEvalResult) -> str:
    """The per-image table and the means, as plain text."""
    hm = result.histogram_match
    head = ["image", "size", "PSNR", "SSIM"]
    if result.method == "model":
        head += ["bic PSNR", "bic SSIM"]
    if hm:
        head += ["PSNR hm", "SSIM hm"]
    lines = [
        f"x{result.factor} on {result.data}: {result.method}"
        + (f" {result.model}" if result.model else ""),
        f"degradation: {result.degradation}",
        f"protocol: {PROTOCOL}",
        "",
    ]

    def row(name: str, size: str, vals: list[float | None]) -> list[str]:
        digits = [2, 4] * (len(vals) // 2)
        return [name, size] + [_fmt(v, d) for v, d in zip(vals, digits, strict=True)]

    table = [head]
    for s in result.images:
        vals: list[float | None] = [s.psnr, s.ssim]
        if result.method == "model":
            vals += [s.bicubic_psnr, s.bicubic_ssim]
        if hm:
            vals += [s.psnr_hm, s.ssim_hm]
        table.append(row(s.name, f"{s.size[1]}x{s.size[0]}", vals))
    means: list[float | None] = [result.mean_psnr, result.mean_ssim]
    if result.method == "model":
        means += [result._mean("bicubic_psnr"), result._mean("bicubic_ssim")]
    if hm:
        means += [result._mean("psnr_hm"), result._mean("ssim_hm")]
    table.append(row("mean", f"{len(result.images)} img", means))
    widths = [max(len(r[i]) for r in table) for i in range(len(head))]
    for r in table:
        cells = [r[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(cells))
    t_model = result._mean("seconds_model")
    t_proto = result._mean("seconds_protocol")
    lines.append("")
    timing = f"time per image: protocol (resize, Y, PSNR, SSIM) {_fmt(t_proto, 3)} s"
    if result.method == "model":
        timing += f", model {_fmt(t_model, 3)} s"
    lines.append(timing)
    if result.grid:
        lines.append(f"crop grid: {result.grid}")
    return "\n".join(lines)
