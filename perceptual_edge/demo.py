"""The main job, end to end, on images the project generates itself (`make demo`).

    python -m perceptual_edge.demo --out demo-out

1. writes sample content photos, a sample style image and a sample clip with an audio track;
2. `pe train style` for a few iterations (VGG-16 if its weights are on this machine, else the
   explicit `random` loss network, and says which);
3. `pe export --fp16` (ONNX FP32 + FP16, golden file, Triton repository; a TensorRT engine where
   TensorRT and a GPU exist) and `pe verify` of both ONNX files against the checkpoint;
4. `pe run` on a sample image and on the sample clip (audio kept);
and prints where every result is. Every step is a `pe` command, echoed, so it can be copied.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import time
from pathlib import Path


def _pe(*args: str) -> None:
    cmd = [sys.executable, "-m", "perceptual_edge", *args]
    print("$ pe " + " ".join(shlex.quote(a) for a in args), flush=True)
    t = time.perf_counter()
    done = subprocess.run(cmd, check=False)
    if done.returncode != 0:
        print(f"demo: step failed with exit code {done.returncode}", file=sys.stderr)
        sys.exit(done.returncode)
    print(f"  ({time.perf_counter() - t:.1f} s)\n", flush=True)


def _loss_net(choice: str) -> str:
    if choice != "auto":
        return choice
    from perceptual_edge.runtime.doctor import check_vgg16

    found = check_vgg16()["found"]  # the same places `pe doctor` reports; no download attempt
    net = "vgg16" if found else "random"
    why = "VGG-16 weights found" if found else "no VGG-16 weights on this machine (offline)"
    print(f"demo: loss network = {net} ({why})\n", flush=True)
    return net


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--out", default="demo-out", help="output folder (replaced files inside)")
    ap.add_argument("--iterations", type=int, default=40)
    ap.add_argument("--image-size", type=int, default=128)
    ap.add_argument("--loss-net", default="auto", choices=["auto", "vgg16", "random"])
    args = ap.parse_args(argv)

    from perceptual_edge.image import save_image
    from perceptual_edge.samples import (
        content_image,
        style_image,
        write_sample_clip,
        write_sample_dataset,
    )

    out = Path(args.out)
    data = out / "data"
    out.mkdir(parents=True, exist_ok=True)
    print(f"demo: writing sample images and a clip into {data}\n", flush=True)
    write_sample_dataset(data / "photos", count=12, height=160, width=160)
    style = save_image(style_image(), data / "style.png", overwrite=True)
    photo = save_image(content_image(1234, 360, 480), data / "photo.png", overwrite=True)
    clip = write_sample_clip(data / "clip.mp4", overwrite=True)

    ckpt = out / "style.pth"
    _pe("train", "style", "--style", str(style), "--data", str(data / "photos"),
        "--image-size", str(args.image_size), "--batch-size", "2",
        "--iterations", str(args.iterations), "--sample-every", str(args.iterations),
        "--loss-net", _loss_net(args.loss_net), "-o", str(ckpt), "--overwrite")  # fmt: skip
    exp = out / "export"
    _pe("export", str(ckpt), "-o", str(exp), "--fp16", "--triton", str(out / "triton"),
        "--overwrite")  # fmt: skip
    onnx, onnx16 = exp / "style.onnx", exp / "style.fp16.onnx"
    _pe("verify", str(ckpt), str(onnx))
    _pe("verify", str(ckpt), str(onnx16))
    styled = out / "photo.style.png"
    _pe("run", str(onnx), "--input", str(photo), "-o", str(styled), "--overwrite")
    styled_clip = out / "clip.style.mp4"
    _pe("run", str(onnx), "--input", str(clip), "-o", str(styled_clip), "--overwrite")

    print("demo: done. Results:")
    for label, p in [
        ("checkpoint", ckpt),
        ("training samples", out / "style.samples"),
        ("ONNX FP32 / FP16", f"{onnx}, {onnx16}"),
        ("golden file", exp / "style.golden.npz"),
        ("Triton repository", out / "triton"),
        ("stylised photo", styled),
        ("stylised clip (with audio)", styled_clip),
    ]:
        print(f"  {label:28s} {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
