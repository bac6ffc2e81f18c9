"""`pe eval objective`: the paper's Fig. 5 — how far the Gatys baseline has to run to match
one feed-forward pass of a trained style network on the network's own training objective.

For every size S and content image (the largest centred square, resized to SxS) it measures
Eq. 5 (`paper/gatys.py`) of (a) the content image itself, (b) the network's output and (c) the
baseline from white noise after each L-BFGS iteration 0..N. Per size: mean and std over the
images, and the first iteration at which the mean baseline curve is at or below the mean
network objective (None: never within N).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from perceptual_edge.errors import InputError
from perceptual_edge.fsutil import check_output, write_text_atomic
from perceptual_edge.image import (
    PIXEL_MAX,
    PIXEL_MIN,
    center_square,
    crop_to,
    image_to_batch,
    iter_image_files,
    load_image,
    pad_to_multiple,
)
from perceptual_edge.paper.gatys import (
    MIN_SIZE,
    ObjectiveConfig,
    PerceptualObjective,
    initial_image,
    lbfgs_optimize,
    loss_network,
    select_device,
    style_grams,
    style_target_image,
)
from perceptual_edge.train import defaults
from perceptual_edge.train.checkpoint import Checkpoint, load_checkpoint

OUTPUT_FILES = ("objective.json", "objective.csv", "objective_summary.csv", "objective.png")
MAX_PIXELS = 100_000_000  # refuse decompression bombs in the content folder

# (size, image index, image count, iteration, objective) after every baseline iteration.
EvalProgressFn = Callable[[int, int, int, int, float], None]


def first_beat(curve: Sequence[float], target: float) -> int | None:
    """The first iteration whose objective is at or below `target`; None if none is."""
    for i, v in enumerate(curve):
        if v <= target:
            return i
    return None


def check_sizes(sizes: Sequence[int]) -> tuple[int, ...]:
    """The square sizes of an evaluation: at least one, each >= MIN_SIZE, duplicates dropped."""
    sizes = tuple(int(s) for s in sizes)
    if not sizes:
        raise InputError("--sizes: give at least one size")
    bad = [s for s in sizes if s < MIN_SIZE]
    if bad:
        raise InputError(f"--sizes: {bad[0]} is smaller than the minimum of {MIN_SIZE}")
    return tuple(dict.fromkeys(sizes))


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    a = np.asarray(values, dtype=np.float64)
    return float(a.mean()), float(a.std())


def output_paths(outdir: str | os.PathLike[str]) -> dict[str, Path]:
    d = Path(outdir)
    return {name.replace(".", "_"): d / name for name in OUTPUT_FILES}


def prepare_outdir(outdir: str | os.PathLike[str], overwrite: bool) -> dict[str, Path]:
    """Create OUTDIR if needed and fail before any work if an output exists."""
    d = Path(outdir)
    if d.exists() and not d.is_dir():
        raise InputError(f"{d} exists and is not a folder")
    if not d.parent.is_dir():
        raise InputError(f"output folder {d.parent} does not exist")
    paths = output_paths(d)
    if d.is_dir():
        for p in paths.values():
            check_output(p, overwrite)
    return paths


def _content_images(images: str | os.PathLike[str], limit: int | None) -> list[Path]:
    root = Path(images)
    if not root.exists():
        raise InputError(f"{root}: no such folder")
    files = [root] if root.is_file() else list(iter_image_files(root))
    if limit is not None:
        if limit < 1:
            raise InputError(f"--limit must be >= 1, got {limit}")
        files = files[:limit]
    if not files:
        raise InputError(f"{root}: no image files found")
    return files


def training_objective(ckpt: Checkpoint) -> tuple[ObjectiveConfig, int]:
    """The Eq. 5 settings and style size a `pe train style` checkpoint was trained with (from
    its train_state and provenance); the shared defaults where it does not say."""
    tc = (ckpt.train_state or {}).get("train_config") or {}
    loss_net = ckpt.spec.provenance.loss_net
    if loss_net not in ("vgg16", "random"):
        loss_net = "vgg16"  # e.g. "unknown" for imported models: they were trained on VGG
    try:
        cfg = ObjectiveConfig(
            content_weight=float(tc.get("content_weight", defaults.CONTENT_WEIGHT)),
            style_weight=float(tc.get("style_weight", defaults.STYLE_WEIGHT)),
            tv_weight=float(tc.get("tv_weight", defaults.TV_WEIGHT)),
            content_layer=str(tc.get("content_layer") or defaults.STYLE_CONTENT_LAYER),
            style_layers=tuple(tc.get("style_layers") or defaults.STYLE_LAYERS),
            loss_net=loss_net,
            vgg_weights=None,
        )
    except (TypeError, ValueError) as e:
        raise InputError(f"checkpoint's training settings are unreadable: {e}") from None
    style_size = tc.get("style_size") or tc.get("image_size") or defaults.IMAGE_SIZE
    return cfg, int(style_size)


def _network_output(model: torch.nn.Module, x: torch.Tensor, multiple: int) -> torch.Tensor:
    """The network on an (1, 3, S, S) batch, reflect-padded to its multiple and cropped back."""
    h, w = x.shape[2:]
    if h % multiple or w % multiple:
        padded, _ = pad_to_multiple(x.cpu().numpy(), multiple)
        y = model(torch.from_numpy(padded).to(x.device))
        y = torch.from_numpy(crop_to(y.cpu().numpy(), h, w)).to(x.device)
    else:
        y = model(x)
    return y.clamp(PIXEL_MIN, PIXEL_MAX)  # the same box the baseline is projected onto


def objective_comparison(
    model: str | os.PathLike[str],
    style: str | os.PathLike[str],
    images: str | os.PathLike[str],
    sizes: Sequence[int] = (256, 512, 1024),
    iterations: int = 500,
    overrides: Mapping[str, Any] | None = None,
    style_size: int | None = None,
    limit: int | None = None,
    device: str = "auto",
    seed: int = 0,
    progress: EvalProgressFn | None = None,
) -> dict[str, Any]:
    """Fig. 5's measurements as a JSON-ready dict (see the module docstring).

    The objective is the one the network was trained on (`training_objective`), with
    `overrides` (ObjectiveConfig fields) on top. The style targets are computed once, for every
    content size, from the style image prepared as in training (shorter side `style_size`,
    default the training run's).
    """
    if iterations < 1:
        raise InputError(f"--iterations must be >= 1, got {iterations}")
    sizes = check_sizes(sizes)
    if style_size is not None and style_size < MIN_SIZE:
        raise InputError(f"--style-size must be >= {MIN_SIZE}, got {style_size}")
    ckpt = load_checkpoint(model)
    if ckpt.spec.kind != "style":
        raise InputError(f"{model}: a {ckpt.spec.kind} network; `pe eval objective` needs style")
    if min(sizes) < ckpt.spec.min_size:
        raise InputError(
            f"--sizes: {min(sizes)} is below the network's minimum {ckpt.spec.min_size}"
        )
    trained_cfg, trained_style_size = training_objective(ckpt)
    cfg = dataclasses.replace(trained_cfg, **dict(overrides or {}))
    files = _content_images(images, limit)
    style_img = style_target_image(load_image(style, MAX_PIXELS), style_size or trained_style_size)
    contents = [load_image(f, MAX_PIXELS) for f in files]  # fail on a bad file before any work

    dev = select_device(device)
    net = loss_network(cfg, dev)
    network = ckpt.build().to(dev)
    grams = style_grams(net, cfg, torch.from_numpy(image_to_batch(style_img)).to(dev))
    per_size: list[dict[str, Any]] = []
    for size in sizes:
        content_obj: list[float] = []
        network_obj: list[float] = []
        curves: list[list[float]] = []
        for i, image in enumerate(contents):
            x = torch.from_numpy(image_to_batch(center_square(image, size))).to(dev)
            objective = PerceptualObjective(net, cfg, x, grams)
            content_obj.append(objective.evaluate(x)["objective"])
            with torch.no_grad():
                network_obj.append(
                    objective.evaluate(_network_output(network, x, ckpt.spec.multiple))["objective"]
                )

            def report(it: int, rec: dict[str, float], size: int = size, i: int = i) -> None:
                if progress is not None:
                    progress(size, i, len(contents), it, rec["objective"])

            _, history = lbfgs_optimize(
                objective, initial_image(x, "noise", seed + i), iterations, report
            )
            curves.append([h["objective"] for h in history])
        per_size.append(_summarise(size, content_obj, network_obj, curves))
    return {
        "model": str(model),
        "style": str(style),
        "style_size": [int(style_img.shape[0]), int(style_img.shape[1])],
        "images": [str(f) for f in files],
        "iterations": iterations,
        "init": "noise",
        "seed": seed,
        "device": str(dev),
        "loss_net": cfg.loss_net,
        "loss_net_weights": net.weights_id,
        "model_trained_with": {
            "loss_net": ckpt.spec.provenance.loss_net,
            "loss_net_weights": ckpt.spec.provenance.loss_net_weights,
            "objective_config": trained_cfg.to_dict(),
            "style_size": trained_style_size,
        },
        "same_loss_net_as_training": net.weights_id == ckpt.spec.provenance.loss_net_weights,
        "objective_config": cfg.to_dict(),
        "iteration_unit": "one L-BFGS step (one objective+gradient evaluation), no line search",
        "sizes": per_size,
    }


def _summarise(
    size: int, content: list[float], network: list[float], curves: list[list[float]]
) -> dict[str, Any]:
    a = np.asarray(curves, dtype=np.float64)  # (images, iterations + 1)
    net_mean, net_std = _mean_std(network)
    content_mean, content_std = _mean_std(content)
    mean = a.mean(axis=0)
    return {
        "size": size,
        "content": content,
        "network": network,
        "baseline": curves,
        "content_mean": content_mean,
        "content_std": content_std,
        "network_mean": net_mean,
        "network_std": net_std,
        "baseline_mean": mean.tolist(),
        "baseline_std": a.std(axis=0).tolist(),
        "first_beat": first_beat(mean.tolist(), net_mean),
        "first_beat_per_image": [first_beat(c, n) for c, n in zip(curves, network, strict=True)],
    }


def beat_text(entry: dict[str, Any], iterations: int) -> str:
    fb = entry["first_beat"]
    return f"never within {iterations}" if fb is None else f"iteration {fb}"


def _csv(rows: list[dict[str, Any]], fields: list[str]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def result_csv(result: dict[str, Any]) -> str:
    """Per image: one row for the content image, one for the network, one per iteration."""
    rows: list[dict[str, Any]] = []
    for entry in result["sizes"]:
        for img, c, n, curve in zip(
            result["images"], entry["content"], entry["network"], entry["baseline"], strict=True
        ):
            name = Path(img).name
            rows.append({"size": entry["size"], "image": name, "kind": "content", "objective": c})
            rows.append({"size": entry["size"], "image": name, "kind": "network", "objective": n})
            rows += [
                {"size": entry["size"], "image": name, "kind": "baseline", "iteration": i,
                 "objective": v}
                for i, v in enumerate(curve)
            ]  # fmt: skip
    return _csv(rows, ["size", "image", "kind", "iteration", "objective"])


def summary_csv(result: dict[str, Any]) -> str:
    rows = [
        {"size": e["size"], "iteration": i, "baseline_mean": m, "baseline_std": s,
         "network_mean": e["network_mean"], "network_std": e["network_std"],
         "content_mean": e["content_mean"], "content_std": e["content_std"]}
        for e in result["sizes"]
        for i, (m, s) in enumerate(zip(e["baseline_mean"], e["baseline_std"], strict=True))
    ]  # fmt: skip
    return _csv(rows, list(rows[0]))


def format_summary(result: dict[str, Any]) -> str:
    lines = [
        f"loss network: {result['loss_net']} ({result['loss_net_weights']}); "
        f"{len(result['images'])} images, {result['iterations']} L-BFGS iterations",
        f"{'size':>6}  {'content':>12}  {'network':>12}  {'baseline@N':>12}  "
        "baseline beats network",
    ]
    for e in result["sizes"]:
        lines.append(
            f"{e['size']:>6}  {e['content_mean']:>12.4g}  {e['network_mean']:>12.4g}  "
            f"{e['baseline_mean'][-1]:>12.4g}  {beat_text(e, result['iterations'])}"
        )
    return "\n".join(lines)


def write_outputs(
    result: dict[str, Any], outdir: str | os.PathLike[str], overwrite: bool = False
) -> dict[str, Path]:
    """objective.json, objective.csv, objective_summary.csv and the Fig. 5 plot objective.png."""
    from perceptual_edge.paper.plots import plot_objective

    paths = prepare_outdir(outdir, overwrite)
    Path(outdir).mkdir(exist_ok=True)
    text = json.dumps(result, indent=1, allow_nan=False) + "\n"
    write_text_atomic(paths["objective_json"], text, overwrite)
    write_text_atomic(paths["objective_csv"], result_csv(result), overwrite)
    write_text_atomic(paths["objective_summary_csv"], summary_csv(result), overwrite)
    plot_objective(result, paths["objective_png"], overwrite)
    return paths
