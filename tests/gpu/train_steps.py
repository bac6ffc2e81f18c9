"""Training steps of tests/gpu/acceptance.py."""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

from gpu_common import SHARED, Run, torch_cuda


def train_speed_step(run: Run) -> dict[str, Any]:
    """`pe train style --device cuda` at the paper's settings, seconds per step from a 54-step
    and a 4-step run (start-up and the final checkpoint cancel), and the 40k-step run it implies
    (README, "Training speed", has the estimate this replaces)."""
    torch_cuda()
    photos = SHARED / "train" / "bsds500_test"
    if not photos.is_dir():
        from perceptual_edge.samples import write_sample_dataset

        photos = run.work / "photos"
        write_sample_dataset(photos, count=32, height=320, width=480)
    style = SHARED / "styles" / "wave.jpg"
    if not style.is_file():
        from perceptual_edge.image import save_image
        from perceptual_edge.samples import style_image

        style = run.work / "wave.png"
        save_image(style_image(256, 384), style)

    def timed(steps: int) -> float:
        out = run.work / f"speed{steps}.pth"
        cmd = [sys.executable, "-m", "perceptual_edge", "train", "style", "--style", str(style),
               "--data", str(photos), "-o", str(out), "--overwrite", "--iterations", str(steps),
               "--loss-net", "random", "--device", "cuda", "--sample-every", "0", "-q"]  # fmt: skip
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, timeout=900)
        return time.perf_counter() - t0

    long, short = 54, 4
    timed(short)  # warm the caches (cuDNN autotuning runs again in each process)
    per_step = (timed(long) - timed(short)) / (long - short)
    return {
        "seconds_per_step_256px_batch4": round(per_step, 4),
        "paper_40k_run_minutes": round(per_step * 40_000 / 60, 1),
    }
