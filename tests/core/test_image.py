import numpy as np
import pytest
from PIL import Image

from perceptual_edge.errors import InputError, OutputExistsError
from perceptual_edge.image import (
    batch_to_image,
    crop_to,
    decode_image_bytes,
    encode_image,
    image_to_batch,
    iter_image_files,
    load_image,
    pad_to_multiple,
    padded_size,
    save_image,
)


def test_batch_round_trip_is_exact():
    img = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    b = image_to_batch(img)
    assert b.shape == (1, 3, 5, 7) and b.dtype == np.float32 and b.max() <= 255
    assert np.array_equal(batch_to_image(b), img)


def test_batch_to_image_rounds_and_clips():
    b = np.array([[[[-3.0, 0.4, 0.6, 254.6, 300.0]]]] * 1, np.float32).repeat(3, axis=1)
    assert batch_to_image(b)[0, :, 0].tolist() == [0, 0, 1, 255, 255]


@pytest.mark.parametrize("h,w", [(1, 1), (2, 3), (5, 9), (333, 517), (16, 16)])
def test_pad_then_crop_restores_input(h, w):
    x = np.random.default_rng(1).random((2, 3, h, w)).astype(np.float32)
    padded, (oh, ow) = pad_to_multiple(x, 4, 16)
    assert padded.shape[2] % 4 == 0 and padded.shape[3] % 4 == 0
    assert padded.shape[2] >= 16 and padded.shape[3] >= 16
    assert (padded.shape[2], padded.shape[3]) == padded_size(h, w, 4, 16)
    assert np.array_equal(crop_to(padded, oh, ow), x)


def test_pad_is_a_reflection():
    x = np.arange(6, dtype=np.float32).reshape(1, 1, 1, 6).repeat(6, axis=2)
    padded, _ = pad_to_multiple(x, 4)
    # width 6 -> 8: the two new columns mirror columns 4 and 3 (reflect, edge not repeated)
    assert padded[0, 0, 0, 6:].tolist() == [4.0, 3.0]


