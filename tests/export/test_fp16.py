"""FP16 ONNX: structure (what stays FP32), I/O types, ORT parity, FP16 numerics report."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from perceptual_edge.export.fp16 import (
    FLOAT,
    FLOAT16,
    FP32_OPS,
    copies_values,
    float16_model,
    is_float16_model,
)
from perceptual_edge.export.lint import lint_onnx
from perceptual_edge.runtime import Session


def _producers(m: onnx.ModelProto) -> dict[str, onnx.NodeProto]:
    return {o: n for n in m.graph.node for o in n.output}


def test_fp16_graph_keeps_norms_in_fp32_and_nearest_resize_in_fp16(exported) -> None:
    m = onnx.load(str(exported.fp16_onnx))
    assert is_float16_model(m) and not is_float16_model(onnx.load(str(exported.onnx)))
    inits = {t.name: t.data_type for t in m.graph.initializer}
    producers = _producers(m)
    resizes = [n for n in m.graph.node if n.op_type == "Resize"]
    assert len(resizes) == 2 and all(copies_values(n) for n in resizes)
    # Nearest upsampling copies values: it takes the FP16 tensor as it is, no Cast around it.
    assert all(producers[n.input[0]].op_type != "Cast" for n in resizes)
    kept = [n for n in m.graph.node if n.op_type in FP32_OPS and not copies_values(n)]
    assert {n.op_type for n in kept} == {"InstanceNormalization"}
    for node in kept:
        data = node.input[0]
        # The data input arrives through a Cast to FP32 ...
        assert producers[data].op_type == "Cast"
        assert producers[data].attribute[0].i == FLOAT
        if node.op_type == "InstanceNormalization":
            # ... and scale/bias stay FP32 initializers.
            assert inits[node.input[1]] == FLOAT and inits[node.input[2]] == FLOAT
    convs = [n for n in m.graph.node if n.op_type == "Conv"]
    assert convs and all(inits[n.input[1]] == FLOAT16 for n in convs)
    # I/O stay FP32.
    assert m.graph.input[0].type.tensor_type.elem_type == FLOAT
    assert m.graph.output[0].type.tensor_type.elem_type == FLOAT
    assert lint_onnx(m) == []


def test_fp16_io_variant_runs_on_ort(style_onnx: Path, tmp_path: Path) -> None:
    m = float16_model(onnx.load(str(style_onnx)), keep_io_fp32=False)
    assert m.graph.input[0].type.tensor_type.elem_type == FLOAT16
    assert m.graph.output[0].type.tensor_type.elem_type == FLOAT16
    out = tmp_path / "io16.onnx"
    onnx.save(m, str(out))
    x = np.random.default_rng(0).uniform(0, 255, (1, 3, 32, 48)).astype(np.float32)
    with Session(style_onnx, device="cpu") as s32, Session(out, device="cpu") as s16:
        ref, y = s32.run_batch(x), s16.run_batch(x)
    assert y.dtype == np.float32 and np.isfinite(y).all()
    assert 10 * np.log10(255**2 / np.mean((ref - y) ** 2)) > 40


def test_conversion_leaves_the_source_model_alone(style_onnx: Path) -> None:
    m = onnx.load(str(style_onnx))
    before = m.SerializeToString()
    float16_model(m)
    assert m.SerializeToString() == before


def test_fp16_on_a_real_photo_against_fp32(exported, shared_data: Path) -> None:
    from perceptual_edge.image import square_photos

    (name, img), *_ = square_photos(shared_data / "content", 256, limit=1)
    from perceptual_edge.image import image_to_batch

    x = image_to_batch(img)
    with Session(exported.onnx, device="cpu") as s32, Session(exported.fp16_onnx) as s16:
        ref, y = s32.run_batch(x), s16.run_batch(x)
    assert np.isfinite(y).all()
    assert 10 * np.log10(255**2 / np.mean((ref - y) ** 2)) >= 40, name


def test_activation_maxima_and_emulated_half(style_ckpt: Path) -> None:
    from perceptual_edge.export.fp16 import FP16_MAX
    from perceptual_edge.export.fp16_report import activation_maxima, half_forward
    from perceptual_edge.export.verify import capped_psnr
    from perceptual_edge.train.checkpoint import load_checkpoint

    model = load_checkpoint(style_ckpt).build()
    x = np.random.default_rng(1).uniform(0, 255, (1, 3, 32, 40)).astype(np.float32)
    maxima = activation_maxima(model, x)
    assert "stem.conv.conv" in maxima and "res.4.norm2" in maxima and "head.conv" in maxima
    assert all(0 < v < FP16_MAX for v in maxima.values())
    import torch

    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    emu = half_forward(model, x, "emulated")
    assert np.isfinite(emu).all() and capped_psnr(ref, emu) > 40
    # The emulation really rounds: it is not bit-identical to FP32.
    assert capped_psnr(ref, emu) < 150


def test_emulated_half_overflows_like_fp16() -> None:
    import torch

    from perceptual_edge.export.fp16_report import half_forward

    conv = torch.nn.Conv2d(3, 3, 1)
    with torch.no_grad():
        conv.weight.zero_()
        conv.bias.copy_(torch.tensor([1e5, 6e4, -1e5]))  # FP16 saturates beyond 65504
    y = half_forward(torch.nn.Sequential(conv), np.zeros((1, 3, 2, 2), np.float32))
    assert np.isposinf(y[0, 0]).all() and np.isneginf(y[0, 2]).all()
    assert np.isfinite(y[0, 1]).all() and abs(float(y[0, 1, 0, 0]) - 6e4) < 32


@pytest.mark.slow
def test_fp16_report_measure_runs(style_ckpt: Path, shared_data: Path) -> None:
    from benchmarks.fp16_report import format_rows, measure

    rows = measure(style_ckpt, shared_data / "content", sizes=(64,), limit=2)
    assert len(rows) == 2 and "torch_native_psnr" in rows[0]
    assert "ONNX FP16 PSNR" in format_rows(rows)


def test_nearest_resize_in_fp16_gives_the_same_numbers_with_fewer_casts(style_onnx: Path, tmp_path):
    # FP16 -> FP32 -> nearest -> FP16 and nearest in FP16 copy the same values: the outputs of
    # the two graphs must be bit-identical, and the new one has the four Casts fewer.
    src = onnx.load(str(style_onnx))
    new, old = float16_model(src), float16_model(src, nearest_in_fp16=False)
    casts = [sum(n.op_type == "Cast" for n in g.graph.node) for g in (new, old)]
    assert casts[1] - casts[0] == 4  # a Cast before and after each of the two upsamplings
    paths = []
    for name, g in (("new", new), ("old", old)):
        paths.append(tmp_path / f"{name}.onnx")
        onnx.save(g, str(paths[-1]))
    x = np.random.default_rng(3).uniform(0, 255, (1, 3, 48, 64)).astype(np.float32)
    with Session(paths[0], device="cpu") as a, Session(paths[1], device="cpu") as b:
        np.testing.assert_array_equal(a.run_batch(x), b.run_batch(x))


def test_interpolating_resize_stays_fp32() -> None:
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])
    scales = helper.make_tensor("scales", TensorProto.FLOAT, [4], [1, 1, 2, 2])
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("Resize", ["r", "", "scales"], ["y"], mode="linear"),
    ]
    g = helper.make_graph(nodes, "g", [x], [y], [scales])
    m = float16_model(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]))
    producers = _producers(m)
    (resize,) = [n for n in m.graph.node if n.op_type == "Resize"]
    assert producers[resize.input[0]].op_type == "Cast"
    assert producers[resize.input[0]].attribute[0].i == FLOAT
