import logging

import numpy as np
import pytest

from perceptual_edge.errors import InputError, UnavailableError
from perceptual_edge.runtime import Session
from perceptual_edge.runtime import ort_backend as ob

GPU_PROVIDERS = ("CUDAExecutionProvider", "TensorrtExecutionProvider")


@pytest.fixture
def cpu_only_ort(monkeypatch):
    """ONNX Runtime as a CPU-only build lists it, also on a machine with onnxruntime-gpu."""
    import onnxruntime as ort

    cpu = [p for p in ort.get_available_providers() if p not in GPU_PROVIDERS]
    monkeypatch.setattr(ort, "get_available_providers", lambda: cpu)
    return cpu


def test_auto_picks_cpu_here_and_says_so(style_onnx, caplog, cpu_only_ort):
    caplog.set_level(logging.INFO, logger="perceptual_edge.runtime")
    with Session(style_onnx) as s:
        assert s.backend_name == "onnxruntime:CPUExecutionProvider"
        assert s.max_input_hw is None and s.max_batch is None
        assert "CPUExecutionProvider" in repr(s)
    assert "backend onnxruntime:CPUExecutionProvider" in caplog.text


def test_uint8_and_float_batches(style_onnx):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (37, 45, 3), dtype=np.uint8)
    with Session(style_onnx, device="cpu", threads=1) as s:
        out = s.run(img)
        assert out.dtype == np.uint8 and out.shape == img.shape
        batch = np.stack([img.transpose(2, 0, 1)] * 2).astype(np.float32)
        y = s.run(batch)
        assert y.dtype == np.float32 and y.shape == (2, 3, 37, 45)
        np.testing.assert_allclose(y[0], y[1], atol=1e-3)
        # The image path is the batch path plus rounding.
        assert np.abs(np.rint(np.clip(y[0], 0, 255)).transpose(1, 2, 0) - out).max() <= 1


def test_auto_skips_a_listed_gpu_provider_that_cannot_start(
    style_onnx, monkeypatch, caplog, cpu_only_ort
):
    import onnxruntime as ort

    # Listed but its library cannot load: what a GPU build on a machine without CUDA shows.
    listed = ["CUDAExecutionProvider", *cpu_only_ort]
    monkeypatch.setattr(ort, "get_available_providers", lambda: listed)
    real_error = ob.provider_library_error
    missing = "libonnxruntime_providers_cuda.so: libcudnn.so.9: cannot open shared object file"
    monkeypatch.setattr(
        ob,
        "provider_library_error",
        lambda p: missing if p == "CUDAExecutionProvider" else real_error(p),
    )
    caplog.set_level(logging.WARNING, logger="perceptual_edge.runtime")
    with Session(style_onnx) as s:
        assert s.backend_name == "onnxruntime:CPUExecutionProvider"
    assert "skipping CUDAExecutionProvider" in caplog.text
    # Asked for explicitly, the same failure is an error naming what is missing.
    with pytest.raises(UnavailableError, match="libonnxruntime_providers_cuda|cannot load"):
        Session(style_onnx, device="cuda")


def test_explicit_gpu_device_unavailable_is_a_clear_error(style_onnx, cpu_only_ort):
    for device in ("cuda", "tensorrt"):
        with pytest.raises(UnavailableError, match="onnxruntime-gpu"):
            Session(style_onnx, device=device)
    with pytest.raises(InputError, match="unknown device"):
        Session(style_onnx, device="tpu")
    with pytest.raises(InputError, match="unknown backend"):
        Session(style_onnx, backend="tflite")
    with pytest.raises(InputError, match="cannot load a onnx"):
        Session(style_onnx, backend="tensorrt")


