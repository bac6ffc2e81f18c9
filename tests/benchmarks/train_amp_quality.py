"""bf16 mixed precision against float32 training: how far the loss curves part, on real photos.

    python tests/benchmarks/train_amp_quality.py [--size 128] [--steps 300] [--photos DIR]

Three `pe train style` runs (in process, the CLI's code path), the same seed, data order and
settings (wave.jpg, --loss-net random, batch 4, logged every 10 steps): float32 with 2 threads
(the reference), bf16 autocast with 2 threads, and float32 with 1 thread. The third is the noise
floor: float32 against float32 where only the order of floating-point sums differs (the thread
count changes oneDNN's blocking), so training trajectories that part by chaos alone. Printed: the
relative gap of each smoothed curve (EMA 0.8) to the reference at every logged step, its maximum,
median and final value. Issue 10's guard asks bf16 to stay within 2% at every logged step.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data"


def run(args: argparse.Namespace, out: Path, amp: bool, threads: int) -> np.ndarray:
    import torch

    from perceptual_edge.train.config import TrainConfig
    from perceptual_edge.train.loop import train

    torch.set_num_threads(threads)
    cfg = TrainConfig(
        task="style", data=args.photos, output=out, style=args.style, image_size=args.size,
        batch_size=4, iterations=args.steps, loss_net="random", device="cpu", amp=amp,
        sample_every=0, checkpoint_every=0, log_every=10, overwrite=True,
    )  # fmt: skip
    from helpers import loss_curve

    return loss_curve(train(cfg, log=lambda m: None, progress=False).log)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=Path, default=SHARED / "train" / "bsds500_test")
    ap.add_argument("--style", type=Path, default=SHARED / "styles" / "wave.jpg")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--steps", type=int, default=300)
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "tests"))
    from helpers import smoothed

    with tempfile.TemporaryDirectory(prefix="pe-amp-") as d:
        ref = run(args, Path(d) / "fp32.pth", False, 2)
        others = {
            "bf16, 2 threads": run(args, Path(d) / "bf16.pth", True, 2),
            "float32, 1 thread (noise floor)": run(args, Path(d) / "fp32t1.pth", False, 1),
        }
    base = smoothed(ref)
    print(
        json.dumps(
            {"size": args.size, "steps": args.steps, "reference_loss": base.round(4).tolist()}
        )
    )
    for name, curve in others.items():
        gap = np.abs(smoothed(curve) - base) / base
        row = {
            "run": name, "max_gap": round(float(gap.max()), 4),
            "median_gap": round(float(np.median(gap)), 4), "final_gap": round(float(gap[-1]), 4),
            "gaps": gap.round(4).tolist(),
        }  # fmt: skip
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
