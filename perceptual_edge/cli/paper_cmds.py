"""Reproducing the paper: `pe stylize --optimize` (the Gatys baseline) and the `pe eval` group
(`pe eval objective`, the paper's Fig. 5; `pe eval sr` lives in sreval_cmds.py).

Defaults come from perceptual_edge.train.defaults, which imports no torch (`pe --help` stays
instant).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from perceptual_edge.cli.common import comma_list, pe_command, square_sizes
from perceptual_edge.errors import InputError
from perceptual_edge.train import defaults as D

STYLE_LAYERS = ",".join(D.STYLE_LAYERS)

LossNetOpt = typer.Option("vgg16", "--loss-net", help="vgg16 (ImageNet) or random (offline).")
VggOpt = typer.Option(None, "--vgg-weights", help="torchvision vgg16-397923af.pth file.")
DeviceOpt = typer.Option("auto", "--device", help="auto, cpu or cuda.")
SeedOpt = typer.Option(0, "--seed", help="Seed of the white-noise initial image.")
OverwriteOpt = typer.Option(False, "--overwrite", help="Replace existing outputs.")
QuietOpt = typer.Option(False, "--quiet", "-q", help="No progress bar.")


def _stylize(
    optimize: bool = typer.Option(
        False, "--optimize", help="Run the Gatys et al. optimisation baseline (required)."
    ),
    content: Path | None = typer.Option(None, "--content", "-c", help="Content image."),
    style: Path | None = typer.Option(None, "--style", "-s", help="Style image."),
    output: Path | None = typer.Option(None, "-o", "--output", help="Output image (.png/.jpg)."),
    iterations: int = typer.Option(500, "--iterations", "-n", help="L-BFGS iterations."),
    init: str = typer.Option("noise", "--init", help="noise (white noise, the paper) or content."),
    image_size: int | None = typer.Option(
        None, "--image-size", help="Resize the content so its shorter side is this (px)."
    ),
    style_size: int | None = typer.Option(
        None, "--style-size", help="Shorter side of the style image (default: the content's)."
    ),
    content_weight: float = typer.Option(D.CONTENT_WEIGHT, "--content-weight"),
    style_weight: float = typer.Option(D.STYLE_WEIGHT, "--style-weight"),
    tv_weight: float = typer.Option(D.TV_WEIGHT, "--tv-weight"),
    content_layer: str = typer.Option(
        D.STYLE_CONTENT_LAYER, "--content-layer", help="VGG-16 layer."
    ),
    style_layers: str = typer.Option(STYLE_LAYERS, "--style-layers", help="Comma-separated."),
    loss_net: str = LossNetOpt,
    vgg_weights: Path | None = VggOpt,
    device: str = DeviceOpt,
    seed: int = SeedOpt,
    log: Path | None = typer.Option(
        None, "--log", help="Write the objective at every iteration (.json or .csv)."
    ),
    overwrite: bool = OverwriteOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Stylize an image by optimisation (Gatys et al.): minimise the paper's Eq. 5 with L-BFGS.

    One iteration is one L-BFGS step (one objective+gradient evaluation, no line search), as the
    paper counts them; the image is clipped to 0..255 after every iteration.
    """
    if not optimize:
        raise InputError(
            "pe stylize needs --optimize (the Gatys baseline); to apply a trained network use "
            "`pe run MODEL --input IMAGE -o OUT`"
        )
    missing = [f for f, v in (("--content", content), ("--style", style), ("-o", output)) if not v]
    if missing:
        raise InputError(f"pe stylize --optimize needs {', '.join(missing)}")
    assert content is not None and style is not None and output is not None
    from perceptual_edge.fsutil import check_output
    from perceptual_edge.image import IMAGE_EXTENSIONS, load_image, save_image

    if output.suffix.lower() not in IMAGE_EXTENSIONS:
        raise InputError(f"{output}: unknown image suffix {output.suffix!r} (use .png or .jpg)")
    check_output(output, overwrite)
    if log is not None:
        if log.suffix.lower() not in (".json", ".csv"):
            raise InputError(f"--log {log}: use a .json or .csv file")
        check_output(log, overwrite)
    content_img, style_img = load_image(content), load_image(style)

    from perceptual_edge.paper.gatys import ObjectiveConfig, gatys_stylize, write_history
    from perceptual_edge.progress import Progress

    cfg = ObjectiveConfig(
        content_weight=content_weight,
        style_weight=style_weight,
        tv_weight=tv_weight,
        content_layer=content_layer.strip(),
        style_layers=comma_list(style_layers),
        loss_net=loss_net,
        vgg_weights=str(vgg_weights) if vgg_weights else None,
    )
    bar = Progress(iterations, enabled=False if quiet else None)

    def progress(i: int, rec: dict[str, float]) -> None:
        bar.set(i, {"objective": rec["objective"]})

    try:
        result = gatys_stylize(
            content_img, style_img, cfg, iterations, init, image_size, style_size, device, seed,
            progress,
        )  # fmt: skip
    finally:
        bar.close()
    save_image(result.image, output, overwrite=overwrite)
    if log is not None:
        write_history(result, log, overwrite=overwrite)
    h = result.history
    typer.echo(
        f"wrote {output} ({result.meta['width']}x{result.meta['height']}, {iterations} L-BFGS "
        f"iterations in {h[-1]['seconds']:.1f} s, objective {h[0]['objective']:.5g} -> "
        f"{h[-1]['objective']:.5g}, loss network {result.meta['loss_net_weights']})"
        + (f"; log {log}" if log is not None else "")
    )


