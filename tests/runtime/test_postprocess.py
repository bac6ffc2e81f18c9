"""--max-size, --preserve-color, --strength, the Processor around a session, the progress bar."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import invert_session

from perceptual_edge.errors import InputError
from perceptual_edge.image import fit_long_side, resize
from perceptual_edge.runtime.postprocess import (
    Processor,
    RunOptions,
    blend,
    luminance,
    preserve_color,
)
from perceptual_edge.samples import content_image


def _ycbcr(img: np.ndarray) -> np.ndarray:
    """Reference JPEG YCbCr, written independently of the module under test."""
    r, g, b = (img[..., i].astype(np.float64) for i in range(3))
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = 128 - 0.168736 * r - 0.331264 * g + 0.5 * b
    cr = 128 + 0.5 * r - 0.418688 * g - 0.081312 * b
    return np.stack([y, cb, cr], axis=-1)


def test_fit_long_side():
    assert fit_long_side(480, 640, None) == (480, 640)
    assert fit_long_side(480, 640, 1000) == (480, 640)  # never upscales
    assert fit_long_side(480, 640, 320) == (240, 320)
    assert fit_long_side(1000, 10, 100) == (100, 1)
    assert fit_long_side(333, 517, 200, even=True) == (128, 200)
    assert fit_long_side(33, 21, 100, even=True) == (33, 21)  # not resized: kept odd
    assert fit_long_side(3, 3, 2, even=True) == (2, 2)


def test_preserve_color_takes_luma_from_output_and_chroma_from_reference():
    ref = content_image(1, 32, 48)
    # A mid-grey-ish stylised image, so that no channel clips after the luma swap.
    stylised = (64 + content_image(2, 32, 48) // 2).astype(np.uint8)
    out = preserve_color(ref, stylised)
    got, want_ref, want_sty = _ycbcr(out), _ycbcr(ref), _ycbcr(stylised)
    unclipped = np.all((out > 0) & (out < 255), axis=-1)
    assert unclipped.mean() > 0.9
    assert np.abs(got[..., 0] - want_sty[..., 0])[unclipped].max() < 1.0
    assert np.abs(got[..., 1:] - want_ref[..., 1:])[unclipped].max() < 1.0
    # A grey stylised image on a grey reference stays grey.
    grey = np.full((4, 4, 3), 100, np.uint8)
    assert np.array_equal(
        preserve_color(grey, np.full((4, 4, 3), 30, np.uint8))[..., 0], grey[..., 0] - 70
    )
    with pytest.raises(InputError):
        preserve_color(ref, stylised[:10])


def test_luminance_weights():
    assert luminance(np.array([255, 255, 255], np.uint8)) == pytest.approx(255.0, abs=1e-3)
    assert luminance(np.array([0, 255, 0], np.uint8)) == pytest.approx(0.587 * 255, abs=1e-3)


def test_blend_endpoints_and_midpoint():
    a = np.zeros((2, 2, 3), np.uint8)
    b = np.full((2, 2, 3), 200, np.uint8)
    assert blend(a, b, 1.0) is b
    assert blend(a, b, 0.0) is a
    assert np.all(blend(a, b, 0.25) == 50)


def test_run_options_validation():
    for bad in (
        {"strength": 1.5},
        {"strength": -0.1},
        {"max_size": 0},
        {"tile": 0},
        {"tile_overlap": 8},
    ):
        with pytest.raises(InputError):
            RunOptions(**bad)


def test_processor_batches_same_size_frames_once():
    s, backend = invert_session()
    p = Processor(s)
    frames = [content_image(i, 24, 32) for i in range(3)]
    outs = p.run_many(frames)
    assert backend.calls == [(3, 3, 24, 32)]
    for f, o in zip(frames, outs, strict=True):
        assert np.array_equal(o, 255 - f)


def test_processor_max_size_strength_and_sr_reference():
    s, _ = invert_session("sr")
    img = content_image(3, 40, 80)
    out = Processor(s, RunOptions(max_size=40)).run(img)
    assert out.shape == (80, 160, 3)  # 20x40 after --max-size, x4
    # Strength 0 gives the reference: for SR the bicubic upscale of the (resized) input.
    out0 = Processor(s, RunOptions(strength=0.0)).run(img)
    assert np.array_equal(out0, resize(img, 160, 320, "bicubic"))
    half = Processor(s, RunOptions(strength=0.5)).run(img).astype(float)
    full = Processor(s).run(img).astype(float)
    assert np.abs(half - (full + out0) / 2).max() <= 1.0


def test_processor_preserve_color_on_style():
    s, _ = invert_session()
    img = content_image(4, 32, 32)
    out = Processor(s, RunOptions(preserve_color=True)).run(img)
    # Inverting then keeping the input's chroma: the luma is inverted, the chroma is kept.
    y = _ycbcr(out)
    ok = np.all((out > 0) & (out < 255), axis=-1)
    assert np.abs(y[..., 0] - (255 - _ycbcr(img)[..., 0]))[ok].max() < 1.0
    assert np.abs(y[..., 1:] - _ycbcr(img)[..., 1:])[ok].max() < 1.0


def test_processor_tiles_each_image_through_the_session():
    s, backend = invert_session("sr")
    frames = [content_image(i, 40, 52) for i in range(2)]
    outs = Processor(s, RunOptions(tile=16, tile_overlap=4)).run_many(frames)
    # Tiled: one image at a time, in 16x16 tiles (x4 out), never the whole 40x52 frame.
    assert backend.calls and all(c[0] == 1 and c[2:] == (16, 16) for c in backend.calls)
    for f, o in zip(frames, outs, strict=True):
        assert np.array_equal(o, (255 - f).repeat(4, 0).repeat(4, 1))