def test_missing_library_is_named(monkeypatch, tmp_path):
    import onnxruntime as ort

    capi = tmp_path / "onnxruntime" / "capi"
    capi.mkdir(parents=True)
    (capi / "libonnxruntime_providers_cuda.so").write_bytes(b"not an ELF")
    monkeypatch.setattr(ort, "__file__", str(tmp_path / "onnxruntime" / "__init__.py"))
    why = ob.provider_library_error("CUDAExecutionProvider")
    assert why is not None and "libonnxruntime_providers_cuda.so" in why
    assert ob.provider_library_error("CPUExecutionProvider") is None


@pytest.mark.parametrize("content", [b"", b"garbage, not a protobuf", b"\x08\x07" * 50])
def test_bad_model_files(tmp_path, content):
    p = tmp_path / "bad.onnx"
    p.write_bytes(content)
    with pytest.raises(InputError):
        Session(p)
    with pytest.raises(InputError, match="no such model file"):
        Session(tmp_path / "missing.onnx")
    (tmp_path / "model.bin").write_bytes(b"x")
    with pytest.raises(InputError, match="unknown model file type"):
        Session(tmp_path / "model.bin")


def test_onnx_without_spec_is_rejected(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 4, 4])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, 4, 4])
    g = helper.make_graph([helper.make_node("Identity", ["input"], ["output"])], "g", [x], [y])
    p = tmp_path / "plain.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)]), str(p))
    with pytest.raises(InputError, match="no perceptual-edge model spec"):
        Session(p)


def test_bad_inputs_and_closed_session(style_onnx):
    s = Session(style_onnx)
    with pytest.raises(InputError, match="uint8"):
        s.run(np.zeros((8, 8, 3), np.float32))
    with pytest.raises(InputError, match="RGB"):
        s.run(np.zeros((8, 8, 4), np.uint8))
    with pytest.raises(InputError, match="empty"):
        s.run(np.zeros((0, 8, 3), np.uint8))
    with pytest.raises(InputError):
        s.run(np.zeros((8, 8), np.uint8))
    with pytest.raises(InputError):
        s.run([[1, 2, 3]])  # type: ignore[arg-type]
    s.close()
    s.close()  # idempotent
    with pytest.raises(InputError, match="closed"):
        s.run(np.zeros((8, 8, 3), np.uint8))


def test_physical_cores_counts_sibling_sets_of_the_allowed_cpus(tmp_path, monkeypatch):
    # 4 logical CPUs, two per core; the process may use CPUs 0, 1 and 2 -> cores {0,2} and {1,3}.
    for cpu, siblings in enumerate(["0,2", "1,3", "0,2", "1,3"]):
        topo = tmp_path / f"cpu{cpu}" / "topology"
        topo.mkdir(parents=True)
        (topo / "thread_siblings_list").write_text(siblings + "\n")
    monkeypatch.setattr(ob.os, "sched_getaffinity", lambda pid: {0, 1, 2})
    assert ob.physical_cores(tmp_path) == 2
    monkeypatch.setattr(ob.os, "sched_getaffinity", lambda pid: {0, 2})
    assert ob.physical_cores(tmp_path) == 1
    # No topology files (some containers): every allowed CPU counts as a core.
    monkeypatch.setattr(ob.os, "sched_getaffinity", lambda pid: {0, 1, 2})
    assert ob.physical_cores(tmp_path / "missing") == 3


def test_ort_pool_threads_do_not_spin_by_default():
    """Spin-waiting pool threads steal the time slices another busy process leaves us
    (tests/benchmarks/cpu_load.py measures it); spinning stays available as an option."""
    from perceptual_edge.runtime.ort_backend import session_options

    key = "session.intra_op.allow_spinning"
    assert session_options().get_session_config_entry(key) == "0"
    assert session_options(spinning=True).get_session_config_entry(key) == "1"


def test_without_onnxruntime_the_error_names_the_extra(style_onnx, monkeypatch):
    # ONNX Runtime is an extra ([cpu], [cuda12], [cuda13]), not a base dependency.
    import sys

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # what `import` sees when absent
    with pytest.raises(UnavailableError, match=r"perceptual-edge\[cpu\].*\[cuda13\]"):
        Session(style_onnx, backend="onnxruntime")
