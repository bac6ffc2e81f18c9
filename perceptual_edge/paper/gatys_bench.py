"""The paper's Table 1: seconds for 100/300/500 Gatys iterations against one feed-forward pass.

Per size: the baseline runs a warm-up iteration, then `measure` timed L-BFGS iterations on a
generated photo-like content image; counts up to `measure` are read off the measured run, longer
ones are extrapolated from its mean time per iteration and flagged `extrapolated`. The
feed-forward time is the median of several passes after a warm-up. Next to the time per
L-BFGS iteration stands one forward+backward of the loss network on the same image (the
issue's performance note: the baseline should be limited by that network math, not Python).
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

from perceptual_edge.errors import InputError
from perceptual_edge.image import image_to_batch, load_image
from perceptual_edge.paper.gatys import (
    MIN_SIZE,
    ObjectiveConfig,
    PerceptualObjective,
    initial_image,
    lbfgs_optimize,
    loss_network,
    select_device,
    style_target_image,
    synchronize,
)
from perceptual_edge.samples import content_image, style_image
from perceptual_edge.train.checkpoint import load_checkpoint

REPEATS = 5  # timed repetitions of the fast things (feed-forward, loss-network passes)


def _median_seconds(fn: Callable[[], Any], device: torch.device, repeats: int = REPEATS) -> float:
    fn()  # warm-up: allocator, cuDNN autotuning, lazy initialisation
    times = []
    for _ in range(repeats):
        synchronize(device)
        t = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({torch.get_num_threads()} torch threads)"


def gatys_speed_table(
    checkpoint: str | os.PathLike[str],
    style: str | os.PathLike[str] | None = None,
    sizes: Sequence[int] = (256, 512, 1024),
    iterations: Sequence[int] = (100, 300, 500),
    measure: int = 10,
    device: str = "auto",
    loss_net: str = "random",
    vgg_weights: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Table 1 on this device as a JSON-ready dict; `format_speed_table` prints it."""
    if measure < 1:
        raise InputError(f"measure must be >= 1, got {measure}")
    if not sizes or not iterations:
        raise InputError("give at least one size and one iteration count")
    if any(s < MIN_SIZE for s in sizes):
        raise InputError(f"sizes must be >= {MIN_SIZE}")
    if any(n < 1 for n in iterations):
        raise InputError("iteration counts must be >= 1")
    ckpt = load_checkpoint(checkpoint)
    if ckpt.spec.kind != "style":
        raise InputError(f"{checkpoint}: a {ckpt.spec.kind} network; the Gatys table needs style")
    cfg = ObjectiveConfig(loss_net=loss_net, vgg_weights=str(vgg_weights) if vgg_weights else None)
    dev = select_device(device)
    net = loss_network(cfg, dev)
    model = ckpt.build().to(dev)
    style_img = load_image(style) if style is not None else style_image()
    rows = []
    for size in sizes:
        style_batch = torch.from_numpy(image_to_batch(style_target_image(style_img, size))).to(dev)
        # A size the network cannot take is measured at the next multiple (what the runtime
        # pads to), and reported as that.
        side = size + (-size) % ckpt.spec.multiple
        x = torch.from_numpy(image_to_batch(content_image(0, side, side))).to(dev)
        rows.append(_measure_size(side, x, style_batch, net, cfg, model, iterations, measure, dev))
    return {
        "device": str(dev),
        "device_name": _device_name(dev),
        "torch_version": torch.__version__,
        "loss_net": loss_net,
        "loss_net_weights": net.weights_id,
        "model": str(checkpoint),
        "measure": measure,
        "iterations": list(iterations),
        "iteration_unit": "one L-BFGS step (one objective+gradient evaluation), no line search",
        "rows": rows,
    }


def _measure_size(
    size: int,
    x: torch.Tensor,  # (1, 3, S, S) content
    style_batch: torch.Tensor,
    net: torch.nn.Module,
    cfg: ObjectiveConfig,
    model: torch.nn.Module,
    iterations: Sequence[int],
    measure: int,
    dev: torch.device,
) -> dict[str, Any]:
    objective = PerceptualObjective(net, cfg, x, style_batch)
    lbfgs_optimize(objective, initial_image(x, "noise", 1), 1)  # warm-up
    _, history = lbfgs_optimize(objective, initial_image(x, "noise", 0), measure)
    elapsed = [h["seconds"] for h in history]  # elapsed[i]: seconds after i iterations
    per_iteration = elapsed[measure] / measure

    with torch.no_grad():
        feedforward = _median_seconds(lambda: model(x), dev)
        loss_fwd = _median_seconds(lambda: net(x), dev)

    def fwd_bwd() -> None:
        y = x.detach().clone().requires_grad_(True)
        objective.terms(y)["objective"].backward()

    loss_fwd_bwd = _median_seconds(fwd_bwd, dev)
    gatys = {}
    for n in iterations:
        extrapolated = n > measure
        seconds = per_iteration * n if extrapolated else elapsed[n]
        gatys[str(n)] = {
            "seconds": seconds,
            "extrapolated": extrapolated,
            "speedup": seconds / feedforward,
        }
    return {
        "size": size,
        "gatys": gatys,
        "feedforward_s": feedforward,
        "lbfgs_iteration_s": per_iteration,
        "loss_net_forward_s": loss_fwd,
        "loss_net_forward_backward_s": loss_fwd_bwd,
        # The part of an iteration that is not the loss network's math: L-BFGS vector work,
        # the projection and Python. Near zero means the baseline is network-bound.
        "overhead_fraction": max(0.0, 1.0 - loss_fwd_bwd / per_iteration),
    }


def format_speed_table(result: dict[str, Any]) -> str:
    """Table 1 as text; extrapolated entries carry a `*` and the footnote says so."""
    counts = [str(n) for n in result["iterations"]]
    head = ["size"] + [f"Gatys {n} it (s)" for n in counts] + ["network (s)"]
    head += [f"speedup {n}" for n in counts]
    head += ["L-BFGS it (s)", "loss-net fwd+bwd (s)"]
    lines_data = []
    any_extrapolated = False
    for r in result["rows"]:
        cells = [f"{r['size']}x{r['size']}"]
        for n in counts:
            g = r["gatys"][n]
            any_extrapolated |= g["extrapolated"]
            cells.append(f"{g['seconds']:.4g}{'*' if g['extrapolated'] else ''}")
        cells.append(f"{r['feedforward_s']:.4g}")
        cells += [f"{r['gatys'][n]['speedup']:.3g}x" for n in counts]
        cells += [f"{r['lbfgs_iteration_s']:.4g}", f"{r['loss_net_forward_backward_s']:.4g}"]
        lines_data.append(cells)
    widths = [max(len(row[i]) for row in [head, *lines_data]) for i in range(len(head))]
    fmt = "  ".join(f"{{:>{w}}}" for w in widths)
    lines = [
        f"Table 1 (Gatys et al. vs feed-forward) on {result['device_name']} [{result['device']}], "
        f"loss network: {result['loss_net']} ({result['loss_net_weights']})",
        fmt.format(*head),
        *(fmt.format(*row) for row in lines_data),
    ]
    if any_extrapolated:
        lines.append(
            f"* extrapolated from {result['measure']} measured L-BFGS iterations "
            "(mean time per iteration x count), not run in full"
        )
    return "\n".join(lines)
