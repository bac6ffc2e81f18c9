import os

import numpy as np
import pytest
from helpers import read_only_folder

from perceptual_edge.errors import InputError, OutputExistsError
from perceptual_edge.fsutil import atomic_path, check_output, write_text_atomic
from perceptual_edge.samples import content_image, style_image, write_sample_dataset


def test_crash_inside_atomic_path_leaves_nothing(tmp_path):
    target = tmp_path / "out.bin"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("crash")
    assert list(tmp_path.iterdir()) == []


def test_crash_keeps_previous_file(tmp_path):
    target = write_text_atomic(tmp_path / "a.txt", "old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target, overwrite=True) as tmp:
            tmp.write_text("new, half")
            raise KeyboardInterrupt
    assert target.read_text() == "old"


def test_check_output_cases(tmp_path):
    (tmp_path / "x").write_text("1")
    with pytest.raises(OutputExistsError):
        check_output(tmp_path / "x", overwrite=False)
    assert check_output(tmp_path / "x", overwrite=True) == tmp_path / "x"
    with pytest.raises(InputError):
        check_output(tmp_path / "nodir" / "x", overwrite=False)


def test_read_only_folder(tmp_path, monkeypatch):
    ro = read_only_folder(tmp_path / "ro", monkeypatch)
    with pytest.raises(InputError, match="not writable"):
        check_output(ro / "x", overwrite=False)


def test_samples_are_deterministic_and_photo_like(tmp_path):
    a, b = content_image(3, 64, 80), content_image(3, 64, 80)
    assert a.shape == (64, 80, 3) and a.dtype == np.uint8 and np.array_equal(a, b)
    assert not np.array_equal(a, content_image(4, 64, 80))
    # Natural images: neighbouring pixels are strongly correlated (noise would be ~0).
    f = a.astype(np.float64).mean(axis=2)
    corr = np.corrcoef(f[:, :-1].ravel(), f[:, 1:].ravel())[0, 1]
    assert corr > 0.8
    assert style_image(32, 48).shape == (32, 48, 3)
    paths = write_sample_dataset(tmp_path / "d", count=3, height=32, width=32)
    assert [p.name for p in paths] == ["sample_000.png", "sample_001.png", "sample_002.png"]


def test_outputs_get_normal_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        p = write_text_atomic(tmp_path / "perm.txt", "x")
    finally:
        os.umask(old)
    assert (p.stat().st_mode & 0o777) == 0o644
