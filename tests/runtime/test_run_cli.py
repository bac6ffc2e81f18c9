"""`pe run` end to end through the CLI: images, folders, stdin/stdout, video, bad input."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from helpers import assert_one_line_error, read_only_folder
from PIL import Image
from typer.testing import CliRunner

from perceptual_edge.cli import app
from perceptual_edge.image import load_image, save_image
from perceptual_edge.runtime import Session
from perceptual_edge.samples import content_image, write_sample_clip

from .test_video import probe


def pe(*args: str, input: bytes | None = None):
    runner = CliRunner()
    return runner.invoke(app, ["run", *map(str, args)], input=input)


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    return save_image(content_image(5, 30, 41), tmp_path / "photo.png")


def test_image_default_output_name_and_json(style_onnx, photo):
    r = pe(style_onnx, "--input", photo, "--json")
    assert r.exit_code == 0, r.output
    out = photo.with_name("photo.style.png")
    summary = json.loads(r.stdout.strip())
    assert summary["output"] == str(out) and summary["kind"] == "image"
    assert summary["backend"].startswith("onnxruntime") and summary["items"] == 1
    got = load_image(out)
    with Session(style_onnx) as s:
        assert np.array_equal(got, s.run(load_image(photo)))
    # A second run refuses to overwrite, --overwrite replaces.
    assert_one_line_error(pe(style_onnx, "-i", photo), 3, "exists")
    assert pe(style_onnx, "-i", photo, "--overwrite").exit_code == 0


def test_sr_image_with_options(sr4_onnx, photo, tmp_path):
    out = tmp_path / "big.jpg"
    r = pe(sr4_onnx, "-i", photo, "-o", out, "--max-size", "20", "--preserve-color")
    assert r.exit_code == 0, r.output
    assert load_image(out).shape == (15 * 4, 20 * 4, 3)  # 30x41 -> 15x20 (long side 20), x4
    r = pe(sr4_onnx, "-i", photo, "-o", tmp_path / "zero.png", "--strength", "0")
    assert r.exit_code == 0
    bicubic = np.asarray(Image.open(photo).resize((164, 120), Image.Resampling.BICUBIC))
    assert np.array_equal(load_image(tmp_path / "zero.png"), bicubic)


def test_stdin_to_stdout_png(style_onnx, photo):
    r = pe(style_onnx, "-i", "-", input=photo.read_bytes())
    assert r.exit_code == 0, r.stderr
    img = Image.open(io.BytesIO(r.stdout_bytes))
    assert img.format == "PNG" and img.size == (41, 30)
    r = pe(style_onnx, "-i", photo, "-o", "-")
    assert r.exit_code == 0 and r.stdout_bytes.startswith(b"\x89PNG")
    assert_one_line_error(pe(style_onnx, "-i", "-", input=b""), 2, "empty")
    assert_one_line_error(pe(style_onnx, "-i", "-", input=b"garbage" * 9), 2, "not an image")
    assert_one_line_error(pe(style_onnx, "-i", "-", "--json", input=b"x"), 2, "--json")


def test_folder_mirrors_tree_and_reports_bad_files(style_onnx, tmp_path):
    src = tmp_path / "photos"
    (src / "sub" / "deeper").mkdir(parents=True)
    save_image(content_image(0, 20, 24), src / "a.png")
    save_image(content_image(1, 17, 23), src / "sub" / "b.jpg")
    save_image(content_image(2, 16, 16), src / "sub" / "deeper" / "c.png")
    (src / "sub" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    (src / "notes.txt").write_text("not an image, ignored")
    out = tmp_path / "styled"
    r = pe(style_onnx, "-i", src, "-o", out, "--json")
    assert r.exit_code == 2, r.output  # one input failed
    summary = json.loads(r.stdout.strip())
    assert summary["items"] == 3 and len(summary["failed"]) == 1
    assert "broken.png" in summary["failed"][0] and "pe: skipped:" in r.stderr
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert written == ["a.png", "sub/b.jpg", "sub/deeper/c.png"]
    assert load_image(out / "sub" / "b.jpg").shape == (17, 23, 3)
    # Existing outputs are refused up front (nothing re-done), --overwrite replaces them.
    assert_one_line_error(pe(style_onnx, "-i", src, "-o", out), 3, "--overwrite")
    (src / "sub" / "broken.png").unlink()
    assert pe(style_onnx, "-i", src, "-o", out, "--overwrite").exit_code == 0
    # Default output folder: beside the input, named after the model.
    assert pe(style_onnx, "-i", src).exit_code == 0
    assert (tmp_path / "photos.style" / "sub" / "deeper" / "c.png").is_file()


def test_video_with_audio_end_to_end(style_onnx, tmp_path):
    clip = write_sample_clip(tmp_path / "clip.mp4", frames=12, size=(64, 48), fps=12)
    r = pe(style_onnx, "-i", clip, "--batch", "4", "--crf", "23", "--json")
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout.strip())
    out = tmp_path / "clip.style.mp4"
    assert summary["output"] == str(out) and summary["items"] == 12
    assert summary["audio"] == "copied" and summary["fps"] > 0
    a, b = probe(clip), probe(out)
    assert len(b["frames"]) == 12 and b["fps"] == a["fps"] and b["audio"] == a["audio"]
    assert b["duration"] == pytest.approx(a["duration"], abs=0.03)
    r = pe(style_onnx, "-i", clip, "-o", tmp_path / "clip.webm", "--codec", "libvpx-vp9")
    assert r.exit_code == 0, r.output
    assert "re-encoded to opus" in r.stderr and "audio re-encoded" in r.stdout


def test_fox_video_without_audio(style_onnx, shared_data, tmp_path):
    out = tmp_path / "fox.mkv"
    r = pe(style_onnx, "-i", shared_data / "video" / "fox.mp4", "-o", out, "--max-size", "32",
           "--batch", "16", "--json")  # fmt: skip
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout.strip())
    assert summary["items"] == 420 and summary["audio"] == "none"
    info = probe(out)
    assert len(info["frames"]) == 420 and (info["width"], info["height"]) == (32, 32)
    assert info["duration"] == pytest.approx(14.01, abs=0.05)


def test_truncated_video_warns_and_keeps_frames(style_onnx, tmp_path):
    clip = write_sample_clip(tmp_path / "c.mkv", frames=24, size=(64, 48), fps=12)
    data = clip.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) // 2])
    r = pe(style_onnx, "-i", cut, "-o", tmp_path / "cut.out.mp4", "--json")
    assert r.exit_code == 0, r.output
    n = json.loads(r.stdout.strip())["items"]
    assert 0 < n < 24 and "pe: warning:" in r.stderr
    assert len(probe(tmp_path / "cut.out.mp4")["frames"]) == n


def test_pth_checkpoint_runs_through_torch(style_ckpt, style_onnx, photo, tmp_path):
    r = pe(style_ckpt, "-i", photo, "-o", tmp_path / "t.png", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout.strip())["backend"] == "torch:cpu"
    with Session(style_onnx) as s:
        ref = s.run(load_image(photo)).astype(int)
    assert np.abs(load_image(tmp_path / "t.png").astype(int) - ref).max() <= 2


def test_bad_inputs_give_one_line(style_onnx, photo, tmp_path):
    assert_one_line_error(pe(style_onnx, "-i", tmp_path / "missing.png"), 2, "no such")
    assert_one_line_error(pe(tmp_path / "nope.onnx", "-i", photo), 2, "no such model")
    model_txt = tmp_path / "model.txt"
    model_txt.write_text("x")
    assert_one_line_error(pe(model_txt, "-i", photo), 2, "unknown model file type")
    fake_onnx = tmp_path / "fake.onnx"
    fake_onnx.write_bytes(b"not onnx")
    assert_one_line_error(pe(fake_onnx, "-i", photo, "-o", tmp_path / "o.png"), 2)
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    assert_one_line_error(pe(style_onnx, "-i", notes, "-o", tmp_path / "n.png"), 2, "not an image")
    trunc = tmp_path / "trunc.jpg"
    trunc.write_bytes(Path(photo).read_bytes()[:200])
    assert_one_line_error(pe(style_onnx, "-i", trunc, "-o", tmp_path / "t.png"), 2)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\0" * 1000)
    assert_one_line_error(pe(style_onnx, "-i", junk), 2, "not a readable video")
    assert_one_line_error(pe(style_onnx, "-i", photo, "-o", tmp_path / "x.mp4"), 2, "suffix")
    assert_one_line_error(pe(style_onnx, "-i", photo, "--tile-overlap", "4"), 2, "--tile")
    # Nothing was written by any of these.
    leftovers = {p.name for p in tmp_path.iterdir()}
    assert leftovers == {
        "photo.png",
        "model.txt",
        "fake.onnx",
        "notes.txt",
        "trunc.jpg",
        "junk.mp4",
    }


def test_read_only_output_folder(style_onnx, photo, tmp_path, monkeypatch):
    ro = read_only_folder(tmp_path / "ro", monkeypatch)
    assert_one_line_error(pe(style_onnx, "-i", photo, "-o", ro / "o.png"), 2, "not writable")
    assert list(ro.iterdir()) == []


def test_output_folder_missing_is_refused(style_onnx, photo, tmp_path):
    r = pe(style_onnx, "-i", photo, "-o", tmp_path / "nowhere" / "o.png")
    assert_one_line_error(r, 2, "does not exist")


def test_output_folder_inside_input_is_not_read_back(style_onnx, tmp_path):
    src = tmp_path / "photos"
    src.mkdir()
    save_image(content_image(0, 16, 16), src / "a.png")
    for _ in range(2):
        r = pe(style_onnx, "-i", src, "-o", src / "out", "--overwrite", "--json")
        assert r.exit_code == 0, r.output
        assert json.loads(r.stdout.strip())["items"] == 1
    assert not (src / "out" / "out").exists()


def test_run_on_onnx_does_not_import_torch(style_onnx, photo, tmp_path):
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from perceptual_edge.cli import main\n"
        "try:\n"
        f"    main({['run', str(style_onnx), '-i', str(photo), '-o', str(tmp_path / 'o.png')]!r})\n"
        "except SystemExit as e:\n"
        "    assert not e.code, e.code\n"
        "train = sorted(m for m in sys.modules if m.startswith('perceptual_edge.train.'))\n"
        "print('torch' in sys.modules, train)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    # Only the torch-free training defaults the CLI reads for --help, never the training code.
    assert proc.stdout.strip().splitlines()[-1] == "False ['perceptual_edge.train.defaults']"
    assert (tmp_path / "o.png").is_file()


def test_tile_options_reach_the_session(style_onnx, style_ckpt, tmp_path):
    src = save_image(content_image(6, 72, 90), tmp_path / "p.png")
    r = pe(
        style_onnx, "-i", src, "-o", tmp_path / "tiled.png", "--tile", "32", "--tile-overlap", "8"
    )
    assert r.exit_code == 0, r.output
    tiled = load_image(tmp_path / "tiled.png").astype(float)
    with Session(style_onnx) as s:
        whole = s.run(load_image(src)).astype(float)
    assert tiled.shape == whole.shape
    assert 0 < np.abs(tiled - whole).mean() < 40  # tiled for real, and still the same picture
    # The PyTorch reference runs behind the same Session, so it tiles the same way.
    r = pe(style_ckpt, "-i", src, "-o", tmp_path / "t.png", "--tile", "32", "--tile-overlap", "8")
    assert r.exit_code == 0, r.output
    assert np.abs(load_image(tmp_path / "t.png").astype(float) - tiled).max() <= 2


def test_pth_on_a_missing_device_is_a_clear_error(style_ckpt, photo, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    r = pe(style_ckpt, "-i", photo, "-o", tmp_path / "o.png", "--device", "cuda")
    assert_one_line_error(r, 4, "CUDA")
    assert not (tmp_path / "o.png").exists()
