"""FP16 numerics of a checkpoint on real images: ONNX FP16 vs FP32 (ONNX Runtime CPU), PyTorch
FP16 (emulated, and native `.half()` at small sizes) vs FP32, and the FP32 model's largest
activation per layer against FP16's limit (65504). The measuring functions are in
`perceptual_edge.export.fp16_report`.

    python tests/benchmarks/fp16_report.py CKPT --data ../shared/data/content --sizes 256 512 1024
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from perceptual_edge.export.fp16 import FP16_MAX
from perceptual_edge.export.fp16_report import activation_maxima, half_forward
from perceptual_edge.export.verify import capped_psnr
from perceptual_edge.image import image_to_batch, square_photos


def measure(
    checkpoint: str | os.PathLike[str],
    data: str | os.PathLike[str],
    sizes: tuple[int, ...] = (256, 512, 1024),
    native_max_size: int = 256,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """One row per (size, image): ONNX FP16 vs FP32 and PyTorch FP16 vs FP32 numbers."""
    from perceptual_edge.export.fp16 import float16_model
    from perceptual_edge.export.onnx_export import onnx_model_from_checkpoint, save_onnx
    from perceptual_edge.runtime import Session
    from perceptual_edge.train.checkpoint import load_checkpoint

    model = load_checkpoint(checkpoint).build()
    proto = onnx_model_from_checkpoint(checkpoint)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        f32 = save_onnx(proto, Path(tmp) / "m.onnx")
        f16 = save_onnx(float16_model(proto), Path(tmp) / "m.fp16.onnx")
        with Session(f32, device="cpu") as s32, Session(f16, device="cpu") as s16:
            for size in sizes:
                for name, img in square_photos(data, size, limit):
                    x = image_to_batch(img)  # (1, 3, S, S)
                    ref = s32.run_batch(x)
                    y16 = s16.run_batch(x)
                    emu = half_forward(model, x, "emulated")
                    row: dict[str, Any] = {
                        "size": size,
                        "image": name,
                        "onnx_fp16_psnr": capped_psnr(ref, y16),
                        "onnx_fp16_nonfinite": int(np.count_nonzero(~np.isfinite(y16))),
                        "torch_emulated_psnr": capped_psnr(ref, emu),
                        "torch_emulated_nonfinite": int(np.count_nonzero(~np.isfinite(emu))),
                        "max_activation": max(activation_maxima(model, x).values()),
                    }
                    if size <= native_max_size:
                        nat = half_forward(model, x, "native")
                        row["torch_native_psnr"] = capped_psnr(ref, nat)
                        row["torch_native_nonfinite"] = int(np.count_nonzero(~np.isfinite(nat)))
                    rows.append(row)
    return rows


def format_rows(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| size | image | ONNX FP16 PSNR | NaN/Inf | torch FP16 (emulated) PSNR | NaN/Inf "
        "| torch .half() PSNR | max |activation| (FP16 limit 65504) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        native = f"{r['torch_native_psnr']:.2f}" if "torch_native_psnr" in r else "-"
        lines.append(
            f"| {r['size']} | {r['image']} | {r['onnx_fp16_psnr']:.2f} | "
            f"{r['onnx_fp16_nonfinite']} | {r['torch_emulated_psnr']:.2f} | "
            f"{r['torch_emulated_nonfinite']} | {native} | {r['max_activation']:.1f} |"
        )
    return "\n".join(lines)


def format_maxima(maxima: dict[str, float]) -> str:
    lines = ["| layer | max abs activation | fraction of 65504 |", "|---|---|---|"]
    for name, v in maxima.items():
        lines.append(f"| {name} | {v:.2f} | {v / FP16_MAX:.2e} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--data", required=True, help="folder of real photographs")
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024])
    ap.add_argument("--native-max-size", type=int, default=256)
    ap.add_argument("--limit", type=int, default=None, help="images per size")
    args = ap.parse_args(argv)
    rows = measure(args.checkpoint, args.data, tuple(args.sizes), args.native_max_size, args.limit)
    print(format_rows(rows))
    from perceptual_edge.train.checkpoint import load_checkpoint

    name, img = square_photos(args.data, max(args.sizes), 1)[0]
    model = load_checkpoint(args.checkpoint).build()
    print(f"\nper-layer maxima on {name} at {max(args.sizes)}:")
    print(format_maxima(activation_maxima(model, image_to_batch(img))))


if __name__ == "__main__":
    main()
