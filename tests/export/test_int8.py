"""INT8 export: Q/DQ exactly where TensorRT's explicit quantization expects it (convolution
inputs and per-channel symmetric weights; instance norm and convolution outputs float), the
calibration on real photos, the per-layer choice, and the per-precision thresholds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from perceptual_edge.errors import InputError
from perceptual_edge.export.int8 import INT8_METADATA_KEY, Int8Options, int8_from_onnx
from perceptual_edge.export.verify import THRESHOLDS, THRESHOLDS_DB, capped_psnr, compare

FLOAT = ["stem.conv.conv", "head.conv"]


@pytest.fixture(scope="module")
def int8_onnx(style_onnx, shared_data, tmp_path_factory) -> tuple[Path, object]:
    out = tmp_path_factory.mktemp("int8") / "style.int8.onnx"
    path, plan, rows = int8_from_onnx(
        style_onnx, out, shared_data / "content", images=2, float_layers=FLOAT
    )
    assert rows == []  # layers given: nothing measured
    return path, plan


def _producers(model) -> dict:
    return {o: n for n in model.graph.node for o in n.output}


def test_qdq_on_conv_inputs_and_weights_only(int8_onnx):
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(int8_onnx[0]))
    onnx.checker.check_model(model)
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    made_by = _producers(model)
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    assert len(convs) == 16
    quantized = 0
    for conv in convs:
        x_src, w_src = made_by.get(conv.input[0]), made_by.get(conv.input[1])
        layer = conv.input[1].removesuffix(".weight")
        if any(f in conv.input[1] or f in (w_src.input[0] if w_src else "") for f in FLOAT):
            assert w_src is None or w_src.op_type != "DequantizeLinear", layer
            continue
        quantized += 1
        # activation: Q -> DQ right before the conv, INT8 with zero point 0 (symmetric)
        assert x_src.op_type == "DequantizeLinear", layer
        q = made_by[x_src.input[0]]
        assert q.op_type == "QuantizeLinear"
        zp = inits[x_src.input[2]]
        assert zp.dtype == np.int8 and not zp.any()
        # weight: an INT8 initializer -> DQ with one scale per output channel (axis 0)
        assert w_src.op_type == "DequantizeLinear", layer
        w, scale, wzp = (inits[i] for i in w_src.input)
        assert w.dtype == np.int8 and wzp.dtype == np.int8 and not wzp.any()
        # 7-bit range: u8 x s8 pairs stay inside int16 on CPUs without VNNI (no saturation)
        assert -64 <= w.min() and w.max() <= 64
        assert scale.shape == (w.shape[0],)
        axis = [a.i for a in w_src.attribute if a.name == "axis"]
        assert axis in ([], [0])
    assert quantized == 14
    # instance norm and every conv output stay float: no Q/DQ after a Conv
    consumers = {i: n for n in model.graph.node for i in n.input}
    for conv in convs:
        assert consumers[conv.output[0]].op_type != "QuantizeLinear"
    for n in model.graph.node:
        if n.op_type == "InstanceNormalization":
            assert made_by[n.input[0]].op_type == "Conv"


def test_int8_metadata_and_runs(int8_onnx, style_onnx):
    import onnx

    from perceptual_edge.runtime import Session
    from perceptual_edge.runtime.backend import SPEC_METADATA_KEY

    path, plan = int8_onnx
    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert SPEC_METADATA_KEY in props
    recorded = json.loads(props[INT8_METADATA_KEY])
    assert recorded["float_layers"] == FLOAT and recorded["method"] == "percentile"
    assert len(recorded["calibration_images"]) == 2
    assert not set(recorded["calibration_images"]) & set(recorded["held_out_images"])
    x = np.random.default_rng(0).random((1, 3, 61, 75), dtype=np.float32) * 255.0
    with Session(style_onnx) as f, Session(path) as q:
        assert q.precision == "int8"
        y, yq = f.run_batch(x), q.run_batch(x)
        assert yq.shape == y.shape
        assert 20.0 < capped_psnr(y, yq) < 80.0  # really quantized, and still the same picture


def test_precision_finds_the_sibling_file(int8_onnx, tmp_path):
    from perceptual_edge.runtime.precision import artifact_for

    path = int8_onnx[0]
    base = path.with_name("style.onnx")
    base.write_bytes(b"")  # only its name matters here
    assert artifact_for(base, "int8") == path
    assert artifact_for(path, "int8") == path
    assert artifact_for(base, "fp32") == base
    with pytest.raises(InputError, match="style.fp16.onnx"):
        artifact_for(base, "fp16")
    with pytest.raises(InputError, match="pe export --int8"):
        artifact_for(tmp_path / "x.onnx", "int8")


def test_greedy_float_choice(monkeypatch):
    """Layers move to float costliest first until the worst photo reaches the target."""
    from perceptual_edge.export import int8_report

    cost = {"a": 0.5, "b": 4.0, "c": 1.0}  # dB each INT8 layer costs

    class FakeQuantizer:
        source = "fp32"
        macs = {"a": 100, "b": 100, "c": 100}

        def layer_names(self):
            return list(cost)

        def variant(self, float_layers):
            return tuple(sorted(float_layers))

    def outputs(model, batches):
        if model == "fp32":
            return [np.zeros((1, 3, 8, 8))]
        db = 50.0 - sum(v for k, v in cost.items() if k not in model)
        mse = 255.0**2 / 10 ** (db / 10)
        return [np.full((1, 3, 8, 8), np.sqrt(mse))]

    monkeypatch.setattr(int8_report, "_outputs", outputs)
    kept, rows = int8_report.choose_float_layers(FakeQuantizer(), [None], target_db=48.0)
    assert kept == ["b"]  # 50 - 0.5 - 1.0 = 48.5 >= 48
    steps = [r for r in rows if r["table"] == "step"]
    assert [s["float_layers"] for s in steps] == [[], ["b"]]
    assert abs(steps[0]["psnr_min"] - 44.5) < 1e-6
    text = int8_report.format_report(rows)
    assert "| b | 46.00 | 46.00 | 33.3% |" in text and "every conv INT8" in text
    # the same error at a tenth of the compute goes float first
    FakeQuantizer.macs = {"a": 100, "b": 1000, "c": 10}
    kept, _ = int8_report.choose_float_layers(FakeQuantizer(), [None], target_db=48.0)
    assert kept == ["c", "a", "b"]  # 50-4=46 after c and a: b still needed


def test_thresholds_in_one_place():
    assert THRESHOLDS_DB == {"fp32": 60.0, "fp16": 40.0, "bf16": 40.0, "int8": 32.0}
    assert all(t.ssim == 0.97 for t in THRESHOLDS.values())
    # A smooth picture plus noise of sigma 4: PSNR ~36 dB passes INT8's 32 dB, but the noise
    # drowns the little local structure there is, so SSIM (~0.8) fails it on its own.
    ramp = np.linspace(60.0, 200.0, 48)
    ref = np.broadcast_to(ramp[None, None, :, None] + ramp[None, None, None, :] * 0.1,
                          (1, 3, 48, 48)).copy()  # fmt: skip
    noisy = ref + np.random.default_rng(1).normal(0, 4.0, ref.shape)
    c = compare(ref, noisy, THRESHOLDS["int8"].psnr_db, THRESHOLDS["int8"].ssim)
    assert c.psnr > 32.0 and c.ssim < 0.97 and not c.passed
    assert compare(ref, ref + 0.5, 32.0, 0.97).passed


def test_options_fail_fast(tmp_path):
    with pytest.raises(InputError, match="not a folder"):
        Int8Options(tmp_path / "missing").check()
    with pytest.raises(InputError, match="calibration method"):
        Int8Options(tmp_path, method="mse").check()


def test_export_int8_needs_calibration(style_ckpt, tmp_path):
    from helpers import assert_one_line_error
    from typer.testing import CliRunner

    from perceptual_edge.cli import app

    r = CliRunner().invoke(app, ["export", str(style_ckpt), "-o", str(tmp_path), "--int8"])
    assert_one_line_error(r, 2, "--calibration")
