"""The per-run state of `loop.train`: network, loss network, optimiser, checkpoints, log, samples.

Mixed precision (`amp_dtype`): on by default where the hardware computes it natively, off with
--no-amp. On CUDA, bfloat16 autocast where the GPU supports it (Ampere and newer), else float16
with a GradScaler; on CPUs with AVX512_BF16 or AMX, bfloat16 autocast (measured on this
project's 2-core EPYC: a 256x256 batch-4 style step 3.05 s -> 1.75 s; README, "Training
speed"). Elsewhere float32, since emulated bfloat16 is slower; --amp forces it, with a note.
Gram matrices and losses stay in float32 (`losses.py`). A run is bit-reproducible (and its
--resume bit-identical) within one precision; the precision is recorded in the checkpoint.
On CUDA a step uses channels_last tensors; on CPU they were measured slower and are off unless
--channels-last asks for them.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch
from torch import nn

from perceptual_edge.fsutil import check_output, check_room, sha256_file
from perceptual_edge.hardware import cpu_has_bf16
from perceptual_edge.image import image_to_batch, resize_shorter_side
from perceptual_edge.train.checkpoint import Checkpoint, save_checkpoint
from perceptual_edge.train.config import TrainConfig
from perceptual_edge.train.data import ImageFolder, SamplerState
from perceptual_edge.train.distributed import Dist
from perceptual_edge.train.networks import build_network, network_config, spec_for
from perceptual_edge.train.objectives import SRObjective, StyleObjective
from perceptual_edge.train.sampling import sample_inputs, write_samples
from perceptual_edge.train.state import (
    TRAIN_STATE_VERSION,
    load_resume,
    rng_state,
    seed_everything,
    set_rng_state,
)
from perceptual_edge.train.vgg import load_loss_network


def amp_dtype_for(
    requested: bool | None, device: torch.device, has_bf16: bool | None = None
) -> tuple[torch.dtype | None, str | None]:
    """(autocast dtype or None for float32, a note to print or None) for --amp/--no-amp/unset."""
    if requested is False:
        return None, None
    if device.type == "cuda":
        bf16 = torch.cuda.is_bf16_supported()
        dtype = torch.bfloat16 if bf16 else torch.float16
        why = "this GPU computes bfloat16" if bf16 else "float16 with loss scaling"
        return dtype, f"mixed precision: {dtype_name(dtype)} autocast ({why}; --no-amp: float32)"
    native = cpu_has_bf16() if has_bf16 is None else has_bf16
    if native:
        note = "mixed precision: bf16 autocast (this CPU has AVX512_BF16/AMX; --no-amp: float32)"
        return torch.bfloat16, note
    if requested:
        return torch.bfloat16, (
            "--amp: this CPU has no AVX512_BF16/AMX, so bf16 autocast is emulated and usually "
            "slower than float32"
        )
    return None, None


def dtype_name(dtype: torch.dtype | None) -> str:
    return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]


def style_batch(image: np.ndarray, size: int) -> torch.Tensor:
    """The style image with its shorter side at `size` (whole image, no crop): (1, 3, H, W)."""
    return torch.from_numpy(image_to_batch(resize_shorter_side(image, size, "bilinear")))


class Runner:
    def __init__(
        self,
        cfg: TrainConfig,
        folder: ImageFolder,
        style_image: np.ndarray | None,
        device: torch.device,
        dist: Dist,
        log: Callable[[str], None],
    ) -> None:
        self.cfg, self.folder, self.device, self.dist, self.log = cfg, folder, device, dist, log
        self.notes: list[str] = []
        self.step = 0
        self.sampler_state = SamplerState(seed=cfg.seed)
        self._log_file: IO[str] | None = None
        self._sample_images: list[np.ndarray] | None = None
        # What this run wrote, so that a run that fails before its first checkpoint can take
        # its log and samples away again (remove_leftovers).
        self.saved = False
        self.created_log = False
        self.created_samples_dir = not cfg.samples_dir.exists()
        self.written_samples: list[Path] = []
        cuda = device.type == "cuda"
        self.amp_dtype, amp_note = amp_dtype_for(cfg.amp, device)
        self.channels_last = cfg.channels_last if cfg.channels_last is not None else cuda
        self.memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        if cuda:
            torch.backends.cudnn.benchmark = True

        seed_everything(cfg.seed)
        self.config = network_config(cfg.task, **cfg.network_options())
        self.model = build_network(self.config).to(device, memory_format=self.memory_format)
        self.model.train()
        self.objective = self._objective(style_image)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.lr)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self._resume_rng: dict[str, Any] | None = None
        if cfg.resume is not None:
            self._resume(cfg.resume)
        if amp_note:  # after every check that can fail on user input
            self._note(amp_note)
        self.net: nn.Module = self.model
        if dist.enabled:
            ids = [device.index] if cuda else None
            self.net = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)

    # ------------------------------------------------------------------ setup

    def _note(self, text: str) -> None:
        self.notes.append(text)
        if self.dist.is_main:
            self.log(f"pe train: {text}")

    def _objective(self, style_image: np.ndarray | None) -> nn.Module:
        cfg = self.cfg
        self.style_sha256: str | None = None
        if cfg.task == "sr" and cfg.loss == "pixel":
            self.loss_net, self.loss_net_weights = "none", "none"
            return SRObjective(None, "pixel", cfg.content, cfg.content_weight, cfg.pixel_weight,
                               cfg.tv_weight).to(self.device)  # fmt: skip
        layers = [cfg.content, *(cfg.style_layers if cfg.task == "style" else ())]
        vgg = load_loss_network(cfg.loss_net, layers, cfg.vgg_weights)
        vgg = vgg.to(self.device, memory_format=self.memory_format)
        self.loss_net, self.loss_net_weights = cfg.loss_net, vgg.weights_id
        if cfg.task == "sr":
            return SRObjective(vgg, "feat", cfg.content, cfg.content_weight, cfg.pixel_weight,
                               cfg.tv_weight).to(self.device)  # fmt: skip
        assert style_image is not None and cfg.style is not None
        self.style_sha256 = sha256_file(cfg.style)
        style = style_batch(style_image, cfg.style_size or cfg.size).to(self.device)
        return StyleObjective(
            vgg,
            style.contiguous(memory_format=self.memory_format),
            cfg.content,
            cfg.style_layers,
            cfg.content_weight,
            cfg.style_weight,
            cfg.tv_weight,
        ).to(self.device)

    def _resume(self, path: Path) -> None:
        ckpt = load_resume(path, self.config, self.cfg.task)
        ts = ckpt.train_state or {}
        self.model.load_state_dict(ckpt.state_dict, strict=True)
        self.optimizer.load_state_dict(ts["optimizer"])
        if ts.get("scaler") and self.scaler.is_enabled():
            self.scaler.load_state_dict(ts["scaler"])
        self.step = int(ts["step"])
        before, now = ts.get("precision", "fp32"), dtype_name(self.amp_dtype)
        if before != now:
            self._note(
                f"this run computes in {now}, the checkpoint's in {before}: it continues, but "
                "not bit-identically to an uninterrupted run"
            )
        self.sampler_state = SamplerState.from_dict(ts["sampler"])
        if self.sampler_state.seed != self.cfg.seed:
            self._note(f"resuming with the run's data seed {self.sampler_state.seed}")
        old = ts.get("train_config", {})
        if old.get("batch_size") not in (None, self.cfg.batch_size):
            self._note(
                f"batch size {old['batch_size']} -> {self.cfg.batch_size}: data order differs"
            )
        self._resume_rng = ts.get("rng")

    def restore_rng(self) -> None:
        """Last thing before the first step, so nothing in setup consumes the restored RNG."""
        if self._resume_rng is not None:
            set_rng_state(self._resume_rng, self.device)

    # ------------------------------------------------------------------ one step

    def _tensor(self, a: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(a)  # (N, 3, H, W) uint8: a quarter of the bytes of float32
        if self.device.type == "cuda":  # pinned, so the copy is asynchronous
            t = t.pin_memory()
        t = t.to(self.device, non_blocking=True).float()
        return t.contiguous(memory_format=self.memory_format)

    def step_once(self, hr: np.ndarray, lr: np.ndarray | None) -> dict[str, torch.Tensor]:
        target = self._tensor(hr)
        inp = target if lr is None else self._tensor(lr)
        self.optimizer.zero_grad(set_to_none=True)
        with torch.autocast(
            self.device.type,
            dtype=self.amp_dtype or torch.float32,
            enabled=self.amp_dtype is not None,
        ):
            y = self.net(inp)  # (N, 3, S, S)
            losses = self.objective(y, target)
        self.scaler.scale(losses["loss"]).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.step += 1
        return losses

    # ------------------------------------------------------------------ outputs (rank 0)

    def checkpoint(self, state: SamplerState, final: bool) -> Checkpoint:
        cfg = self.cfg
        notes = "" if final else f"training state at step {self.step}"
        spec = spec_for(
            self.config,
            style_image_sha256=self.style_sha256,
            loss_net=self.loss_net,
            loss_net_weights=self.loss_net_weights,
            steps=self.step,
            notes=notes,
        )
        weights = {k: v.detach().cpu().contiguous() for k, v in self.model.state_dict().items()}
        train_state = {
            "version": TRAIN_STATE_VERSION,
            "task": cfg.task,
            "step": self.step,
            "sampler": state.to_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
            "precision": dtype_name(self.amp_dtype),  # the autocast dtype, or fp32
            "rng": rng_state(self.device),
            "train_config": cfg.to_dict(),
            "world_size": self.dist.world,
        }
        return Checkpoint(spec, self.config, weights, train_state)

    def save(self, state: SamplerState, final: bool) -> None:
        if self.dist.is_main:
            save_checkpoint(self.checkpoint(state, final), self.cfg.output, overwrite=True)
            self.saved = True

    def checkpoint_bytes(self) -> int:
        """About the size of a checkpoint of this run: the network's tensors three times
        (weights, Adam's two moments) plus 1 MiB for the rest."""
        tensors = self.model.state_dict().values()
        return 3 * sum(t.numel() * t.element_size() for t in tensors) + 2**20

    def check_room(self) -> None:
        """Refuse to start when the checkpoint cannot be written (disk full, quota): found now,
        not at the first checkpoint hours later."""
        if self.dist.is_main:
            check_room(self.cfg.output, self.checkpoint_bytes(), "the checkpoint")

    def remove_leftovers(self) -> None:
        """After a run that failed before it wrote any checkpoint: remove the log it created
        and the samples it wrote (and the samples folder if it made it and it is now empty),
        which describe a run that left nothing to resume."""
        if self.saved or not self.dist.is_main or self.cfg.resume is not None:
            return
        self.close_log()
        paths = self.written_samples + ([self.cfg.log_path] if self.created_log else [])
        for path in paths:
            with contextlib.suppress(OSError):
                path.unlink()
        if self.created_samples_dir:
            with contextlib.suppress(OSError):
                self.cfg.samples_dir.rmdir()

    def open_log(self, resumed: bool) -> None:
        if not self.dist.is_main:
            return
        path = self.cfg.log_path
        check_output(path, overwrite=True)
        kept: list[str] = []
        if resumed and path.exists():
            # Lines past the resumed step belong to the part of the run that was lost.
            for line in path.read_text().splitlines():
                try:
                    if int(json.loads(line)["step"]) <= self.step:
                        kept.append(line)
                except (ValueError, KeyError, TypeError):
                    continue
        self.created_log = not path.exists()
        self._log_file = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed in close_log
        for line in kept:
            self._log_file.write(line + "\n")
        self._log_file.flush()

    def write_log(
        self, step: int, state: SamplerState, losses: dict[str, float], seconds: float
    ) -> None:
        if self._log_file is None:
            return
        rec = {"step": step, "epoch": state.epoch, **losses, "seconds": round(seconds, 3)}
        self._log_file.write(json.dumps(rec) + "\n")
        self._log_file.flush()

    def close_log(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def samples(self, step: int) -> list[Path]:
        if not self.dist.is_main:
            return []
        if self._sample_images is None:
            self._sample_images = sample_inputs(self.folder.holdout, self.cfg.size)
        paths = write_samples(
            self.model,
            self._sample_images,
            self.cfg.samples_dir,
            step,
            self.device,
            self.cfg.task,
            self.cfg.factor,
        )
        self.written_samples += [p for p in paths if p not in self.written_samples]
        return paths
