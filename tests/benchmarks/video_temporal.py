"""Flicker, style and speed of `pe run --temporal` against frame-by-frame, per clip.

    python tests/benchmarks/video_temporal.py [--checkpoint wave.pth] [--strength 0.8]
        [--max-size 320] [--strip strip.png]

Model: --checkpoint, else a style network trained here for 500 steps (`pe train style`,
wave.jpg, 128-px crops of ../shared/data/train/bsds500_test, random VGG-16 weights: no ImageNet
weights can be downloaded on this machine), exported with `pe export` (ONNX, its temporal
graph). Clips: ../shared/data/video/*.mp4 and three made here from a content photo: a pan
(2 px/frame), a zoom (1%/frame) and a static shot with sensor noise (Gaussian, sigma 4 levels);
all shrunk to --max-size. Each clip runs twice through the same in-process pipeline as `pe run`
(ONNX Runtime CPU, decode/encode threads, audio copied): frame by frame, then with --temporal;
the two runs alternate clip by clip. Per clip: E_warp of each (and the input's floor), the
style loss of 8 frames to wave.jpg on the same loss network, frames/s of each and their ratio.
Targets (issue 11): E_warp <= 60% of frame-by-frame, style loss within 10%, >= 70% throughput.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data"


def write_clip(path: Path, frames: list[np.ndarray], fps: int = 25) -> Path:
    import av

    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=fps)
        s.height, s.width = frames[0].shape[:2]
        s.pix_fmt = "yuv420p"
        s.options = {"crf": "16"}
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def made_clips(tmp: Path, n: int = 60) -> list[Path]:
    from PIL import Image

    from perceptual_edge.image import load_image

    photo = load_image(SHARED / "content" / "tubingen.jpg")  # 768x1024
    h, w = 240, 320
    pan = [photo[100 : 100 + h * 2 : 2, 50 + 4 * i : 50 + 4 * i + w * 2 : 2] for i in range(n)]
    zoom = []
    for i in range(n):
        s = 1.0 - 0.01 * i
        ch, cw = int(600 * s), int(800 * s)
        y0, x0 = (768 - ch) // 2, (1024 - cw) // 2
        crop = Image.fromarray(photo[y0 : y0 + ch, x0 : x0 + cw])
        zoom.append(np.asarray(crop.resize((w, h), Image.Resampling.BICUBIC)))
    base = np.asarray(Image.fromarray(photo).resize((w, h), Image.Resampling.BICUBIC))
    rng = np.random.default_rng(0)
    noisy = [
        np.clip(base + rng.normal(0, 4, base.shape), 0, 255).astype(np.uint8) for _ in range(n)
    ]
    return [
        write_clip(tmp / "pan.mp4", pan),
        write_clip(tmp / "zoom.mp4", zoom),
        write_clip(tmp / "static_noise.mp4", noisy),
    ]


def trained(tmp: Path, steps: int) -> Path:
    out = tmp / "wave500.pth"
    cmd = [sys.executable, "-m", "perceptual_edge", "train", "style", "--style",
           str(SHARED / "styles" / "wave.jpg"), "--data", str(SHARED / "train" / "bsds500_test"),
           "-o", str(out), "--iterations", str(steps), "--image-size", "128", "--batch-size", "2",
           "--loss-net", "random", "--sample-every", "0", "--checkpoint-every", "0",
           "-q"]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True)
    return out


def run_clip(onnx: Path, clip: Path, out: Path, max_size: int, temporal: float | None) -> float:
    from perceptual_edge.runtime import Session
    from perceptual_edge.runtime.postprocess import Processor, RunOptions
    from perceptual_edge.runtime.video_run import process_video

    opts = RunOptions(max_size=max_size, even=True, temporal=temporal)
    with Session(onnx) as s:
        r = process_video(Processor(s, opts), clip, out, overwrite=True, progress=False)
    return r.items / r.seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", type=Path)
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--strength", type=float, default=0.8)
    ap.add_argument("--max-size", type=int, default=320)
    ap.add_argument("--strip", type=Path, help="write the first clip's strip here")
    args = ap.parse_args()
    from perceptual_edge.export.pipeline import export_checkpoint
    from perceptual_edge.paper.temporal import style_fidelity, warping_error, write_strip

    style = SHARED / "styles" / "wave.jpg"
    with tempfile.TemporaryDirectory(prefix="pe-temporal-") as d:
        tmp = Path(d)
        ckpt = args.checkpoint or trained(tmp, args.steps)
        export_checkpoint(ckpt, tmp / "model", engine=False, overwrite=True)
        onnx = tmp / "model" / f"{ckpt.stem}.onnx"
        clips = sorted((SHARED / "video").glob("*.mp4")) + made_clips(tmp)
        rows = []
        for clip in clips:
            plain, steady = tmp / f"{clip.stem}.plain.mp4", tmp / f"{clip.stem}.steady.mp4"
            fps_plain = run_clip(onnx, clip, plain, args.max_size, None)
            fps_steady = run_clip(onnx, clip, steady, args.max_size, args.strength)
            r = warping_error(clip, [plain, steady])
            lp = style_fidelity(plain, style, loss_net="random")
            ls = style_fidelity(steady, style, loss_net="random")
            ep, es = r.e_warp[str(plain)], r.e_warp[str(steady)]
            row = {
                "clip": clip.name, "frames": r.frames, "cuts": r.cuts,
                "e_warp_input": round(r.input_e_warp, 5), "e_warp_plain": round(ep, 5),
                "e_warp_temporal": round(es, 5), "e_warp_ratio": round(es / ep, 3),
                "style_plain": lp, "style_temporal": ls, "style_change": round(ls / lp - 1, 3),
                "fps_plain": round(fps_plain, 2), "fps_temporal": round(fps_steady, 2),
                "throughput": round(fps_steady / fps_plain, 3),
            }  # fmt: skip
            rows.append(row)
            print(json.dumps(row), flush=True)
            if args.strip and len(rows) == 1:
                write_strip([clip, plain, steady], args.strip, start=30, overwrite=True)
        ok = all(
            r["e_warp_ratio"] <= 0.6 and abs(r["style_change"]) <= 0.1 and r["throughput"] >= 0.7
            for r in rows
        )
        print(json.dumps({"strength": args.strength, "all_targets_met": ok}))


if __name__ == "__main__":
    main()
