"""The CUDA stack as installed: which CUDA major each GPU package was built for, and whether they
can work together on this driver.

The pieces come from separate wheels that pip never checks against each other: onnxruntime-gpu
(its CUDA and TensorRT providers link libcudart.so.N and libnvinfer.so.M), tensorrt (tensorrt-cu12
or -cu13, major 10 or 11), cuda-python (its major is the CUDA major it binds) and the driver (the
newest CUDA it supports). The extras `[cuda12]` and `[cuda13]` pin coherent sets (README, "GPU
stack"); `stack_problems` names what does not fit, one sentence each, for `pe doctor`.

Facts the checks rest on, from the wheels themselves (metadata and the providers' ELF NEEDED
entries, inspected for onnxruntime-gpu 1.26.0, 1.27.0 and 1.31.1): onnxruntime-gpu up to 1.26
links CUDA 12, from 1.27 CUDA 13; all three link libnvinfer.so.10 (TensorRT 10) and cuDNN 9.
A CUDA 13 build needs a driver that supports CUDA 13 (R580 or newer).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import importlib.metadata as md
import io
import logging
import re
from pathlib import Path
from typing import Any

log = logging.getLogger("perceptual_edge.runtime")

TRT_EP_LIB = "libonnxruntime_providers_tensorrt.so"


def _dist_version(*names: str) -> tuple[str, str] | None:
    for name in names:
        try:
            return name, md.version(name)
        except md.PackageNotFoundError:
            continue
    return None


def _major(version: str | None) -> int | None:
    m = re.match(r"(\d+)", version or "")
    return int(m.group(1)) if m else None


def driver_cuda_version() -> str | None:
    """The newest CUDA the installed driver supports ('12.8'), or None without a driver."""
    try:
        cu = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return None
    v = ctypes.c_int(0)
    if cu.cuDriverGetVersion(ctypes.byref(v)) != 0 or v.value <= 0:
        return None
    return f"{v.value // 1000}.{v.value % 1000 // 10}"


def linked_majors(library: Path, name: str) -> set[int]:
    """The majors of `name` (e.g. 'libnvinfer') that a shared library names (its NEEDED entries
    live in the dynamic string table; a file that cannot be read gives the empty set)."""
    try:
        data = library.read_bytes()
    except OSError:
        return set()
    return {
        int(m) for m in re.findall(rb"\x00" + re.escape(name.encode()) + rb"\.so\.(\d+)\x00", data)
    }


def collect() -> dict[str, Any]:
    """What is installed, as plain data (never raises; absent pieces are None)."""
    info: dict[str, Any] = {"driver_cuda": driver_cuda_version()}
    ort = _dist_version("onnxruntime-gpu", "onnxruntime")
    info["onnxruntime"] = ort and {"package": ort[0], "version": ort[1]}
    if ort and ort[0] == "onnxruntime-gpu":
        info["onnxruntime"]["cpu_package_too"] = _dist_version("onnxruntime") is not None
        try:
            import onnxruntime

            info["onnxruntime"]["cuda"] = getattr(onnxruntime, "cuda_version", None) or None
            lib = Path(onnxruntime.__file__).parent / "capi" / TRT_EP_LIB
            info["onnxruntime"]["nvinfer"] = sorted(linked_majors(lib, "libnvinfer"))
        except Exception as e:  # a broken install is reported, not raised
            info["onnxruntime"]["error"] = f"{type(e).__name__}: {e}"
    trt = _dist_version(
        "tensorrt-cu13", "tensorrt-cu12", "tensorrt_cu13_libs", "tensorrt_cu12_libs"
    )
    trt = trt or _dist_version("tensorrt")
    if trt:
        cu = re.search(r"cu(\d+)", trt[0])
        info["tensorrt"] = {"package": trt[0], "version": trt[1], "cuda": cu and int(cu.group(1))}
    else:
        info["tensorrt"] = None
    cp = _dist_version("cuda-python", "cuda-bindings")
    info["cuda_python"] = cp and {"package": cp[0], "version": cp[1]}
    return info


def stack_problems(info: dict[str, Any]) -> list[str]:
    """One sentence per piece that cannot work with the others (empty: coherent)."""
    problems: list[str] = []
    ort, trt, cp = info.get("onnxruntime"), info.get("tensorrt"), info.get("cuda_python")
    driver = info.get("driver_cuda")
    majors: dict[str, int] = {}
    if ort and ort.get("package") == "onnxruntime-gpu" and _major(ort.get("cuda")):
        majors[f"onnxruntime-gpu {ort['version']}"] = _major(ort["cuda"])  # type: ignore[assignment]
    if trt and trt.get("cuda"):
        majors[f"{trt['package']} {trt['version']}"] = trt["cuda"]
    if cp and _major(cp["version"]):
        majors[f"{cp['package']} {cp['version']}"] = _major(cp["version"])  # type: ignore[assignment]
    if len(set(majors.values())) > 1:
        parts = ", ".join(f"{k} is CUDA {v}" for k, v in majors.items())
        problems.append(f"mixed CUDA majors ({parts}): install one of [cuda12] or [cuda13]")
    nvinfer = (ort or {}).get("nvinfer") or []
    if trt and nvinfer and _major(trt["version"]) not in nvinfer:
        problems.append(
            f"onnxruntime-gpu {ort['version']}'s TensorRT provider links libnvinfer.so."  # type: ignore[index]
            f"{'/'.join(map(str, nvinfer))} but TensorRT {trt['version']} is installed: that "
            f"provider cannot load (TensorRT {max(nvinfer)} is what [cuda12]/[cuda13] pin)"
        )
    if ort and ort.get("cpu_package_too"):
        problems.append(
            "onnxruntime and onnxruntime-gpu are both installed and overwrite each other's files: "
            "pip uninstall -y onnxruntime onnxruntime-gpu, then install one extra again"
        )
    need = max(majors.values(), default=None)
    if need is not None and driver is None:
        problems.append(f"no NVIDIA driver found (libcuda.so.1), the CUDA {need} packages need one")
    elif need is not None and _major(driver) is not None and _major(driver) < need:  # type: ignore[operator]
        problems.append(
            f"the driver supports CUDA {driver}, the packages need CUDA {need} "
            f"({'R580 or newer' if need >= 13 else 'R535 or newer'}): update the driver or "
            f"install [cuda{_major(driver)}]"
        )
    return problems


@functools.cache
def preload_cuda_libraries() -> None:
    """Load the CUDA/cuDNN libraries that pip put in site-packages (nvidia-*-cu12/13 wheels), so
    that ONNX Runtime's providers find them without LD_LIBRARY_PATH; onnxruntime-gpu >= 1.21
    ships the loader. Its notes are printed to stdout, which may be an image stream (`-o -`):
    they go to the debug log instead."""
    try:
        import onnxruntime as ort
    except ImportError:
        return
    preload = getattr(ort, "preload_dlls", None)
    if preload is None:
        return
    notes = io.StringIO()
    try:
        with contextlib.redirect_stdout(notes):
            preload(cuda=True, cudnn=True, msvc=False)
    except Exception as e:  # a broken CUDA install shows at provider start, with its reason
        log.debug("onnxruntime.preload_dlls failed: %s", e)
    if notes.getvalue().strip():
        log.debug("onnxruntime.preload_dlls: %s", notes.getvalue().strip())
