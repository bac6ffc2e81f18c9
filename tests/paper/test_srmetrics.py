"""The SR scoring protocol: MATLAB bicubic, blur, Y, PSNR, SSIM against hand-computed values,
direct loop implementations, and the published bicubic baselines on Set5/Set14."""

from __future__ import annotations

import math

import numpy as np
import pytest

from perceptual_edge.image import gaussian_blur, iter_image_files, load_image
from perceptual_edge.paper import srmetrics as m


def test_cubic_kernel_values() -> None:
    # Keys' kernel with a = -0.5, evaluated by hand from its two polynomial pieces.
    x = np.array([0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, -0.5])
    want = [1, 0.8671875, 0.5625, 0.2265625, 0, -0.0703125, -0.0625, -0.0234375, 0, 0, 0.5625]
    np.testing.assert_allclose(m.cubic(x), want, atol=1e-15)


def test_mirror_index_repeats_the_edge_sample() -> None:
    # MATLAB: aux = [1:n, n:-1:1]; 0-based for n = 3: -1 -> 0, -2 -> 1, 3 -> 2, 5 -> 0.
    got = m.mirror_index(np.array([-3, -2, -1, 0, 1, 2, 3, 4, 5, 6]), 3)
    np.testing.assert_array_equal(got, [2, 1, 0, 0, 1, 2, 2, 1, 0, 0])


def test_downscale_weights_of_a_tiny_ramp_by_hand() -> None:
    # 4 -> 2 (scale 0.5, anti-aliased: kernel width 8). Output 1 is centred at u = 1.5 with
    # taps -3..6; cubic(d/2) at |d| = .5, 1.5, 2.5, 3.5 is .8671875, .2265625, -.0703125,
    # -.0234375 (sum 2 -> halved), and taps outside 1..4 mirror to 4 3 2 1 | 4 3.
    w = m.resize_weights(4, 2, 0.5)
    row = [0.546875, 0.3984375, 0.1015625, -0.046875]
    np.testing.assert_allclose(w, [row, row[::-1]], atol=1e-15)
    ramp = np.array([[0.0, 10.0, 20.0, 30.0]])
    np.testing.assert_allclose(m.imresize(ramp, shape=(1, 2)), [[4.609375, 25.390625]])
    got = m.imresize(ramp.astype(np.uint8), shape=(1, 2))
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, [[5, 25]])


def test_upscale_of_a_two_pixel_ramp_by_hand() -> None:
    # 2 -> 4: output 1 at u = 0.75 mirrors its left taps onto pixel 1 and overshoots below 0;
    # uint8 saturates it.
    a = np.array([[0.0, 10.0]])
    np.testing.assert_allclose(
        m.imresize(a, shape=(1, 4)), [[-0.9375, 2.03125, 7.96875, 10.9375]], atol=1e-12
    )
    got = m.imresize(a.astype(np.uint8), shape=(1, 4))
    np.testing.assert_array_equal(got, [[0, 2, 8, 11]])
    # A scale applies to both dimensions, as in MATLAB: ceil(2 * 1) rows.
    assert m.imresize(a, scale=2).shape == (2, 4)


def test_weights_rows_sum_to_one() -> None:
    for n_in, n_out in [(17, 5), (5, 17), (64, 8), (9, 9)]:
        w = m.resize_weights(n_in, n_out, n_out / n_in)
        np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-12)


