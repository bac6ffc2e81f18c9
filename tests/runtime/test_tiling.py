import numpy as np
import pytest
from helpers import invert_session

from perceptual_edge.errors import InputError
from perceptual_edge.image import load_image
from perceptual_edge.runtime import Session
from perceptual_edge.runtime.tiling import (
    default_overlap,
    ramp_weights,
    round_tile,
    run_tiled,
    run_tiled_image,
    tile_starts,
)
from perceptual_edge.spec import sr_spec, style_spec


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / max(mse, 1e-12)))


def up4(t: np.ndarray) -> np.ndarray:
    return t.repeat(4, axis=2).repeat(4, axis=3)


@pytest.mark.parametrize("length,tile,overlap", [(1, 8, 2), (8, 8, 2), (9, 8, 2), (517, 64, 16)])
def test_tiles_cover_with_equal_size_and_overlap(length, tile, overlap):
    starts = tile_starts(length, tile, overlap)
    assert starts[0] == 0 and min(starts[-1] + tile, length) == length
    for a, b in zip(starts, starts[1:], strict=False):
        assert a + tile - b >= overlap  # neighbours overlap by at least `overlap`
        assert b + tile <= length  # every tile lies inside: one fixed tile shape


@pytest.mark.parametrize("scale", [1, 4])
def test_ramps_sum_to_one(scale):
    length, tile = 300, 64
    starts = tile_starts(length, tile, 16)
    total = np.zeros(length * scale)
    for i, s in enumerate(starts):
        total[s * scale : (s + tile) * scale] += ramp_weights(starts, tile, length, i, scale)
    np.testing.assert_allclose(total, 1.0, atol=1e-6)


def test_blending_is_exact_for_a_pointwise_network():
    x = np.random.default_rng(0).integers(0, 256, (2, 3, 133, 217)).astype(np.float32)
    y = run_tiled(lambda t: 255.0 - t, x, style_spec(), 64, 16, tiles_per_call=3)
    np.testing.assert_allclose(y, 255.0 - x, atol=1e-3)
    y4 = run_tiled(up4, x[:1], sr_spec(4), 48, 8, tiles_per_call=2)
    np.testing.assert_allclose(y4, up4(x[:1]), atol=1e-3)


def test_uint8_image_path_matches():
    img = np.random.default_rng(1).integers(0, 256, (97, 131, 3), dtype=np.uint8)
    out = run_tiled_image(up4, img, sr_spec(4), 32, 8)
    assert out.dtype == np.uint8 and out.shape == (388, 524, 3)
    np.testing.assert_array_equal(out, img.repeat(4, 0).repeat(4, 1))


def test_tile_rounding_and_bad_overlap():
    assert round_tile(30, style_spec()) == 32  # multiple of 4
    assert round_tile(3, style_spec()) == 16  # at least min_size
    assert default_overlap(16, style_spec()) == 4 and default_overlap(512, style_spec()) == 64
    with pytest.raises(InputError):
        run_tiled(lambda t: t, np.zeros((1, 3, 64, 64), np.float32), style_spec(), 32, 32)
    with pytest.raises(InputError):
        round_tile(0, style_spec())


def test_session_tiles_on_request_and_auto_tiles_past_the_profile():
    s, backend = invert_session("sr", max_hw=(40, 40))
    assert s.max_input_hw == (40, 40)
    img = np.random.default_rng(2).integers(0, 256, (90, 70, 3), dtype=np.uint8)
    with pytest.warns(RuntimeWarning, match="exceeds the engine's profile"):
        out = s.run(img)
    assert s.last_run_tiled
    np.testing.assert_array_equal(out, (255 - img).repeat(4, 0).repeat(4, 1))
    s.run(img[:30, :30])
    assert not s.last_run_tiled
    with pytest.raises(InputError, match="larger than the engine's profile"):
        s.run(img, tile=64)
    batch = np.zeros((5, 3, 20, 20), np.float32)  # 5 > max_batch 2: split into calls
    assert s.run_batch(batch).shape == (5, 3, 80, 80)
    assert max(c[0] for c in backend.calls) <= 2


def test_real_style_net_tiled_vs_whole(style_onnx, shared_data):
    """Feathered tiles of an instance-norm network on a real photo: seams hidden, but each
    tile normalises with its own statistics, so the result is close, not equal."""
    img = load_image(shared_data / "content" / "chicago.jpg")[:256, :384]
    with Session(style_onnx) as s:
        whole = s.run(img)
        tiled = s.run(img, tile=256, tile_overlap=64)  # two tiles across
        assert tiled.shape == whole.shape and s.last_run_tiled
        one_tile = s.run(img, tile=384)  # one tile covering everything: identical
    np.testing.assert_array_equal(one_tile, whole)
    assert psnr(tiled, whole) > 20.0
