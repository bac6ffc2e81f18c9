"""FP16 numerics of a checkpoint on real images: ONNX FP16 vs FP32, PyTorch FP16, activation range.

ONNX Runtime's CPU provider runs an FP16 graph but may compute some operators in FP32 inside,
which hides overflow. So this also runs the network with FP16 activations in PyTorch and
reports the FP32 model's largest activation per layer against FP16's limit (65504).

PyTorch's CPU half-precision convolutions are very slow (about 20x FP32 on 2 cores), so
`native` half runs are only practical at small sizes; `emulated` runs FP32 arithmetic with
weights and every layer's output rounded to FP16 (overflow becomes inf exactly as in FP16
storage; accumulation stays FP32, as on GPUs' FP16 tensor cores).

    python -m perceptual_edge.export.fp16_report CKPT --data DIR --sizes 256 512 1024
"""

from __future__ import annotations

import argparse
import copy
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from perceptual_edge.export.fp16 import FP16_MAX
from perceptual_edge.export.verify import psnr
from perceptual_edge.image import image_to_batch, iter_image_files, load_image


def real_images(folder: str | os.PathLike[str], size: int, limit: int | None = None) -> list:
    """Centre-cropped squares of the images in `folder`, resized to size x size, (H, W, 3)."""
    from PIL import Image

    out = []
    for p in iter_image_files(folder):
        img = load_image(p)
        h, w = img.shape[:2]
        s = min(h, w)
        top, left = (h - s) // 2, (w - s) // 2
        crop = Image.fromarray(img[top : top + s, left : left + s])
        out.append((p.name, np.asarray(crop.resize((size, size), Image.Resampling.LANCZOS))))
        if limit and len(out) >= limit:
            break
    return out


def _leaf_modules(model: Any) -> list[tuple[str, Any]]:
    return [(n, m) for n, m in model.named_modules() if n and not list(m.children())]


def activation_maxima(model: Any, batch: np.ndarray) -> dict[str, float]:
    """Largest |activation| of every layer and block of the FP32 model on `batch` (N, 3, H, W).

    Blocks are included because their outputs hold what no leaf layer does: the residual sums
    and the activations after ReLU.
    """
    import torch

    maxima: dict[str, float] = {}
    hooks = []
    for name, mod in model.named_modules():
        if not name or isinstance(mod, torch.nn.Sequential):
            continue

        def hook(_m: Any, _i: Any, out: Any, name: str = name) -> None:
            maxima[name] = max(maxima.get(name, 0.0), float(out.detach().abs().max()))

        hooks.append(mod.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model(torch.from_numpy(batch))
    finally:
        for h in hooks:
            h.remove()
    return maxima


def half_forward(model: Any, batch: np.ndarray, mode: str = "emulated") -> np.ndarray:
    """The network's output with FP16 weights and activations, as float32 (N, 3, H, W)."""
    import torch

    m = copy.deepcopy(model).eval()
    x = torch.from_numpy(batch)
    with torch.no_grad():
        if mode == "native":
            return m.half()(x.half()).float().numpy()
        for p in m.parameters():
            p.copy_(p.half().float())
        hooks = [
            mod.register_forward_hook(lambda _m, _i, out: out.half().float())
            for _, mod in _leaf_modules(m)
        ]
        try:
            return m(x.half().float()).numpy()
        finally:
            for h in hooks:
                h.remove()


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
                for name, img in real_images(data, size, limit):
                    x = image_to_batch(img)  # (1, 3, S, S)
                    ref = s32.run_batch(x)
                    y16 = s16.run_batch(x)
                    emu = half_forward(model, x, "emulated")
                    row: dict[str, Any] = {
                        "size": size,
                        "image": name,
                        "onnx_fp16_psnr": psnr(ref, y16),
                        "onnx_fp16_nonfinite": int(np.count_nonzero(~np.isfinite(y16))),
                        "torch_emulated_psnr": psnr(ref, emu),
                        "torch_emulated_nonfinite": int(np.count_nonzero(~np.isfinite(emu))),
                        "max_activation": max(activation_maxima(model, x).values()),
                    }
                    if size <= native_max_size:
                        nat = half_forward(model, x, "native")
                        row["torch_native_psnr"] = psnr(ref, nat)
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

    name, img = real_images(args.data, max(args.sizes), 1)[0]
    model = load_checkpoint(args.checkpoint).build()
    print(f"\nper-layer maxima on {name} at {max(args.sizes)}:")
    print(format_maxima(activation_maxima(model, image_to_batch(img))))


if __name__ == "__main__":
    main()
