"""`pe bench`: seconds per frame, frames/s, achieved GFLOP/s and its fraction of this machine's
SGEMM rate, per input size; optionally against a reference (PyTorch eager) on the same inputs.

FLOPs are counted from the graph: 2 x the multiply-accumulates of every Conv and ConvTranspose,
with the shapes ONNX Runtime infers for the given input size (a profiled run at the basic
optimisation level, whose convolutions still have the model's own shapes — the fully optimised
graph pads channels to the CPU's vector blocks). Torch-free: the reference is passed in.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from perceptual_edge.image import pad_to_multiple
from perceptual_edge.spec import ModelSpec

DEFAULT_SIZES: tuple[tuple[int, int], ...] = ((256, 256), (512, 512), (1024, 1024), (1080, 1920))
Reference = Callable[[np.ndarray], Any]  # (N, 3, H, W) float32 -> anything (timed only)


def sgemm_gflops(n: int = 2048, repeats: int = 5) -> float:
    """Best-of-`repeats` float32 n x n matrix product rate of numpy's BLAS, in GFLOP/s."""
    rng = np.random.default_rng(0)
    a = rng.random((n, n), dtype=np.float32)
    b = rng.random((n, n), dtype=np.float32)
    c = np.empty((n, n), np.float32)
    np.matmul(a, b, out=c)  # warm: BLAS thread pool, page faults
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        np.matmul(a, b, out=c)
        best = min(best, time.perf_counter() - t)
    return 2.0 * n**3 / best / 1e9


def conv_macs_from_profile(events: list[dict[str, Any]]) -> int:
    """Multiply-accumulates of Conv/ConvTranspose kernels in one run of an ORT profile."""
    macs = 0
    seen: set[str] = set()
    for e in events:
        args = e.get("args", {})
        op = args.get("op_name")
        if e.get("cat") != "Node" or op not in ("Conv", "ConvTranspose"):
            continue
        if not e.get("name", "").endswith("_kernel_time") or e["name"] in seen:
            continue
        seen.add(e["name"])
        shapes = [next(iter(d.values())) for d in args.get("input_type_shape", [])]
        out = [next(iter(d.values())) for d in args.get("output_type_shape", [])]
        if len(shapes) < 2 or not out:
            continue
        x, w = shapes[0], shapes[1]
        per = int(np.prod(w[1:]))  # (Cin/g or Cout/g) * kH * kW
        macs += int(np.prod(out[0])) * per if op == "Conv" else int(np.prod(x)) * per
    return macs


def count_conv_flops(onnx_path: str | Path, height: int, width: int, spec: ModelSpec) -> int:
    """FLOPs (2 x MACs) of the convolutions for one (1, 3, height, width) input, padded to the
    network's multiple as the Session pads it."""
    from perceptual_edge.runtime.ort_backend import import_onnxruntime, log_severity

    ort = import_onnxruntime()

    x, _ = pad_to_multiple(
        np.zeros((1, 3, height, width), np.float32), spec.multiple, spec.min_size
    )
    with tempfile.TemporaryDirectory(prefix="pe-flops-") as tmp:
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        opts.enable_profiling = True
        opts.profile_file_prefix = str(Path(tmp) / "profile")
        opts.log_severity_level = log_severity()
        sess = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
        sess.run(None, {sess.get_inputs()[0].name: x.astype(_ort_dtype(sess))})
        events = json.loads(Path(sess.end_profiling()).read_text())
    return 2 * conv_macs_from_profile(events)


def _ort_dtype(sess: Any) -> type:
    return np.float16 if "float16" in sess.get_inputs()[0].type else np.float32


def onnx_for(model: str | Path) -> Path | None:
    """The ONNX a model's FLOPs are counted on: itself, or for an engine the ONNX beside it."""
    p = Path(model)
    if p.suffix.lower() == ".onnx":
        return p
    stem = p.name.split(".")[0]
    for cand in (p.with_suffix(".onnx"), p.with_name(stem + ".onnx")):
        if cand.is_file():
            return cand
    return None


def median_seconds(fn: Callable[[], Any], runs: int, warmup: int = 1) -> float:
    for _ in range(max(0, warmup)):
        fn()
    times = []
    for _ in range(max(1, runs)):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def bench_session(
    session: Any,
    sizes: Sequence[tuple[int, int]] = DEFAULT_SIZES,
    runs: int = 3,
    warmup: int = 1,
    reference: Reference | None = None,
    count_flops: bool = True,
    sgemm: float | None = None,
) -> dict[str, Any]:
    """Time `session.run_batch` per size (the same padded input for the reference); a dict with
    machine figures and a `results` list (height, width, seconds, fps, gflop, gflops, ...)."""
    spec: ModelSpec = session.spec
    sgemm = sgemm_gflops() if sgemm is None else sgemm
    onnx = onnx_for(session.path) if count_flops else None
    rng = np.random.default_rng(0)
    results = []
    for h, w in sizes:
        x = (rng.random((1, 3, h, w), dtype=np.float32) * 255.0).astype(np.float32)
        padded, _ = pad_to_multiple(x, spec.multiple, spec.min_size)
        row: dict[str, Any] = {"height": h, "width": w}
        secs = median_seconds(lambda p=padded: session.run_batch(p), runs, warmup)
        row.update(seconds=secs, fps=1.0 / secs)
        if onnx is not None:
            flops = count_conv_flops(onnx, h, w, spec)
            row.update(gflop=flops / 1e9, gflops=flops / secs / 1e9)
            row["sgemm_fraction"] = row["gflops"] / sgemm
        if reference is not None:
            ref = median_seconds(lambda p=padded: reference(p), runs, warmup)
            row.update(torch_seconds=ref, speedup_vs_torch=ref / secs)
        results.append(row)
    return {
        "model": str(session.path),
        "backend": session.backend_name,
        "sgemm_gflops": sgemm,
        "runs": runs,
        "flops_counted_on": str(onnx) if onnx else None,
        "results": results,
    }


def format_table(result: dict[str, Any]) -> str:
    """The human-readable table of `bench_session`'s result."""
    lines = [
        f"model: {result['model']}  backend: {result['backend']}",
        f"SGEMM (numpy float32, best of 5): {result['sgemm_gflops']:.1f} GFLOP/s;"
        f" median of {result['runs']} warm runs per size",
    ]
    has_ref = any("speedup_vs_torch" in r for r in result["results"])
    cols = ("s/frame", "frames/s", "GFLOP", "GFLOP/s", "of SGEMM")
    head = f"{'size (WxH)':>12} " + " ".join(f"{c:>9}" for c in cols)
    if has_ref:
        head += f" {'torch s':>9} {'speedup':>8}"
    lines.append(head)
    for r in result["results"]:
        gflop = f"{r['gflop']:9.1f}" if "gflop" in r else f"{'n/a':>9}"
        rate = f"{r['gflops']:9.1f}" if "gflops" in r else f"{'n/a':>9}"
        frac = f"{r['sgemm_fraction']:9.0%}" if "sgemm_fraction" in r else f"{'n/a':>9}"
        size = f"{r['width']:>6}x{r['height']:<5}"
        line = f"{size} {r['seconds']:9.4f} {r['fps']:9.2f} {gflop} {rate} {frac}"
        if has_ref:
            line += f" {r['torch_seconds']:9.4f} {r['speedup_vs_torch']:7.2f}x"
        lines.append(line)
    if not result.get("flops_counted_on"):
        lines.append("(GFLOP: no ONNX beside the engine to count on)")
    return "\n".join(lines)
