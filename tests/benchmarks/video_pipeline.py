"""Video pipeline efficiency: end-to-end frames/s of `pe run` on a clip against the model-only
frames/s of the same Session on the same decoded frames, measured in one run.

    python tests/benchmarks/video_pipeline.py   # friday.mp4, a random-weight style net
    python tests/benchmarks/video_pipeline.py --model wave.onnx --max-size 320 --batch 4 --json
    python tests/benchmarks/video_pipeline.py --model wave.onnx --backend openvino --precision int8

The target (issue 4) is end-to-end >= 90% of model-only. Model-only is timed before and after
the end-to-end run and averaged, so that drift from other load on the machine shows up as a
spread instead of a bias. End-to-end is `pe run` in a subprocess (its --json `fps`: decode,
inference, encode and audio remux, from opening the clip to the renamed output; the one-off
model load is excluded, as it is from model-only). Weights do not change the speed, so without
--model a random-weight network of the real architecture is exported to ONNX (needs torch).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CLIP = ROOT.parent / "shared" / "data" / "video" / "friday.mp4"


_MAKE_MODEL = """
import sys, torch
from pathlib import Path
from perceptual_edge.export import onnx_from_checkpoint
from perceptual_edge.train import Checkpoint, build_network, network_config, save_checkpoint
from perceptual_edge.train.networks import spec_for
folder = Path(sys.argv[1])
config = network_config("style")
torch.manual_seed(0)
model = build_network(config)
spec = spec_for(config, loss_net="random", loss_net_weights="random:seed=0")
ckpt = save_checkpoint(Checkpoint(spec, config, model.state_dict()), folder / "style.pth")
onnx_from_checkpoint(ckpt, folder / "style.onnx")
"""


def make_model(folder: Path) -> Path:
    """A random-weight style network of the real architecture, exported to ONNX.

    In a subprocess, so that the model-only measurement runs torch-free like the `pe run` it
    is compared with (torch's own thread pools in this process could skew the comparison).
    """
    subprocess.run([sys.executable, "-c", _MAKE_MODEL, str(folder)], check=True)
    return folder / "style.onnx"


def decoded_frames(clip: Path, max_size: int | None) -> list[np.ndarray]:
    """All frames, prepared exactly as `pe run` prepares them (--max-size, even sides)."""
    from perceptual_edge.image import fit_long_side, resize
    from perceptual_edge.video import VideoFrame, VideoReader

    frames = []
    with VideoReader(clip) as r:
        for item in r:
            if isinstance(item, VideoFrame):
                h, w = fit_long_side(*item.image.shape[:2], max_size, even=True)
                frames.append(resize(item.image, h, w, "lanczos"))
    return frames


def model_only_fps(
    model: Path,
    frames: list[np.ndarray],
    batch: int,
    backend: str = "auto",
    precision: str = "auto",
) -> float:
    """Frames/s of Session.run_batch alone over the decoded frames (after one warm-up call)."""
    from perceptual_edge.runtime import Session

    def nchw(chunk: list[np.ndarray]) -> np.ndarray:  # (N, 3, H, W) float32
        return np.stack(chunk).transpose(0, 3, 1, 2).astype(np.float32)

    with Session(model, backend=backend, precision=precision) as s:
        s.run_batch(nchw(frames[:batch]))
        t = time.perf_counter()
        for i in range(0, len(frames), batch):
            s.run_batch(nchw(frames[i : i + batch]))
        return len(frames) / (time.perf_counter() - t)


def end_to_end(
    model: Path, clip: Path, out: Path, batch: int, max_size: int | None, run_args: list[str]
) -> dict:
    cmd = [sys.executable, "-m", "perceptual_edge", "run", str(model), "-i", str(clip)]
    cmd += ["-o", str(out), "--batch", str(batch), "--json", "--overwrite", *run_args]
    if max_size:
        cmd += ["--max-size", str(max_size)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"pe run failed: {proc.stderr.strip()}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clip", type=Path, default=DEFAULT_CLIP)
    ap.add_argument("--model", type=Path, help="an .onnx/.engine (default: random-weight style)")
    ap.add_argument("--max-size", type=int, default=None)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--backend", default="auto", help="auto, onnxruntime, openvino, tensorrt")
    ap.add_argument("--precision", default="auto", help="auto, fp32, bf16, int8 (see pe run)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)
    if not args.clip.is_file():
        raise SystemExit(f"{args.clip}: no such clip")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model = args.model or make_model(folder)
        frames = decoded_frames(args.clip, args.max_size)
        how = {"backend": args.backend, "precision": args.precision}
        before = model_only_fps(model, frames, args.batch, **how)
        run_args = ["--backend", args.backend, "--precision", args.precision]
        e2e = end_to_end(model, args.clip, folder / f"out{args.clip.suffix}", args.batch,
                         args.max_size, run_args)  # fmt: skip
        after = model_only_fps(model, frames, args.batch, **how)
    model_fps = statistics.mean([before, after])
    report = {
        "clip": str(args.clip),
        "frames": len(frames),
        "size": list(frames[0].shape[:2]),
        "batch": args.batch,
        "backend": e2e["backend"],
        "model_only_fps": [round(before, 3), round(after, 3)],
        "end_to_end_fps": round(e2e["fps"], 3),
        "end_to_end_frames": e2e["items"],
        "audio": e2e["audio"],
        "ratio": round(e2e["fps"] / model_fps, 4),
        "machine": f"{platform.machine()} {os.cpu_count()} cpus, {platform.platform()}",
    }
    if args.json:
        print(json.dumps(report))
    else:
        h, w = report["size"]
        print(f"clip {report['clip']}: {report['frames']} frames at {w}x{h}, batch {args.batch}")
        print(f"model only    {before:8.2f} / {after:.2f} frames/s (before / after)")
        print(f"end to end    {e2e['fps']:8.2f} frames/s (pe run, audio {e2e['audio']})")
        print(f"ratio         {report['ratio']:8.1%} (target >= 90%)  [{report['machine']}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
