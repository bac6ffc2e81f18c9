"""`pe verify REF ARTIFACT`: run an artifact through the runtime and compare with the reference.

REF is a golden file (numpy only: this path never imports torch) or a checkpoint (then the
reference is computed with PyTorch on the golden inputs). ARTIFACT is anything the runtime's
Session opens (.onnx through ONNX Runtime, .engine through TensorRT). Comparisons are explicit:
max/mean absolute error, PSNR on the 0..255 scale and the count of NaN/Inf per case, against
the thresholds named below.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from perceptual_edge.errors import InputError
from perceptual_edge.export.golden import Golden, golden_inputs, is_golden_file, load_golden
from perceptual_edge.image import PIXEL_MAX

# Minimum PSNR (dB, 0..255 scale) of an artifact against the PyTorch FP32 reference.
THRESHOLDS_DB = {"fp32": 60.0, "fp16": 40.0}
# PSNR reported for bit-identical outputs (an infinite value is not valid JSON).
PSNR_IDENTICAL_DB = 200.0


@dataclass(frozen=True)
class CaseResult:
    shape: str  # "NxHxW" of the input
    max_abs: float
    mean_abs: float
    psnr: float
    nonfinite: int
    passed: bool


@dataclass
class VerifyReport:
    reference: str
    artifact: str
    backend: str
    precision: str
    threshold_db: float
    cases: list[CaseResult]
    versions: dict[str, str] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return bool(self.cases) and all(c.passed for c in self.cases)

    @property
    def min_psnr(self) -> float:
        return min((c.psnr for c in self.cases), default=0.0)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["passed"] = self.passed
        d["min_psnr"] = self.min_psnr
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    def table(self) -> str:
        lines = [
            f"verify {self.artifact} ({self.backend}, {self.precision}) against {self.reference}",
            f"{'input':>12} {'max abs':>10} {'mean abs':>10} {'PSNR dB':>9} {'NaN/Inf':>8}  result",
        ]
        for c in self.cases:
            verdict = "pass" if c.passed else "FAIL"
            lines.append(
                f"{c.shape:>12} {c.max_abs:>10.4f} {c.mean_abs:>10.5f} {c.psnr:>9.2f} "
                f"{c.nonfinite:>8d}  {verdict}"
            )
        overall = "PASSED" if self.passed else "FAILED"
        lines.append(
            f"{overall}: min PSNR {self.min_psnr:.2f} dB, threshold {self.threshold_db:.0f} dB "
            f"({self.precision})"
        )
        lines.append("versions: " + ", ".join(f"{k} {v}" for k, v in self.versions.items()))
        return "\n".join(lines)


def capped_psnr(reference: np.ndarray, output: np.ndarray) -> float:
    """PSNR in dB with peak 255, capped at PSNR_IDENTICAL_DB (JSON has no infinity); non-finite
    outputs count as maximal error. (The SR protocol's uncapped PSNR is `srmetrics.psnr`.)"""
    out = np.nan_to_num(output.astype(np.float64), nan=-PIXEL_MAX, posinf=1e6, neginf=-1e6)
    mse = float(np.mean((reference.astype(np.float64) - out) ** 2))
    if mse == 0.0:
        return PSNR_IDENTICAL_DB
    return float(min(PSNR_IDENTICAL_DB, 10.0 * np.log10(PIXEL_MAX**2 / mse)))


def compare(reference: np.ndarray, output: np.ndarray, threshold_db: float) -> CaseResult:
    if reference.shape != output.shape:
        raise InputError(f"output shape {output.shape} differs from reference {reference.shape}")
    nonfinite = int(np.count_nonzero(~np.isfinite(output)))
    diff = np.abs(np.nan_to_num(output, nan=np.inf) - reference)
    p = capped_psnr(reference, output)
    n, _, h, w = reference.shape
    return CaseResult(
        shape=f"{n}x{h}x{w}",
        max_abs=float(np.max(diff)) if diff.size else 0.0,
        mean_abs=float(np.mean(diff)) if diff.size else 0.0,
        psnr=float(p),
        nonfinite=nonfinite,
        passed=bool(nonfinite == 0 and p >= threshold_db),
    )


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "absent"


def gpu_name() -> str:
    """The first GPU's name from nvidia-smi (no CUDA library import), or 'none'."""
    from perceptual_edge.export.tensorrt import gpu_info

    name = gpu_info()["name"]
    return "none" if name == "unknown" else name


def versions() -> dict[str, str]:
    """Versions of the libraries that produce and run artifacts, read without importing them."""
    trt = _version("tensorrt")
    if trt == "absent":
        for alt in ("tensorrt-cu12", "tensorrt-cu13", "tensorrt_cu12"):
            if (v := _version(alt)) != "absent":
                trt = v
                break
    ort = _version("onnxruntime")
    if ort == "absent":
        ort = _version("onnxruntime-gpu")
    return {
        "torch": _version("torch"),
        "onnx": _version("onnx"),
        "onnxruntime": ort,
        "tensorrt": trt,
        "gpu": gpu_name(),
    }


def artifact_precision(path: str | os.PathLike[str]) -> str:
    """'fp16' or 'fp32': from the graph for ONNX, from the sidecar for engines."""
    p = Path(path)
    if p.suffix.lower() == ".onnx":
        try:
            import onnx

            from perceptual_edge.export.fp16 import is_float16_model
        except ImportError:
            return "fp16" if ".fp16." in p.name else "fp32"
        try:
            model = onnx.load(str(p), load_external_data=False)
        except Exception as e:  # protobuf DecodeError and friends
            raise InputError(
                f"{p}: not a readable ONNX file (truncated or corrupt: {type(e).__name__})"
            ) from None
        return "fp16" if is_float16_model(model) else "fp32"
    sidecar = p.with_name(p.name + ".json")
    if sidecar.is_file():
        try:
            return str(json.loads(sidecar.read_text())["precision"])
        except (ValueError, KeyError):
            raise InputError(f"{sidecar}: not a valid engine sidecar") from None
    return "fp16" if "fp16" in p.name else "fp32"


def reference_from(ref: str | os.PathLike[str]) -> Golden:
    """A golden file as is; a checkpoint -> golden inputs and its PyTorch outputs (in memory)."""
    if is_golden_file(ref):
        return load_golden(ref)
    from perceptual_edge.export.golden import reference_outputs
    from perceptual_edge.train.checkpoint import load_checkpoint

    ckpt = load_checkpoint(ref)
    inputs = golden_inputs(ckpt.spec)
    return Golden(ckpt.spec, inputs, reference_outputs(ckpt.build(), ckpt.spec, inputs), Path(ref))


def verify(
    ref: str | os.PathLike[str] | Golden,
    artifact: str | os.PathLike[str],
    *,
    backend: str = "auto",
    device: str | None = None,
    threshold_db: float | None = None,
) -> VerifyReport:
    """Run `artifact` on the reference inputs through the runtime and compare per case."""
    from perceptual_edge.runtime import Session

    golden = ref if isinstance(ref, Golden) else reference_from(ref)
    precision = artifact_precision(artifact)
    thr = THRESHOLDS_DB[precision] if threshold_db is None else float(threshold_db)
    with Session(artifact, backend=backend, device=device) as session:
        s, g = session.spec, golden.spec
        if (s.kind, s.scale) != (g.kind, g.scale):
            raise InputError(
                f"{artifact} is a {s.kind} x{s.scale} model but the reference is "
                f"{g.kind} x{g.scale}"
            )
        cases = [
            compare(y, session.run_batch(x), thr)
            for x, y in zip(golden.inputs, golden.outputs, strict=True)
        ]
        name = session.backend_name
    return VerifyReport(
        reference=str(golden.path if golden.path else ref),
        artifact=str(artifact),
        backend=name,
        precision=precision,
        threshold_db=thr,
        cases=cases,
        versions=versions(),
    )
