"""Precision choice on the CPU: which file and which arithmetic a precision name means.

    fp32   NAME.onnx, computed in float32 (OpenVINO asked explicitly: on CPUs with BF16 units
           OpenVINO silently computes in bf16 unless told otherwise)
    fp16   NAME.fp16.onnx (FP16 in the graph; for GPUs, runs anywhere)
    bf16   NAME.onnx through OpenVINO with its inference-precision hint bf16, offered only
           where the CPU has BF16 arithmetic (AVX512_BF16 or AMX); ONNX Runtime has no bf16 path
    int8   NAME.int8.onnx, the QDQ file `pe export --int8` writes (TensorRT builds from it too)
    auto   the file as given, its own precision

`artifact_for(path, precision)` finds the sibling file a precision names (wave.onnx + int8 ->
wave.int8.onnx), so `pe run wave.onnx --precision int8` works as well as naming the file.
Also here: the CPU's instruction-set features, read from /proc/cpuinfo (torch-free, no library).
"""

from __future__ import annotations

from pathlib import Path

from perceptual_edge.errors import InputError

PRECISIONS = ("auto", "fp32", "fp16", "bf16", "int8")
# The file-name infix of each precision's ONNX file (fp32 and bf16 share the plain file).
FILE_INFIX = {"fp32": "", "bf16": "", "fp16": ".fp16", "int8": ".int8"}


def check_precision(precision: str) -> str:
    p = (precision or "auto").lower()
    if p not in PRECISIONS:
        raise InputError(f"unknown precision {precision!r}; choose from {', '.join(PRECISIONS)}")
    return p


def file_precision(path: str | Path) -> str:
    """The precision an ONNX file's name says (NAME.int8.onnx, NAME.fp16.onnx, else fp32)."""
    parts = Path(path).name.lower().split(".")[1:-1]
    if "int8" in parts:
        return "int8"
    if "fp16" in parts:
        return "fp16"
    return "fp32"


def base_stem(path: str | Path) -> str:
    """wave.int8.onnx -> wave; wave.fp16.onnx -> wave; wave.onnx -> wave."""
    name = Path(path).name
    for infix in (".int8.onnx", ".fp16.onnx", ".onnx"):
        if name.lower().endswith(infix):
            return name[: -len(infix)]
    return Path(path).stem


def artifact_for(path: str | Path, precision: str) -> Path:
    """The ONNX file that holds `precision` for the model `path` names: the file itself when it
    already is that precision, else its sibling (wave.onnx, int8 -> wave.int8.onnx)."""
    p = Path(path)
    precision = check_precision(precision)
    if precision == "auto" or p.suffix.lower() != ".onnx":
        return p
    have = file_precision(p)
    want = "fp32" if precision == "bf16" else precision
    if have == want:
        return p
    if precision == "bf16" and have != "fp32":
        raise InputError(f"{p} is a {have} model; bf16 computes from the FP32 file")
    sibling = p.with_name(base_stem(p) + FILE_INFIX[want] + ".onnx")
    if not sibling.is_file():
        hint = " (pe export --int8 --calibration DIR writes it)" if want == "int8" else ""
        raise InputError(f"--precision {precision} needs {sibling}, which does not exist{hint}")
    return sibling
