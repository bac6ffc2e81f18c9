"""`pe bench MODEL --backends onnxruntime,openvino --precision fp32,bf16,int8`: every backend and
precision side by side in one run.

Per size, every contender (and PyTorch eager with --vs-torch) runs once per round, in turn,
for `warmup` untimed and `runs` timed rounds, so load from other processes hits all of them
alike; the median is reported with the min and max. The matrix-product peak of each precision
is measured in the same run (runtime/peaks.py) and each result carries its achieved rate's
share of its own precision's peak (GFLOP/s; GOP/s for int8: the same count of
multiply-accumulates x 2, done in integers). A combination this machine cannot run (bf16 on
ONNX Runtime, or on a CPU without BF16; int8 without NAME.int8.onnx) is listed under `skipped`
with the reason.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from perceptual_edge.errors import PeError
from perceptual_edge.image import pad_to_multiple
from perceptual_edge.runtime.bench import Reference, count_conv_flops
from perceptual_edge.runtime.precision import base_stem

BACKEND_NAMES = {"ort": "onnxruntime", "ov": "openvino", "trt": "tensorrt"}


def _round_robin(
    contenders: dict[str, Callable[[], Any]], runs: int, warmup: int
) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {k: [] for k in contenders}
    for rep in range(warmup + runs):
        for name, fn in contenders.items():
            t = time.perf_counter()
            fn()
            if rep >= warmup:
                times[name].append(time.perf_counter() - t)
    return times


def open_sessions(
    model: str | Path, backends: Sequence[str], precisions: Sequence[str], **options: Any
) -> tuple[dict[tuple[str, str], Any], list[dict[str, str]]]:
    """{(backend, precision): Session} for every combination that opens; the rest skipped."""
    from perceptual_edge.runtime.session import Session

    sessions, skipped = {}, []
    for b in (BACKEND_NAMES.get(b, b) for b in backends):
        for p in precisions:
            try:
                sessions[(b, p)] = Session(model, backend=b, precision=p, **options)
            except PeError as e:
                skipped.append({"backend": b, "precision": p, "reason": str(e)})
    return sessions, skipped


def fp32_onnx_beside(model: str | Path) -> Path | None:
    """The FP32 .onnx whose convolutions are counted: the model's base file."""
    p = Path(model)
    cand = p.with_name(base_stem(p) + ".onnx")
    return cand if cand.is_file() else None


def bench_matrix(
    model: str | Path,
    backends: Sequence[str],
    precisions: Sequence[str],
    sizes: Sequence[tuple[int, int]],
    runs: int = 3,
    warmup: int = 1,
    reference: Reference | None = None,
    threads: int | None = None,
) -> dict[str, Any]:
    """The side-by-side table as a dict: machine figures, `peaks`, `results`, `skipped`."""
    from perceptual_edge.runtime.peaks import measure_peaks

    options = {"threads": threads} if threads else {}
    sessions, skipped = open_sessions(model, backends, precisions, **options)
    try:
        peaks = measure_peaks(tuple(dict.fromkeys(s.precision for s in sessions.values())), threads)
        onnx = fp32_onnx_beside(model)
        results = []
        rng = np.random.default_rng(0)
        for h, w in sizes:
            spec = next(iter(sessions.values())).spec if sessions else None
            if spec is None:
                break
            x = (rng.random((1, 3, h, w), dtype=np.float32) * 255.0).astype(np.float32)
            padded, _ = pad_to_multiple(x, spec.multiple, spec.min_size)
            fns: dict[str, Callable[[], Any]] = {
                f"{b}/{p}": (lambda s=s, x=padded: s.run_batch(x)) for (b, p), s in sessions.items()
            }
            if reference is not None:
                fns["torch"] = lambda x=padded: reference(x)
            times = _round_robin(fns, runs, warmup)
            flops = count_conv_flops(onnx, h, w, spec) if onnx else None
            ref = statistics.median(times["torch"]) if reference is not None else None
            for (b, p), s in sessions.items():
                results.append(_row(b, s, h, w, times[f"{b}/{p}"], flops, ref, peaks))
    finally:
        for s in sessions.values():
            s.close()
    return {
        "model": str(model),
        "runs": runs,
        "peaks": peaks if sessions else {},
        "flops_counted_on": str(onnx) if sessions and onnx else None,
        "results": results if sessions else [],
        "skipped": skipped,
    }


def _row(
    backend: str,
    session: Any,
    h: int,
    w: int,
    times: list[float],
    flops: int | None,
    torch_seconds: float | None,
    peaks: dict[str, dict[str, float | None]],
) -> dict[str, Any]:
    secs = statistics.median(times)
    p = session.precision
    row: dict[str, Any] = {
        "backend": backend,
        "backend_name": session.backend_name,
        "precision": p,
        "height": h,
        "width": w,
        "seconds": secs,
        "seconds_min": min(times),
        "seconds_max": max(times),
        "fps": 1.0 / secs,
    }
    if flops is not None:
        rate = flops / secs / 1e9
        peak = peaks.get(p, {}).get("peak")
        row.update(gflop=flops / 1e9, gflops=rate, rate_unit="GOP/s" if p == "int8" else "GFLOP/s")
        row.update(peak_gflops=peak, peak_fraction=rate / peak if peak else None)
    if torch_seconds is not None:
        row.update(torch_seconds=torch_seconds, speedup_vs_torch=torch_seconds / secs)
    return row


def format_matrix(result: dict[str, Any]) -> str:
    lines = [f"model: {result['model']}  (median of {result['runs']} runs, rounds interleaved)"]
    for p, rates in result["peaks"].items():
        parts = ", ".join(f"{k} {v:.1f}" for k, v in rates.items() if v is not None and k != "peak")
        peak = rates.get("peak")
        lines.append(f"peak {p}: {peak:.1f} G/s ({parts})" if peak else f"peak {p}: n/a")
    head = f"{'backend':>12} {'prec':>5} {'size (WxH)':>11} {'s/frame':>8} {'min-max':>13} "
    head += f"{'fps':>6} {'G/s':>7} {'of peak':>7} {'vs torch':>8}"
    lines.append(head)
    for r in result["results"]:
        frac = f"{r['peak_fraction']:7.0%}" if r.get("peak_fraction") is not None else "    n/a"
        rate = f"{r['gflops']:7.1f}" if "gflops" in r else "    n/a"
        vs = f"{r['speedup_vs_torch']:7.2f}x" if "speedup_vs_torch" in r else "       -"
        spread = f"{r['seconds_min']:.3f}-{r['seconds_max']:.3f}"
        lines.append(
            f"{r['backend']:>12} {r['precision']:>5} {r['width']:>5}x{r['height']:<5} "
            f"{r['seconds']:8.4f} {spread:>13} {r['fps']:6.2f} {rate} {frac} {vs}"
        )
    for s in result["skipped"]:
        lines.append(f"skipped {s['backend']} {s['precision']}: {s['reason']}")
    return "\n".join(lines)
