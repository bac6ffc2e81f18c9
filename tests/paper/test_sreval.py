"""`pe eval sr` and perceptual_edge.paper.sreval: models, bicubic baseline, output, bad input."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import typer
from helpers import assert_one_line_error
from typer.testing import CliRunner

from perceptual_edge.cli.sreval_cmds import register_eval_sr
from perceptual_edge.image import load_image, save_image
from perceptual_edge.paper import srmetrics
from perceptual_edge.paper.sreval import ImageScore, SrEvalResult, evaluate_sr, format_table
from perceptual_edge.samples import content_image


def _eval_app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """Stands in for paper_cmds' `eval` sub-app."""

    register_eval_sr(app)
    return app


APP = _eval_app()


def invoke(*args: str):
    return CliRunner().invoke(APP, ["sr", *map(str, args)])


@pytest.fixture(scope="module")
def hr_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two small photo-like HR images, one of them not a multiple of 4."""
    d = tmp_path_factory.mktemp("hr")
    save_image(content_image(1, 64, 72), d / "a.png")
    save_image(content_image(2, 66, 61), d / "b.png")
    return d


def test_bicubic_set5_x4_through_the_cli_json(shared_data) -> None:
    r = invoke("--method", "bicubic", "--data", shared_data / "sr" / "Set5", "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert abs(d["mean_psnr"] - 28.42) <= 0.05 and abs(d["mean_ssim"] - 0.810) <= 0.005
    assert d["method"] == "bicubic" and d["factor"] == 4 and d["count"] == 5
    assert "bicubic" in d["degradation"] and "blur" not in d["degradation"]
    assert [i["name"] for i in d["images"]][0] == "baby.png"
    assert d["seconds_per_image_protocol"] > 0


def test_blur_is_recorded_and_changes_the_score(shared_data) -> None:
    data = shared_data / "sr" / "Set5"
    plain = evaluate_sr(data, factor=4, limit=2)
    blurred = evaluate_sr(data, factor=4, blur=1.0, limit=2)
    assert len(blurred.images) == 2
    assert blurred.blur_sigma == 1.0 and "sigma=1" in blurred.degradation
    assert blurred.to_dict()["degradation"].startswith("Gaussian blur")
    # A blurred LR loses detail the bicubic baseline cannot bring back.
    assert blurred.mean_psnr < plain.mean_psnr - 0.2


@pytest.fixture(scope="module")
def onnx_result(sr4_onnx: Path, hr_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    grid = tmp_path_factory.mktemp("grid") / "grid.png"
    return evaluate_sr(hr_dir, factor=4, model=sr4_onnx, histogram_match=True, grid=grid)


def test_model_scores_match_a_direct_computation(onnx_result, sr4_onnx, hr_dir) -> None:
    from perceptual_edge.runtime import Session

    res = onnx_result
    assert res.method == "model" and [s.name for s in res.images] == ["a.png", "b.png"]
    hr = srmetrics.mod_crop(load_image(hr_dir / "b.png"), 4)
    assert res.images[1].size == (64, 60)
    lr = srmetrics.degrade(hr, 4)
    with Session(sr4_onnx) as s:
        out = s.run(lr)
    p, q = srmetrics.score_y(out, hr, 4)
    assert math.isclose(res.images[1].psnr, p) and math.isclose(res.images[1].ssim, q)
    hm = srmetrics.score_y(srmetrics.match_histograms(out, lr), hr, 4)
    assert (res.images[1].psnr_hm, res.images[1].ssim_hm) == pytest.approx(hm)
    bic = srmetrics.score_y(srmetrics.bicubic_upscale(lr, 4), hr, 4)
    assert (res.images[1].bicubic_psnr, res.images[1].bicubic_ssim) == pytest.approx(bic)
    # Random weights: the model is far from the bicubic baseline, so the two are not confused.
    assert abs(res.mean_psnr - res.to_dict()["mean_bicubic_psnr"]) > 1.0


def test_model_outputs_json_table_and_grid(onnx_result) -> None:
    d = onnx_result.to_dict()
    json.dumps(d, allow_nan=False)
    for key in ("mean_psnr", "mean_ssim", "mean_psnr_hm", "mean_ssim_hm", "images", "factor"):
        assert d[key] is not None, key
    assert d["seconds_per_image_model"] > 0
    table = format_table(onnx_result)
    assert "a.png" in table and "b.png" in table and "mean" in table and "PSNR hm" in table
    from PIL import Image

    with Image.open(onnx_result.grid) as g:
        # 3 columns (bicubic | model | HR) of 2x-enlarged crops of the 64x72 and 64x60 images.
        assert g.width == 3 * 144 + 4 * 4
        assert g.height == 2 * (128 + 14 + 4) + 4


def test_pth_and_onnx_agree(sr4_ckpt: Path, onnx_result, hr_dir: Path) -> None:
    res = evaluate_sr(hr_dir, factor=4, model=sr4_ckpt)
    for a, b in zip(res.images, onnx_result.images, strict=True):
        assert abs(a.psnr - b.psnr) < 0.05 and abs(a.ssim - b.ssim) < 0.005


def test_cli_model_table(sr4_onnx: Path, hr_dir: Path) -> None:
    r = invoke("--model", sr4_onnx, "--data", hr_dir, "--factor", "4", "--limit", "1")
    assert r.exit_code == 0, r.output
    assert "a.png" in r.stdout and "b.png" not in r.stdout
    assert "degradation: MATLAB bicubic x1/4" in r.stdout and "model" in r.stdout


def test_wrong_factor_and_wrong_kind(sr4_onnx: Path, style_onnx: Path, hr_dir: Path) -> None:
    r = invoke("--model", sr4_onnx, "--data", hr_dir, "--factor", "8")
    assert_one_line_error(r, 2, "x4 network", "--factor 4")
    r = invoke("--model", style_onnx, "--data", hr_dir)
    assert_one_line_error(r, 2, "not a super-resolution")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--method", "bicubic", "--data", "{missing}"], "no such folder"),
        (["--method", "bicubic", "--data", "{empty}"], "no image files"),
        (["--method", "bicubic", "--data", "{corrupt}"], "not an image"),
        (["--method", "bicubic", "--data", "{hr}", "--factor", "5"], "--factor"),
        (["--method", "bicubic", "--data", "{hr}", "--blur", "-1"], "--blur"),
        (["--method", "bicubic", "--data", "{hr}", "--limit", "0"], "--limit"),
        (["--method", "nearest", "--data", "{hr}"], "--method"),
        (["--data", "{hr}"], "either --model"),
        (["--model", "{missing}", "--data", "{hr}"], "no such model"),
        (["--model", "{corrupt_model}", "--data", "{hr}"], "corrupt_model"),
        (["--method", "bicubic", "--data", "{hr}", "--grid", "{hr}/g.jpg"], "PNG"),
        (["--method", "bicubic", "--data", "{tiny}", "--factor", "8"], "too small"),
    ],
)
def test_bad_input_is_one_line(tmp_path: Path, hr_dir: Path, args: list[str], needle: str) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "corrupt").mkdir()
    (tmp_path / "corrupt" / "x.png").write_bytes(b"not a png at all")
    (tmp_path / "tiny").mkdir()
    save_image(np.zeros((20, 20, 3), np.uint8), tmp_path / "tiny" / "t.png")
    (tmp_path / "m.onnx").write_bytes(b"garbage")
    paths = {
        "missing": tmp_path / "nope",
        "empty": tmp_path / "empty",
        "corrupt": tmp_path / "corrupt",
        "tiny": tmp_path / "tiny",
        "hr": hr_dir,
        "corrupt_model": tmp_path / "corrupt_model.onnx",
    }
    paths["corrupt_model"].write_bytes(b"\x00garbage")
    r = invoke(*[a.format(**paths) for a in args])
    assert r.exit_code != 0, r.output
    assert_one_line_error(r, r.exit_code, needle)


def test_grid_is_not_overwritten_without_flag(hr_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "g.png"
    out.write_bytes(b"keep")
    r = invoke("--method", "bicubic", "--data", hr_dir, "--grid", out)
    assert_one_line_error(r, 3, "--overwrite")
    assert out.read_bytes() == b"keep"
    r = invoke("--method", "bicubic", "--data", hr_dir, "--grid", out, "--overwrite")
    assert r.exit_code == 0, r.output
    assert load_image(out).shape[1] == 2 * 144 + 3 * 4  # bicubic | HR
    assert [p.name for p in tmp_path.iterdir()] == ["g.png"]  # no temporary left behind


def test_infinite_psnr_becomes_null_in_json() -> None:
    res = SrEvalResult("bicubic", None, 4, "d", None, False, "x")
    res.images.append(ImageScore("a.png", (8, 8), math.inf, 1.0, math.inf, 1.0))
    d = res.to_dict()
    assert d["mean_psnr"] is None and d["images"][0]["psnr"] is None
    json.dumps(d, allow_nan=False)


def test_bicubic_evaluation_never_imports_torch(shared_data) -> None:
    code = (
        "import sys; from perceptual_edge.paper.sreval import evaluate_sr; "
        f"r = evaluate_sr({str(shared_data / 'sr' / 'Set5')!r}, factor=4, limit=1); "
        "assert r.images; print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
