"""`pe stylize --optimize` and `pe eval objective` through the CLI: outputs, logs, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import assert_one_line_error
from typer.testing import CliRunner

from perceptual_edge.cli import app
from perceptual_edge.image import load_image, save_image
from perceptual_edge.samples import content_image, style_image


def pe(*args) -> object:
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("stylize")
    (d / "images").mkdir()
    save_image(content_image(1, 40, 48), d / "images" / "a.png")
    save_image(content_image(2, 48, 40), d / "images" / "b.png")
    (d / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    return {
        "dir": d,
        "content": save_image(content_image(0, 36, 44), d / "content.png"),
        "style": save_image(style_image(32, 40), d / "style.png"),
        "images": d / "images",
        "corrupt": d / "corrupt.png",
    }


def stylize_args(files, out, *extra) -> list:
    return [
        "stylize", "--optimize", "--content", files["content"], "--style", files["style"],
        "-o", out, "--loss-net", "random", "--device", "cpu", *extra,
    ]  # fmt: skip


def test_stylize_writes_image_and_log(files, tmp_path: Path):
    out, log = tmp_path / "out.png", tmp_path / "log.json"
    r = pe(*stylize_args(files, out, "--iterations", 8, "--log", log, "--image-size", 32))
    assert r.exit_code == 0, r.output
    assert r.stderr == ""  # no progress bar when stderr is not a terminal
    assert "8 L-BFGS iterations" in r.stdout and "random:seed=0" in r.stdout
    assert load_image(out).shape == (32, 39, 3)  # shorter side 32, aspect kept
    data = json.loads(log.read_text())
    objective = [h["objective"] for h in data["history"]]
    assert len(objective) == 9 and objective[-1] < 0.5 * objective[0]
    assert data["meta"]["iterations"] == 8 and data["meta"]["width"] == 39
    # Nothing is overwritten without --overwrite; with it, both outputs are replaced.
    before = out.read_bytes()
    assert_one_line_error(pe(*stylize_args(files, out, "--iterations", 1)), 3, "exists")
    assert out.read_bytes() == before
    csv_log = tmp_path / "log.csv"
    args = stylize_args(files, out, "-n", 1, "--init", "content", "--log", csv_log)
    assert pe(*args, "--overwrite").exit_code == 0
    assert len(csv_log.read_text().splitlines()) == 3  # header, iterations 0 and 1


@pytest.mark.parametrize(
    "extra, code, match",
    [
        (["--iterations", "0"], 2, "iterations"),
        (["--tv-weight", "-1"], 2, "tv-weight"),
        (["--init", "zeros"], 2, "init"),
        (["--content-layer", "relu9_1"], 2, "layer"),
        (["--loss-net", "alexnet"], 2, "loss network"),
        (["--device", "tpu"], 2, "device"),
        (["--image-size", "4"], 2, "image-size"),
        (["--log", "log.txt"], 2, ".json or .csv"),
    ],
)
def test_stylize_bad_options(files, tmp_path: Path, extra, code, match):
    out = tmp_path / "o.png"
    assert_one_line_error(pe(*stylize_args(files, out, *extra)), code, match)
    assert not out.exists()


def test_stylize_bad_inputs(files, tmp_path: Path):
    out = tmp_path / "o.png"
    args = stylize_args(files, out)
    missing = list(args)
    missing[missing.index(files["content"])] = tmp_path / "nope.jpg"
    assert_one_line_error(pe(*missing), 2, "no such file")
    corrupt = list(args)
    corrupt[corrupt.index(files["style"])] = files["corrupt"]
    assert_one_line_error(pe(*corrupt), 2, "corrupt")
    assert_one_line_error(pe("stylize", "--optimize", "-o", out), 2, "--content, --style")
    assert_one_line_error(pe("stylize", "--content", files["content"]), 2, "--optimize")
    assert_one_line_error(pe(*stylize_args(files, tmp_path / "o.xyz")), 2, "suffix")
    assert_one_line_error(pe(*stylize_args(files, tmp_path / "no" / "o.png")), 2, "folder")
    r = pe(*stylize_args(files, out, "--iterations", "many"))  # Typer's own parse error
    assert_one_line_error(r, 2, "--iterations", "pe stylize --help")
    assert not out.exists()


def eval_args(ckpt, files, outdir, *extra) -> list:
    return [
        "eval", "objective", "--model", ckpt, "--style", files["style"], "--images",
        files["images"], "-o", outdir, "--sizes", "32", "--iterations", 3, "--style-size", 32,
        "--device", "cpu", *extra,
    ]  # fmt: skip


def test_eval_objective(style_ckpt, files, tmp_path: Path):
    outdir = tmp_path / "fig5"
    r = pe(*eval_args(style_ckpt, files, outdir))
    assert r.exit_code == 0, r.output
    assert "32: baseline first beats the network at" in r.stdout
    names = {"objective.json", "objective.csv", "objective_summary.csv", "objective.png"}
    assert {p.name for p in outdir.iterdir()} == names
    data = json.loads((outdir / "objective.json").read_text())
    assert data["loss_net"] == "random" and len(data["images"]) == 2
    assert len(data["sizes"][0]["baseline_mean"]) == 4
    # Options override the training objective; the run refuses to overwrite without the flag.
    assert_one_line_error(pe(*eval_args(style_ckpt, files, outdir)), 3, "exists")
    r = pe(*eval_args(style_ckpt, files, outdir, "--tv-weight", 0, "--limit", 1, "--overwrite"))
    assert r.exit_code == 0, r.output
    data = json.loads((outdir / "objective.json").read_text())
    assert data["objective_config"]["tv_weight"] == 0.0 and len(data["images"]) == 1


def test_eval_objective_bad_input(style_ckpt, sr4_ckpt, files, tmp_path: Path):
    out = tmp_path / "o"
    assert_one_line_error(pe(*eval_args(style_ckpt, files, out, "--sizes", "32,x")), 2, "sizes")
    assert_one_line_error(pe(*eval_args(style_ckpt, files, out, "--sizes", "8")), 2, "minimum")
    assert_one_line_error(pe(*eval_args(sr4_ckpt, files, out)), 2, "style")
    assert_one_line_error(pe(*eval_args(files["corrupt"], files, out)), 2, "checkpoint")
    bad = eval_args(style_ckpt, files, out)
    bad[bad.index(files["images"])] = tmp_path / "none"
    assert_one_line_error(pe(*bad), 2, "no such folder")
    assert_one_line_error(pe(*eval_args(style_ckpt, files, out, "--limit", 0)), 2, "limit")
    assert_one_line_error(
        pe(*eval_args(style_ckpt, files, tmp_path / "a" / "b")), 2, "does not exist"
    )
    assert not out.exists() or not any(out.iterdir())
