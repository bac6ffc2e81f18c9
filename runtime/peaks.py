"""This machine's matrix-product peak per precision, measured (torch-free) for `pe bench`.

    fp32   the better of numpy's SGEMM (its BLAS) and OpenVINO's f32 MatMul
    bf16   OpenVINO MatMul with the bf16 inference-precision hint (CPUs with BF16 only)
    int8   OpenVINO MatMul between two FakeQuantize'd operands (256 levels): OpenVINO's low-
           precision transformations turn it into an u8/s8 x s8 product with int32 accumulation,
           the same kernels its int8 convolutions use (oneDNN: VNNI/AMX where present, else
           AVX2 multiply-add pairs)

Each is the best of `repeats` timed products of n x n matrices after a warm-up, in GFLOP/s (GOP/s
for int8). A convolution network can approach these rates but not pass them, so achieved/peak
is the share of the hardware a backend uses.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from perceptual_edge.runtime.bench import sgemm_gflops

PEAK_N = 2048


def _best_rate(fn: Callable[[], Any], n: int, repeats: int) -> float:
    fn()  # warm: thread pools, page faults, kernel selection
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return 2.0 * n**3 / best / 1e9


def _matmul_model(ov: Any, n: int, quantized: bool) -> Any:
    """Parameter (n, n) x constant (n, n), optionally both through 8-bit FakeQuantize."""
    import openvino.opset13 as ops

    rng = np.random.default_rng(0)
    x = ops.parameter([n, n], np.float32, name="x")
    w = ops.constant(rng.standard_normal((n, n)).astype(np.float32))
    a, b = x, w
    if quantized:

        def fq(node: Any, lo: float, hi: float, levels: int) -> Any:
            lo_c, hi_c = ops.constant(np.float32(lo)), ops.constant(np.float32(hi))
            return ops.fake_quantize(node, lo_c, hi_c, lo_c, hi_c, levels)

        a = fq(x, 0.0, 1.0, 256)  # activations: unsigned after ReLU
        b = fq(w, -4.0, 4.0, 255)  # weights: symmetric signed
    y = ops.matmul(a, b, False, False)
    return ov.Model([y], [x], "peak")


def openvino_matmul_gflops(
    precision: str, n: int | None = None, repeats: int = 5, threads: int | None = None
) -> float | None:
    """OpenVINO CPU MatMul rate in `precision` (fp32, bf16, int8); None where unavailable."""
    n = n or PEAK_N
    try:
        import openvino as ov
    except ImportError:
        return None
    core = ov.Core()
    caps = [str(c) for c in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")]
    if precision == "bf16" and "BF16" not in caps:
        return None
    config: dict[str, Any] = {
        "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32",
    }
    if threads:
        config["INFERENCE_NUM_THREADS"] = int(threads)
    compiled = core.compile_model(_matmul_model(ov, n, precision == "int8"), "CPU", config)
    request = compiled.create_infer_request()
    x = np.random.default_rng(1).random((n, n), dtype=np.float32)
    return _best_rate(lambda: request.infer({0: x}, share_inputs=True), n, repeats)


def measure_peaks(
    precisions: tuple[str, ...] = ("fp32", "bf16", "int8"), threads: int | None = None
) -> dict[str, dict[str, float | None]]:
    """{precision: {source: GFLOP/s, ..., "peak": best}}; a precision this CPU cannot run has
    peak None."""
    out: dict[str, dict[str, float | None]] = {}
    for p in precisions:
        rates: dict[str, float | None] = {"openvino": openvino_matmul_gflops(p, threads=threads)}
        if p in ("fp32", "fp16"):
            rates["numpy_sgemm"] = sgemm_gflops(n=PEAK_N)
        found = [v for v in rates.values() if v is not None]
        rates["peak"] = max(found) if found else None
        out[p] = rates
    return out
