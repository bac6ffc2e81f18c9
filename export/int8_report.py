"""Per-layer INT8 sensitivity, and the choice of which convolutions stay float.

Each convolution is quantized alone (all others float) and the network's output on held-out
photos is compared with the FP32 model's: the PSNR says how much error that one layer adds.
Then, starting from every convolution in INT8, layers move back to float in the order of error
added per multiply-accumulate (the compute they would cost in float) until the worst held-out
photo reaches the target (the INT8 verification threshold plus a margin, since the golden inputs
and other sizes differ from the photos measured here). So cheap layers that hurt (the 9x9 convs
on 3 channels) go float before expensive ones that hurt a little. `pe export --int8
--int8-report` prints both tables.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from perceptual_edge.export.verify import capped_psnr

TARGET_MARGIN_DB = 6.0  # measured: 3 dB over held-out BSDS photos left a night photo at 30 dB


def default_target_db() -> float:
    from perceptual_edge.export.verify import THRESHOLDS

    return THRESHOLDS["int8"].psnr_db + TARGET_MARGIN_DB


def _outputs(onnx_path: str | os.PathLike[str], batches: Sequence[np.ndarray]) -> list:
    from perceptual_edge.runtime import Session

    with Session(onnx_path, backend="onnxruntime", device="cpu") as s:
        return [s.run_batch(x) for x in batches]


def held_out_psnr(
    fp32_onnx: str | os.PathLike[str], int8_onnx: str | os.PathLike[str], batches: Sequence
) -> list[float]:
    """PSNR of the INT8 model against the FP32 model, per held-out photo."""
    refs = _outputs(fp32_onnx, batches)
    return [capped_psnr(r, y) for r, y in zip(refs, _outputs(int8_onnx, batches), strict=True)]


def choose_float_layers(
    quantizer: Any,
    held_out: Sequence[np.ndarray],
    target_db: float | None = None,
    say: Callable[[str], None] | None = None,
) -> tuple[list[str], list[dict[str, Any]]]:
    """(layers to keep float, report rows): sensitivity per layer, then the greedy steps."""
    say = say or (lambda line: None)
    target = default_target_db() if target_db is None else float(target_db)
    refs = _outputs(quantizer.source, held_out)

    def score(float_layers: Sequence[str]) -> tuple[float, float]:
        outs = _outputs(quantizer.variant(float_layers), held_out)
        values = [capped_psnr(r, y) for r, y in zip(refs, outs, strict=True)]
        return min(values), float(np.mean(values))

    names = quantizer.layer_names()
    rows: list[dict[str, Any]] = []
    say(f"measuring the INT8 cost of each of {len(names)} convolutions ...")
    for name in names:
        lo, mean = score([n for n in names if n != name])  # only `name` in INT8
        rows.append({"table": "layer", "layer": name, "psnr_min": lo, "psnr_mean": mean})
    # Float first the layers that add the most error per multiply-accumulate they would cost
    # in float: a layer's error power ~ 10^(-PSNR/10) when it alone is INT8.
    total = sum(quantizer.macs.values()) or 1
    for r in rows:
        r["mac_share"] = quantizer.macs.get(r["layer"], 0) / total
        r["error_per_mac"] = 10 ** (-r["psnr_min"] / 10) / max(r["mac_share"], 1e-9)
    order = [r["layer"] for r in sorted(rows, key=lambda r: -r["error_per_mac"])]
    kept: list[str] = []
    while True:
        lo, mean = score(kept)
        rows.append({"table": "step", "float_layers": list(kept), "psnr_min": lo,
                     "psnr_mean": mean, "target": target})  # fmt: skip
        say(f"  float: {', '.join(kept) or 'none'} -> min {lo:.2f} dB, mean {mean:.2f} dB")
        if lo >= target or len(kept) == len(order):
            return kept, rows
        kept.append(order[len(kept)])


def format_report(rows: list[dict[str, Any]]) -> str:
    """The two markdown tables: per-layer cost, then the greedy steps."""
    layers = [r for r in rows if r["table"] == "layer"]
    steps = [r for r in rows if r["table"] == "step"]
    lines = [
        "INT8 sensitivity: PSNR vs FP32 on held-out photos with only this layer in INT8",
        "| layer | min dB | mean dB | share of MACs |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {r['layer']} | {r['psnr_min']:.2f} | {r['psnr_mean']:.2f} | {r['mac_share']:.1%} |"
        for r in layers
    ]
    if steps:
        lines += [
            "",
            f"Layers moved to float (most error per MAC first) until min >= "
            f"{steps[0]['target']:.1f} dB:",
            "| float layers | min dB | mean dB |",
            "|---|---|---|",
        ]
        for r in steps:
            kept = ", ".join(r["float_layers"]) or "(none: every conv INT8)"
            lines.append(f"| {kept} | {r['psnr_min']:.2f} | {r['psnr_mean']:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """python -m perceptual_edge.export.int8_report MODEL.onnx --calibration DIR [--method M]"""
    import argparse

    from perceptual_edge.export.int8 import (
        CALIBRATION_SIZE,
        DEFAULT_CALIBRATION_IMAGES,
        DEFAULT_METHOD,
        HELD_OUT_IMAGES,
        Quantizer,
        photo_batches,
    )

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("onnx", type=Path)
    ap.add_argument("--calibration", required=True, type=Path)
    ap.add_argument("--images", type=int, default=DEFAULT_CALIBRATION_IMAGES)
    ap.add_argument("--method", default=DEFAULT_METHOD)
    ap.add_argument("--target-db", type=float, default=None)
    args = ap.parse_args(argv)
    _, calib = photo_batches(args.calibration, 0, args.images, CALIBRATION_SIZE)
    _, held = photo_batches(args.calibration, args.images, HELD_OUT_IMAGES, CALIBRATION_SIZE)
    with Quantizer(args.onnx, calib, args.method) as q:
        _, rows = choose_float_layers(q, held, args.target_db, print)
    print(format_report(rows))


if __name__ == "__main__":
    main()
