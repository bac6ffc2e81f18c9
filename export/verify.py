"""`pe verify REF ARTIFACT`: run an artifact through the runtime and compare with the reference.

REF is a golden file (numpy only: this path never imports torch) or a checkpoint (then the
reference is computed with PyTorch on the golden inputs, and with `images` also on real photos).
ARTIFACT is anything the runtime's Session opens (.onnx through ONNX Runtime or OpenVINO, .engine
through TensorRT). Comparisons are explicit: max/mean absolute error, PSNR on the 0..255 scale,
SSIM (mean over the RGB channels) and the count of NaN/Inf per case, against the per-precision
thresholds named below (the one place they are defined).
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


@dataclass(frozen=True)
class Threshold:
    psnr_db: float  # minimum PSNR (dB, 0..255 scale) against the PyTorch FP32 reference
    ssim: float  # minimum SSIM against it


# Per precision the artifact computes in (bf16: OpenVINO's inference-precision hint).
THRESHOLDS = {
    "fp32": Threshold(60.0, 0.97),
    "fp16": Threshold(40.0, 0.97),
    "bf16": Threshold(40.0, 0.97),
    "int8": Threshold(32.0, 0.97),
}
THRESHOLDS_DB = {k: t.psnr_db for k, t in THRESHOLDS.items()}
PHOTO_SIZE = 512  # px, square centre crops of real photos verified with `images`
PHOTO_COUNT = 4
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
    ssim: float = 1.0
    source: str = "golden"  # golden, or the photo's file name


@dataclass
class VerifyReport:
    reference: str
    artifact: str
    backend: str
    precision: str
    threshold_db: float
    cases: list[CaseResult]
    threshold_ssim: float = 0.0
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
            f"{'input':>12} {'source':>14} {'max abs':>10} {'mean abs':>10} {'PSNR dB':>9} "
            f"{'SSIM':>7} {'NaN/Inf':>8}  result",
        ]
        for c in self.cases:
            verdict = "pass" if c.passed else "FAIL"
            lines.append(
                f"{c.shape:>12} {c.source[-14:]:>14} {c.max_abs:>10.4f} {c.mean_abs:>10.5f} "
                f"{c.psnr:>9.2f} {c.ssim:>7.4f} {c.nonfinite:>8d}  {verdict}"
            )
        overall = "PASSED" if self.passed else "FAILED"
        min_ssim = min((c.ssim for c in self.cases), default=0.0)
        lines.append(
            f"{overall}: min PSNR {self.min_psnr:.2f} dB, threshold {self.threshold_db:.0f} dB; "
            f"min SSIM {min_ssim:.4f}, threshold {self.threshold_ssim:.2f} ({self.precision})"
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


def batch_ssim(reference: np.ndarray, output: np.ndarray) -> float:
    """The lowest per-image SSIM (mean over RGB) of an (N, 3, H, W) batch; 0 if not finite."""
    from perceptual_edge.metrics import SSIM_WINDOW, ssim_rgb

    if not np.all(np.isfinite(output)):
        return 0.0
    if min(reference.shape[2:]) < SSIM_WINDOW:  # too small for the window: PSNR decides
        return 1.0
    return min(ssim_rgb(r, y) for r, y in zip(reference, output, strict=True))


def compare(
    reference: np.ndarray,
    output: np.ndarray,
    threshold_db: float,
    min_ssim: float = 0.0,
    source: str = "golden",
) -> CaseResult:
    if reference.shape != output.shape:
        raise InputError(f"output shape {output.shape} differs from reference {reference.shape}")
    nonfinite = int(np.count_nonzero(~np.isfinite(output)))
    diff = np.abs(np.nan_to_num(output, nan=np.inf) - reference)
    p = capped_psnr(reference, output)
    s = batch_ssim(reference, output) if min_ssim > 0 else 1.0
    n, _, h, w = reference.shape
    return CaseResult(
        shape=f"{n}x{h}x{w}",
        max_abs=float(np.max(diff)) if diff.size else 0.0,
        mean_abs=float(np.mean(diff)) if diff.size else 0.0,
        psnr=float(p),
        nonfinite=nonfinite,
        passed=bool(nonfinite == 0 and p >= threshold_db and s >= min_ssim),
        ssim=float(s),
        source=source,
    )


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "absent"


def gpu_name() -> str:
    """The name of the GPU artifacts run on (CUDA device 0, see export.tensorrt.gpu_info), or
    'none'."""
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
        "openvino": _version("openvino"),
        "gpu": gpu_name(),
    }


def artifact_precision(path: str | os.PathLike[str]) -> str:
    """'int8', 'fp16' or 'fp32': from the graph for ONNX, from the sidecar for engines."""
    p = Path(path)
    if p.suffix.lower() == ".onnx":
        try:
            import onnx

            from perceptual_edge.export.fp16 import is_float16_model
        except ImportError:
            from perceptual_edge.runtime.precision import file_precision

            return file_precision(p)
        try:
            model = onnx.load(str(p), load_external_data=False)
        except Exception as e:  # protobuf DecodeError and friends
            raise InputError(
                f"{p}: not a readable ONNX file (truncated or corrupt: {type(e).__name__})"
            ) from None
        if any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in model.graph.node):
            return "int8"
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


def photo_reference(
    checkpoint: str | os.PathLike[str],
    images: str | os.PathLike[str],
    count: int = PHOTO_COUNT,
    size: int = PHOTO_SIZE,
    start: int = 0,
) -> tuple[list[str], Golden]:
    """Real photos (square centre crops, `size` px; SR nets get them as the low-resolution
    side) and the checkpoint's PyTorch outputs on them."""
    from perceptual_edge.export.golden import reference_outputs
    from perceptual_edge.export.int8 import photo_batches
    from perceptual_edge.train.checkpoint import load_checkpoint

    ckpt = load_checkpoint(checkpoint)
    names, inputs = photo_batches(images, start, count, size // ckpt.spec.scale)
    if not inputs:
        raise InputError(f"{images}: no readable images to verify on")
    outputs = reference_outputs(ckpt.build(), ckpt.spec, inputs)
    return names, Golden(ckpt.spec, inputs, outputs, Path(checkpoint))


def _tiled_cases(session: Any, golden: Golden, thr: float, ssim: float) -> list[CaseResult]:
    """With the segment program beside the artifact (NAME.segments/), the golden inputs again in
    tiles of about half their shorter side: exact tiling must meet the same thresholds."""
    from perceptual_edge.runtime.exact_tiles import segments_for

    if segments_for(session.path) is None:
        return []
    out = []
    for x, y in zip(golden.inputs, golden.outputs, strict=True):
        tile = max(session.spec.min_size, min(x.shape[2:]) // 2)
        got = session.run_batch(x, tile=tile)
        out.append(compare(y, got, thr, ssim, f"golden, exact tiles of {tile}"))
    return out


def verify(
    ref: str | os.PathLike[str] | Golden,
    artifact: str | os.PathLike[str],
    *,
    backend: str = "auto",
    device: str | None = None,
    precision: str = "auto",
    threshold_db: float | None = None,
    photos: tuple[list[str], Golden] | None = None,
) -> VerifyReport:
    """Run `artifact` on the reference inputs (and on `photos`, from `photo_reference`) through
    the runtime and compare per case, at the thresholds of the precision it computes in."""
    from perceptual_edge.runtime import Session

    golden = ref if isinstance(ref, Golden) else reference_from(ref)
    with Session(artifact, backend=backend, device=device, precision=precision) as session:
        s, g = session.spec, golden.spec
        if (s.kind, s.scale) != (g.kind, g.scale):
            raise InputError(
                f"{artifact} is a {s.kind} x{s.scale} model but the reference is "
                f"{g.kind} x{g.scale}"
            )
        used = "bf16" if session.precision == "bf16" else artifact_precision(session.path)
        limit = THRESHOLDS[used]
        thr = limit.psnr_db if threshold_db is None else float(threshold_db)
        pairs = [(x, y, "golden") for x, y in zip(golden.inputs, golden.outputs, strict=True)]
        if photos is not None:
            names, pg = photos
            pairs += list(zip(pg.inputs, pg.outputs, names, strict=True))
        cases = [compare(y, session.run_batch(x), thr, limit.ssim, src) for x, y, src in pairs]
        cases += _tiled_cases(session, golden, thr, limit.ssim)
        name = session.backend_name
        path = session.path
    return VerifyReport(
        reference=str(golden.path if golden.path else ref),
        artifact=str(path),
        backend=name,
        precision=used,
        threshold_db=thr,
        cases=cases,
        threshold_ssim=limit.ssim,
        versions=versions(),
    )
