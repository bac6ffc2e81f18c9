"""`pe train style` and `pe train sr`: parse the options, call `train`, report, set the exit code.

Defaults reproduce the paper (perceptual_edge.train.defaults); loss weights follow the scale
convention of perceptual_edge.train.losses. Under `torchrun --nproc-per-node K` the same command
trains with DDP; --batch-size is then per process.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from perceptual_edge.cli.common import comma_list, pe_command
from perceptual_edge.train import defaults as D  # torch-free: `pe --help` stays instant

if TYPE_CHECKING:
    from perceptual_edge.train.config import TrainConfig

EXIT_SIGNAL = {"SIGINT": 130, "SIGTERM": 143}

train_app = typer.Typer(
    name="train",
    help="Train a style-transfer or super-resolution network with VGG-16 perceptual losses.",
    no_args_is_help=True,
)

DataOpt = typer.Option(
    None,
    "--data",
    help="Folder of training images, searched recursively (default: $PE_DATA, else where "
    "`pe data coco` puts MS-COCO).",
)
BatchOpt = typer.Option(
    D.BATCH_SIZE, "--batch-size", help="Images per step (per process under torchrun)."
)
EpochsOpt = typer.Option(None, "--epochs", help="Train for this many passes over the data.")
LrOpt = typer.Option(D.LR, "--lr", help="Adam learning rate.")
TvOpt = typer.Option(D.TV_WEIGHT, "--tv-weight", help="Total-variation weight (0 disables it).")
NormOpt = typer.Option(D.NORMS[0], "--norm", help="instance (default) or batch (the paper).")
UpOpt = typer.Option(D.UPSAMPLES[0], "--upsample", help="nearest-conv (default) or deconv.")
ActOpt = typer.Option(D.OUTPUTS[0], "--output-activation", help="tanh (the paper) or clamp.")
ContentOpt = typer.Option(D.CONTENT_WEIGHT, "--content-weight", help="Feature-loss weight.")
SeedOpt = typer.Option(0, "--seed", help="Seed for weights and data order.")
CkptOpt = typer.Option(1000, "--checkpoint-every", help="Save every N steps (0: only at the end).")
SampleOpt = typer.Option(2000, "--sample-every", help="Write samples every N steps (0: never).")
LogOpt = typer.Option(10, "--log-every", help="Log losses every N steps.")
ResumeOpt = typer.Option(None, "--resume", help="Continue from a checkpoint of this command.")
DeviceOpt = typer.Option("auto", "--device", help="auto, cpu or cuda.")
AmpOpt = typer.Option(
    None,
    "--amp/--no-amp",
    help="Mixed precision (default: on where native: CUDA, CPUs with AVX512_BF16/AMX).",
)
LossNetOpt = typer.Option("vgg16", "--loss-net", help="vgg16 (ImageNet) or random (offline).")
VggOpt = typer.Option(None, "--vgg-weights", help="torchvision vgg16-397923af.pth file.")
OverwriteOpt = typer.Option(False, "--overwrite", help="Replace an existing output.")
ThreadsOpt = typer.Option(
    None, "--loader-threads", help="Threads decoding images (default: 1 on CPU, 8 on CUDA)."
)
QuietOpt = typer.Option(False, "--quiet", "-q", help="No progress bar.")


def _run(cfg: TrainConfig, quiet: bool) -> None:
    from perceptual_edge.train.loop import train

    result = train(cfg, progress=False if quiet else None)
    if result.interrupted:
        if result.is_main:
            typer.echo(
                f"pe train: stopped by {result.interrupted} at step {result.steps}/"
                f"{result.total_steps}; checkpoint saved to {result.output}; continue with "
                f"--resume {result.output}",
                err=True,
            )
        raise typer.Exit(EXIT_SIGNAL.get(result.interrupted, 1))
    if not result.is_main:
        return
    loss = result.losses.get("loss")
    loss_text = f", final loss {loss:.5g}" if loss is not None else ""
    typer.echo(
        f"wrote {result.output} ({result.steps} steps in {result.seconds:.1f} s{loss_text}); "
        f"log {result.log}"
        + (f"; samples in {result.samples[0].parent}" if result.samples else "")
        + (f"; skipped {result.skipped_files} unreadable files" if result.skipped_files else "")
    )


# The options both commands share, by name: each command adds its own on top.
_COMMON = (
    "data", "output", "image_size", "batch_size", "iterations", "epochs", "lr",
    "content_weight", "tv_weight", "content_layer", "norm", "upsample", "output_activation",
    "seed", "checkpoint_every", "sample_every", "log_every", "resume", "device", "amp",
    "loss_net", "vgg_weights", "overwrite", "loader_threads",
)  # fmt: skip


def _common(values: dict[str, Any], task: str, default_output: str) -> dict[str, Any]:
    """The shared TrainConfig fields, picked by name from a command's parameters, with the
    defaults that need a look around: the data folder (train.datasets.resolve_data) and the
    output (the --resume checkpoint, else DEFAULT_OUTPUT in the current folder)."""
    from perceptual_edge.train.datasets import resolve_data

    out = {name: values[name] for name in _COMMON}
    out["data"] = resolve_data(values["data"], task)
    if out["output"] is None:
        out["output"] = values["resume"] or Path(default_output)
    return out


def register(app: typer.Typer) -> None:
    app.add_typer(train_app, name="train")


@pe_command(train_app, "style")
def style_cmd(
    style: Path = typer.Option(..., "--style", help="The style image."),
    data: Path = DataOpt,
    output: Path = typer.Option(
        None, "-o", "--output", help="Checkpoint to write (default: STYLE-NAME.pth here)."
    ),
    image_size: int = typer.Option(
        D.IMAGE_SIZE, "--image-size", help="Training crop size (multiple of 4)."
    ),
    style_size: int = typer.Option(
        None, "--style-size", help="Shorter side of the style image (default: --image-size)."
    ),
    batch_size: int = BatchOpt,
    iterations: int = typer.Option(
        None, "--iterations", help=f"Optimiser steps (default {D.ITERATIONS}, or from --epochs)."
    ),
    epochs: float = EpochsOpt,
    lr: float = LrOpt,
    content_weight: float = ContentOpt,
    style_weight: float = typer.Option(
        D.STYLE_WEIGHT, "--style-weight", help="Style (Gram) loss weight."
    ),
    tv_weight: float = TvOpt,
    content_layer: str = typer.Option(
        D.STYLE_CONTENT_LAYER, "--content-layer", help="VGG-16 layer."
    ),
    style_layers: str = typer.Option(
        ",".join(D.STYLE_LAYERS), "--style-layers", help="Comma-separated."
    ),
    norm: str = NormOpt,
    upsample: str = UpOpt,
    output_activation: str = ActOpt,
    seed: int = SeedOpt,
    checkpoint_every: int = CkptOpt,
    sample_every: int = SampleOpt,
    log_every: int = LogOpt,
    resume: Path = ResumeOpt,
    device: str = DeviceOpt,
    amp: bool | None = AmpOpt,
    loss_net: str = LossNetOpt,
    vgg_weights: Path = VggOpt,
    overwrite: bool = OverwriteOpt,
    loader_threads: int = ThreadsOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Train a style-transfer network (Johnson et al. 2016) on a folder of content images."""
    from perceptual_edge.train.config import TrainConfig

    cfg = TrainConfig(
        task="style",
        style=style,
        style_size=style_size,
        style_weight=style_weight,
        style_layers=comma_list(style_layers),
        **_common(locals(), "style", f"{style.stem}.pth"),
    )
    _run(cfg, quiet)


