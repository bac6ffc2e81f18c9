"""`pe train style|sr`: tiny real runs, and every bad input of the issue as one clear line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import assert_one_line_error, read_only_folder
from typer.testing import CliRunner

from perceptual_edge.cli import app

torch = pytest.importorskip("torch")

runner = CliRunner()
TINY = ["--image-size", "32", "--batch-size", "2", "--loss-net", "random", "--device", "cpu", "-q"]


def _style(style: Path, data: Path, out: Path, *extra: str) -> list[str]:
    return ["train", "style", "--style", str(style), "--data", str(data), "-o", str(out),
            *TINY, *extra]  # fmt: skip


def test_train_style_tiny_run_writes_checkpoint_log_and_samples(
    tiny_style: Path, tiny_data: Path, tmp_path: Path
) -> None:
    out = tmp_path / "wave.pth"
    extra = ["--iterations", "3", "--sample-every", "2", "--log-every", "1"]
    r = runner.invoke(app, _style(tiny_style, tiny_data, out, *extra))
    assert r.exit_code == 0, r.output
    assert "wrote" in r.stdout
    ckpt = torch.load(out, map_location="cpu", weights_only=True)
    prov = ckpt["spec"]["provenance"]
    from perceptual_edge.fsutil import sha256_file

    assert prov["style_image_sha256"] == sha256_file(tiny_style)
    assert prov["loss_net"] == "random" and prov["loss_net_weights"] == "random:seed=0"
    assert prov["steps"] == 3
    assert ckpt["config"]["network"] == "style" and ckpt["config"]["norm"] == "instance"
    log = [json.loads(line) for line in (tmp_path / "wave.log.jsonl").read_text().splitlines()]
    assert [rec["step"] for rec in log] == [1, 2, 3]
    assert {"loss", "content", "style", "tv"} <= log[0].keys()
    total = log[0]["content"] + 1e5 * log[0]["style"] + 1e-6 * log[0]["tv"]
    assert log[0]["loss"] == pytest.approx(total, rel=1e-5)
    samples = sorted(p.name for p in (tmp_path / "wave.samples").iterdir())
    assert samples[0] == "step0000002_0.png" and "step0000003_3.png" in samples
    from perceptual_edge.train import load_model

    model, spec = load_model(out)
    assert spec.kind == "style"
    # Existing output without --overwrite: refused before any work, file untouched.
    before = out.read_bytes()
    r = runner.invoke(app, _style(tiny_style, tiny_data, out, "--iterations", "1"))
    assert_one_line_error(r, None, "exists", "--overwrite")
    assert r.exit_code == 3 and out.read_bytes() == before


@pytest.mark.parametrize("factor,loss", [(4, "feat"), (8, "pixel")])
def test_train_sr_tiny_run(tiny_data: Path, tmp_path: Path, factor: int, loss: str) -> None:
    out = tmp_path / f"sr{factor}.pth"
    args = ["train", "sr", "--factor", str(factor), "--loss", loss, "--data", str(tiny_data),
            "-o", str(out), *TINY, "--iterations", "2", "--sample-every", "2",
            "--image-size", str(8 * factor)]  # fmt: skip
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    ckpt = torch.load(out, map_location="cpu", weights_only=True)
    assert ckpt["spec"]["kind"] == "sr" and ckpt["spec"]["scale"] == factor
    assert ckpt["spec"]["provenance"]["loss_net"] == ("random" if loss == "feat" else "none")
    from perceptual_edge.train import load_model

    model, _ = load_model(out)
    with torch.no_grad():
        y = model(torch.rand(1, 3, 8, 8) * 255)
    assert y.shape == (1, 3, 8 * factor, 8 * factor)
    sample = next((tmp_path / f"sr{factor}.samples").iterdir())
    from perceptual_edge.image import load_image

    assert load_image(sample).shape == (8 * factor, 8 * factor, 3)


@pytest.mark.parametrize(
    "extra,needles",
    [
        (["--iterations", "0"], ["--iterations", "> 0"]),
        (["--iterations", "-5"], ["--iterations"]),
        (["--batch-size", "0"], ["--batch-size"]),
        (["--image-size", "-32"], ["--image-size"]),
        (["--image-size", "30"], ["multiple of 4"]),
        (["--style-weight", "-1"], ["--style-weight"]),
        (["--content-weight", "0"], ["--content-weight"]),
        (["--tv-weight", "-1e-6"], ["--tv-weight"]),
        (["--lr", "0"], ["--lr"]),
        (["--lr", "nan"], ["--lr", "finite"]),
        (["--style-size", "0"], ["--style-size"]),
        (["--content-layer", "relu9_9"], ["relu9_9"]),
        (["--norm", "layer"], ["--norm"]),
        (["--device", "tpu"], ["--device"]),
        (["--loss-net", "resnet"], ["--loss-net"]),
        (["--iterations", "2", "--epochs", "1"], ["not both"]),
    ],
)
def test_bad_numbers_and_choices(
    tiny_style: Path, tiny_data: Path, tmp_path: Path, extra: list[str], needles: list[str]
) -> None:
    out = tmp_path / "o.pth"
    r = runner.invoke(app, _style(tiny_style, tiny_data, out, *extra))
    assert_one_line_error(r, None, *needles)
    assert not out.exists() and not list(tmp_path.iterdir())


def test_bad_style_files(tiny_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "o.pth"
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0" + b"garbage" * 10)
    text = tmp_path / "notes.png"
    text.write_text("hello")
    for style, needle in [
        (tmp_path / "missing.jpg", "no such file"),
        (corrupt, "corrupt.jpg"),
        (text, "not an image"),
    ]:
        r = runner.invoke(app, _style(style, tiny_data, out, "--iterations", "1"))
        assert_one_line_error(r, None, needle)
        assert not out.exists()


def test_bad_data_folders(tiny_style: Path, tmp_path: Path) -> None:
    out = tmp_path / "o.pth"
    empty = tmp_path / "empty"
    empty.mkdir()
    for data, needle in [(tmp_path / "nope", "does not exist"), (empty, "no usable images")]:
        r = runner.invoke(app, _style(tiny_style, data, out, "--iterations", "1"))
        assert_one_line_error(r, None, needle)
    r = runner.invoke(app, ["train", "sr", "--data", str(empty), "-o", str(out), *TINY])
    assert_one_line_error(r, None, "no usable images")
    assert not out.exists()


def test_bad_output_paths(
    tiny_style: Path, tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = runner.invoke(app, _style(tiny_style, tiny_data, tmp_path / "no" / "o.pth"))
    assert_one_line_error(r, None, "does not exist")
    ro = read_only_folder(tmp_path / "ro", monkeypatch)
    r = runner.invoke(app, _style(tiny_style, tiny_data, ro / "o.pth"))
    assert_one_line_error(r, None, "not writable")
    assert list(ro.iterdir()) == []


def test_bad_sr_options(tiny_data: Path, tmp_path: Path) -> None:
    base = ["train", "sr", "--data", str(tiny_data), "-o", str(tmp_path / "o.pth"), *TINY]
    assert_one_line_error(runner.invoke(app, [*base, "--factor", "3"]), None, "--factor")
    assert_one_line_error(runner.invoke(app, [*base, "--loss", "gan"]), None, "--loss")
    assert_one_line_error(
        runner.invoke(app, [*base, "--factor", "8", "--image-size", "36"]), None, "multiple"
    )
    assert_one_line_error(
        runner.invoke(app, [*base, "--factor", "8", "--image-size", "32"]), None, ">= 64"
    )


def test_resume_refuses_foreign_files(
    tiny_style: Path, tiny_data: Path, tmp_path: Path, sr4_ckpt: Path, style_ckpt: Path
) -> None:
    out = tmp_path / "o.pth"
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint at all")
    plain = tmp_path / "plain.pth"
    torch.save({"conv1.conv2d.weight": torch.zeros(1)}, plain)
    cases = [
        (junk, "not a readable PyTorch checkpoint"),
        (plain, "not a perceptual-edge checkpoint"),
        (sr4_ckpt, "made for another network"),
        (style_ckpt, "no training state"),
        (tmp_path / "missing.pth", "no such file"),
    ]
    for resume, needle in cases:
        r = runner.invoke(app, _style(tiny_style, tiny_data, out, "--resume", str(resume)))
        assert_one_line_error(r, None, needle)
        assert not out.exists()
    # A deconv network's checkpoint cannot resume a nearest-conv run.
    deconv = tmp_path / "deconv.pth"
    r = runner.invoke(app, _style(tiny_style, tiny_data, deconv, "--iterations", "1",
                                  "--upsample", "deconv"))  # fmt: skip
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, _style(tiny_style, tiny_data, out, "--resume", str(deconv)))
    assert_one_line_error(r, None, "made for another network", "upsample")
    # An SR run cannot resume from a style run.
    r = runner.invoke(app, ["train", "sr", "--data", str(tiny_data), "-o", str(out), *TINY,
                            "--resume", str(deconv)])  # fmt: skip
    assert_one_line_error(r, None, "made for another network")


def test_cli_defaults_match_the_defaults_module() -> None:
    import inspect

    from perceptual_edge.cli import train_cmds
    from perceptual_edge.train import defaults as D

    def default(func, name):
        return inspect.signature(func).parameters[name].default.default

    assert default(train_cmds.style_cmd, "image_size") == D.IMAGE_SIZE
    assert default(train_cmds.sr_cmd, "image_size") == D.SR_PATCH
    assert default(train_cmds.style_cmd, "batch_size") == D.BATCH_SIZE
    assert default(train_cmds.style_cmd, "lr") == D.LR
    assert default(train_cmds.style_cmd, "content_weight") == D.CONTENT_WEIGHT
    assert default(train_cmds.style_cmd, "style_weight") == D.STYLE_WEIGHT
    assert default(train_cmds.style_cmd, "tv_weight") == D.TV_WEIGHT
    assert default(train_cmds.style_cmd, "content_layer") == D.STYLE_CONTENT_LAYER
    assert default(train_cmds.sr_cmd, "content_layer") == D.SR_CONTENT_LAYER
    assert tuple(default(train_cmds.style_cmd, "style_layers").split(",")) == D.STYLE_LAYERS


def test_a_full_disk_is_found_before_training_and_a_failed_run_leaves_nothing(
    tiny_style: Path, tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Issue 12, cases 4-8 and 10: training noticed a full disk at its first checkpoint (hours
    # in), and a run that failed before any checkpoint left its log and samples behind.
    import errno
    import os

    from perceptual_edge import fsutil
    from perceptual_edge.train import runner as runner_mod

    out = tmp_path / "wave.pth"
    args = _style(tiny_style, tiny_data, out, "--iterations", "4", "--sample-every", "1",
                  "--log-every", "1", "--checkpoint-every", "3", "--no-amp")  # fmt: skip
    reserved: list[int] = []

    def no_room(fd: int, offset: int, length: int) -> None:
        reserved.append(length)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(fsutil.os, "posix_fallocate", no_room, raising=False)
    steps: list[int] = []
    real_step = runner_mod.Runner.step_once
    monkeypatch.setattr(runner_mod.Runner, "step_once",
                        lambda self, *a: steps.append(1) or real_step(self, *a))  # fmt: skip
    r = runner.invoke(app, args)
    assert_one_line_error(r, 6, "no room for the checkpoint", "No space left on device")
    assert not steps and reserved and reserved[0] > 6 * 2**20  # ~3 x 1.7M float32 weights
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # not even a hidden temp file

    # The disk fills at step 2, before the first checkpoint (step 3): log and samples go.
    real_write = runner_mod.Runner.write_log

    def fill(self, step, *a):
        if step == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.cfg.log_path))
        real_write(self, step, *a)

    monkeypatch.setattr(runner_mod.Runner, "write_log", fill)
    r = runner.invoke(app, args)
    assert_one_line_error(r, 6, "wave.log.jsonl")
    assert sorted(p.name for p in tmp_path.iterdir()) == []
