"""The CUDA stack (issue 9, case 6): the extras pin coherent sets, and `pe doctor` names an
installed set that is not. No GPU package is installed here: the installed pieces are given as
the data `cuda_stack.collect()` returns, or faked at importlib.metadata, where noted."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from perceptual_edge.runtime import cuda_stack as cs

ROOT = Path(__file__).resolve().parents[2]


def stack(ort=None, trt=None, cp=None, driver="13.0"):
    return {"driver_cuda": driver, "onnxruntime": ort, "tensorrt": trt, "cuda_python": cp}


ORT_1311 = {"package": "onnxruntime-gpu", "version": "1.31.1", "cuda": "13.0", "nvinfer": [10]}
ORT_126 = {"package": "onnxruntime-gpu", "version": "1.26.0", "cuda": "12.9", "nvinfer": [10]}
TRT_10_CU13 = {"package": "tensorrt-cu13", "version": "10.16.1.11", "cuda": 13}
TRT_11_CU13 = {"package": "tensorrt-cu13", "version": "11.4.0.106", "cuda": 13}
TRT_10_CU12 = {"package": "tensorrt-cu12", "version": "10.16.1.11", "cuda": 12}
CP13 = {"package": "cuda-python", "version": "13.4.4"}
CP12 = {"package": "cuda-python", "version": "12.9.10"}


def test_coherent_stacks_have_no_problems():
    assert cs.stack_problems(stack(ORT_1311, TRT_10_CU13, CP13, "13.0")) == []
    assert cs.stack_problems(stack(ORT_126, TRT_10_CU12, CP12, "12.8")) == []
    assert cs.stack_problems(stack(ORT_126, TRT_10_CU12, CP12, "13.0")) == []  # newer driver
    assert cs.stack_problems(stack()) == []  # nothing for the GPU installed


def test_the_issues_stack_is_named_in_full():
    # What an unpinned `[trt]` + `[gpu]` resolved to, on a CUDA 12.8 driver.
    problems = cs.stack_problems(stack(ORT_1311, TRT_11_CU13, CP13, "12.8"))
    text = " | ".join(problems)
    assert "libnvinfer.so.10 but TensorRT 11.4.0.106" in text
    assert "driver supports CUDA 12.8, the packages need CUDA 13" in text and "R580" in text
    assert len(problems) == 2


def test_mixed_majors_both_onnxruntimes_and_no_driver():
    both = dict(ORT_1311, cpu_package_too=True)
    problems = cs.stack_problems(stack(both, TRT_10_CU12, CP12, None))
    assert any("onnxruntime and onnxruntime-gpu are both installed" in p for p in problems)
    assert any("mixed CUDA majors" in p and "tensorrt-cu12" in p for p in problems)
    assert any("no NVIDIA driver" in p for p in problems)


def test_collect_reads_the_installed_distributions(monkeypatch):
    # importlib.metadata as a CPU-only environment with a stray cuda-python 13 shows it.
    import importlib.metadata as md

    installed = {"onnxruntime": "1.32.0", "cuda-python": "13.4.4"}

    def version(name):
        if name not in installed:
            raise md.PackageNotFoundError(name)
        return installed[name]

    monkeypatch.setattr(cs.md, "version", version)
    monkeypatch.setattr(cs, "driver_cuda_version", lambda: None)
    info = cs.collect()
    assert info["onnxruntime"] == {"package": "onnxruntime", "version": "1.32.0"}
    assert info["tensorrt"] is None and info["cuda_python"]["version"] == "13.4.4"
    assert cs.stack_problems(info) == [
        "no NVIDIA driver found (libcuda.so.1), the CUDA 13 packages need one"
    ]


def test_linked_majors_reads_needed_names(tmp_path):
    lib = tmp_path / "libfake.so"
    lib.write_bytes(b"\x7fELF\x00libcudart.so.13\x00libnvinfer.so.10\x00text libnvinfer.so.9 x\x00")
    assert cs.linked_majors(lib, "libnvinfer") == {10}
    assert cs.linked_majors(lib, "libcudart") == {13}
    assert cs.linked_majors(tmp_path / "missing.so", "libnvinfer") == set()


def _extras() -> dict[str, list[str]]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]


def _pin(reqs: list[str], name: str) -> str:
    (req,) = [r for r in reqs if re.match(rf"{re.escape(name)}(\[|[<>=~]|$)", r)]
    return req


@pytest.mark.parametrize("extra,major", [("cuda12", 12), ("cuda13", 13)])
def test_each_cuda_extra_pins_one_major(extra, major):
    reqs = _extras()[extra]
    trt = _pin(reqs, f"tensorrt-cu{major}")
    assert "<11" in trt  # onnxruntime-gpu's TensorRT provider links libnvinfer.so.10
    assert f">={major}" in _pin(reqs, "cuda-python") and f"<{major + 1}" in _pin(
        reqs, "cuda-python"
    )
    ort = _pin(reqs, "onnxruntime-gpu")
    assert "[cuda,cudnn]" in ort  # the CUDA runtime and cuDNN as pip wheels
    # onnxruntime-gpu <= 1.26 is built for CUDA 12, >= 1.27 for CUDA 13 (wheels inspected).
    bounds = [tuple(int(x) for x in v.split(".")[:2]) for v in re.findall(r"[\d.]+", ort)]
    assert all((b <= (1, 26)) == (major == 12) for b in bounds if b >= (1, 19))
    assert not any(r.startswith("onnxruntime>") or r == "onnxruntime" for r in reqs)


def test_onnxruntime_is_an_extra_not_a_base_dependency():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert not any(d.startswith("onnxruntime") for d in project["dependencies"])
    assert any(d.startswith("onnxruntime>") for d in _extras()["cpu"])
    assert "cpu" in _extras()["all"][0]
    readme = (ROOT / "README.md").read_text()
    for extra in ("cuda12", "cuda13"):
        assert f"| `[{extra}]` |" in readme  # the matrix row


def test_doctor_says_it_in_one_line():
    from perceptual_edge.runtime.doctor import stack_line

    bad = stack(ORT_1311, TRT_11_CU13, CP13, "12.8")
    line = stack_line(dict(bad, problems=cs.stack_problems(bad)))
    assert line.startswith("MISMATCH: ") and "\n" not in line and "libnvinfer.so.10" in line
    good = stack(ORT_1311, TRT_10_CU13, CP13, "13.0")
    assert stack_line(dict(good, problems=[])) == (
        "ok (onnxruntime-gpu 1.31.1, tensorrt-cu13 10.16.1.11, cuda-python 13.4.4; "
        "driver supports CUDA 13.0)"
    )
