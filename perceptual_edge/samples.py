"""Sample images the project makes itself, so the main job and the tests need no data set.

Deterministic for a given seed. The content images look like simple photographs (sky
gradient, horizon, hills, soft-edged objects, fine texture and sensor noise) rather than pure
noise, so that networks, FP16 numerics and tiling are exercised on natural image statistics.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from perceptual_edge.errors import InputError
from perceptual_edge.fsutil import atomic_path
from perceptual_edge.image import save_image


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    """Value noise: a coarse random grid bilinearly upsampled, (H, W) in 0..1."""
    gh, gw = max(2, cells), max(2, int(round(cells * w / max(h, 1))) or 2)
    grid = rng.random((gh + 1, gw + 1))
    ys = np.linspace(0, gh, h, endpoint=False)
    xs = np.linspace(0, gw, w, endpoint=False)
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    fy, fx = fy * fy * (3 - 2 * fy), fx * fx * (3 - 2 * fx)  # smoothstep: no grid creases
    a = grid[y0][:, x0]
    b = grid[y0][:, x0 + 1]
    c = grid[y0 + 1][:, x0]
    d = grid[y0 + 1][:, x0 + 1]
    return a * (1 - fy) * (1 - fx) + b * (1 - fy) * fx + c * fy * (1 - fx) + d * fy * fx


def content_image(seed: int, height: int = 256, width: int = 256) -> np.ndarray:
    """A photograph-like scene, (H, W, 3) uint8 RGB."""
    rng = np.random.default_rng(seed)
    h, w = height, width
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    v, u = yy / max(h - 1, 1), xx / max(w - 1, 1)
    sky_top = rng.uniform([40, 80, 150], [120, 160, 240])
    sky_bot = rng.uniform([170, 180, 200], [250, 240, 250])
    img = sky_top * (1 - v[..., None]) + sky_bot * v[..., None]
    # Rolling hills: a horizon line from smooth noise, ground coloured with texture.
    horizon = 0.45 + 0.25 * (_smooth_noise(rng, w, 1, 3)[:, 0] - 0.5) + rng.uniform(-0.1, 0.1)
    ground = v > horizon[None, :]
    ground_col = rng.uniform([30, 60, 20], [140, 150, 90])
    tex = _smooth_noise(rng, h, w, 24)[..., None]
    img = np.where(ground[..., None], ground_col * (0.6 + 0.8 * tex), img)
    # A few soft-edged objects (sun, trees, houses).
    for _ in range(int(rng.integers(3, 7))):
        cy, cx = rng.uniform(0.1, 0.9) * h, rng.uniform(0.05, 0.95) * w
        r = rng.uniform(0.04, 0.15) * min(h, w)
        col = rng.uniform(0, 255, 3)
        if rng.random() < 0.5:
            dist = np.hypot(yy - cy, xx - cx) / max(r, 1)
        else:
            dist = np.maximum(np.abs(yy - cy), np.abs(xx - cx) * 0.7) / max(r, 1)
        alpha = np.clip((1.0 - dist) * 4.0, 0, 1)[..., None]
        img = img * (1 - alpha) + col * alpha
    # Fine detail and sensor noise, as in a real photo.
    img += 18 * (_smooth_noise(rng, h, w, max(4, min(h, w) // 6)) - 0.5)[..., None]
    img += rng.normal(0, 3.0, img.shape)
    img *= 0.85 + 0.3 * u[..., None] * 0.5  # a gentle vignette-like shading
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def style_image(height: int = 256, width: int = 384, seed: int = 7) -> np.ndarray:
    """A bold, painterly wave pattern, (H, W, 3) uint8 RGB: the project's sample style."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    warp = 12 * _smooth_noise(rng, height, width, 6)
    phase = (yy + 10 * np.sin(xx / 17.0 + warp)) / 9.0
    bands = 0.5 + 0.5 * np.sin(phase)
    crest = np.clip((bands - 0.8) * 5, 0, 1)
    deep = np.array([20, 40, 110.0])
    mid = np.array([60, 130, 190.0])
    foam = np.array([240, 235, 215.0])
    img = deep * (1 - bands[..., None]) + mid * bands[..., None]
    img = img * (1 - crest[..., None]) + foam * crest[..., None]
    strokes = _smooth_noise(rng, height, width, 40)[..., None]
    img = img * (0.75 + 0.5 * strokes)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def write_sample_dataset(
    folder: str | Path, count: int = 16, height: int = 256, width: int = 256, seed: int = 0
) -> list[Path]:
    """Write `count` content images as PNG files into `folder` (created if missing)."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        # Vary the aspect ratio so loaders and crops see non-square images too.
        hw = (height, width) if i % 3 else (height + 32 * (i % 4), width - 16 * (i % 3))
        p = out / f"sample_{i:03d}.png"
        save_image(content_image(seed + i, *hw), p, overwrite=True)
        paths.append(p)
    return paths


def write_sample_clip(
    path: str | os.PathLike[str],
    frames: int = 48,
    size: tuple[int, int] = (128, 96),
    fps: int = 24,
    with_audio: bool = True,
    seed: int = 0,
    overwrite: bool = False,
) -> Path:
    """A short clip that pans across a generated photo-like scene, with a sine-tone sound track
    (AAC where the container holds it, else its default: Opus in WebM). `size` is (width,
    height); even sizes play everywhere.
    """
    from perceptual_edge.video import VIDEO_EXTENSIONS, VIDEO_FORMATS, default_codec, import_av

    av = import_av()
    p = Path(path)
    width, height = size
    if frames < 1 or width < 2 or height < 2 or fps < 1:
        raise InputError("sample clip: need frames >= 1, width and height >= 2, fps >= 1")
    pan = max(frames // 2, 1)  # pixels to pan over the clip
    scene = content_image(seed, height, width + pan)  # (H, W + pan, 3)
    fmt = VIDEO_FORMATS.get(p.suffix.lower())
    if fmt is None:
        raise InputError(f"{p}: unknown video suffix (use one of {sorted(VIDEO_EXTENSIONS)})")
    codec = default_codec(p)
    with atomic_path(p, overwrite) as tmp, av.open(str(tmp), "w", format=fmt) as out:
        vs = out.add_stream(codec, rate=fps)
        vs.width, vs.height = width, height
        vs.pix_fmt = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
        vs.options = {"crf": "20", **({"b": "0"} if codec.startswith("libvpx") else {})}
        astream = None
        if with_audio:
            acodec = "aac" if "aac" in out.supported_codecs else out.default_audio_codec
            rate = 48000
            astream = out.add_stream(acodec, rate=rate)
            astream.layout = "mono"
        for i in range(frames):
            x = round(i * pan / max(frames - 1, 1))
            frame = av.VideoFrame.from_ndarray(
                np.ascontiguousarray(scene[:, x : x + width]), format="rgb24"
            )
            frame.pts = i
            for packet in vs.encode(frame):
                out.mux(packet)
        for packet in vs.encode(None):
            out.mux(packet)
        if astream is not None:
            _write_tone(av, out, astream, seconds=frames / fps)
    return p


def _write_tone(av: Any, out: Any, astream: Any, seconds: float) -> None:
    rate = astream.codec_context.sample_rate
    n = int(round(seconds * rate))
    t = np.arange(n) / rate
    tone = (0.2 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)  # (n,)
    fmt = astream.codec_context.format.name  # fltp for AAC, flt for libopus
    resampler = av.AudioResampler(format=fmt, layout="mono", rate=rate)
    chunk = 960
    for k in range(0, n, chunk):
        frame = av.AudioFrame.from_ndarray(
            tone[None, k : k + chunk].copy(), format="fltp", layout="mono"
        )
        frame.sample_rate = rate
        frame.pts = k
        for f in resampler.resample(frame):
            for packet in astream.encode(f):
                out.mux(packet)
    for f in resampler.resample(None):
        for packet in astream.encode(f):
            out.mux(packet)
    for packet in astream.encode(None):
        out.mux(packet)