@pytest.mark.parametrize("shape", [(24, 16), (9, 9), (7, 13)])
def test_constant_image_stays_constant(shape: tuple[int, int]) -> None:
    img = np.full(shape + (3,), 137, np.uint8)
    for out_shape in [(shape[0] // 2 or 1, shape[1] // 3 or 1), (shape[0] * 4, shape[1] * 4)]:
        out = m.imresize(img, shape=out_shape)
        assert out.shape == out_shape + (3,)
        assert np.all(out == 137)
    assert np.all(m.degrade(img[: shape[0] // 2 * 2, : shape[1] // 2 * 2], 2, 1.0) == 137)


def test_rows_first_with_uint8_rounding_between_passes() -> None:
    # MATLAB resizes along the dimension of smallest scale first and keeps the intermediate
    # in the input class (uint8).
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (16, 12), dtype=np.uint8)
    wh = m.resize_weights(16, 8, 0.5)  # rows: scale 0.5, first
    ww = m.resize_weights(12, 24, 2.0)  # columns: scale 2, second

    def u8(x: np.ndarray) -> np.ndarray:
        return np.floor(np.clip(x, 0, 255) + 0.5)

    want = u8(u8(wh @ img.astype(np.float64)) @ ww.T)
    np.testing.assert_array_equal(m.imresize(img, shape=(8, 24)), want)


def test_imresize_commutes_with_transpose_on_floats() -> None:
    rng = np.random.default_rng(1)
    img = rng.random((20, 28)) * 255
    a = m.imresize(img, scale=0.25)
    b = m.imresize(img.T, scale=0.25).T
    np.testing.assert_allclose(a, b, atol=1e-9)
    assert a.shape == (5, 7)


def test_imresize_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError):
        m.imresize(np.zeros((4, 4)))
    with pytest.raises(ValueError):
        m.imresize(np.zeros((4,)), scale=2)


def test_degrade_and_mod_crop() -> None:
    img = np.zeros((30, 21, 3), np.uint8)
    hr = m.mod_crop(img, 4)
    assert hr.shape == (28, 20, 3)
    assert m.degrade(hr, 4).shape == (7, 5, 3)
    assert m.degrade(hr, 4, blur_sigma=1.0).shape == (7, 5, 3)
    with pytest.raises(ValueError):
        m.degrade(img, 4)
    assert "sigma=1" in m.degradation_description(4, 1.0)
    assert "blur" not in m.degradation_description(4)


def test_rgb_to_y_is_matlab_rgb2ycbcr() -> None:
    rgb = np.array([[[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 255, 0], [0, 0, 255]]])
    np.testing.assert_allclose(
        m.rgb_to_y(rgb), [[16.0, 235.0, 16 + 65.481, 16 + 128.553, 16 + 24.966]], atol=1e-9
    )
    gray = np.array([[0, 128, 255]], np.uint8)
    np.testing.assert_allclose(m.rgb_to_y(gray), m.rgb_to_y(np.repeat(gray[..., None], 3, 2)))


def test_psnr_known_values() -> None:
    a = np.zeros((8, 8))
    assert math.isclose(m.psnr(a, a + 1), 20 * math.log10(255), rel_tol=1e-12)
    assert math.isclose(m.psnr(a, a + 10), 20 * math.log10(25.5), rel_tol=1e-12)
    assert m.psnr(a, a) == math.inf
    with pytest.raises(ValueError):
        m.psnr(a, np.zeros((8, 7)))


def _ssim_loop(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM by its definition: weighted local statistics at every valid window position."""
    t = np.arange(11) - 5.0
    g = np.exp(-(t[:, None] ** 2 + t[None, :] ** 2) / (2 * 1.5**2))
    g /= g.sum()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    vals = []
    for i in range(a.shape[0] - 10):
        for j in range(a.shape[1] - 10):
            x, y = a[i : i + 11, j : j + 11], b[i : i + 11, j : j + 11]
            mx, my = np.sum(g * x), np.sum(g * y)
            vx = np.sum(g * (x - mx) ** 2)
            vy = np.sum(g * (y - my) ** 2)
            cxy = np.sum(g * (x - mx) * (y - my))
            vals.append(
                ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
            )
    return float(np.mean(vals))


def test_ssim_identical_is_one() -> None:
    rng = np.random.default_rng(3)
    a = rng.random((32, 40)) * 219 + 16
    assert math.isclose(m.ssim(a, a), 1.0, abs_tol=1e-12)


def test_ssim_matches_a_direct_loop_on_a_shifted_noisy_copy() -> None:
    rng = np.random.default_rng(4)
    base = gaussian_blur(rng.random((30, 34)) * 255, 1.5)
    other = np.roll(base, 1, axis=1) + rng.normal(0, 8, base.shape)
    got = m.ssim(base, other)
    assert 0.2 < got < 0.99
    assert math.isclose(got, _ssim_loop(base, other), abs_tol=1e-10)
    assert math.isclose(m.ssim(other, base), got, abs_tol=1e-12)
    with pytest.raises(ValueError):
        m.ssim(base[:10], other[:10])


def test_match_histograms() -> None:
    rng = np.random.default_rng(5)
    ref = rng.integers(100, 200, (8, 8, 3), dtype=np.uint8)
    img = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    out = m.match_histograms(img, ref)
    assert out.shape == img.shape and out.dtype == np.uint8
    assert out.min() >= 100 and out.max() <= 199
    # The mapping is monotone: it never swaps the order of two source values.
    for c in range(3):
        order = np.argsort(img[..., c].ravel(), kind="stable")
        assert np.all(np.diff(out[..., c].ravel()[order].astype(int)) >= 0)
    np.testing.assert_array_equal(m.match_histograms(ref, ref), ref)


# The protocol's ground truth: published bicubic baselines (Set5) and an independent
# implementation's measurement on this copy of Set14.
GROUND_TRUTH = [
    ("Set5", 4, 28.42, 0.810),
    ("Set5", 8, 24.40, None),
    ("Set14", 4, 26.09, 0.705),
    ("Set14", 8, 23.19, None),
]


@pytest.mark.parametrize(("dataset", "factor", "want_psnr", "want_ssim"), GROUND_TRUTH)
def test_bicubic_baseline_matches_the_standard_protocol(
    shared_data, dataset: str, factor: int, want_psnr: float, want_ssim: float | None
) -> None:
    psnrs, ssims = [], []
    for path in iter_image_files(shared_data / "sr" / dataset):
        hr = m.mod_crop(load_image(path), factor)
        up = m.bicubic_upscale(m.degrade(hr, factor), factor)
        p, s = m.score_y(up, hr, factor)
        psnrs.append(p)
        ssims.append(s)
    assert len(psnrs) == {"Set5": 5, "Set14": 14}[dataset]
    assert abs(np.mean(psnrs) - want_psnr) <= 0.05, np.mean(psnrs)
    if want_ssim is not None:
        assert abs(np.mean(ssims) - want_ssim) <= 0.005, np.mean(ssims)
