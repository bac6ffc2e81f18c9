"""The OpenVINO backend against ONNX Runtime on the same .onnx file, its precision rules, its
model cache and its errors. Skipped with the reason where the [openvino] extra is absent (CI
installs it)."""

from __future__ import annotations

import numpy as np
import pytest

from perceptual_edge.errors import InputError, UnavailableError
from perceptual_edge.export.verify import capped_psnr
from perceptual_edge.hardware import cpu_features, cpu_has_bf16
from perceptual_edge.runtime import Session

pytest.importorskip("openvino", reason="the [openvino] extra is not installed")


@pytest.fixture(scope="module")
def batch() -> np.ndarray:
    return np.random.default_rng(3).random((2, 3, 67, 101), dtype=np.float32) * 255.0


def test_openvino_matches_onnxruntime_any_size(style_onnx, batch, tmp_path):
    with Session(style_onnx, backend="onnxruntime") as ort_s:
        ref = ort_s.run_batch(batch)
    with Session(style_onnx, backend="openvino", device="cpu", cache_dir=tmp_path) as s:
        out = s.run_batch(batch)
        assert s.backend_name == "openvino:CPU:fp32" and s.precision == "fp32"
        assert out.shape == ref.shape == (2, 3, 67, 101)  # odd sizes: same size out
        assert capped_psnr(ref, out) > 60.0
        image = np.random.default_rng(4).integers(0, 256, (50, 70, 3), dtype=np.uint8)
        tiled = s.run(image, tile=32)
        assert tiled.shape == image.shape and s.last_run_tiled


def test_fp32_is_asked_for_explicitly(style_onnx, tmp_path):
    """OpenVINO computes in bf16 by default on CPUs with BF16: fp32 must set the hint."""
    with Session(style_onnx, backend="openvino", precision="fp32", cache_dir=tmp_path) as s:
        compiled = s._backend._compiled
        assert "32" in str(compiled.get_property("INFERENCE_PRECISION_HINT"))


def test_bf16_only_where_the_cpu_has_it(style_onnx, batch, tmp_path):
    if cpu_has_bf16(cpu_features()):
        with Session(style_onnx, backend="openvino", precision="bf16", cache_dir=tmp_path) as s:
            assert s.precision == "bf16"
            with Session(style_onnx) as ref:
                assert capped_psnr(ref.run_batch(batch), s.run_batch(batch)) > 40.0
    else:
        with pytest.raises(UnavailableError, match="BF16"):
            Session(style_onnx, backend="openvino", precision="bf16", cache_dir=tmp_path)


@pytest.mark.parametrize("net", ["style_onnx", "sr4_onnx"])
def test_entry_and_body_together_are_the_whole_network(net, request, batch):
    """BF16 runs the layers before the residual trunk as a separate f32 model: in f32 both
    parts chained must give what the whole graph gives (the cut feeds the first block's conv
    and its skip connection alike)."""
    import openvino as ov

    from perceptual_edge.runtime.openvino_backend import split_entry

    path = request.getfixturevalue(net)
    core = ov.Core()
    model = core.read_model(str(path))
    entry, body = split_entry(ov, model)
    assert len(body.get_parameters()) == 1
    config = {"INFERENCE_PRECISION_HINT": "f32"}
    x = batch[:, :, :64, :96]
    whole = core.compile_model(model, "CPU", config)({0: x})[0]
    mid = core.compile_model(entry, "CPU", config)({0: x})[0]
    assert mid.shape[1] == (128 if net == "style_onnx" else 64)  # the trunk's width
    chained = core.compile_model(body, "CPU", config)({0: mid})[0]
    np.testing.assert_allclose(chained, whole, rtol=0, atol=1e-3)


def test_bf16_keeps_the_entry_in_f32(style_onnx, batch, tmp_path):
    if not cpu_has_bf16(cpu_features()):
        pytest.skip("this CPU has no BF16")
    with Session(style_onnx, backend="openvino", precision="bf16", cache_dir=tmp_path) as s:
        assert s.backend_name == "openvino:CPU:bf16+f32-entry" and s.precision == "bf16"
        assert s._backend.entry_precision == "fp32"
        split = s.run_batch(batch)
    with Session(
        style_onnx, backend="openvino", precision="bf16", cache_dir=tmp_path, f32_entry=False
    ) as s:
        assert s.backend_name == "openvino:CPU:bf16" and s._backend.entry_precision is None
        whole = s.run_batch(batch)
    with Session(style_onnx) as ref:
        expected = ref.run_batch(batch)
    assert capped_psnr(expected, split) > capped_psnr(expected, whole)


def test_bf16_is_not_offered_on_onnxruntime(style_onnx):
    with pytest.raises(UnavailableError, match="OpenVINO"):
        Session(style_onnx, backend="onnxruntime", precision="bf16")


def test_compiled_model_cache_is_written(style_onnx, tmp_path):
    cache = tmp_path / "ovcache"
    Session(style_onnx, backend="openvino", cache_dir=cache).close()
    blobs = list(cache.iterdir())
    assert blobs, "no compiled model cached"
    Session(style_onnx, backend="openvino", cache_dir=cache).close()  # loads from the cache
    assert sorted(cache.iterdir()) == sorted(blobs)


def test_devices_and_errors(style_onnx, tmp_path):
    with pytest.raises(InputError, match="unknown OpenVINO device"):
        Session(style_onnx, backend="openvino", device="xpu")
    import openvino as ov

    if "NPU" not in ov.Core().available_devices:
        with pytest.raises(UnavailableError, match="no NPU"):
            Session(style_onnx, backend="openvino", device="NPU")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not onnx")
    with pytest.raises(InputError, match="OpenVINO cannot read"):
        Session(bad, backend="openvino")


def test_pe_run_with_openvino(style_onnx, tmp_path):
    from PIL import Image
    from typer.testing import CliRunner

    from perceptual_edge.cli import app

    src = tmp_path / "in.png"
    Image.fromarray(np.full((40, 52, 3), 90, np.uint8)).save(src)
    dst = tmp_path / "out.png"
    r = CliRunner().invoke(
        app, ["run", str(style_onnx), "-i", str(src), "-o", str(dst), "--backend", "openvino",
              "--precision", "fp32", "--json"],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert '"backend": "openvino:CPU:fp32"' in r.stdout
    assert np.asarray(Image.open(dst)).shape == (40, 52, 3)


def test_openvino_session_does_not_load_torch(style_onnx):
    """In a fresh interpreter (what matters is sys.modules, not whether torch is importable)."""
    import subprocess
    import sys

    code = (
        "import sys\nimport numpy as np\nfrom perceptual_edge.runtime import Session\n"
        f"s = Session({str(style_onnx)!r}, backend='openvino')\n"
        "assert s.run(np.zeros((20, 30, 3), np.uint8)).shape == (20, 30, 3)\n"
        "bad = ('torch', 'perceptual_edge.train', 'perceptual_edge.export', 'onnx')\n"
        "print(','.join(m for m in bad if m in sys.modules))\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/")
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "", f"an OpenVINO Session imported {p.stdout.strip()}"
