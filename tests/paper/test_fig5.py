"""`pe eval objective` library: Fig. 5 measurements, first-beat logic, tables and the plot."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from perceptual_edge.errors import InputError, OutputExistsError
from perceptual_edge.image import save_image
from perceptual_edge.paper.fig5 import (
    check_sizes,
    first_beat,
    format_summary,
    objective_comparison,
    training_objective,
    write_outputs,
)
from perceptual_edge.paper.plots import plot_objective
from perceptual_edge.samples import content_image, style_image

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
N = 6  # baseline iterations


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("objective")
    images = d / "images"
    images.mkdir()
    save_image(content_image(1, 40, 52), images / "a.png")
    save_image(content_image(2, 44, 40), images / "b.png")
    save_image(content_image(3, 40, 40), images / "c.png")
    style = save_image(style_image(32, 48), d / "style.png")
    return images, style


@pytest.fixture(scope="module")
def result(style_ckpt: Path, inputs) -> dict:
    images, style = inputs
    # 34 is not a multiple of the network's 4: exercises the pad and crop.
    return objective_comparison(
        style_ckpt, style, images, sizes=(32, 34), iterations=N, style_size=32, limit=2,
        device="cpu",
    )  # fmt: skip


def test_first_beat_on_synthetic_curves():
    curve = [10.0, 8.0, 5.0, 3.0, 1.0]
    assert first_beat(curve, 5.0) == 2  # "at or below" counts
    assert first_beat(curve, 4.9) == 3
    assert first_beat(curve, 20.0) == 0
    assert first_beat(curve, 0.5) is None
    assert first_beat([3.0, 1.0, 2.0, 0.5], 1.5) == 1  # the first crossing, not the last
    assert first_beat([], 1.0) is None


def test_check_sizes():
    assert check_sizes([256, 512, 1024]) == (256, 512, 1024)
    assert check_sizes([64, 64, 128]) == (64, 128)
    for bad, match in (([], "at least one"), ([8], "minimum")):
        with pytest.raises(InputError, match=match):
            check_sizes(bad)


def test_cli_sizes_are_square_and_parsed_once():
    from perceptual_edge.cli.common import square_sizes

    assert square_sizes(" 64, 64,128") == [64, 128]
    for bad, match in (("a,b", "bad size"), ("", "no sizes"), ("64x32", "square")):
        with pytest.raises(InputError, match=match):
            square_sizes(bad)


def test_measurements(result, inputs):
    images, _ = inputs
    assert result["loss_net"] == "random"  # from the checkpoint's provenance
    assert result["same_loss_net_as_training"] is True
    assert result["images"] == [str(images / "a.png"), str(images / "b.png")]  # --limit 2
    assert result["style_size"] == [32, 48]
    assert [e["size"] for e in result["sizes"]] == [32, 34]
    for e in result["sizes"]:
        curves = np.asarray(e["baseline"])
        assert curves.shape == (2, N + 1)
        assert np.allclose(e["baseline_mean"], curves.mean(axis=0))
        assert np.allclose(e["baseline_std"], curves.std(axis=0))
        assert e["network_mean"] == pytest.approx(np.mean(e["network"]))
        assert e["content_mean"] == pytest.approx(np.mean(e["content"]))
        assert e["first_beat"] == first_beat(e["baseline_mean"], e["network_mean"])
        assert curves[:, -1].max() < curves[:, 0].min()  # the baseline makes progress
        assert all(v > 0 for v in e["content"] + e["network"])
    assert "random" in format_summary(result)


def test_outputs(result, tmp_path: Path):
    paths = write_outputs(result, tmp_path / "out")
    assert sorted(p.name for p in paths.values()) == sorted(
        ["objective.json", "objective.csv", "objective_summary.csv", "objective.png"]
    )
    assert json.loads(paths["objective_json"].read_text()) == result
    rows = list(csv.DictReader(paths["objective_csv"].open()))
    assert len(rows) == 2 * 2 * (2 + N + 1)  # sizes x images x (content, network, curve)
    first = [r for r in rows if r["size"] == "32" and r["image"] == "a.png"]
    assert [r["kind"] for r in first[:3]] == ["content", "network", "baseline"]
    assert float(first[1]["objective"]) == pytest.approx(result["sizes"][0]["network"][0])
    curve = [float(r["objective"]) for r in first if r["kind"] == "baseline"]
    assert curve == pytest.approx(result["sizes"][0]["baseline"][0])
    summary = list(csv.DictReader(paths["objective_summary_csv"].open()))
    assert len(summary) == 2 * (N + 1)
    png = paths["objective_png"].read_bytes()
    assert png.startswith(PNG_MAGIC)
    with Image.open(paths["objective_png"]) as im:
        assert im.width > 400 and im.height > 200
    with pytest.raises(OutputExistsError):
        write_outputs(result, tmp_path / "out")
    write_outputs(result, tmp_path / "out", overwrite=True)


def test_plot_of_synthetic_curves(tmp_path: Path):
    """Both a beat and a never-beat panel, and a band that would dip below zero on a log axis."""
    entries = []
    for size, net in ((256, 5.0), (512, 0.1)):
        mean = [100.0, 30.0, 10.0, 4.0, 2.0]
        entries.append({
            "size": size, "baseline_mean": mean, "baseline_std": [150.0, 5, 3, 1, 0.5],
            "network_mean": net, "network_std": 0.5, "content_mean": 50.0, "content_std": 60.0,
            "network": [net], "first_beat": first_beat(mean, net),
        })  # fmt: skip
    result = {
        "sizes": entries,
        "loss_net": "vgg16",
        "loss_net_weights": "sha256:abc",
        "images": ["x"],
    }
    p = plot_objective(result, tmp_path / "fig5.png")
    assert p.read_bytes().startswith(PNG_MAGIC)
    with pytest.raises(OutputExistsError):
        plot_objective(result, p)


def test_training_objective_from_checkpoint(style_ckpt: Path, tmp_path: Path):
    from perceptual_edge.train import load_checkpoint, save_checkpoint

    ckpt = load_checkpoint(style_ckpt)
    cfg, style_size = training_objective(ckpt)  # no train_state: the shared defaults
    assert cfg.loss_net == "random" and style_size == 256
    ckpt.train_state = {"train_config": {
        "style_weight": 3e4, "tv_weight": 0.0, "content_layer": "relu2_2",
        "style_layers": ["relu1_2", "relu2_2"], "style_size": None, "image_size": 128,
    }}  # fmt: skip
    save_checkpoint(ckpt, tmp_path / "b.pth")
    cfg, style_size = training_objective(load_checkpoint(tmp_path / "b.pth"))
    assert (cfg.style_weight, cfg.tv_weight, cfg.content_layer) == (3e4, 0.0, "relu2_2")
    assert cfg.style_layers == ("relu1_2", "relu2_2") and style_size == 128


def test_bad_inputs(style_ckpt: Path, sr4_ckpt: Path, inputs, tmp_path: Path):
    images, style = inputs
    with pytest.raises(InputError, match="no such folder"):
        objective_comparison(style_ckpt, style, tmp_path / "nope", sizes=(32,), iterations=1)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no image files"):
        objective_comparison(style_ckpt, style, tmp_path / "empty", sizes=(32,), iterations=1)
    with pytest.raises(InputError, match="style"):
        objective_comparison(sr4_ckpt, style, images, sizes=(32,), iterations=1)
    with pytest.raises(InputError, match="iterations"):
        objective_comparison(style_ckpt, style, images, sizes=(32,), iterations=0)
    with pytest.raises(InputError, match="limit"):
        objective_comparison(style_ckpt, style, images, sizes=(32,), iterations=1, limit=0)
    with pytest.raises(InputError, match="no such file"):
        objective_comparison(style_ckpt, tmp_path / "x.png", images, sizes=(32,), iterations=1)
