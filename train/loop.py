"""The training loop behind `pe train style` and `pe train sr`: `train(TrainConfig)`.

One function for both tasks; they differ only in their batches and their objective. Every
check that can fail on user input runs before the first step (see `config.validate`); outputs
are written atomically by rank 0 only; SIGINT/SIGTERM finish the current step, save a
checkpoint and return with `interrupted` set; `--resume` restores model, optimiser, step,
sampler state and RNG states, so an interrupted run continues bit-identically on CPU.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from perceptual_edge.errors import InputError
from perceptual_edge.image import load_image
from perceptual_edge.progress import Progress
from perceptual_edge.train.config import TrainConfig, validate
from perceptual_edge.train.data import (
    BatchSource,
    Sampler,
    SamplerState,
    iter_batches,
    scan_folder,
)

# Test hook: seconds to sleep after each periodic checkpoint, so a test can kill the process
# (SIGKILL) at a known step. Unset in normal use.
SLEEP_AFTER_CHECKPOINT_ENV = "PE_TRAIN_SLEEP_AFTER_CHECKPOINT"


@dataclass
class TrainResult:
    output: Path
    steps: int
    total_steps: int
    interrupted: str | None  # the signal's name when stopped early
    skipped_files: int
    log: Path
    samples: list[Path] = field(default_factory=list)
    losses: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    is_main: bool = True  # False on the other ranks of a torchrun job (they print nothing)


class StopFlag:
    """The first SIGINT/SIGTERM asks the loop to stop after this step; a second SIGINT aborts."""

    def __init__(self) -> None:
        self.signal: str | None = None

    def _handler(self, signum: int, frame: Any) -> None:
        if self.signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal = signal.Signals(signum).name

    @contextlib.contextmanager
    def installed(self) -> Iterator[StopFlag]:
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        old = {s: signal.signal(s, self._handler) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield self
        finally:
            for s, h in old.items():
                signal.signal(s, h)


def _sleep_unless(stop: StopFlag, seconds: float) -> None:
    end = time.monotonic() + seconds
    while stop.signal is None and time.monotonic() < end:
        time.sleep(0.05)


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def train_style(cfg: TrainConfig, **kwargs: Any) -> TrainResult:
    if cfg.task != "style":
        raise InputError("train_style needs a TrainConfig with task='style'")
    return train(cfg, **kwargs)


def train_sr(cfg: TrainConfig, **kwargs: Any) -> TrainResult:
    if cfg.task != "sr":
        raise InputError("train_sr needs a TrainConfig with task='sr'")
    return train(cfg, **kwargs)


def train(
    cfg: TrainConfig,
    log: Callable[[str], None] = _stderr,
    progress: bool | None = None,
) -> TrainResult:
    """Train (or resume) one network; returns where everything went and how far it got."""
    validate(cfg)
    folder = scan_folder(cfg.data)
    style_image = load_image(cfg.style) if cfg.task == "style" and cfg.style else None

    from perceptual_edge.train import distributed as dist_mod
    from perceptual_edge.train.runner import Runner

    dist = dist_mod.dist_from_env()
    device = dist_mod.select_device(cfg.device, dist)
    dist_mod.init(dist, device)
    runner: Runner | None = None
    try:
        runner = Runner(cfg, folder, style_image, device, dist, log)
        sampler = Sampler(len(folder), cfg.batch_size, runner.sampler_state, dist.rank, dist.world)
        total = cfg.total_steps(sampler.steps_per_epoch)
        result = TrainResult(
            output=cfg.output,
            steps=runner.step,
            total_steps=total,
            interrupted=None,
            skipped_files=folder.skipped,
            is_main=dist.is_main,
            log=cfg.log_path,
            notes=list(runner.notes),
        )
        if folder.skipped and dist.is_main:
            log(f"pe train: skipped {folder.skipped} unreadable files in {folder.root}")
        threads = cfg.loader_threads or (8 if device.type == "cuda" else 1)
        source = BatchSource(folder, cfg.task, cfg.size, cfg.factor, cfg.seed, threads=threads)
        bar = Progress(total, "it", start=runner.step, enabled=progress if dist.is_main else False)
        sleep_after_ckpt = float(os.environ.get(SLEEP_AFTER_CHECKPOINT_ENV, "0") or 0)
        stop = StopFlag()
        t0 = time.perf_counter()
        runner.check_room()
        runner.open_log(resumed=cfg.resume is not None)
        runner.restore_rng()
        state = SamplerState(**runner.sampler_state.to_dict())
        with stop.installed(), contextlib.closing(source):
            batches = iter_batches(source, sampler, total - runner.step, prefetch=cfg.prefetch)
            for hr, lr, state in batches:
                losses = runner.step_once(hr, lr)
                step = runner.step
                last = step == total
                # Decided together on every rank: the log below is a collective under DDP.
                stopping = dist_mod.any_rank(dist, stop.signal is not None, device)
                if step % cfg.log_every == 0 or last or stopping:
                    values = dist_mod.mean_over_ranks(dist, losses)
                    result.losses = values
                    runner.write_log(step, state, values, time.perf_counter() - t0)
                    bar.set(step, values)
                if cfg.sample_every and (step % cfg.sample_every == 0 or last):
                    result.samples = runner.samples(step)
                if stopping:
                    result.interrupted = stop.signal or "SIGTERM"
                    break
                if cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and not last:
                    runner.save(state, final=False)
                    _sleep_unless(stop, sleep_after_ckpt)
            with contextlib.suppress(Exception):
                batches.close()
        bar.close()
        runner.save(state, final=result.interrupted is None)
        runner.close_log()
        result.steps = runner.step
        result.seconds = time.perf_counter() - t0
        result.skipped_files = folder.skipped + len(source.bad)
        dist_mod.barrier(dist)
        return result
    except BaseException:
        if runner is not None:
            runner.remove_leftovers()
        raise
    finally:
        if runner is not None:
            runner.close_log()
        dist_mod.shutdown(dist)
