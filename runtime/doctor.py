"""`pe doctor`: what this machine can run, and why not.

Torch-free: torch is looked up with importlib (find_spec + installed version), never imported;
the VGG-16 weight lookup mirrors `perceptual_edge.train.vgg` (explicit env var, then the torch
hub cache computed the way torch computes it) without importing it.
"""

from __future__ import annotations

import importlib
import importlib.metadata as md
import importlib.util
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from perceptual_edge.hardware import cpu_features, cpu_has_bf16, cpu_has_int8_dot
from perceptual_edge.runtime.openvino_backend import openvino_devices

# Must match perceptual_edge.train.vgg (a test checks it).
VGG16_ENV_VAR = "PE_VGG16_WEIGHTS"
VGG16_FILENAME = "vgg16-397923af.pth"
VIDEO_ENCODERS = ("libx264", "libx265", "libvpx-vp9", "h264_nvenc", "hevc_nvenc", "aac")


def _version(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def _error(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0]}" if text else type(e).__name__


def check_onnxruntime() -> dict[str, Any]:
    try:
        import onnxruntime as ort
    except Exception as e:
        return {"ok": False, "error": _error(e)}
    from perceptual_edge.runtime.ort_backend import PROVIDER_ORDER, provider_library_error

    providers = {}
    for p in ort.get_available_providers():
        why = provider_library_error(p)
        providers[p] = {"usable": why is None, "why_not": why}
    usable = [p for p in PROVIDER_ORDER if providers.get(p, {}).get("usable")]
    return {
        "ok": True,
        "version": ort.__version__,
        "device": ort.get_device(),
        "providers": providers,
        "auto_picks": usable[0] if usable else None,
    }


def check_tensorrt() -> dict[str, Any]:
    try:
        import tensorrt as trt
    except Exception as e:
        return {"ok": False, "error": _error(e)}
    return {"ok": True, "version": str(trt.__version__)}


def check_cuda_bindings() -> dict[str, Any]:
    out: dict[str, Any] = {}
    try:
        from perceptual_edge.runtime.cuda_mem import _import_cudart

        _import_cudart()
        out["cuda-python"] = {
            "ok": True,
            "version": _version("cuda-python") or _version("cuda-bindings"),
        }
    except Exception as e:
        out["cuda-python"] = {"ok": False, "error": _error(e)}
    try:
        importlib.import_module("pycuda.driver")
        out["pycuda"] = {"ok": True, "version": _version("pycuda")}
    except Exception as e:
        out["pycuda"] = {"ok": False, "error": _error(e)}
    return out


