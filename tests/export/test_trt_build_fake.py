"""`engine_from_onnx` against a fake of TensorRT 10's builder API, and the printed trtexec command
compared with it flag by flag. The fake does what the real API does in the respects tested:
TF32 is on in a new builder config (cleared by `clear_flag`); `set_timing_cache(cache,
ignore_mismatch=False)` returns False for a cache from another GPU or TensorRT version and then
attaches nothing, so `get_timing_cache()` is None; the memory pool limit is in bytes. The real
build runs in tests/export/test_tensorrt.py on a GPU machine (`-m gpu`)."""

from __future__ import annotations

import json
import os
import shlex
import sys
import types
from pathlib import Path

import pytest

from perceptual_edge.export import tensorrt as trt_export
from perceptual_edge.export.tensorrt import default_profile, make_profile, trtexec_command
from perceptual_edge.spec import style_spec

GPU = {"name": "NVIDIA H100 80GB HBM3", "compute_capability": "9.0"}


def fake_builder_tensorrt() -> types.ModuleType:
    trt = types.ModuleType("tensorrt")
    trt.__version__ = "10.13.0.35"
    trt.Logger = type("Logger", (), {"WARNING": 2, "__init__": lambda self, level=0: None})
    trt.NetworkDefinitionCreationFlag = types.SimpleNamespace(STRONGLY_TYPED=0)
    trt.BuilderFlag = types.SimpleNamespace(TF32="TF32")
    trt.MemoryPoolType = types.SimpleNamespace(WORKSPACE="WORKSPACE")
    trt.record = record = {}

    class TimingCache:
        def __init__(self, data: bytes) -> None:
            self.data = data

        def serialize(self) -> bytes:
            return b"CACHE:" + GPU["name"].encode()

    class Profile:
        def set_shape(self, name, mn, opt, mx):
            record["profile"] = (name, tuple(mn), tuple(opt), tuple(mx))

    class Config:
        def __init__(self) -> None:
            self.flags = {"TF32"}  # TensorRT enables TF32 by default
            self.cache = None

        def set_memory_pool_limit(self, pool, size):
            record["pool"] = (pool, size)

        def clear_flag(self, flag):
            self.flags.discard(flag)

        def add_optimization_profile(self, profile):
            record["profiles"] = record.get("profiles", 0) + 1

        def create_timing_cache(self, data):
            return TimingCache(bytes(data))

        def set_timing_cache(self, cache, ignore_mismatch):
            if cache.data and not cache.data.startswith(b"CACHE:" + GPU["name"].encode()):
                return False  # another GPU / TensorRT version: refused, nothing attached
            self.cache = cache
            return True

        def get_timing_cache(self):
            return self.cache

    class Builder:
        def __init__(self, logger) -> None:
            pass

        def create_network(self, flags):
            record["strongly_typed"] = bool(flags & 1)
            return object()

        def create_builder_config(self):
            record["config"] = Config()
            return record["config"]

        def create_optimization_profile(self):
            return Profile()

        def build_serialized_network(self, network, config):
            record["tf32"] = "TF32" in config.flags
            return b"PLAN"

    class OnnxParser:
        num_errors = 0

        def __init__(self, network, logger) -> None:
            pass

        def parse_from_file(self, path):
            return True

    trt.Builder, trt.OnnxParser = Builder, OnnxParser
    return trt


@pytest.fixture
def fake_trt(monkeypatch):
    trt = fake_builder_tensorrt()
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    monkeypatch.setattr(trt_export, "tensorrt_status", lambda: (True, trt.__version__))
    monkeypatch.setattr(trt_export, "gpu_info", lambda *a, **k: dict(GPU))
    return trt


def flags_of_the_api_build(record: dict, onnx: Path, engine: Path, cache: Path) -> set[str]:
    """The trtexec flags that say what the builder calls recorded by the fake did."""
    name, mn, opt, mx = record["profile"]
    fmt = lambda s: "x".join(map(str, s))  # noqa: E731
    pool, size = record["pool"]
    assert pool == "WORKSPACE" and record["profiles"] == 1
    flags = {
        "trtexec", f"--onnx={onnx}", f"--saveEngine={engine}",
        f"--minShapes={name}:{fmt(mn)}", f"--optShapes={name}:{fmt(opt)}",
        f"--maxShapes={name}:{fmt(mx)}", f"--memPoolSize=workspace:{size >> 20}",
        f"--timingCacheFile={cache}",
    }  # fmt: skip
    if record["strongly_typed"]:
        flags.add("--stronglyTyped")
    if not record["tf32"]:
        flags.add("--noTF32")  # trtexec's default is TF32 on
    return flags


