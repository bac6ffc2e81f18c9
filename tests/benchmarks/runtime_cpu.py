"""CPU speed of the style network: ONNX Runtime (our Session) vs PyTorch eager, same run.

    python tests/benchmarks/runtime_cpu.py [--sizes 512,1920x1080] [--runs 3] [--json out.json]

Targets (issue 4): ORT >= 1.5x PyTorch eager at 512x512 and 1920x1080, and >= 75% of this
machine's SGEMM rate (numpy float32, best of several 2048^3 products, measured in the same run).
Also times ORT with its stock session options (`ort.InferenceSession(path)`) so the effect of
ours (graph optimisation level, threads = physical cores, sequential execution) is visible.
The three contenders are interleaved run by run (ours, stock, torch, ours, ...) and SGEMM is
re-measured between sizes, so load from other processes on a shared machine hits all of them
alike; medians are reported. Weights: a seeded random-weight style network (instance norm,
nearest-upsample convs), which costs the same as a trained one.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="512,1920x1080")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--checkpoint", type=Path, help="a style .pth (default: seeded random)")
    ap.add_argument("--json", type=Path, help="also write the result here")
    args = ap.parse_args()

    import onnxruntime as ort
    import torch

    sys.path.insert(0, str(ROOT / "tests"))
    from helpers import make_checkpoint

    from perceptual_edge.cli.common import parse_sizes
    from perceptual_edge.export import onnx_from_checkpoint
    from perceptual_edge.image import pad_to_multiple
    from perceptual_edge.runtime import Session
    from perceptual_edge.runtime.bench import count_conv_flops, sgemm_gflops
    from perceptual_edge.runtime.ort_backend import physical_cores
    from perceptual_edge.train.checkpoint import load_model

    rows = []
    with tempfile.TemporaryDirectory(prefix="pe-cpu-") as d:
        ckpt = args.checkpoint or make_checkpoint(Path(d) / "style.pth")
        onnx = onnx_from_checkpoint(ckpt, Path(d) / "style.onnx")
        torch.set_num_threads(physical_cores())
        model, spec = load_model(ckpt)
        model.eval()
        stock = ort.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])
        with Session(onnx, device="cpu") as s:
            for h, w in parse_sizes(args.sizes):
                x = np.random.default_rng(0).random((1, 3, h, w), np.float32) * 255.0
                x, _ = pad_to_multiple(x.astype(np.float32), spec.multiple, spec.min_size)
                xt = torch.from_numpy(x)
                contenders = {
                    "ours": lambda x=x: s.run_batch(x),
                    "stock_ort": lambda x=x: stock.run(None, {"input": x}),
                    "torch": lambda xt=xt: model(xt),
                }
                times: dict[str, list[float]] = {k: [] for k in contenders}
                with torch.inference_mode():
                    for rep in range(args.runs + 1):  # the first round warms up
                        for name, fn in contenders.items():
                            t = time.perf_counter()
                            fn()
                            if rep:
                                times[name].append(time.perf_counter() - t)
                sgemm = sgemm_gflops()
                flops = count_conv_flops(onnx, h, w, spec)
                med = {k: statistics.median(v) for k, v in times.items()}
                rows.append(
                    {
                        "height": h,
                        "width": w,
                        "seconds": med["ours"],
                        "fps": 1 / med["ours"],
                        "stock_ort_seconds": med["stock_ort"],
                        "torch_seconds": med["torch"],
                        "speedup_vs_torch": med["torch"] / med["ours"],
                        "gflop": flops / 1e9,
                        "gflops": flops / med["ours"] / 1e9,
                        "sgemm_gflops": sgemm,
                        "sgemm_fraction": flops / med["ours"] / 1e9 / sgemm,
                        "all_seconds": times,
                    }
                )
    result = {
        "results": rows,
        "torch_version": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "ort_version": ort.__version__,
        "physical_cores": physical_cores(),
    }
    for r in rows:
        print(
            f"{r['width']}x{r['height']}: ORT ours {r['seconds']:.3f} s, ORT stock "
            f"{r['stock_ort_seconds']:.3f} s, torch eager {r['torch_seconds']:.3f} s -> "
            f"{r['speedup_vs_torch']:.2f}x; {r['gflop']:.1f} GFLOP, {r['gflops']:.1f} GFLOP/s "
            f"= {r['sgemm_fraction']:.0%} of SGEMM ({r['sgemm_gflops']:.1f} GFLOP/s)"
        )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
