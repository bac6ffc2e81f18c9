"""The optimisation baseline of Gatys et al.: the paper's Eq. 5 minimised over the image pixels.

    y* = argmin_y  lambda_c * l_feat(y, y_c) + lambda_s * l_style(y, y_s) + lambda_tv * l_tv(y)

with L-BFGS from white noise (or from the content image), projected to 0..255 after every
iteration, on the same loss network, layers and weights as `pe train style` (train/defaults.py).

Iteration counting: one iteration is one L-BFGS step (`torch.optim.LBFGS(max_iter=1)` stepped
once, no line search, so exactly one objective+gradient evaluation per iteration), which is what
the paper's "L-BFGS iterations" count. The optimiser keeps its curvature history across steps,
so N single steps are the same L-BFGS run as one call with max_iter=N, with the projection in
between (and L-BFGS told the step the projection allowed: `_record_projected_step`). White
noise is uniform over 0..255, seeded. The objective is recorded for the initial image
(iteration 0) and after every iteration, i.e. `iterations + 1` values; the last one costs one
extra forward pass.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from perceptual_edge.errors import InputError
from perceptual_edge.fsutil import write_text_atomic
from perceptual_edge.image import (
    PIXEL_MAX,
    PIXEL_MIN,
    batch_to_image,
    image_to_batch,
    resize_shorter_side,
)
from perceptual_edge.train import defaults
from perceptual_edge.train.defaults import LAYER_INDEX
from perceptual_edge.train.device import select_device, synchronize
from perceptual_edge.train.losses import gram, squared_error, style_loss, total_variation
from perceptual_edge.train.vgg import VGG16Features, load_loss_network

INITS = ("noise", "content")
MIN_SIZE = 16  # VGG-16 pools four times before relu4_3; smaller images leave ~nothing there
TERMS = ("objective", "content", "style", "tv")

# Called after every iteration with (iteration, record); iteration 0 is the initial image.
ProgressFn = Callable[[int, dict[str, float]], None]


def style_target_image(style: np.ndarray, size: int) -> np.ndarray:
    """The style image exactly as `pe train style` prepares it (shorter side `size`, whole
    image, bilinear), so the baseline and the network share one set of Gram targets."""
    from perceptual_edge.train.runner import style_batch

    return batch_to_image(style_batch(style, size).numpy())


@dataclass(frozen=True)
class ObjectiveConfig:
    """The terms and weights of Eq. 5 and the loss network they are measured on."""

    content_weight: float = defaults.CONTENT_WEIGHT
    style_weight: float = defaults.STYLE_WEIGHT
    tv_weight: float = defaults.TV_WEIGHT
    content_layer: str = defaults.STYLE_CONTENT_LAYER
    style_layers: tuple[str, ...] = defaults.STYLE_LAYERS
    loss_net: str = "vgg16"  # vgg16 | random
    vgg_weights: str | None = None

    def __post_init__(self) -> None:
        for name in ("content_weight", "style_weight", "tv_weight"):
            v = getattr(self, name)
            if not math.isfinite(v) or v < 0:
                raise InputError(f"--{name.replace('_', '-')} must be a finite number >= 0")
        if not self.style_layers:
            raise InputError("--style-layers: give at least one layer")
        for layer in (self.content_layer, *self.style_layers):
            if layer not in LAYER_INDEX or not layer.startswith("relu"):
                relus = ", ".join(n for n in LAYER_INDEX if n.startswith("relu"))
                raise InputError(f"unknown VGG-16 layer {layer!r}; choose from {relus}")
        if self.loss_net not in ("vgg16", "random"):
            raise InputError(f"unknown loss network {self.loss_net!r}; choose vgg16 or random")

    @property
    def layers(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((*self.style_layers, self.content_layer)))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["style_layers"] = list(self.style_layers)
        return d


def loss_network(cfg: ObjectiveConfig, device: torch.device) -> VGG16Features:
    return load_loss_network(cfg.loss_net, cfg.layers, cfg.vgg_weights).to(device)


def style_grams(
    net: VGG16Features, cfg: ObjectiveConfig, style: torch.Tensor
) -> dict[str, torch.Tensor]:
    """The style targets, {layer: (1, C, C)}, of a (1, 3, Hs, Ws) style image in 0..255."""
    with torch.no_grad():
        feats = net(style)
        return {n: gram(feats[n]) for n in cfg.style_layers}


class PerceptualObjective:
    """Eq. 5 for one content image and one style image; the targets are computed once."""

    def __init__(
        self,
        net: VGG16Features,
        cfg: ObjectiveConfig,
        content: torch.Tensor,  # (1, 3, H, W) in 0..255
        style: torch.Tensor | Mapping[str, torch.Tensor],  # (1, 3, Hs, Ws) or its style_grams
    ) -> None:
        self.net, self.cfg = net, cfg
        with torch.no_grad():
            self.content_target = net(content)[cfg.content_layer]  # (1, C, H', W')
        self.style_grams = style_grams(net, cfg, style) if torch.is_tensor(style) else style

    def terms(self, y: torch.Tensor) -> dict[str, torch.Tensor]:
        """Weighted total and unweighted terms, each a scalar averaged over the batch."""
        feats = self.net(y)
        content = squared_error(feats[self.cfg.content_layer], self.content_target)
        style = style_loss(feats, self.style_grams, self.cfg.style_layers)
        tv = total_variation(y)
        total = (
            self.cfg.content_weight * content
            + self.cfg.style_weight * style
            + self.cfg.tv_weight * tv
        )
        return {"objective": total, "content": content, "style": style, "tv": tv}

    @torch.no_grad()
    def evaluate(self, y: torch.Tensor) -> dict[str, float]:
        """Eq. 5 and its unweighted terms as floats, without a gradient."""
        return {k: float(v) for k, v in self.terms(y).items()}


def initial_image(
    content: torch.Tensor, init: str = "noise", seed: int = 0
) -> torch.Tensor:  # (1, 3, H, W)
    """White noise uniform in 0..255 (seeded, drawn on the CPU so every device gets the same
    image), or a copy of the content image."""
    if init == "content":
        return content.detach().clone()
    if init != "noise":
        raise InputError(f"unknown --init {init!r}; choose from {INITS}")
    gen = torch.Generator().manual_seed(seed)
    noise = torch.rand(content.shape, generator=gen) * (PIXEL_MAX - PIXEL_MIN) + PIXEL_MIN
    return noise.to(content.device)


def lbfgs_optimize(
    objective: PerceptualObjective,
    init: torch.Tensor,  # (1, 3, H, W) in 0..255
    iterations: int,
    progress: ProgressFn | None = None,
) -> tuple[torch.Tensor, list[dict[str, float]]]:
    """Run `iterations` projected L-BFGS iterations; returns the image and one record per
    iteration 0..N with the objective, its unweighted terms and the elapsed seconds."""
    if iterations < 1:
        raise InputError(f"--iterations must be >= 1, got {iterations}")
    x = init.detach().clone().clamp_(PIXEL_MIN, PIXEL_MAX).requires_grad_(True)
    # No tolerances: the paper runs a fixed number of iterations, and a "converged" early stop
    # would make the per-iteration curves of different images different lengths.
    opt = torch.optim.LBFGS(
        [x], lr=1.0, max_iter=1, tolerance_grad=-1.0, tolerance_change=-1.0, history_size=100
    )
    last: dict[str, torch.Tensor] = {}

    def closure() -> torch.Tensor:
        opt.zero_grad(set_to_none=False)
        terms = objective.terms(x)
        terms["objective"].backward()
        last.update({k: v.detach() for k, v in terms.items()})
        return terms["objective"]

    history: list[dict[str, float]] = []

    def record(i: int, terms: dict[str, torch.Tensor], seconds: float) -> None:
        rec = {k: float(terms[k]) for k in TERMS}
        if not math.isfinite(rec["objective"]):
            raise InputError(
                f"the objective became {rec['objective']} at iteration {i} (weights too large?)"
            )
        history.append({"iteration": i, **rec, "seconds": seconds})
        if progress is not None:
            progress(i, history[-1])

    synchronize(x.device)
    start = time.perf_counter()
    elapsed = [0.0]  # elapsed[i]: wall seconds after i iterations, projection included
    for i in range(iterations):
        before = x.detach().clone()
        opt.step(closure)  # evaluates f and its gradient at x_i (into `last`), moves to x_{i+1}
        with torch.no_grad():
            x.clamp_(PIXEL_MIN, PIXEL_MAX)  # the projection onto the image box
            _record_projected_step(opt, x, before)
        synchronize(x.device)
        elapsed.append(time.perf_counter() - start)
        record(i, last, elapsed[i])
    with torch.no_grad():
        record(iterations, objective.terms(x), elapsed[iterations])
    return x.detach(), history


def _record_projected_step(opt: torch.optim.LBFGS, x: torch.Tensor, before: torch.Tensor) -> None:
    """Make L-BFGS remember the step the projection allowed, not the one it proposed.

    torch's LBFGS builds its next curvature pair from s = t * d, its own proposed step. After
    clipping, the iterate moved by (x - before) instead, and pairs of a step that was not taken
    make the curvature model wrong: the objective then jumps up by 2-4x every few dozen
    iterations (measured at 64 and 128 px). Storing d = (x - before) / t makes s the real step,
    as in a projected quasi-Newton method; the curves become monotone after the first few
    iterations. `d` and `t` are LBFGS's per-parameter state (stable since torch 1.x); if they
    are ever missing, this does nothing and the run is plain projected L-BFGS.
    """
    state = opt.state.get(x)
    if not state or "d" not in state or not state.get("t"):
        return
    state["d"] = (x.detach() - before).flatten() / float(state["t"])


def _batch(image: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(image_to_batch(image)).to(device)  # (1, 3, H, W)


@dataclass
class GatysResult:
    image: np.ndarray  # (H, W, 3) uint8
    history: list[dict[str, float]]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def final_objective(self) -> float:
        return self.history[-1]["objective"]


def gatys_stylize(
    content: np.ndarray,  # (H, W, 3) uint8
    style: np.ndarray,  # (Hs, Ws, 3) uint8
    cfg: ObjectiveConfig | None = None,
    iterations: int = 500,
    init: str = "noise",
    image_size: int | None = None,
    style_size: int | None = None,
    device: str = "auto",
    seed: int = 0,
    progress: ProgressFn | None = None,
) -> GatysResult:
    """The Gatys baseline on in-memory images. `image_size` and `style_size` are shorter sides,
    as in `pe train style`: None keeps the content's size, and sizes the style image like the
    content (training's default: style size = image size)."""
    cfg = cfg or ObjectiveConfig()
    if init not in INITS:
        raise InputError(f"unknown --init {init!r}; choose from {INITS}")
    if iterations < 1:
        raise InputError(f"--iterations must be >= 1, got {iterations}")
    for flag, v in (("--image-size", image_size), ("--style-size", style_size)):
        if v is not None and v < MIN_SIZE:
            raise InputError(f"{flag} must be >= {MIN_SIZE}, got {v}")
    dev = select_device(device)
    if image_size is not None:
        content = resize_shorter_side(content, image_size, "bicubic")
    if min(content.shape[:2]) < MIN_SIZE:
        raise InputError(f"content image {content.shape[1]}x{content.shape[0]} is too small")
    style = style_target_image(style, style_size or min(content.shape[:2]))
    net = loss_network(cfg, dev)
    objective = PerceptualObjective(net, cfg, _batch(content, dev), _batch(style, dev))
    x0 = initial_image(_batch(content, dev), init, seed)
    x, history = lbfgs_optimize(objective, x0, iterations, progress)
    meta = {
        "iterations": iterations,
        "iteration_unit": "one L-BFGS step (max_iter=1, one f+grad evaluation), no line search",
        "init": init,
        "seed": seed,
        "device": str(dev),
        "height": int(content.shape[0]),
        "width": int(content.shape[1]),
        "style_height": int(style.shape[0]),
        "style_width": int(style.shape[1]),
        "loss_net_weights": net.weights_id,
        "objective_config": cfg.to_dict(),
        "seconds": history[-1]["seconds"],
    }
    return GatysResult(batch_to_image(x.cpu().numpy()), history, meta)


def history_csv(history: Sequence[dict[str, float]]) -> str:
    buf = io.StringIO()
    fields = ["iteration", *TERMS, "seconds"]
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    w.writeheader()
    for rec in history:
        w.writerow({k: (int(rec[k]) if k == "iteration" else repr(float(rec[k]))) for k in fields})
    return buf.getvalue()


def write_history(
    result: GatysResult, path: str | os.PathLike[str], overwrite: bool = False
) -> Path:
    """The objective at every iteration as .json (with the run's settings) or .csv."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".csv":
        text = history_csv(result.history)
    elif suffix == ".json":
        text = json.dumps({"meta": result.meta, "history": result.history}, indent=1) + "\n"
    else:
        raise InputError(f"--log {p}: use a .json or .csv file")
    return write_text_atomic(p, text, overwrite)