def _eval_objective(
    model: Path = typer.Option(..., "--model", "-m", help="Trained style network (.pth)."),
    style: Path = typer.Option(..., "--style", "-s", help="The style image it was trained on."),
    images: Path = typer.Option(..., "--images", help="Folder of content images."),
    output: Path = typer.Option(..., "-o", "--output", help="Output folder."),
    sizes: str = typer.Option("256,512,1024", "--sizes", help="Comma-separated square sizes."),
    iterations: int = typer.Option(500, "--iterations", "-n", help="Baseline L-BFGS iterations."),
    limit: int | None = typer.Option(None, "--limit", help="Use only the first N images."),
    style_size: int | None = typer.Option(
        None, "--style-size", help="Shorter side of the style image (default: the training's)."
    ),
    content_weight: float | None = typer.Option(None, "--content-weight"),
    style_weight: float | None = typer.Option(None, "--style-weight"),
    tv_weight: float | None = typer.Option(None, "--tv-weight"),
    content_layer: str | None = typer.Option(None, "--content-layer"),
    style_layers: str | None = typer.Option(None, "--style-layers", help="Comma-separated."),
    loss_net: str | None = typer.Option(
        None, "--loss-net", help="vgg16 or random (default: the one the model was trained with)."
    ),
    vgg_weights: Path | None = VggOpt,
    device: str = DeviceOpt,
    seed: int = SeedOpt,
    overwrite: bool = OverwriteOpt,
    quiet: bool = QuietOpt,
) -> None:
    """The paper's Fig. 5: a style network's objective against the Gatys baseline's.

    Eq. 5 of the content images, the network's outputs and the baseline after every L-BFGS
    iteration, at each size; writes objective.json, objective.csv, objective_summary.csv and the
    plot objective.png into the output folder. Loss weights, layers and loss network default
    to the ones the model was trained with.
    """
    from perceptual_edge.paper.fig5 import check_sizes, prepare_outdir

    size_list = check_sizes(square_sizes(sizes))
    prepare_outdir(output, overwrite)  # fail before minutes of work, not after
    overrides: dict[str, Any] = {
        k: v
        for k, v in {
            "content_weight": content_weight,
            "style_weight": style_weight,
            "tv_weight": tv_weight,
            "content_layer": content_layer,
            "style_layers": comma_list(style_layers) if style_layers is not None else None,
            "loss_net": loss_net,
            "vgg_weights": str(vgg_weights) if vgg_weights else None,
        }.items()
        if v is not None
    }

    from perceptual_edge.paper.fig5 import (
        beat_text,
        format_summary,
        objective_comparison,
        write_outputs,
    )
    from perceptual_edge.progress import Progress

    bar: list[Any] = []  # one bar per (size, image) run

    def progress(size: int, i: int, n: int, it: int, objective: float) -> None:
        if it == 0:
            if bar:
                bar[0].close()
            bar[:] = [Progress(iterations, enabled=False if quiet else None)]
        bar[0].set(it, {"size": size, "image": i + 1, "objective": objective})

    try:
        result = objective_comparison(
            model, style, images, size_list, iterations, overrides, style_size, limit, device,
            seed, progress,
        )  # fmt: skip
    finally:
        if bar:
            bar[0].close()
    paths = write_outputs(result, output, overwrite=overwrite)
    typer.echo(format_summary(result))
    for e in result["sizes"]:
        typer.echo(f"{e['size']}: baseline first beats the network at {beat_text(e, iterations)}")
    typer.echo("wrote " + ", ".join(str(p) for p in paths.values()))


def register(app: typer.Typer) -> None:
    pe_command(app, "stylize")(_stylize)
    eval_app = typer.Typer(
        name="eval",
        help="Evaluate trained networks: objective (Fig. 5), SR metrics, video flicker.",
        no_args_is_help=True,
    )
    pe_command(eval_app, "objective")(_eval_objective)
    try:
        from perceptual_edge.cli.sreval_cmds import register_eval_sr
    except ImportError:  # `pe eval sr` is optional until its module exists
        pass
    else:
        register_eval_sr(eval_app)
    from perceptual_edge.cli.video_eval_cmds import register_eval_video

    register_eval_video(eval_app)
    app.add_typer(eval_app, name="eval")
