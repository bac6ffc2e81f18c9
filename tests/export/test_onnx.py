"""ONNX export: dynamic shapes, metadata, determinism, every network variant, the TensorRT lint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from helpers import TINY_SR
from onnx import TensorProto, helper

from perceptual_edge.errors import InputError
from perceptual_edge.export.lint import check_tensorrt_compatible, lint_onnx
from perceptual_edge.export.onnx_export import OPSET, onnx_from_checkpoint
from perceptual_edge.runtime import Session
from perceptual_edge.runtime.backend import SPEC_METADATA_KEY
from perceptual_edge.spec import ModelSpec

# Small widths, one residual block: every layer type of the real networks, exported fast.
TINY_STYLE = {"res_blocks": 1, "channels": (8, 16, 32)}


def _torch_reference(ckpt: Path, x: np.ndarray) -> np.ndarray:
    import torch

    from perceptual_edge.train.checkpoint import load_checkpoint

    with torch.no_grad():
        return load_checkpoint(ckpt).build()(torch.from_numpy(x)).numpy()


def _images(n: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    from perceptual_edge.image import image_to_batch
    from perceptual_edge.samples import content_image

    return np.concatenate([image_to_batch(content_image(seed + i, h, w)) for i in range(n)])


def test_style_onnx_is_dynamic_checked_and_carries_its_spec(style_onnx: Path) -> None:
    m = onnx.load(str(style_onnx))
    onnx.checker.check_model(m, full_check=True)
    assert {i.domain: i.version for i in m.opset_import}[""] >= OPSET >= 18
    (inp,) = m.graph.input
    dims = inp.type.tensor_type.shape.dim
    assert dims[0].dim_param and dims[2].dim_param and dims[3].dim_param  # N, H, W dynamic
    assert dims[1].dim_value == 3
    meta = {p.key: p.value for p in m.metadata_props}
    spec = ModelSpec.from_json(meta[SPEC_METADATA_KEY])
    assert spec.kind == "style" and spec.multiple == 4
    ops = {n.op_type for n in m.graph.node}
    assert {"InstanceNormalization", "Resize", "Pad", "Conv"} <= ops
    # Constant folding: no Constant or shape arithmetic left in the graph.
    assert not ops & {"Constant", "Shape", "Gather", "Concat"}
    assert lint_onnx(m) == []


def test_export_is_deterministic(style_onnx: Path, exported) -> None:
    # Two exports of the same checkpoint (the fixture's and `pe export`'s) are byte-identical.
    assert style_onnx.read_bytes() == exported.onnx.read_bytes()


def test_style_onnx_matches_torch_at_several_sizes_and_batch(style_ckpt, style_onnx) -> None:
    with Session(style_onnx, device="cpu") as s:
        for n, h, w in [(2, 32, 48), (1, 44, 20)]:
            x = _images(n, h, w)
            np.testing.assert_allclose(
                s.run_batch(x), _torch_reference(style_ckpt, x), atol=0.05, rtol=0
            )


@pytest.mark.parametrize(
    "network,options,expect_ops,absent_ops",
    [
        (
            "style",
            {"norm": "batch", "upsample": "deconv", **TINY_STYLE},
            {"ConvTranspose"},
            {"Resize"},
        ),
        ("style", {"output": "clamp", **TINY_STYLE}, {"Clip"}, {"Tanh"}),
        ("sr", {"factor": 2, **TINY_SR}, {"Resize"}, set()),
        pytest.param("sr", {"factor": 8}, {"Resize"}, set(), marks=pytest.mark.slow),
        pytest.param(
            "sr",
            {"factor": 4, "upsample": "deconv", "norm": "batch"},
            {"ConvTranspose"},
            set(),
            marks=pytest.mark.slow,
        ),
    ],
    ids=["style-batch-deconv", "style-clamp", "sr2", "sr8", "sr4-batch-deconv"],
)
def test_variants_export_and_match_torch(
    tmp_path: Path, make_ckpt, network: str, options: dict, expect_ops: set, absent_ops: set
) -> None:
    ckpt = make_ckpt(tmp_path / "v.pth", network, **options)
    out = onnx_from_checkpoint(ckpt, tmp_path / "v.onnx")
    m = onnx.load(str(out))
    ops = {n.op_type for n in m.graph.node}
    assert expect_ops <= ops and not absent_ops & ops
    # Batch norm in eval mode folds into the convolutions.
    assert "BatchNormalization" not in ops
    assert lint_onnx(m) == []
    with Session(out, device="cpu") as s:
        x = _images(2, 32, 44) if network == "style" else _images(2, 12, 20)
        np.testing.assert_allclose(s.run_batch(x), _torch_reference(ckpt, x), atol=0.05, rtol=0)


@pytest.mark.slow
def test_sr4_onnx_matches_torch(sr4_ckpt, sr4_onnx) -> None:
    x = _images(1, 21, 13)  # odd sizes: SR needs no multiple
    with Session(sr4_onnx, device="cpu") as s:
        y = s.run_batch(x)
    assert y.shape == (1, 3, 84, 52)
    np.testing.assert_allclose(y, _torch_reference(sr4_ckpt, x), atol=0.05, rtol=0)


def test_export_refuses_existing_output(style_ckpt, style_onnx) -> None:
    from perceptual_edge.errors import OutputExistsError

    with pytest.raises(OutputExistsError):
        onnx_from_checkpoint(style_ckpt, style_onnx)


def _model(nodes, inits=(), opset=18) -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, "h", "w"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    g = helper.make_graph(nodes, "g", [x], [y], initializer=list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def _const(name: str, values, dtype=np.int64):
    return onnx.numpy_helper.from_array(np.asarray(values, dtype=dtype), name)


@pytest.mark.parametrize(
    "nodes,inits,needle",
    [
        (
            [helper.make_node("Pad", ["x", "p"], ["y"], mode="wrap")],
            [_const("p", [0, 0, 1, 1, 0, 0, 1, 1])],
            "mode 'wrap'",
        ),
        (
            [helper.make_node("Resize", ["x", "", "s"], ["y"], mode="cubic")],
            [_const("s", [1, 1, 2, 2], np.float32)],
            "mode 'cubic'",
        ),
        (
            [helper.make_node("Resize", ["x", "", "s"], ["y"], mode="nearest", antialias=1)],
            [_const("s", [1, 1, 2, 2], np.float32)],
            "antialias",
        ),
        (
            [
                helper.make_node(
                    "ConvTranspose", ["x", "w"], ["y"], strides=[2, 2], output_shape=[64, 64]
                )
            ],
            [_const("w", np.zeros((3, 3, 3, 3)), np.float32)],
            "output_shape",
        ),
        ([helper.make_node("Conv", ["x", "x"], ["y"])], [], "weights must be an initializer"),
        ([helper.make_node("Unique", ["x"], ["y"])], [], "not supported"),
        ([helper.make_node("Einsum", ["x"], ["y"], equation="ij")], [], "not in the operators"),
    ],
    ids=[
        "pad-wrap",
        "resize-cubic",
        "antialias",
        "deconv-output-shape",
        "conv-dyn-w",
        "unique",
        "unreviewed",
    ],
)
def test_lint_names_what_tensorrt_would_reject(nodes, inits, needle) -> None:
    issues = lint_onnx(_model(nodes, inits))
    assert any(needle in str(i) for i in issues), issues
    with pytest.raises(InputError, match="not TensorRT-compatible"):
        check_tensorrt_compatible(_model(nodes, inits), name="bad.onnx")


def test_lint_checks_the_opset_range() -> None:
    m = _model([helper.make_node("Relu", ["x"], ["y"])], opset=25)
    assert any("opset 25" in str(i) for i in lint_onnx(m))


@pytest.mark.slow
def test_export_is_deterministic_across_processes(style_ckpt: Path, style_onnx: Path, tmp_path):
    # Another interpreter (another hash seed) must write the same bytes.
    import os
    import subprocess
    import sys

    out = tmp_path / "again.onnx"
    code = (
        "from perceptual_edge.export import onnx_from_checkpoint\n"
        f"onnx_from_checkpoint({str(style_ckpt)!r}, {str(out)!r})\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=300)
    assert out.read_bytes() == style_onnx.read_bytes()
