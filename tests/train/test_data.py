"""Training data: odd image kinds, unreadable files, deterministic resumable order, SR pairs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from perceptual_edge.errors import InputError
from perceptual_edge.train.data import (
    BatchSource,
    Sampler,
    SamplerState,
    iter_batches,
    make_lr,
    scan_folder,
)


def _odd_folder(root: Path) -> Path:
    """One file of every awkward kind, plus broken ones, in nested folders."""
    from PIL import Image

    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)
    (root / "a" / "b").mkdir(parents=True)
    Image.fromarray(rgb[:, :, 0]).save(root / "gray.png")
    Image.fromarray(np.dstack([rgb, rgb[:, :, :1]])).save(root / "a" / "rgba.png")
    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE).save(root / "a" / "pal.gif")
    Image.fromarray(rgb[:, :, 0].astype(np.uint16) * 257).save(root / "a" / "b" / "16.png")
    # EXIF orientation 6 (rotate 90 CW for display): stored 40x60, shown 60x40... as (H, W) 60, 40.
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(rgb).save(root / "a" / "b" / "exif.jpg", exif=exif.tobytes())
    (root / "empty.jpg").write_bytes(b"")
    (root / "text.png").write_text("not an image")
    (root / "notes.txt").write_text("ignored: not an image suffix")
    good = (root / "gray.png").read_bytes()
    (root / "a" / "trunc.png").write_bytes(good[: len(good) // 2])  # header ok, data cut
    return root


def test_scan_counts_unreadable_and_keeps_odd_kinds(tmp_path: Path) -> None:
    folder = scan_folder(_odd_folder(tmp_path))
    names = sorted(p.name for p in folder.files)
    assert names == ["16.png", "exif.jpg", "gray.png", "pal.gif", "rgba.png", "trunc.png"]
    assert folder.skipped == 2  # empty.jpg, text.png
    assert folder.holdout == []


def test_batches_from_odd_kinds_and_truncated_file_is_skipped(tmp_path: Path) -> None:
    folder = scan_folder(_odd_folder(tmp_path))
    src = BatchSource(folder, "style", 32)
    hr, lr = src.batch([(0, i, i) for i in range(len(folder.files))])
    assert hr.shape == (6, 3, 32, 32) and hr.dtype == np.uint8 and lr is None
    assert len(src.bad) == 1  # trunc.png: decoded lazily, replaced by the next file
    bad = folder.files[next(iter(src.bad))]
    assert bad.name == "trunc.png"
    exif_idx = [p.name for p in folder.files].index("exif.jpg")
    from perceptual_edge.image import load_image

    assert load_image(folder.files[exif_idx]).shape == (60, 40, 3)  # rotated upright


def test_decoding_threads_give_the_same_batches(tmp_path: Path) -> None:
    # --loader-threads (8 by default on CUDA) must not change what a step sees, truncated file
    # and SR crops included.
    folder = scan_folder(_odd_folder(tmp_path))
    items = [(1, i, (3 * i) % len(folder.files)) for i in range(12)]
    for task in ("style", "sr"):
        one = BatchSource(folder, task, 32, seed=3)
        many = BatchSource(folder, task, 32, seed=3, threads=4)
        a, b = one.batch(items), many.batch(items)
        many.close()
        assert np.array_equal(a[0], b[0]) and one.bad == many.bad == {
            [p.name for p in folder.files].index("trunc.png")}  # fmt: skip
        if task == "sr":
            assert np.array_equal(a[1], b[1])


def test_empty_and_missing_folders(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        scan_folder(tmp_path / "nope")
    with pytest.raises(InputError, match="no usable images"):
        scan_folder(tmp_path)
    (tmp_path / "x.jpg").write_bytes(b"junk")
    with pytest.raises(InputError, match=r"no usable images \(1 unreadable"):
        scan_folder(tmp_path)
    f = tmp_path / "file.png"
    f.write_bytes(b"")
    with pytest.raises(InputError, match="not a folder"):
        scan_folder(f)


def test_holdout_only_for_large_folders(tmp_path: Path) -> None:
    from PIL import Image

    for i in range(41):
        Image.new("RGB", (8, 8), (i, i, i)).save(tmp_path / f"{i:02d}.png")
    folder = scan_folder(tmp_path)
    assert len(folder.holdout) == 4 and len(folder.files) == 37
    assert not set(folder.holdout) & set(folder.files)


def test_sampler_is_deterministic_resumable_and_shards() -> None:
    def run(state: SamplerState, steps: int, batch: int = 2, rank: int = 0, world: int = 1):
        s = Sampler(10, batch, state, rank, world)
        return [s.next_batch() for _ in range(steps)], s.state

    full, _ = run(SamplerState(seed=3), 7)
    first, mid = run(SamplerState(seed=3), 3)
    rest, _ = run(SamplerState(**mid.to_dict()), 4)
    assert first + rest == full
    # drop_last: 10 images, batch 2 -> 5 steps per epoch, then a new permutation.
    epochs = [b[0][0] for b in full]
    assert epochs == [0, 0, 0, 0, 0, 1, 1]
    idx0 = sorted(i for b in full[:5] for (_, _, i) in b)
    assert idx0 == list(range(10))
    assert [i for b in run(SamplerState(seed=4), 1)[0] for (_, _, i) in b] != [
        i for (_, _, i) in full[0]
    ]
    # Two ranks of batch 1 see exactly one rank of batch 2's images, split in order.
    r0, _ = run(SamplerState(seed=3), 7, batch=1, rank=0, world=2)
    r1, _ = run(SamplerState(seed=3), 7, batch=1, rank=1, world=2)
    assert [a + b for a, b in zip(r0, r1, strict=True)] == full
    with pytest.raises(InputError, match="fewer than one batch"):
        Sampler(3, 2, SamplerState(0), 0, 2)


def test_iter_batches_prefetch_matches_sequential(tiny_data: Path) -> None:
    folder = scan_folder(tiny_data)
    src = BatchSource(folder, "sr", 32, factor=4, seed=1)
    a = list(iter_batches(src, Sampler(len(folder), 2, SamplerState(1)), 5, prefetch=2))
    b = list(iter_batches(src, Sampler(len(folder), 2, SamplerState(1)), 5, prefetch=0))
    for (ha, la, sa), (hb, lb, sb) in zip(a, b, strict=True):
        assert np.array_equal(ha, hb) and np.array_equal(la, lb) and sa == sb
    assert a[0][0].shape == (2, 3, 32, 32) and a[0][1].shape == (2, 3, 8, 8)


def test_sr_small_images_are_upscaled_to_the_patch(tmp_path: Path) -> None:
    from PIL import Image

    Image.new("RGB", (20, 12), (200, 10, 10)).save(tmp_path / "small.png")
    src = BatchSource(scan_folder(tmp_path), "sr", 32, factor=8)
    hr, lr = src.batch([(0, 0, 0)])
    assert hr.shape == (1, 3, 32, 32) and lr is not None and lr.shape == (1, 3, 4, 4)
    assert abs(int(lr[0, 0].mean()) - 200) <= 2  # a flat image stays flat through blur + resize


def test_lr_of_a_flat_image_is_flat() -> None:
    hr = np.full((16, 24, 3), 77, np.uint8)
    lr = make_lr(hr, 4)
    assert lr.shape == (4, 6, 3) and lr.dtype == np.uint8 and (lr == 77).all()