def test_load_image_modes(tmp_path):
    rgb = np.random.default_rng(2).integers(0, 256, (6, 4, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    Image.fromarray(rgb[:, :, 0]).save(tmp_path / "gray.png")
    Image.fromarray(np.dstack([rgb, np.full((6, 4), 128, np.uint8)])).save(tmp_path / "rgba.png")
    Image.fromarray(rgb).convert("P").save(tmp_path / "pal.png")
    Image.fromarray(rgb[:, :, 0].astype(np.uint16) * 257).save(tmp_path / "g16.png")
    assert np.array_equal(load_image(tmp_path / "rgb.png"), rgb)
    g = load_image(tmp_path / "gray.png")
    assert g.shape == (6, 4, 3) and np.array_equal(g[:, :, 1], rgb[:, :, 0])
    assert np.array_equal(load_image(tmp_path / "rgba.png"), rgb)
    assert load_image(tmp_path / "pal.png").shape == (6, 4, 3)
    g16 = load_image(tmp_path / "g16.png")
    assert np.array_equal(g16[:, :, 0], rgb[:, :, 0])


def test_exif_orientation_is_applied(tmp_path):
    img = np.zeros((4, 8, 3), np.uint8)
    img[:, :4] = 255  # left half white
    pil = Image.fromarray(img)
    exif = pil.getexif()
    exif[0x0112] = 6  # rotate 90 CW on display
    pil.save(tmp_path / "rot.jpg", exif=exif, quality=100)
    out = load_image(tmp_path / "rot.jpg")
    assert out.shape == (8, 4, 3)
    assert out[:4].mean() > 200 and out[4:].mean() < 50  # white half is now on top


@pytest.mark.parametrize("content", [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n\x00\x00"])
def test_bad_files_are_one_line_input_errors(tmp_path, content):
    p = tmp_path / "bad.png"
    p.write_bytes(content)
    with pytest.raises(InputError) as e:
        load_image(p)
    assert "\n" not in str(e.value) and str(p) in str(e.value)


def test_truncated_jpeg_is_input_error(tmp_path):
    p = tmp_path / "t.jpg"
    Image.fromarray(np.random.default_rng(3).integers(0, 256, (64, 64, 3), np.uint8)).save(p)
    p.write_bytes(p.read_bytes()[:300])
    with pytest.raises(InputError):
        load_image(p)


def test_missing_and_folder_and_too_large(tmp_path):
    with pytest.raises(InputError):
        load_image(tmp_path / "nope.png")
    with pytest.raises(InputError):
        load_image(tmp_path)
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(tmp_path / "x.png")
    with pytest.raises(InputError):
        load_image(tmp_path / "x.png", max_pixels=50)


def test_save_is_atomic_and_refuses_overwrite(tmp_path):
    img = np.full((3, 3, 3), 7, np.uint8)
    p = save_image(img, tmp_path / "o.png")
    with pytest.raises(OutputExistsError):
        save_image(img, p)
    save_image(img + 1, p, overwrite=True)
    assert load_image(p)[0, 0, 0] == 8
    assert sorted(x.name for x in tmp_path.iterdir()) == ["o.png"]  # no temp files left


def test_save_into_missing_folder_fails_cleanly(tmp_path):
    with pytest.raises(InputError):
        save_image(np.zeros((2, 2, 3), np.uint8), tmp_path / "missing" / "o.png")


def test_bytes_round_trip():
    img = np.random.default_rng(4).integers(0, 256, (5, 6, 3), dtype=np.uint8)
    assert np.array_equal(decode_image_bytes(encode_image(img)), img)
    with pytest.raises(InputError):
        decode_image_bytes(b"")


def test_iter_image_files_recursive_sorted(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / ".hidden").mkdir()
    for rel in ["b/2.PNG", "a.jpg", "b/1.png", ".hidden/x.png", "notes.txt"]:
        (tmp_path / rel).write_bytes(b"x")
    names = [p.relative_to(tmp_path).as_posix() for p in iter_image_files(tmp_path)]
    assert names == ["a.jpg", "b/1.png", "b/2.PNG"]


def test_gaussian_kernel_and_blur() -> None:
    from perceptual_edge.image import gaussian_blur, gaussian_kernel

    k = gaussian_kernel(1.0)
    assert len(k) == 7 and abs(k.sum() - 1) < 1e-12 and k[3] == k.max()
    assert k[2] / k[3] == pytest.approx(np.exp(-0.5))
    img = np.zeros((9, 9, 1))
    img[4, 4, 0] = 1.0
    for border in ("reflect", "symmetric"):
        blurred = gaussian_blur(img, 1.0, border)
        assert blurred[4, 4, 0] == pytest.approx(k[3] ** 2)
        assert blurred.sum() == pytest.approx(1.0)


def test_gaussian_blur_matches_a_direct_2d_filter() -> None:
    from perceptual_edge.image import gaussian_blur, gaussian_kernel

    img = np.random.default_rng(2).random((9, 10)) * 255
    k2 = np.outer(gaussian_kernel(1.0), gaussian_kernel(1.0))
    for border in ("symmetric", "reflect"):
        pad = np.pad(img, 3, mode=border)
        want = [[np.sum(pad[i : i + 7, j : j + 7] * k2) for j in range(10)] for i in range(9)]
        np.testing.assert_allclose(gaussian_blur(img, 1.0, border), want, atol=1e-10)


def test_resize_center_crop_keeps_the_centre() -> None:
    from perceptual_edge.image import resize_center_crop

    img = np.zeros((40, 80, 3), np.uint8)
    img[:, 30:50] = 255  # a white band in the middle
    out = resize_center_crop(img, 20)
    assert out.shape == (20, 20, 3)
    assert out[:, 10].mean() == 255 and out[:, 0].mean() == 0


def test_resize_keeps_kind_and_refuses_unknown_methods() -> None:
    from perceptual_edge.image import resize, resize_shorter_side

    img = np.random.default_rng(0).integers(0, 256, (10, 20, 3), np.uint8)
    assert resize(img, 10, 20) is img
    assert resize(img, 5, 7, "lanczos").dtype == np.uint8
    assert resize(img.astype(np.float32), 5, 7).dtype == np.float32
    assert resize_shorter_side(img, 30).shape == (30, 60, 3)
    with pytest.raises(ValueError, match="resampling"):
        resize(img, 5, 5, "cubic")