def check_gpus() -> dict[str, Any]:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return {"ok": False, "error": "nvidia-smi not found (no NVIDIA driver)", "gpus": []}
    query = "name,compute_cap,driver_version,memory.total"
    try:
        r = subprocess.run(
            [exe, f"--query-gpu={query}", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=15,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as e:
        return {"ok": False, "error": _error(e), "gpus": []}
    if r.returncode != 0:
        msg = (r.stderr or r.stdout).strip().splitlines()
        return {"ok": False, "error": msg[0] if msg else f"exit {r.returncode}", "gpus": []}
    gpus = []
    for line in r.stdout.strip().splitlines():
        name, cc, driver, mem = ([*(s.strip() for s in line.split(",")), "", "", ""])[:4]
        gpus.append({"name": name, "compute_capability": cc, "driver": driver, "memory": mem})
    return {"ok": bool(gpus), "gpus": gpus}


def check_pyav() -> dict[str, Any]:
    try:
        import av
    except Exception as e:
        return {"ok": False, "error": _error(e)}
    encoders = {}
    for name in VIDEO_ENCODERS:
        try:
            av.codec.Codec(name, "w")
            encoders[name] = True
        except Exception:
            encoders[name] = False
    return {"ok": True, "version": av.__version__, "encoders": encoders}


def check_torch() -> dict[str, Any]:
    if importlib.util.find_spec("torch") is None:
        return {"present": False}
    version = _version("torch")
    return {"present": True, "version": version, "imported_by_runtime": "torch" in sys.modules}


def torch_hub_dir() -> Path:
    """torch.hub.get_dir() without torch: $TORCH_HUB, else $TORCH_HOME/hub, where TORCH_HOME
    defaults to $XDG_CACHE_HOME/torch (~/.cache/torch)."""
    if os.environ.get("TORCH_HUB"):
        return Path(os.path.expanduser(os.environ["TORCH_HUB"]))
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    home = os.environ.get("TORCH_HOME") or os.path.join(xdg, "torch")
    return Path(os.path.expanduser(home)) / "hub"


def check_vgg16() -> dict[str, Any]:
    searched = []
    env = os.environ.get(VGG16_ENV_VAR)
    if env:
        searched.append(f"${VGG16_ENV_VAR}={env}")
        if Path(env).is_file():
            return {"found": True, "path": env, "via": VGG16_ENV_VAR}
    cached = torch_hub_dir() / "checkpoints" / VGG16_FILENAME
    searched.append(str(cached))
    if cached.is_file():
        return {"found": True, "path": str(cached), "via": "torch hub cache"}
    return {"found": False, "searched": searched}


def doctor_report() -> dict[str, Any]:
    import numpy as np

    report: dict[str, Any] = {
        "perceptual_edge": _version("perceptual-edge"),
        "python": {"version": platform.python_version(), "executable": sys.executable},
        "platform": platform.platform(),
        "cpu_cores": {"logical": os.cpu_count()},
        "numpy": np.__version__,
        "onnxruntime": check_onnxruntime(),
        "openvino": openvino_devices(),
        "cpu_features": cpu_features(),
        "tensorrt": check_tensorrt(),
        "cuda_bindings": check_cuda_bindings(),
        "gpus": check_gpus(),
        "pyav": check_pyav(),
        "torch": check_torch(),
        "vgg16_weights": check_vgg16(),
    }
    from perceptual_edge.runtime import cuda_stack
    from perceptual_edge.runtime.ort_backend import physical_cores

    stack = cuda_stack.collect()
    report["cuda_stack"] = dict(stack, problems=cuda_stack.stack_problems(stack))

    report["cpu_cores"]["physical"] = physical_cores()
    report["can_run"] = can_run(report)
    report["cpu_path"] = cpu_path(report)
    return report


def cpu_path(r: dict[str, Any]) -> str:
    """The CPU path to try first here, by the measured ranking (README, "CPU paths"): on CPUs
    with BF16, OpenVINO BF16 (as fast as INT8 there, and it kept the quality bar on every photo
    where INT8 did not); elsewhere OpenVINO INT8, then OpenVINO FP32 ~ ONNX Runtime FP32."""
    ov = r["openvino"]
    if not ov.get("ok"):
        return "onnxruntime fp32 (install perceptual-edge[openvino] for the int8 and bf16 paths)"
    caps = ov["devices"].get("CPU", {}).get("capabilities", [])
    dot = "VNNI/AMX" if cpu_has_int8_dot(r["cpu_features"]) else "AVX2 pairs, no VNNI"
    if "BF16" in caps and cpu_has_bf16(r["cpu_features"]):
        return f"openvino bf16; openvino int8 with NAME.int8.onnx ({dot}) is as fast: pe verify it"
    return f"openvino int8 with NAME.int8.onnx ({dot}); else openvino fp32 (no BF16 on this CPU)"


def can_run(r: dict[str, Any]) -> dict[str, str]:
    """One verdict per capability: 'yes' or 'no: why'."""
    ort = r["onnxruntime"]
    providers = ort.get("providers", {})

    def provider(p: str) -> str:
        if not ort.get("ok"):
            return f"no: {ort.get('error')}"
        if p not in providers:
            return f"no: this onnxruntime has no {p} (install onnxruntime-gpu on a GPU machine)"
        why = providers[p]["why_not"]
        return "yes" if why is None else f"no: {why}"

    cuda_ok = any(b["ok"] for b in r["cuda_bindings"].values())
    if not r["tensorrt"]["ok"]:
        engine = f"no: TensorRT not importable ({r['tensorrt']['error']})"
    elif not cuda_ok:
        engine = "no: neither cuda-python nor pycuda imports"
    elif not r["gpus"]["ok"]:
        engine = f"no: no GPU ({r['gpus'].get('error', 'none found')})"
    else:
        engine = "yes"
    av = r["pyav"]
    video = (
        f"no: {av['error']}"
        if not av["ok"]
        else ("yes (libx264)" if av["encoders"].get("libx264") else "yes, but no libx264 encoder")
    )
    torch = r["torch"]
    return {
        ".onnx on CPU": provider("CPUExecutionProvider"),
        ".onnx on CUDA": provider("CUDAExecutionProvider"),
        ".onnx via TensorRT EP": provider("TensorrtExecutionProvider"),
        ".onnx via OpenVINO": "yes" if r["openvino"].get("ok") else f"no: {r['openvino']['error']}",
        ".engine (TensorRT)": engine,
        "video": video,
        "train/export (torch)": f"yes (torch {torch['version']})"
        if torch["present"]
        else "no: torch not installed (pip install 'perceptual-edge[train,export]')",
        "VGG-16 perceptual loss": "yes"
        if r["vgg16_weights"]["found"]
        else "no: weights not found (use --loss-net random offline)",
    }


def stack_line(stack: dict[str, Any]) -> str:
    """One line: the mismatches (see runtime.cuda_stack), or what the coherent stack is."""
    if stack["problems"]:
        return "MISMATCH: " + "; ".join(stack["problems"])
    pieces = [
        f"{d['package']} {d['version']}"
        for d in (stack.get("onnxruntime"), stack.get("tensorrt"), stack.get("cuda_python"))
        if d and d["package"] != "onnxruntime"
    ]
    if not pieces:
        return "no GPU packages installed (CPU only)"
    driver = stack.get("driver_cuda")
    return "ok (" + ", ".join(pieces) + (f"; driver supports CUDA {driver})" if driver else ")")


def format_report(r: dict[str, Any]) -> str:
    def status(d: dict[str, Any], key: str = "version") -> str:
        return str(d.get(key)) if d.get("ok") else f"not usable ({d.get('error')})"

    ort = r["onnxruntime"]
    lines = [
        f"perceptual-edge {r['perceptual_edge']}  Python {r['python']['version']}"
        f"  numpy {r['numpy']}  ({r['platform']})",
        f"CPU cores: {r['cpu_cores']['physical']} physical, {r['cpu_cores']['logical']} logical",
        f"onnxruntime: {status(ort)}",
    ]
    for p, d in ort.get("providers", {}).items():
        lines.append(f"  {p}: " + ("usable" if d["usable"] else f"not usable ({d['why_not']})"))
    if ort.get("ok"):
        lines.append(f"  auto picks: {ort['auto_picks']}")
    ov = r["openvino"]
    lines.append(f"openvino: {status(ov)}")
    for name, d in ov.get("devices", {}).items():
        caps = ", ".join(d["capabilities"]) or "capabilities n/a"
        lines.append(f"  {name}: {d['name']} ({caps})")
    feats = ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in r["cpu_features"].items())
    lines.append(f"CPU features: {feats}")
    lines.append(f"fastest CPU path here: {r['cpu_path']}")
    lines.append(f"TensorRT: {status(r['tensorrt'])}")
    lines.append(f"CUDA stack: {stack_line(r['cuda_stack'])}")
    for name, d in r["cuda_bindings"].items():
        lines.append(f"{name}: {status(d)}")
    g = r["gpus"]
    if g["gpus"]:
        for gpu in g["gpus"]:
            lines.append(
                f"GPU: {gpu['name']} (compute {gpu['compute_capability']}, driver "
                f"{gpu['driver']}, {gpu['memory']})"
            )
    else:
        lines.append(f"GPU: none ({g.get('error')})")
    av = r["pyav"]
    if av["ok"]:
        enc = ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in av["encoders"].items())
        lines.append(f"PyAV: {av['version']}; encoders in its FFmpeg build: {enc}")
        if any(v for k, v in av["encoders"].items() if "nvenc" in k):
            lines.append("  (NVENC encoders also need an NVIDIA GPU that has NVENC; H100s do not)")
    else:
        lines.append(f"PyAV: not usable ({av['error']})")
    t = r["torch"]
    lines.append(
        f"torch: {t['version']} (not imported)" if t["present"] else "torch: not installed"
    )
    v = r["vgg16_weights"]
    lines.append(
        f"VGG-16 weights: {v['path']} (via {v['via']})"
        if v["found"]
        else "VGG-16 weights: not found (looked in " + "; ".join(v["searched"]) + ")"
    )
    lines.append("Can run:")
    width = max(len(k) for k in r["can_run"])
    lines += [f"  {k:<{width}}  {v}" for k, v in r["can_run"].items()]
    return "\n".join(lines)
