"""ONNX -> TensorRT engine (`engine_from_onnx`), its optimisation profile and its sidecar.

Written against the TensorRT 10 Python API: a strongly typed network (the precision comes from
the ONNX graph; TensorRT 11 removed BuilderFlag.FP16 and is always strongly typed), an
optimisation profile over batch, height and width, a workspace limit, a timing cache file that
later builds reuse, and a progress line while it builds. The plan is written raw (trtexec and
Triton load it as is) with a NAME.engine.json sidecar: an engine only runs on the GPU model and
TensorRT version it was built with, and the sidecar says which.

Without TensorRT, `trtexec_command` gives the equivalent command line for the GPU machine.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from perceptual_edge.errors import InputError, UnavailableError
from perceptual_edge.fsutil import atomic_path, check_output, sha256_file, write_bytes_atomic
from perceptual_edge.spec import (  # the profile is shared with the runtime (ORT TensorRT EP)
    ModelSpec,
    Profile,
    Shape,
    default_profile,
    format_shape,
)

DEFAULT_WORKSPACE_MIB = 4096
SIDECAR_FORMAT = 1


def parse_shape(text: str) -> Shape:
    """'1x3x512x512' -> (1, 3, 512, 512)."""
    parts = text.strip().lower().replace(",", "x").split("x")
    try:
        dims = tuple(int(p) for p in parts)
    except ValueError:
        raise InputError(f"shape {text!r} is not NxCxHxW (e.g. 1x3x512x512)") from None
    if len(dims) != 4 or any(d < 1 for d in dims):
        raise InputError(f"shape {text!r} is not NxCxHxW with positive sizes")
    return dims  # type: ignore[return-value]


def validate_profile(profile: Profile, spec: ModelSpec) -> Profile:
    names = ("min", "opt", "max")
    for name, shape in zip(names, (profile.min, profile.opt, profile.max), strict=True):
        if shape[1] != 3:
            raise InputError(f"--{name} {format_shape(shape)}: the network takes 3 channels")
        for side in shape[2:]:
            if side % spec.multiple:
                raise InputError(
                    f"--{name} {format_shape(shape)}: height and width must be multiples of "
                    f"{spec.multiple} for this network"
                )
            if side < spec.min_size:
                raise InputError(
                    f"--{name} {format_shape(shape)}: sides must be at least {spec.min_size}"
                )
    for a, b, sa, sb in (
        ("min", "opt", profile.min, profile.opt),
        ("opt", "max", profile.opt, profile.max),
    ):
        if any(x > y for x, y in zip(sa, sb, strict=True)):
            raise InputError(
                f"inconsistent profile: --{a} {format_shape(sa)} exceeds --{b} {format_shape(sb)} "
                "in some dimension (need min <= opt <= max)"
            )
    return profile


def make_profile(
    spec: ModelSpec, min: str | None = None, opt: str | None = None, max: str | None = None
) -> Profile:
    """A validated profile from --min/--opt/--max texts; unset ones take the defaults."""
    d = default_profile(spec)
    p = Profile(
        parse_shape(min) if min else d.min,
        parse_shape(opt) if opt else d.opt,
        parse_shape(max) if max else d.max,
    )
    return validate_profile(p, spec)


def trtexec_command(
    onnx_path: str | os.PathLike[str],
    engine_path: str | os.PathLike[str],
    profile: Profile,
    input_name: str = "input",
    workspace_mib: int = DEFAULT_WORKSPACE_MIB,
    timing_cache: str | os.PathLike[str] | None = None,
    precision: str = "fp32",
) -> list[str]:
    """The trtexec invocation equivalent to `engine_from_onnx` (TensorRT 10 flags), flag
    for flag with the builder calls made there (tests/export/test_trt_build_fake.py compares them).

    --stronglyTyped takes the precision from the graph (TensorRT 11 is always strongly typed;
    neither needs --fp16, which TensorRT 11 no longer has). trtexec enables TF32 by default and
    the API build clears it for every graph with FP32 convolutions (FP32, and the float layers of
    INT8), so those get --noTF32. The workspace is written without a unit: trtexec reads a bare
    number as MiB, while 10.0.x multiplies an "M" suffix out and then takes it as MiB again.
    """
    cmd = [
        "trtexec",
        f"--onnx={onnx_path}",
        f"--saveEngine={engine_path}",
        "--stronglyTyped",
        f"--minShapes={input_name}:{format_shape(profile.min)}",
        f"--optShapes={input_name}:{format_shape(profile.opt)}",
        f"--maxShapes={input_name}:{format_shape(profile.max)}",
        f"--memPoolSize=workspace:{int(workspace_mib)}",
    ]
    if precision != "fp16":
        cmd.append("--noTF32")
    if timing_cache:
        cmd.append(f"--timingCacheFile={timing_cache}")
    return cmd


def format_command(cmd: list[str]) -> str:
    return shlex.join(cmd)


def gpu_info(device: int = 0) -> dict[str, str]:
    """Name and compute capability of the GPU TensorRT builds on: CUDA device `device` as CUDA
    numbers it (after CUDA_VISIBLE_DEVICES, in CUDA's own order), read through the CUDA binding.
    nvidia-smi is the fallback where no binding is installed: it lists every GPU in PCI order
    and is absent on Jetson, so it is asked for the first visible device only; 'unknown' if
    neither answers."""
    from perceptual_edge.runtime.cuda_mem import load_cuda

    try:
        cuda = load_cuda(device)
    except UnavailableError:
        return _gpu_info_from_nvidia_smi(device)
    try:
        info = cuda.device_info()
    finally:
        cuda.close()
    return {"name": info.name or "unknown", "compute_capability": info.compute_capability}


def _gpu_info_from_nvidia_smi(device: int) -> dict[str, str]:
    visible = [v.strip() for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")]
    select = ["-i", visible[device]] if device < len(visible) and visible[device] else []
    try:
        r = subprocess.run(
            ["nvidia-smi", *select, "--query-gpu=name,compute_cap", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        lines = r.stdout.strip().splitlines() if r.returncode == 0 else []
        line = lines[0 if select else min(device, len(lines) - 1)] if lines else ""
    except (OSError, subprocess.SubprocessError):
        line = ""
    name, _, cc = (s.strip() for s in line.partition(","))
    return {"name": name or "unknown", "compute_capability": cc or "unknown"}


def engine_sidecar(
    spec: ModelSpec,
    profile: Profile,
    precision: str,
    tensorrt_version: str,
    gpu: dict[str, str],
    onnx_sha256: str,
    workspace_mib: int,
) -> dict[str, Any]:
    """The NAME.engine.json content: what the plan is and where it is valid."""
    return {
        "format": SIDECAR_FORMAT,
        "spec": spec.to_dict(),
        "profile": profile.to_dict(),
        "precision": precision,
        "tensorrt_version": tensorrt_version,
        "gpu": {
            "name": gpu.get("name", "unknown"),
            "compute_capability": gpu.get("compute_capability", "unknown"),
        },
        "onnx_sha256": onnx_sha256,
        "workspace_mib": int(workspace_mib),
        "strongly_typed": True,
    }


def tensorrt_status() -> tuple[bool, str]:
    """(True, version) when TensorRT imports and a GPU is visible; else (False, why not)."""
    try:
        import tensorrt as trt  # noqa: F401
    except ImportError:
        return False, (
            "the tensorrt Python package is not installed here (TensorRT needs an NVIDIA GPU "
            "machine with its wheels)"
        )
    except Exception as e:  # the registry stub raises at import when the real wheel is absent
        return False, f"tensorrt cannot be imported ({type(e).__name__}: {e})"
    if gpu_info()["name"] == "unknown":
        return False, "tensorrt is installed but no NVIDIA GPU is visible (nvidia-smi found none)"
    return True, str(trt.__version__)


def _progress_monitor(trt: Any, emit: Callable[[str], None]) -> Any:
    """An IProgressMonitor (TensorRT >= 10) that prints one line per top-level phase step."""

    class Monitor(trt.IProgressMonitor):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)
            self.steps: dict[str, int] = {}

        def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
            self.steps[phase_name] = num_steps
            if parent_phase is None:
                emit(f"building engine: {phase_name} ({num_steps} steps)")

        def step_complete(self, phase_name: str, step: int) -> bool:
            return True  # returning False would cancel the build

        def phase_finish(self, phase_name: str) -> None:
            self.steps.pop(phase_name, None)

    return Monitor()


def engine_from_onnx(
    onnx_path: str | os.PathLike[str],
    engine_path: str | os.PathLike[str],
    *,
    profile: Profile,
    workspace_mib: int = DEFAULT_WORKSPACE_MIB,
    timing_cache: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """Build and write a TensorRT plan plus NAME.engine.json; the timing cache is reused."""
    import onnx

    from perceptual_edge.export.fp16 import is_float16_model
    from perceptual_edge.runtime.ort_backend import read_onnx_spec

    emit = progress or (lambda line: print(line, file=sys.stderr))
    out = check_output(engine_path, overwrite)
    sidecar_path = out.with_name(out.name + ".json")
    check_output(sidecar_path, overwrite)
    ok, why = tensorrt_status()
    if not ok:
        raise UnavailableError(f"no TensorRT engine built: {why}")
    import tensorrt as trt

    spec = read_onnx_spec(onnx_path)
    validate_profile(profile, spec)
    precision = "fp16" if is_float16_model(onnx.load(str(onnx_path))) else "fp32"
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0
    if hasattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED"):
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise InputError(f"{onnx_path}: TensorRT's ONNX parser rejected the graph: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_mib) << 20)
    if precision == "fp32" and hasattr(trt.BuilderFlag, "TF32"):
        config.clear_flag(trt.BuilderFlag.TF32)  # TF32 would cost the FP32 parity threshold
    opt_profile = builder.create_optimization_profile()
    opt_profile.set_shape(spec.input_name, profile.min, profile.opt, profile.max)
    config.add_optimization_profile(opt_profile)
    cache_bytes = b""
    if timing_cache and Path(timing_cache).is_file():
        cache_bytes = Path(timing_cache).read_bytes()
    _attach_timing_cache(config, cache_bytes, timing_cache, emit)
    if hasattr(trt, "IProgressMonitor"):
        config.progress_monitor = _progress_monitor(trt, emit)
    emit(f"building TensorRT {trt.__version__} engine ({precision}) from {onnx_path} ...")
    t0 = time.perf_counter()
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise InputError(f"TensorRT could not build an engine from {onnx_path} (see its log)")
    emit(f"engine built in {time.perf_counter() - t0:.1f} s")
    if timing_cache:
        attached = config.get_timing_cache()  # None if no cache was attached
        if attached is not None:
            write_bytes_atomic(timing_cache, bytes(attached.serialize()))
    meta = engine_sidecar(
        spec,
        profile,
        precision,
        str(trt.__version__),
        gpu_info(),
        sha256_file(onnx_path),
        workspace_mib,
    )
    text = json.dumps(meta, indent=2, sort_keys=True) + "\n"
    _write_plan_and_sidecar(out, bytes(plan), sidecar_path, text, overwrite)
    return out


def _attach_timing_cache(
    config: Any, data: bytes, path: str | os.PathLike[str] | None, emit: Callable[[str], None]
) -> None:
    """Attach the timing cache read from `path`; one from another GPU or TensorRT version is
    refused by set_timing_cache (it returns False and attaches nothing, so get_timing_cache()
    would be None after the build): start a fresh cache then, and say so."""
    if config.set_timing_cache(config.create_timing_cache(data), ignore_mismatch=False):
        return
    emit(f"timing cache {path} was made by another GPU or TensorRT version: starting a fresh one")
    if not config.set_timing_cache(config.create_timing_cache(b""), ignore_mismatch=False):
        raise UnavailableError("TensorRT refused an empty timing cache")


def _write_plan_and_sidecar(
    plan_path: Path, plan: bytes, sidecar_path: Path, sidecar: str, overwrite: bool
) -> None:
    """Plan and sidecar as one unit: both written to temp files, the plan renamed first, and
    removed again if the sidecar cannot follow (the runtime refuses a plan without one)."""
    plan_in_place = False
    try:
        with atomic_path(sidecar_path, overwrite) as side_tmp:
            side_tmp.write_text(sidecar)
            with atomic_path(plan_path, overwrite) as plan_tmp:
                plan_tmp.write_bytes(plan)
            plan_in_place = True
    except BaseException:
        if plan_in_place:
            with contextlib.suppress(FileNotFoundError):
                plan_path.unlink()
        raise