@pytest.mark.parametrize("which", ["fp32_onnx", "fp16_onnx"])
def test_printed_trtexec_command_builds_what_the_api_builds(fake_trt, exported, tmp_path, which):
    onnx = exported.onnx if which == "fp32_onnx" else exported.fp16_onnx
    precision = "fp32" if which == "fp32_onnx" else "fp16"
    profile = make_profile(style_spec(), "1x3x64x64", "1x3x512x512", "2x3x1080x1920")
    engine, cache = tmp_path / "w.engine", tmp_path / "w.cache"
    trt_export.engine_from_onnx(
        onnx, engine, profile=profile, workspace_mib=3072, timing_cache=cache, progress=print
    )
    cmd = trtexec_command(onnx, engine, profile, "input", 3072, cache, precision)
    assert set(cmd) == flags_of_the_api_build(fake_trt.record, onnx, engine, cache), shlex.join(cmd)
    assert cmd[0] == "trtexec" and len(cmd) == len(set(cmd))
    assert ("--noTF32" in cmd) == (precision == "fp32")
    assert not any(f.startswith("--memPoolSize") and f.endswith("M") for f in cmd)  # 10.0.x
    assert "--fp16" not in cmd  # precision comes from the graph (TensorRT 11 has no --fp16)
    assert "--noTF32" in trtexec_command("a.int8.onnx", "a.engine", profile, precision="int8")
    default = trtexec_command("a.onnx", "a.engine", default_profile(style_spec()))
    assert "--timingCacheFile" not in shlex.join(default)


def test_a_timing_cache_from_another_gpu_is_replaced_not_fatal(fake_trt, exported, tmp_path):
    cache = tmp_path / "w.cache"
    cache.write_bytes(b"CACHE:NVIDIA A100-SXM4-80GB")
    lines: list[str] = []
    profile = default_profile(style_spec())
    engine = trt_export.engine_from_onnx(
        exported.onnx, tmp_path / "w.engine", profile=profile, timing_cache=cache,
        progress=lines.append,
    )  # fmt: skip
    assert engine.read_bytes() == b"PLAN" and (tmp_path / "w.engine.json").is_file()
    assert any("another GPU or TensorRT version" in line for line in lines), lines
    assert cache.read_bytes() == b"CACHE:" + GPU["name"].encode()  # the fresh cache, saved


def test_plan_and_sidecar_are_written_as_one_unit(fake_trt, exported, tmp_path, monkeypatch):
    real_replace = os.replace

    def replace(src, dst):
        if str(dst).endswith(".engine.json"):
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError, match="No space"):
        trt_export.engine_from_onnx(
            exported.onnx, tmp_path / "w.engine", profile=default_profile(style_spec())
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no plan without its sidecar
    monkeypatch.setattr(os, "replace", real_replace)
    trt_export.engine_from_onnx(
        exported.onnx, tmp_path / "w.engine", profile=default_profile(style_spec())
    )
    meta = json.loads((tmp_path / "w.engine.json").read_text())
    assert meta["gpu"] == GPU and meta["tensorrt_version"] == "10.13.0.35"


def test_the_sidecar_names_the_gpu_cuda_builds_on(monkeypatch):
    # Issue 9, case 8: nvidia-smi's first GPU (PCI order, blind to CUDA_VISIBLE_DEVICES, absent
    # on Jetson) is not necessarily the build device; the CUDA binding's device 0 is.
    from perceptual_edge.runtime import cuda_mem

    class Binding:
        closed = False

        def device_info(self):
            return cuda_mem.GpuInfo("Orin (nvgpu)", "8.7")

        def close(self):
            Binding.closed = True

    calls: list[list[str]] = []
    monkeypatch.setattr(cuda_mem, "load_cuda", lambda device=0, prefer=None: Binding())
    monkeypatch.setattr(trt_export.subprocess, "run", lambda cmd, **kw: calls.append(cmd))
    assert trt_export.gpu_info() == {"name": "Orin (nvgpu)", "compute_capability": "8.7"}
    assert calls == [] and Binding.closed

    # No CUDA binding installed: nvidia-smi, asked for the device CUDA_VISIBLE_DEVICES names.
    def no_binding(device=0, prefer=None):
        raise cuda_mem.UnavailableError("no usable CUDA Python binding")

    def smi(cmd, **kw):
        calls.append(cmd)
        return types.SimpleNamespace(returncode=0, stdout="NVIDIA L4, 8.9\n")

    monkeypatch.setattr(cuda_mem, "load_cuda", no_binding)
    monkeypatch.setattr(trt_export.subprocess, "run", smi)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-5e2f,GPU-77aa")
    assert trt_export.gpu_info()["name"] == "NVIDIA L4"
    assert calls[-1][:3] == ["nvidia-smi", "-i", "GPU-5e2f"]
