"""`pe export`: every artifact of a checkpoint, verified, in one call.

    NAME.onnx            FP32, dynamic batch/height/width
    NAME.fp16.onnx       with fp16
    NAME.int8.onnx       with int8: QDQ, calibrated on real photos (export/int8.py)
    NAME.golden.npz      inputs and PyTorch reference outputs
    NAME.segments/       the segment program for exact tiled inference (export/segments.py)
    NAME.temporal.onnx   instance-norm statistics carried across video frames (temporal_graph.py)
    NAME[.fp16].engine   + .engine.json, where TensorRT and a GPU are present (or asked for)
    REPO/NAME_onnx, REPO/NAME_plan   with a Triton repository folder (+ REPO/NAME_int8_onnx)

All outputs are checked for existence (without overwrite) and the profile is validated before
any work starts, so a bad invocation fails in a second rather than after an export.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from perceptual_edge.errors import InputError
from perceptual_edge.export.int8 import Int8Options
from perceptual_edge.export.verify import VerifyReport
from perceptual_edge.fsutil import FolderMaker, check_output
from perceptual_edge.spec import Profile


@dataclass
class ExportResult:
    onnx: Path
    golden: Path
    segments: Path | None = None
    temporal: Path | None = None
    fp16_onnx: Path | None = None
    int8_onnx: Path | None = None
    int8_report: str | None = None  # the INT8 plan and per-layer sensitivity, printed
    trtexec_int8: str | None = None  # the INT8 engine's command line for a GPU machine
    engine: Path | None = None
    engine_skipped: str | None = None  # why no engine was built
    trtexec: str | None = None  # the equivalent command line for a GPU machine
    triton: list[Path] = field(default_factory=list)
    reports: list[VerifyReport] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.reports)


def export_checkpoint(
    checkpoint: str | os.PathLike[str],
    out_dir: str | os.PathLike[str] | None = None,
    *,
    fp16: bool = False,
    fp16_io: bool = False,
    engine: bool | None = None,
    triton: str | os.PathLike[str] | None = None,
    min_shape: str | None = None,
    opt_shape: str | None = None,
    max_shape: str | None = None,
    workspace_mib: int | None = None,
    timing_cache: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    progress: Callable[[str], None] | None = None,
    int8: Int8Options | None = None,
) -> ExportResult:
    """Export, verify and package a checkpoint; engine=None builds one when TensorRT is here."""
    from perceptual_edge.export.fp16 import float16_model
    from perceptual_edge.export.golden import golden_from_checkpoint, load_golden
    from perceptual_edge.export.lint import check_tensorrt_compatible
    from perceptual_edge.export.onnx_export import onnx_model_from_checkpoint, save_onnx
    from perceptual_edge.export.segments import write_segments
    from perceptual_edge.export.temporal_graph import write_temporal
    from perceptual_edge.export.tensorrt import (
        DEFAULT_WORKSPACE_MIB,
        engine_from_onnx,
        format_command,
        make_profile,
        tensorrt_status,
        trtexec_command,
    )
    from perceptual_edge.export.triton import triton_model
    from perceptual_edge.export.verify import verify
    from perceptual_edge.train.checkpoint import load_checkpoint

    say = progress or (lambda line: None)
    if fp16_io and not fp16:
        raise InputError("--fp16-io needs --fp16")
    ckpt_path = Path(checkpoint)
    ckpt = load_checkpoint(ckpt_path)  # fails fast on anything that is not our checkpoint
    spec = ckpt.spec
    profile: Profile = make_profile(spec, min_shape, opt_shape, max_shape)
    if triton and profile.min[0] > 1:
        raise InputError(
            f"--triton: the profile's minimum batch is {profile.min[0]}, but Triton sends "
            "requests of batch 1 too; use a --min with batch 1 (e.g. 1x3x64x64)"
        )
    workspace = DEFAULT_WORKSPACE_MIB if workspace_mib is None else int(workspace_mib)
    if workspace < 1:
        raise InputError("--workspace must be a positive number of MiB")

    folder = Path(out_dir) if out_dir else ckpt_path.parent
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{folder}: is not a folder (--output-dir names the folder to write into)")
    folders = FolderMaker()  # a failed export leaves no empty folder behind
    folders.make(folder)
    try:
        name = ckpt_path.stem
        onnx_path = folder / f"{name}.onnx"
        fp16_path = folder / f"{name}.fp16.onnx" if fp16 else None
        golden_path = folder / f"{name}.golden.npz"
        engine_src = fp16_path or onnx_path
        engine_path = folder / f"{name}{'.fp16' if fp16 else ''}.engine"
        cache = Path(timing_cache) if timing_cache else folder / f"{name}.timing.cache"
        have_trt, why = tensorrt_status()
        build_engine = have_trt if engine is None else engine
        int8_path = folder / f"{name}.int8.onnx" if int8 else None
        if int8:
            int8.check()
        planned = [onnx_path, golden_path, folder / f"{name}.temporal.onnx"]
        planned += [p for p in (fp16_path, int8_path) if p]
        if build_engine:
            planned += [engine_path, engine_path.with_name(engine_path.name + ".json")]
        for p in planned:
            check_output(p, overwrite)
        segments_path = folder / f"{name}.segments"
        if segments_path.exists() and not overwrite:
            check_output(segments_path, overwrite)
        if triton:
            subs = ["onnx"] + (["plan"] if build_engine else []) + (["int8_onnx"] if int8 else [])
            for suffix in subs:
                sub = Path(triton) / f"{name}_{suffix}"
                if sub.exists() and not overwrite:
                    check_output(sub, overwrite)

        say(f"exporting {ckpt_path} to ONNX ...")
        proto = onnx_model_from_checkpoint(ckpt_path)
        check_tensorrt_compatible(proto, name=str(onnx_path))
        result = ExportResult(onnx=save_onnx(proto, onnx_path, overwrite), golden=golden_path)
        temporal_path = folder / f"{name}.temporal.onnx"
        result.temporal = write_temporal(proto, temporal_path, overwrite)
        say("writing the segment program for exact tiles ...")
        result.segments = write_segments(ckpt.build(), spec, segments_path, overwrite=True)
        if fp16_path:
            say("converting to FP16 ...")
            half = float16_model(proto, keep_io_fp32=not fp16_io)
            check_tensorrt_compatible(half, name=str(fp16_path))
            result.fp16_onnx = save_onnx(half, fp16_path, overwrite)
        say("computing the golden reference ...")
        golden_from_checkpoint(ckpt_path, golden_path, overwrite=overwrite)
        golden = load_golden(golden_path)
        for artifact in (result.onnx, result.fp16_onnx):
            if artifact is not None:
                say(f"verifying {artifact} ...")
                result.reports.append(verify(golden, artifact, backend="onnxruntime", device="cpu"))

        if int8 and int8_path:
            from perceptual_edge.export.int8 import export_int8

            result.int8_onnx, report, result.int8_report = export_int8(
                ckpt_path, result.onnx, int8_path, golden, int8, overwrite, say
            )
            result.reports.append(report)
            int8_engine = folder / f"{name}.int8.engine"
            result.trtexec_int8 = format_command(
                trtexec_command(
                    int8_path, int8_engine, profile, spec.input_name, workspace, cache, "int8"
                )
            )
        result.trtexec = format_command(
            trtexec_command(
                engine_src,
                engine_path,
                profile,
                spec.input_name,
                workspace,
                cache,
                "fp16" if fp16 else "fp32",
            )  # fmt: skip
        )
        if build_engine and have_trt:
            result.engine = engine_from_onnx(
                engine_src,
                engine_path,
                profile=profile,
                workspace_mib=workspace,
                timing_cache=cache,
                overwrite=overwrite,
                progress=say,
            )
            result.reports.append(verify(golden, result.engine, backend="tensorrt"))
        else:
            result.engine_skipped = why if build_engine or engine is None else "--no-engine given"

        if triton:
            result.triton.append(
                triton_model(
                    result.fp16_onnx or result.onnx,
                    triton,
                    f"{name}_onnx",
                    spec,
                    fp16_io=fp16_io,
                    overwrite=overwrite,
                )
            )
            if result.int8_onnx is not None:
                sub = f"{name}_int8_onnx"
                model = triton_model(result.int8_onnx, triton, sub, spec, overwrite=overwrite)
                result.triton.append(model)
            if result.engine is not None:
                result.triton.append(
                    triton_model(
                        result.engine,
                        triton,
                        f"{name}_plan",
                        spec,
                        max_batch_size=profile.max[0],
                        fp16_io=fp16_io,
                        overwrite=overwrite,
                    )
                )
        return result
    finally:
        folders.remove_empty()
