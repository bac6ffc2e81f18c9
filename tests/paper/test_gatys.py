"""The Gatys optimisation baseline: L-BFGS counting, projection, objective, logs."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from perceptual_edge.errors import InputError, OutputExistsError, UnavailableError
from perceptual_edge.paper.gatys import (
    ObjectiveConfig,
    PerceptualObjective,
    gatys_stylize,
    initial_image,
    lbfgs_optimize,
    loss_network,
    select_device,
    write_history,
)
from perceptual_edge.samples import content_image, style_image

RANDOM = ObjectiveConfig(loss_net="random")


@pytest.fixture(scope="module")
def run():
    """One 12-iteration run from white noise at 40x36 (not square, not a multiple of 8)."""
    return gatys_stylize(
        content_image(3, 36, 40), style_image(40, 60), RANDOM, iterations=12, device="cpu"
    )


def test_history_counts_lbfgs_iterations_and_objective_decreases(run):
    h = run.history
    assert [r["iteration"] for r in h] == list(range(13))  # the initial image and 12 iterations
    assert set(h[0]) == {"iteration", "objective", "content", "style", "tv", "seconds"}
    assert h[0]["seconds"] == 0.0
    assert all(b["seconds"] >= a["seconds"] for a, b in zip(h, h[1:], strict=False))
    assert h[-1]["objective"] < 0.3 * h[0]["objective"]
    for r in h:  # the total is the weighted sum of the recorded terms
        total = RANDOM.content_weight * r["content"] + RANDOM.style_weight * r["style"]
        total += RANDOM.tv_weight * r["tv"]
        assert r["objective"] == pytest.approx(total, rel=1e-4)
    assert run.image.shape == (36, 40, 3) and run.image.dtype == np.uint8
    assert run.meta["loss_net_weights"] == "random:seed=0"
    assert run.meta["iterations"] == 12 and run.meta["init"] == "noise"


class _OutsideBox:
    """A quadratic whose minimum (400) lies outside 0..255: only the projection keeps x in."""

    def terms(self, y: torch.Tensor) -> dict[str, torch.Tensor]:
        obj = (y - 400.0).pow(2).mean()
        zero = torch.zeros(())
        return {"objective": obj, "content": obj.detach(), "style": zero, "tv": zero}


def test_projection_after_every_iteration():
    x0 = torch.full((1, 3, 8, 8), 100.0)
    seen: list[float] = []
    x, history = lbfgs_optimize(_OutsideBox(), x0, 6, lambda i, r: seen.append(r["objective"]))
    assert float(x.max()) <= 255.0 and float(x.min()) >= 0.0
    # Every recorded point is a projected one: no objective below the box's best, (400-255)^2.
    assert min(r["objective"] for r in history) >= (400 - 255) ** 2 - 1e-3
    assert history[-1]["objective"] == pytest.approx((400 - 255) ** 2, rel=1e-3)
    assert seen == [r["objective"] for r in history]


def test_lbfgs_remembers_the_projected_step():
    """The curvature pair uses the step actually taken after clipping (see gatys.py)."""
    from perceptual_edge.paper.gatys import _record_projected_step

    x = torch.full((1, 3, 2, 2), 250.0, requires_grad=True)
    opt = torch.optim.LBFGS([x], lr=1.0, max_iter=1)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = _OutsideBox().terms(x)["objective"]
        loss.backward()
        return loss

    for _ in range(3):
        before = x.detach().clone()
        opt.step(closure)
        with torch.no_grad():
            x.clamp_(0, 255)
            _record_projected_step(opt, x, before)
        state = opt.state[x]
        assert torch.allclose(state["d"] * state["t"], (x.detach() - before).flatten())
    assert float(x.detach().max()) == 255.0


@pytest.mark.slow
def test_no_jumps_over_a_long_run():
    # Plain projected L-BFGS jumped up 2-170x every few dozen iterations at 64-128 px.
    r = gatys_stylize(
        content_image(3, 64, 64), style_image(64, 96), RANDOM, iterations=150, device="cpu"
    )
    objective = [h["objective"] for h in r.history]
    assert max(b / a for a, b in zip(objective[20:], objective[21:], strict=False)) < 1.5


def test_initial_image():
    content = torch.from_numpy(content_image(1, 16, 20).transpose(2, 0, 1)[None].astype("f4"))
    a, b = initial_image(content, "noise", 5), initial_image(content, "noise", 5)
    assert torch.equal(a, b) and not torch.equal(a, initial_image(content, "noise", 6))
    assert a.shape == content.shape and float(a.min()) >= 0 and float(a.max()) <= 255
    assert float(a.std()) > 50  # white noise over the whole range, not a faint perturbation
    assert torch.equal(initial_image(content, "content"), content)
    with pytest.raises(InputError, match="init"):
        initial_image(content, "zeros")


def test_content_init_starts_at_zero_content_loss():
    r = gatys_stylize(
        content_image(2, 32, 32), style_image(32, 32), RANDOM, iterations=2, init="content"
    )
    assert r.history[0]["content"] == pytest.approx(0.0, abs=1e-6)


def test_same_objective_as_training():
    """The baseline minimises exactly what `pe train style` trains the network on."""
    from perceptual_edge.train.objectives import StyleObjective

    net = loss_network(RANDOM, torch.device("cpu"))
    c = torch.from_numpy(content_image(4, 32, 32).transpose(2, 0, 1)[None].astype("f4"))
    s = torch.from_numpy(style_image(32, 48).transpose(2, 0, 1)[None].astype("f4"))
    y = torch.rand_like(c) * 255
    ours = PerceptualObjective(net, RANDOM, c, s).evaluate(y)
    cfg = RANDOM
    train = StyleObjective(
        net, s, cfg.content_layer, cfg.style_layers, cfg.content_weight, cfg.style_weight,
        cfg.tv_weight,
    )(y, c)  # fmt: skip
    assert ours["objective"] == pytest.approx(float(train["loss"]), rel=1e-5)
    assert ours["style"] == pytest.approx(float(train["style"]), rel=1e-5)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"style_weight": -1.0}, "style-weight"),
        ({"tv_weight": float("nan")}, "tv-weight"),
        ({"content_layer": "conv3_3"}, "layer"),
        ({"style_layers": ("relu9_9",)}, "layer"),
        ({"style_layers": ()}, "style-layers"),
        ({"loss_net": "resnet"}, "loss network"),
    ],
)
def test_config_validation(kwargs, match):
    with pytest.raises(InputError, match=match):
        ObjectiveConfig(**kwargs)


def test_bad_run_arguments():
    c, s = content_image(0, 32, 32), style_image(32, 32)
    with pytest.raises(InputError, match="iterations"):
        gatys_stylize(c, s, RANDOM, iterations=0)
    with pytest.raises(InputError, match="image-size"):
        gatys_stylize(c, s, RANDOM, iterations=1, image_size=4)
    with pytest.raises(InputError, match="too small"):
        gatys_stylize(content_image(0, 8, 64), s, RANDOM, iterations=1)


def test_select_device():
    assert select_device("cpu").type == "cpu"
    assert select_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(InputError):
        select_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(UnavailableError, match="CUDA"):
            select_device("cuda")


def test_history_json_and_csv(run, tmp_path: Path):
    j = write_history(run, tmp_path / "h.json")
    data = json.loads(j.read_text())
    assert data["history"] == run.history
    assert data["meta"]["objective_config"]["loss_net"] == "random"
    assert "L-BFGS step" in data["meta"]["iteration_unit"]
    c = write_history(run, tmp_path / "h.csv")
    rows = list(csv.DictReader(c.open()))
    assert len(rows) == 13 and list(rows[0]) == [
        "iteration", "objective", "content", "style", "tv", "seconds",
    ]  # fmt: skip
    assert [float(r["objective"]) for r in rows] == [r["objective"] for r in run.history]
    with pytest.raises(OutputExistsError):
        write_history(run, tmp_path / "h.csv")
    with pytest.raises(InputError, match="json or .csv"):
        write_history(run, tmp_path / "h.txt")


@pytest.mark.gpu
def test_gatys_on_cuda():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU")
    r = gatys_stylize(
        content_image(3, 64, 64), style_image(64, 64), RANDOM, iterations=20, device="cuda"
    )
    assert r.meta["device"].startswith("cuda")
    assert r.history[-1]["objective"] < 0.3 * r.history[0]["objective"]
