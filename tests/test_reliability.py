"""Issue 12's cases: each is one clear line and a documented exit code (README, "Errors")."""

from __future__ import annotations

import errno
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import assert_one_line_error
from typer.testing import CliRunner

from perceptual_edge.cli import app
from perceptual_edge.errors import InputError
from perceptual_edge.image import save_image
from perceptual_edge.samples import content_image

runner = CliRunner()


def _pe() -> list[str]:
    """The installed entry point (its signal handling is what users get), else the module."""
    pe = Path(sys.executable).with_name("pe")
    return [str(pe)] if pe.is_file() else [sys.executable, "-m", "perceptual_edge"]


class Payload:
    def __reduce__(self):
        return (print, ("pwned",))


def test_plain_pickle_checkpoint_is_one_line_without_torch_warnings(tmp_path, capfd):
    # Case 12: torch warned twice before the refusal.
    pytest.importorskip("torch")
    p = tmp_path / "old.pth"
    with open(p, "wb") as f:
        pickle.dump({"format": 1, "state_dict": {}, "x": Payload()}, f)
    r = runner.invoke(app, ["export", str(p), "-o", str(tmp_path / "out")])
    assert_one_line_error(r, 2, "refused")
    err = capfd.readouterr().err
    assert "Warning" not in err and "pwned" not in r.output


def test_golden_file_with_pickled_objects_never_suggests_unpickling(tmp_path, style_onnx):
    # Case 13: numpy's message advised allow_pickle=True.
    g = tmp_path / "evil.golden.npz"
    np.savez(g, format=np.array(1), count=np.array(0), spec=np.array([Payload()], dtype=object))
    r = runner.invoke(app, ["verify", str(g), str(style_onnx)])
    assert_one_line_error(r, 2, "pickled Python objects", "never loads")
    assert "allow_pickle" not in r.output


def test_golden_file_without_spec_names_the_entry(tmp_path, style_onnx):
    # Case 14: "missing 'spec is not a file in the archive'".
    g = tmp_path / "nospec.golden.npz"
    np.savez(g, format=np.array(1), count=np.array(0))
    r = runner.invoke(app, ["verify", str(g), str(style_onnx)])
    assert_one_line_error(r, 2, "no 'spec' entry")


def test_one_image_into_an_existing_folder(tmp_path, style_onnx):
    # Case 15: "unknown image suffix ''"; now written into the folder under its own name.
    img = tmp_path / "a.png"
    save_image(content_image(0, 32, 48), img)
    out = tmp_path / "out"
    out.mkdir()
    r = runner.invoke(app, ["run", str(style_onnx), "--input", str(img), "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert (out / "a.png").is_file()
    r = runner.invoke(app, ["run", str(style_onnx), "-i", str(img), "-o", str(tmp_path)])
    assert_one_line_error(r, 2, "would replace the input")


def test_nan_batches_are_refused_and_unit_range_batches_warned_once(style_onnx):
    # Case 17.
    from perceptual_edge.runtime import Session

    with Session(style_onnx) as s:
        bad = np.full((1, 3, 32, 32), 100.0, np.float32)
        bad[0, 1, 3, 3] = np.nan
        with pytest.raises(InputError, match="NaN or Inf"):
            s.run_batch(bad)
        unit = np.random.default_rng(0).uniform(0, 1, (1, 3, 32, 32)).astype(np.float32)
        with pytest.warns(RuntimeWarning, match="0..255"):
            s.run_batch(unit)
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("error")
            s.run_batch(unit)  # once per session
            s.run_batch(np.zeros((1, 3, 32, 32), np.float32))  # black is not 0..1


@pytest.mark.parametrize(
    "code,text", [(errno.ENOSPC, "No space left on device"), (errno.EACCES, "Permission denied")]
)
def test_os_errors_at_the_write_are_one_line_exit_6(tmp_path, style_onnx, monkeypatch, code, text):
    # Cases 4-8: a full disk or a refused write was "internal error", exit 70. The fault is
    # injected at the rename that publishes every output (fsutil.atomic_path).
    from perceptual_edge import fsutil

    img = tmp_path / "a.png"
    save_image(content_image(1, 32, 48), img)
    (tmp_path / "in").mkdir()
    save_image(content_image(2, 32, 48), tmp_path / "in" / "c.png")

    def full(src, dst):
        raise OSError(code, os.strerror(code), str(dst))

    monkeypatch.setattr(fsutil.os, "replace", full)
    for src, out in ((img, tmp_path / "b.png"), (tmp_path / "in", tmp_path / "folder")):
        r = runner.invoke(app, ["run", str(style_onnx), "--input", str(src), "-o", str(out)])
        assert r.exit_code == 6, r.output
        lines = [line for line in r.stderr.splitlines() if line.strip()]
        assert any(text in line for line in lines) and "internal error" not in r.output


def test_a_closed_stdout_is_one_line_exit_6(tmp_path, style_onnx):
    # Case 3: a reader that exits first gave "internal error: BrokenPipeError", exit 70. (A
    # reader that exits after some bytes, `| head -c 10`, is seen only where the system refuses
    # the rest of the write; this sandbox's pipes accepted all 2 MB of it.)
    img = tmp_path / "big.png"
    rng = np.random.default_rng(0)
    save_image(rng.integers(0, 256, (768, 1024, 3), dtype=np.uint8), img)  # >> a pipe's buffer
    cmd = [*_pe(), "run", str(style_onnx), "-i", str(img), "-o", "-"]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert p.stdout is not None and p.stderr is not None
    p.stdout.close()  # a reader that exits before pe writes (`| true`)
    err = p.stderr.read().decode()
    assert p.wait(timeout=120) == 6, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines == ["pe: error: stdout was closed before all of the output was written"], err


def test_sigterm_during_a_video_run_cleans_up_and_exits_143(tmp_path, style_onnx):
    # Case 11: killed by the signal, no message, a temporary file left behind.
    import signal
    import time

    from perceptual_edge.samples import write_sample_clip

    clip = write_sample_clip(tmp_path / "clip.mp4", frames=400, size=(256, 192))
    out = tmp_path / "out" / "styled.mp4"
    out.parent.mkdir()
    cmd = [*_pe(), "run", str(style_onnx), "-i", str(clip), "-o", str(out)]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and not list(out.parent.iterdir()):
        time.sleep(0.1)  # until the temporary output exists: the run is under way
    time.sleep(0.5)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 143, err
    assert [line for line in err.splitlines() if line.strip()] == ["pe: terminated by SIGTERM"]
    assert list(out.parent.iterdir()) == []  # no output, no temporary file


def test_an_animated_gif_is_refused_not_cut_to_one_frame(tmp_path, style_onnx):
    # Case 1: a 4-frame GIF gave a 1-frame GIF, exit 0, no warning.
    from PIL import Image

    gif = tmp_path / "anim.gif"
    frames = [Image.fromarray(content_image(i, 32, 48)) for i in range(4)]
    frames[0].save(gif, save_all=True, append_images=frames[1:], duration=100, loop=0)
    out = tmp_path / "out.gif"
    r = runner.invoke(app, ["run", str(style_onnx), "--input", str(gif), "-o", str(out)])
    assert_one_line_error(r, 2, "an animated image (4 frames)", "convert it to a video")
    assert not out.exists()
    r = runner.invoke(app, ["run", str(style_onnx), "--input", "-", "-o", str(out)],
                      input=gif.read_bytes())  # fmt: skip
    assert_one_line_error(r, 2, "an animated image (4 frames)")