@pe_command(train_app, "sr")
def sr_cmd(
    data: Path = DataOpt,
    output: Path = typer.Option(
        None, "-o", "--output", help="Checkpoint to write (default: srFACTOR.pth here)."
    ),
    factor: int = typer.Option(4, "--factor", help="Upscaling factor: 4 or 8."),
    loss: str = typer.Option("feat", "--loss", help="feat (relu2_2 feature loss) or pixel."),
    image_size: int = typer.Option(
        D.SR_PATCH, "--image-size", help="HR patch size (multiple of factor)."
    ),
    batch_size: int = BatchOpt,
    iterations: int = typer.Option(
        None,
        "--iterations",
        help=f"Optimiser steps (default {D.SR_ITERATIONS}, or from --epochs).",
    ),
    epochs: float = EpochsOpt,
    lr: float = LrOpt,
    content_weight: float = ContentOpt,
    pixel_weight: float = typer.Option(1.0, "--pixel-weight", help="Pixel-loss weight."),
    tv_weight: float = TvOpt,
    content_layer: str = typer.Option(D.SR_CONTENT_LAYER, "--content-layer", help="VGG-16 layer."),
    norm: str = NormOpt,
    upsample: str = UpOpt,
    output_activation: str = ActOpt,
    seed: int = SeedOpt,
    checkpoint_every: int = CkptOpt,
    sample_every: int = SampleOpt,
    log_every: int = LogOpt,
    resume: Path = ResumeOpt,
    device: str = DeviceOpt,
    amp: bool | None = AmpOpt,
    loss_net: str = LossNetOpt,
    vgg_weights: Path = VggOpt,
    overwrite: bool = OverwriteOpt,
    loader_threads: int = ThreadsOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Train a x4/x8 super-resolution network: 288x288 HR patches, blurred bicubic LR."""
    from perceptual_edge.train.config import TrainConfig

    cfg = TrainConfig(
        task="sr",
        factor=factor,
        loss=loss,
        pixel_weight=pixel_weight,
        **_common(locals(), "sr", f"sr{factor}.pth"),
    )
    _run(cfg, quiet)
