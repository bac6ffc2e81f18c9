"""`pe export` on bad input: one clear line on stderr, a non-zero exit, nothing overwritten."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers import TINY_SR, assert_one_line_error

from perceptual_edge.cli import app


class Payload:
    """A class instance in a checkpoint: loading it would run code, so weights_only refuses."""

    def __reduce__(self):
        return (print, ("pwned",))


def test_not_a_checkpoint(tmp_path: Path, runner) -> None:
    p = tmp_path / "notes.pth"
    p.write_text("hello, not a checkpoint")
    assert_one_line_error(
        runner.invoke(app, ["export", str(p), "-o", str(tmp_path)]), 2, "notes.pth"
    )
    assert_one_line_error(
        runner.invoke(app, ["export", str(tmp_path / "nope.pth")]), 2, "no such file"
    )
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    assert_one_line_error(runner.invoke(app, ["export", str(empty)]), 2, "empty")


def test_pickled_code_is_refused(tmp_path: Path, runner, capfd) -> None:
    p = tmp_path / "evil.pth"
    torch.save({"format": 1, "state_dict": {}, "x": Payload()}, p)
    r = runner.invoke(app, ["export", str(p), "-o", str(tmp_path / "out")])
    assert_one_line_error(r, 2, "refused", "weights_only")
    assert "pwned" not in r.output and "pwned" not in capfd.readouterr().out


def test_future_checkpoint_format(tmp_path: Path, runner) -> None:
    p = tmp_path / "future.pth"
    torch.save({"format": 99, "spec": {}, "config": {}, "state_dict": {}}, p)
    assert_one_line_error(runner.invoke(app, ["export", str(p)]), 2, "format 99", "upgrade")


def test_output_dir_that_is_a_file_is_refused(exported, runner, tmp_path: Path) -> None:
    # Issue 12, case 9: was exit 70 "internal error: FileExistsError".
    notes = tmp_path / "notes.txt"
    notes.write_text("keep me")
    r = runner.invoke(app, ["export", str(exported.checkpoint), "-o", str(notes)])
    assert_one_line_error(r, 2, "notes.txt", "is not a folder")
    assert notes.read_text() == "keep me"


def test_triton_refuses_a_profile_without_batch_1(style_ckpt, runner, tmp_path: Path) -> None:
    # Issue 9, case 9: Triton sends batch-1 requests; an engine whose profile starts at 2 fails.
    out = tmp_path / "out"
    r = runner.invoke(
        app,
        ["export", str(style_ckpt), "-o", str(out), "--triton", str(tmp_path / "repo"),
         "--min", "2x3x64x64", "--opt", "2x3x256x256", "--max", "4x3x512x512"],
    )  # fmt: skip
    assert_one_line_error(r, 2, "--triton", "minimum batch is 2")
    assert not out.exists() and not (tmp_path / "repo").exists()


def test_existing_outputs_are_not_overwritten(exported, runner) -> None:
    before = exported.onnx.stat().st_mtime_ns, exported.onnx.read_bytes()
    r = runner.invoke(app, ["export", str(exported.checkpoint), "-o", str(exported.folder)])
    assert_one_line_error(r, 3, "--overwrite")
    assert (exported.onnx.stat().st_mtime_ns, exported.onnx.read_bytes()) == before
    # The Triton folder too, even when the ONNX outputs go elsewhere.
    r = runner.invoke(
        app,
        [
            "export", str(exported.checkpoint), "-o", str(exported.folder / "other"),
            "--triton", str(exported.repo),
        ],
    )  # fmt: skip
    assert_one_line_error(r, 3, "style_onnx")


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--min", "1x3x512x512", "--opt", "1x3x256x256"], "inconsistent profile"),
        (["--max", "1x3x1000x1002"], "multiples of 4"),
        (["--opt", "1x3x512"], "NxCxHxW"),
        (["--fp16-io"], "--fp16-io needs --fp16"),
        (["--workspace", "0"], "--workspace"),
    ],
)
def test_bad_options_fail_before_any_work(
    style_ckpt: Path, tmp_path: Path, runner, args, needle
) -> None:
    out = tmp_path / "o"
    r = runner.invoke(app, ["export", str(style_ckpt), "-o", str(out), *args])
    assert_one_line_error(r, 2, needle)
    assert not out.exists() or not any(out.iterdir())


def test_explicit_engine_without_tensorrt_fails_after_writing_onnx(
    make_ckpt, tmp_path: Path, runner
) -> None:
    from perceptual_edge.export.tensorrt import tensorrt_status

    if tensorrt_status()[0]:
        pytest.skip("TensorRT is installed here")
    sr4_ckpt = make_ckpt(tmp_path / "sr4.pth", "sr", factor=4, **TINY_SR)
    r = runner.invoke(app, ["export", str(sr4_ckpt), "-o", str(tmp_path), "--engine"])
    assert r.exit_code == 4, r.output
    assert "--engine was requested" in r.stderr and "trtexec --onnx=" in r.stdout
    assert (tmp_path / "sr4.onnx").is_file() and (tmp_path / "sr4.golden.npz").is_file()
    assert not list(tmp_path.glob("*.engine*"))
