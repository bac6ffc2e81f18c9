"""TrainConfig: every option of `pe train style` / `pe train sr`, validated before any work.

Defaults come from `perceptual_edge.train.defaults` (the paper's setup); the loss weights follow
the scale convention in `perceptual_edge.train.losses`.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from perceptual_edge.errors import InputError, OutputExistsError
from perceptual_edge.fsutil import check_output
from perceptual_edge.train import defaults as D
from perceptual_edge.train.defaults import LAYER_INDEX, NORMS, OUTPUTS, UPSAMPLES

TASKS = ("style", "sr")
SR_LOSSES = ("feat", "pixel")
DEVICES = ("auto", "cpu", "cuda")
LOSS_NETS = ("vgg16", "random")
SR_FACTORS = (4, 8)
SR_MIN_LR = 8  # the 9x9 reflection-padded first convolution needs 8+ pixels


@dataclass
class TrainConfig:
    task: str  # "style" | "sr"
    data: Path
    output: Path
    style: Path | None = None  # style task only
    image_size: int | None = None  # None: 256 for style, the 288 HR patch for SR
    style_size: int | None = None  # shorter side of the style image; None: image_size
    batch_size: int = D.BATCH_SIZE
    iterations: int | None = None  # None: 40k (style) / 200k (SR), unless epochs is given
    epochs: float | None = None
    lr: float = D.LR
    content_weight: float = D.CONTENT_WEIGHT
    style_weight: float = D.STYLE_WEIGHT
    tv_weight: float = D.TV_WEIGHT
    pixel_weight: float = 1.0  # SR --loss pixel
    content_layer: str | None = None  # None: relu3_3 (style) / relu2_2 (SR)
    style_layers: tuple[str, ...] = D.STYLE_LAYERS
    norm: str = "instance"
    upsample: str = "nearest-conv"
    output_activation: str = "tanh"
    factor: int = 4  # SR only
    loss: str = "feat"  # SR only: feat | pixel
    seed: int = 0
    checkpoint_every: int = 1000  # 0: only the final checkpoint
    sample_every: int = 2000  # 0: no samples
    log_every: int = 10
    resume: Path | None = None
    device: str = "auto"
    amp: bool | None = None  # None: mixed precision where the hardware has it (runner.py)
    channels_last: bool | None = None  # None: on CUDA only
    loss_net: str = "vgg16"
    vgg_weights: Path | None = None
    overwrite: bool = False
    prefetch: int = 2
    loader_threads: int | None = None  # None: 1 on CPU (its cores compute), 8 on CUDA

    # ------------------------------------------------------------------ derived values

    @property
    def size(self) -> int:
        if self.image_size is not None:
            return self.image_size
        return D.IMAGE_SIZE if self.task == "style" else D.SR_PATCH

    @property
    def content(self) -> str:
        if self.content_layer:
            return self.content_layer
        return D.STYLE_CONTENT_LAYER if self.task == "style" else D.SR_CONTENT_LAYER

    @property
    def log_path(self) -> Path:
        return self.output.with_name(self.output.stem + ".log.jsonl")

    @property
    def samples_dir(self) -> Path:
        return self.output.with_name(self.output.stem + ".samples")

    def total_steps(self, steps_per_epoch: int) -> int:
        if self.iterations is not None:
            return self.iterations
        if self.epochs is not None:
            return max(1, math.ceil(self.epochs * steps_per_epoch))
        return D.ITERATIONS if self.task == "style" else D.SR_ITERATIONS

    def network_options(self) -> dict[str, Any]:
        opts: dict[str, Any] = {
            "norm": self.norm,
            "upsample": self.upsample,
            "output": self.output_activation,
        }
        if self.task == "sr":
            opts["factor"] = self.factor
        return opts

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe (paths as strings), for the checkpoint's train_state and the log."""
        d = dataclasses.asdict(self)
        for k, v in d.items():
            if isinstance(v, Path):
                d[k] = str(v)
            elif isinstance(v, tuple):
                d[k] = list(v)
        return d

    def resumes_into_output(self) -> bool:
        if self.resume is None:
            return False
        try:
            return self.output.exists() and os.path.samefile(self.resume, self.output)
        except OSError:
            return False


def _positive(name: str, value: float | int | None, allow_zero: bool = False) -> None:
    if value is None:
        return
    if isinstance(value, float) and not math.isfinite(value):
        raise InputError(f"{name} must be a finite number, got {value}")
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise InputError(f"{name} must be {bound}, got {value}")


