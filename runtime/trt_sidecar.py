"""A TensorRT plan's contract: its NAME.engine.json sidecar, or, for a plan without one, what
the ONNX file beside it (or an explicit spec) says; and the check of a sidecar against this
machine, made BEFORE the plan is deserialised (see runtime.trt_backend)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from perceptual_edge.errors import InputError, UnavailableError
from perceptual_edge.runtime.cuda_mem import GpuInfo
from perceptual_edge.spec import ModelSpec

log = logging.getLogger("perceptual_edge.runtime")

SIDECAR_SUFFIX = ".json"
UNKNOWN = "unknown"


@dataclass(frozen=True)
class EngineSidecar:
    spec: ModelSpec
    profile_min: tuple[int, int, int, int]
    profile_opt: tuple[int, int, int, int]
    profile_max: tuple[int, int, int, int]
    precision: str
    tensorrt_version: str
    gpu_name: str
    compute_capability: str
    onnx_sha256: str | None = None


def sidecar_path(engine: str | Path) -> Path:
    p = Path(engine)
    return p.with_name(p.name + SIDECAR_SUFFIX)


def read_sidecar(engine: str | Path, path: str | Path | None = None) -> EngineSidecar:
    """Parse `<engine>.json` (or `path`); one clear InputError for a missing or malformed one."""
    path = Path(path) if path is not None else sidecar_path(engine)
    if not path.is_file():
        raise InputError(
            f"{engine}: no sidecar {path.name} (the spec, profile and GPU it was built for); "
            "rebuild the engine with `pe export`"
        )
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
        prof = d["profile"]
        # Both layouts seen in the wild: gpu {name, compute_capability}, or gpu as the name
        # with compute_capability beside it.
        gpu = d["gpu"] if isinstance(d["gpu"], dict) else {"name": d["gpu"]}
        gpu.setdefault("compute_capability", d.get("compute_capability", "unknown"))
        return EngineSidecar(
            spec=ModelSpec.from_dict(d["spec"]),
            profile_min=_shape4(prof["min"]),
            profile_opt=_shape4(prof["opt"]),
            profile_max=_shape4(prof["max"]),
            precision=str(d.get("precision", "unknown")),
            tensorrt_version=str(d["tensorrt_version"]),
            gpu_name=str(gpu["name"]).strip(),
            compute_capability=_cc(gpu["compute_capability"]),
            onnx_sha256=d.get("onnx_sha256"),
        )
    except InputError as e:
        raise InputError(f"{path}: {e}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"{path}: unreadable engine sidecar ({e})") from None
    except (KeyError, TypeError, ValueError) as e:
        raise InputError(f"{path}: engine sidecar is missing or has a bad field ({e})") from None


def onnx_beside(engine: Path) -> list[Path]:
    """Where the ONNX file an engine was built from usually is: w.fp16.engine -> w.fp16.onnx,
    then w.onnx (trtexec and Polygraphy keep the name; pe export's FP16 plan drops nothing)."""
    stem = engine.name[: -len(engine.suffix)] if engine.suffix else engine.name
    names = [stem] + ([stem.rsplit(".", 1)[0]] if "." in stem else [])
    return [engine.with_name(n + ".onnx") for n in names]


def contract_without_sidecar(engine: Path, spec: Any = None) -> EngineSidecar:
    """The model contract of a plan that has no sidecar, from `spec` (a ModelSpec, an .onnx, a
    sidecar or spec .json) or the ONNX file beside it; TensorRT version and GPU unknown, profile
    read from the engine later."""
    from perceptual_edge.runtime.precision import file_precision

    zeros = (0, 0, 0, 0)
    unchecked = {"tensorrt_version": UNKNOWN, "gpu_name": UNKNOWN, "compute_capability": UNKNOWN}
    if isinstance(spec, ModelSpec):
        source, model_spec, precision = "the given spec", spec, UNKNOWN
    else:
        candidates = [Path(spec)] if spec is not None else onnx_beside(engine)
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            where = candidates[0] if spec is not None else " or ".join(map(str, candidates))
            raise InputError(
                f"{engine}: no sidecar {sidecar_path(engine).name} and no {where} to take the "
                "model contract from; pass --spec MODEL.onnx (or the sidecar) built with it"
            )
        source = str(found)
        if found.suffix.lower() == ".onnx":
            from perceptual_edge.runtime.ort_backend import read_onnx_spec

            model_spec, precision = read_onnx_spec(found), file_precision(found)
        else:
            try:
                d = json.loads(found.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
                raise InputError(f"{found}: unreadable spec file ({e})") from None
            if "profile" in d:  # a whole sidecar: its own checks apply
                return read_sidecar(engine, found)
            model_spec, precision = ModelSpec.from_dict(d.get("spec", d)), UNKNOWN
    log.warning(
        "%s has no sidecar: model contract from %s, precision %s assumed; its TensorRT version "
        "and GPU are not checked before loading",
        engine.name,
        source,
        precision,
    )
    return EngineSidecar(model_spec, zeros, zeros, zeros, precision, **unchecked)


def _shape4(v: Any) -> tuple[int, int, int, int]:
    t = tuple(int(x) for x in v)
    if len(t) != 4:
        raise ValueError(f"profile shape {v!r} is not [N, C, H, W]")
    return t  # type: ignore[return-value]


def _cc(v: Any) -> str:
    """Compute capability as "major.minor" from "9.0", [9, 0] or 9.0."""
    if isinstance(v, list | tuple):
        return f"{int(v[0])}.{int(v[1])}"
    return str(v).strip()


def _version_key(v: str) -> tuple[str, ...]:
    # Plans are tied to major.minor.patch; the build number (4th field) does not matter.
    return tuple(v.strip().split(".")[:3])


def check_engine_compat(
    sidecar: EngineSidecar, trt_version: str, gpu: GpuInfo, allow_other_gpu: bool = False
) -> None:
    """Refuse an engine built for another TensorRT version or GPU, with what to do about it."""
    if _version_key(sidecar.tensorrt_version) != _version_key(trt_version):
        raise UnavailableError(
            f"engine was built with TensorRT {sidecar.tensorrt_version}, this machine has "
            f"TensorRT {trt_version}; rebuild it here with `pe export` (or run the .onnx)"
        )
    if UNKNOWN in (sidecar.compute_capability, sidecar.gpu_name):
        log.warning("engine sidecar does not say which GPU it was built for; trying it here")
        return
    if sidecar.compute_capability != gpu.compute_capability:
        raise UnavailableError(
            f"engine was built for {sidecar.gpu_name} (compute capability "
            f"{sidecar.compute_capability}), this GPU is {gpu.name} ({gpu.compute_capability}); "
            "rebuild it here with `pe export`"
        )
    if sidecar.gpu_name != gpu.name:
        if not allow_other_gpu:
            raise UnavailableError(
                f"engine was built for {sidecar.gpu_name}, this GPU is {gpu.name}; rebuild it "
                "here with `pe export` (or pass allow_other_gpu=True to try it anyway)"
            )
        log.warning(
            "engine built for %s runs on %s (same compute capability)", sidecar.gpu_name, gpu.name
        )
