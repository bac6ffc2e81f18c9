"""ONNX Runtime's spin-waiting threads against another CPU-bound process, side by side.

    python tests/benchmarks/cpu_load.py [--checkpoint wave.pth] [--size 512] [--runs 5] [--json F]

Times one frame through PyTorch eager, ONNX Runtime with spinning pool threads (ORT's stock
behaviour), ONNX Runtime without (our default) and OpenVINO FP32 where installed: first on a quiet
machine, then with one busy-looping process (`while True: pass`) competing for the cores. In
each phase the contenders alternate run by run; medians, min and max are reported, and the
ratio to PyTorch eager per phase. Targets (issue 13): ORT >= 1.5x eager quiet, >= 1.2x loaded.
Weights do not change the speed; the default is a seeded random-weight style network.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]


def contenders(onnx: Path, ckpt: Path, x: np.ndarray) -> dict:
    import torch

    from perceptual_edge.runtime import Session
    from perceptual_edge.runtime.ort_backend import physical_cores
    from perceptual_edge.train.checkpoint import load_model

    torch.set_num_threads(physical_cores())
    model, _ = load_model(ckpt)
    model.eval()
    xt = torch.from_numpy(x)
    spin = Session(onnx, backend="onnxruntime", device="cpu", spinning=True)
    calm = Session(onnx, backend="onnxruntime", device="cpu")

    def torch_run() -> None:
        with torch.inference_mode():
            model(xt)

    out = {
        "torch": torch_run,
        "ort_spinning": lambda: spin.run_batch(x),
        "ort_no_spinning": lambda: calm.run_batch(x),
    }
    try:
        ov = Session(onnx, backend="openvino", precision="fp32")
        out["openvino_fp32"] = lambda: ov.run_batch(x)
    except Exception as e:  # the [openvino] extra absent
        print(f"(no OpenVINO: {e})", file=sys.stderr)
    return out


def phase(fns: dict, runs: int) -> dict:
    times: dict[str, list[float]] = {k: [] for k in fns}
    for rep in range(runs + 1):  # round 0 warms up
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            if rep:
                times[name].append(time.perf_counter() - t)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {
        k: {
            "median": med[k],
            "min": min(v),
            "max": max(v),
            "speedup_vs_torch": med["torch"] / med[k],
        }
        for k, v in times.items()
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", type=Path, help="a style .pth (default: seeded random)")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "tests"))
    from helpers import make_checkpoint

    from perceptual_edge.export import onnx_from_checkpoint

    x = np.random.default_rng(0).random((1, 3, args.size, args.size), np.float32) * 255.0
    with tempfile.TemporaryDirectory(prefix="pe-load-") as d:
        ckpt = args.checkpoint or make_checkpoint(Path(d) / "style.pth")
        onnx = onnx_from_checkpoint(ckpt, Path(d) / "style.onnx")
        fns = contenders(onnx, ckpt, x.astype(np.float32))
        result = {"size": args.size, "quiet": phase(fns, args.runs)}
        hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            time.sleep(1.0)
            result["loaded"] = phase(fns, args.runs)
        finally:
            hog.kill()
            hog.wait()
    for name in ("quiet", "loaded"):
        print(f"{name} ({args.size}x{args.size}, median of {args.runs}):")
        for k, r in result[name].items():
            print(
                f"  {k:16s} {r['median']:.3f} s ({r['min']:.3f}-{r['max']:.3f})  "
                f"{r['speedup_vs_torch']:.2f}x torch"
            )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