def validate(cfg: TrainConfig) -> None:
    """Every check that needs no data and no torch: numbers, choices, layers, output paths."""
    if cfg.task not in TASKS:
        raise InputError(f"unknown task {cfg.task!r}; choose from {TASKS}")
    _positive("--image-size", cfg.image_size)
    _positive("--style-size", cfg.style_size)
    _positive("--batch-size", cfg.batch_size)
    _positive("--iterations", cfg.iterations)
    _positive("--epochs", cfg.epochs)
    _positive("--lr", cfg.lr)
    _positive("--content-weight", cfg.content_weight)
    _positive("--style-weight", cfg.style_weight)
    _positive("--tv-weight", cfg.tv_weight, allow_zero=True)
    _positive("--pixel-weight", cfg.pixel_weight)
    _positive("--checkpoint-every", cfg.checkpoint_every, allow_zero=True)
    _positive("--sample-every", cfg.sample_every, allow_zero=True)
    _positive("--log-every", cfg.log_every)
    _positive("--loader-threads", cfg.loader_threads)
    if cfg.iterations is not None and cfg.epochs is not None:
        raise InputError("give --iterations or --epochs, not both")
    if cfg.norm not in NORMS:
        raise InputError(f"--norm {cfg.norm!r}: choose from {NORMS}")
    if cfg.upsample not in UPSAMPLES:
        raise InputError(f"--upsample {cfg.upsample!r}: choose from {UPSAMPLES}")
    if cfg.output_activation not in OUTPUTS:
        raise InputError(f"--output {cfg.output_activation!r}: choose from {OUTPUTS}")
    if cfg.device not in DEVICES:
        raise InputError(f"--device {cfg.device!r}: choose from {DEVICES}")
    if cfg.loss_net not in LOSS_NETS:
        raise InputError(f"--loss-net {cfg.loss_net!r}: choose from {LOSS_NETS}")
    if cfg.vgg_weights is not None and cfg.loss_net == "random":
        raise InputError("--vgg-weights is for --loss-net vgg16, not random")
    layers = [cfg.content, *(cfg.style_layers if cfg.task == "style" else ())]
    for layer in layers:
        if layer not in LAYER_INDEX:
            raise InputError(f"unknown VGG-16 layer {layer!r}; e.g. relu1_2, relu2_2, relu3_3")
    if cfg.task == "style":
        if cfg.style is None:
            raise InputError("--style IMG is required")
        if not cfg.style_layers:
            raise InputError("--style-layers must name at least one layer")
        if cfg.size % 4:
            raise InputError(f"--image-size must be a multiple of 4, got {cfg.size}")
    else:
        if cfg.factor not in SR_FACTORS:
            raise InputError(f"--factor must be one of {SR_FACTORS}, got {cfg.factor}")
        if cfg.loss not in SR_LOSSES:
            raise InputError(f"--loss {cfg.loss!r}: choose from {SR_LOSSES}")
        if cfg.size % cfg.factor:
            raise InputError(f"--image-size {cfg.size} is not a multiple of --factor {cfg.factor}")
        if cfg.size // cfg.factor < SR_MIN_LR:
            raise InputError(
                f"--image-size {cfg.size} gives {cfg.size // cfg.factor}-pixel LR patches at "
                f"x{cfg.factor}; the network needs at least {SR_MIN_LR} "
                f"(--image-size >= {SR_MIN_LR * cfg.factor})"
            )
    if cfg.size < 16:
        raise InputError(f"--image-size must be at least 16, got {cfg.size}")
    check_outputs(cfg)


def check_outputs(cfg: TrainConfig) -> None:
    """Fail before training if the checkpoint, its log or samples cannot be written."""
    if cfg.output.suffix == "":
        raise InputError(f"-o {cfg.output}: give a file name such as model.pth")
    if cfg.resume is not None and not cfg.resume.is_file():
        raise InputError(f"--resume {cfg.resume}: no such file")
    # Resuming into the same file continues the same run: that is not an overwrite.
    overwrite = cfg.overwrite or cfg.resumes_into_output()
    check_output(cfg.output, overwrite)
    if cfg.log_path.exists() and not overwrite and cfg.resume is None:
        raise OutputExistsError(f"{cfg.log_path} exists; pass --overwrite to replace it")
    check_output(cfg.log_path, overwrite=True)
    if cfg.samples_dir.exists() and not cfg.samples_dir.is_dir():
        raise InputError(f"{cfg.samples_dir} exists and is not a folder")
